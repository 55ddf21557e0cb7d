//! Hotspot mode's part of routing: a request for another site gets a probe's answer
//! or a redirect to the chat (see [`crate::portal`]); `POST /portal` on the chat
//! lets its client go online.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Instant;

use http_types::headers::{CACHE_CONTROL, HOST, LOCATION};
use http_types::{Request, Response, StatusCode};

use crate::error::Error;
use crate::http::conn::Shared;

use super::access::same_origin;
use super::wants_json;

/// The answer to a request for another site; `None` for one for the chat itself.
pub fn foreign(
    req: &Request,
    client: IpAddr,
    local: SocketAddr,
    shared: &Shared,
) -> Option<Response> {
    static HOSTNAME: OnceLock<Option<String>> = OnceLock::new();
    let hostname = HOSTNAME.get_or_init(crate::net::hostname);
    let host = req.header(HOST).map_or("", |h| h.as_str());
    if crate::portal::is_own(host, hostname.as_deref()) {
        return None;
    }
    let let_in = shared.let_in.is_in(client, Instant::now());
    Some(crate::portal::answer(req, local, let_in))
}

/// `POST /portal`: lets the client's address online for a day.
pub fn let_in(req: &Request, client: IpAddr, shared: &Shared) -> Result<Response, Error> {
    same_origin(req)?;
    shared.let_in.admit(client, Instant::now());
    // The page's own request gets a bare 204; the form without JavaScript goes back
    // to the chat.
    let mut res = match wants_json(req) {
        true => Response::new(StatusCode::NoContent),
        false => {
            let mut res = Response::new(StatusCode::SeeOther);
            res.insert_header(LOCATION, "/");
            res
        }
    };
    res.insert_header(CACHE_CONTROL, "no-store");
    Ok(res)
}
