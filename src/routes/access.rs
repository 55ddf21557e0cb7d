//! Who may use a route: the access key (`--key`) and the moderator's (`--mod-key`),
//! presented in the address (`?key=`, `?mod=`: the QR code's link, a script) or as
//! the token a cookie got when the page was opened with them; the moderator link;
//! and posts a page on another site made a visitor's browser send.

use http_types::headers::{CACHE_CONTROL, COOKIE, HOST, LOCATION, ORIGIN, REFERER, SET_COOKIE};
use http_types::{Request, Response, StatusCode};

use crate::client::ClientKey;
use crate::error::Error;
use crate::http::conn::Shared;
use crate::keys::{Keys, Presented, Slowed};

use super::{Access, Route};

/// The cookie that holds the access key's token once a page was opened with it.
const KEY_COOKIE: &str = "lanchat_key";
/// The cookie that holds the moderator key's token; scripts cannot read it.
const MOD_COOKIE: &str = "lanchat_mod";
/// Tells the page's script to show the moderator's actions. It grants nothing:
/// every action checks [`MOD_COOKIE`].
const MOD_MARK_COOKIE: &str = "lanchat_moderator";
/// How long a browser remembers a key: a year.
const COOKIE_MAX_AGE: &str = "Max-Age=31536000";

/// What an access check lets a request do.
#[derive(Debug)]
pub enum Granted {
    /// Go on to the handler.
    Go,
    /// A page opened with the right key in its address: this redirect to the bare
    /// address keeps the key's token in a cookie.
    Remember(Box<Response>),
}

/// Whether `req` may use `route` (see [`Route::access`]).
pub fn check(
    req: &Request,
    route: Route,
    client: ClientKey,
    shared: &Shared,
) -> Result<Granted, Error> {
    let keys = &shared.keys;
    let page = matches!(route, Route::Page | Route::Recent);
    let mut cookies = Vec::new();
    if let (Route::Page, Some(given)) = (route, query(req, "mod")) {
        if !keys.has_mod_key() {
            return Err(Error::Forbidden(
                "no_moderator",
                "this chat has no moderator: start lanchat with --mod-key",
            ));
        }
        if !keys
            .is_mod_key(client, Presented::Query, &given)
            .map_err(slowed)?
        {
            return Err(Error::Forbidden(
                "wrong_mod_key",
                "this is not the moderator key",
            ));
        }
        let token = keys.mod_token().unwrap_or_default();
        cookies.push(format!(
            "{MOD_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; {COOKIE_MAX_AGE}"
        ));
        cookies.push(format!(
            "{MOD_MARK_COOKIE}=1; Path=/; SameSite=Strict; {COOKIE_MAX_AGE}"
        ));
    }
    if route.access() != Access::Public && keys.has_key() {
        match key(req, client, keys)? {
            Some(Presented::Query) if route == Route::Page => {
                let token = keys.key_token().unwrap_or_default();
                cookies.push(format!(
                    "{KEY_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; {COOKIE_MAX_AGE}"
                ));
            }
            Some(_) => {}
            None if page => return Err(Error::Locked),
            None => return Err(Error::Unauthorized),
        }
    }
    if route.access() == Access::Moderator && !is_moderator(req, client, keys)? {
        return Err(Error::Forbidden(
            "not_moderator",
            "only the host can do this: open the moderator link printed where lanchat runs",
        ));
    }
    if cookies.is_empty() {
        return Ok(Granted::Go);
    }
    // Tokens go into cookies scripts cannot read and other sites cannot send; the
    // keys themselves out of the address bar (and so out of shared screenshots).
    let mut res = Response::new(StatusCode::SeeOther);
    res.insert_header(LOCATION, "/");
    res.insert_header(CACHE_CONTROL, "no-store");
    for cookie in cookies {
        res.append_header(SET_COOKIE, cookie);
    }
    Ok(Granted::Remember(Box::new(res)))
}

/// Where the right access key came from, `None` when it did not come. The address's
/// key is looked at first: a link scanned again must work whatever cookie an earlier
/// key left.
fn key(req: &Request, client: ClientKey, keys: &Keys) -> Result<Option<Presented>, Error> {
    let (given, from) = match (query(req, "key"), cookie(req, KEY_COOKIE)) {
        (Some(given), _) => (given, Presented::Query),
        (None, Some(token)) => (token, Presented::Cookie),
        (None, None) => return Ok(None),
    };
    let right = keys.is_key(client, from, &given).map_err(slowed)?;
    Ok(right.then_some(from))
}

/// Whether the request comes from the moderator: the token in its cookie, or the
/// key in `?mod=` (for scripts). `Err` while the client is slowed for wrong keys.
pub fn is_moderator(req: &Request, client: ClientKey, keys: &Keys) -> Result<bool, Error> {
    if !keys.has_mod_key() {
        return Ok(false);
    }
    let checked = match (query(req, "mod"), cookie(req, MOD_COOKIE)) {
        (Some(given), _) => keys.is_mod_key(client, Presented::Query, &given),
        (None, Some(token)) => keys.is_mod_key(client, Presented::Cookie, &token),
        (None, None) => Ok(false),
    };
    checked.map_err(slowed)
}

/// A client slowed for wrong keys, as the answer.
fn slowed(Slowed(wait): Slowed) -> Error {
    Error::WrongKeys(wait.as_secs() + 1)
}

/// The first value of a query parameter.
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.url()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of a cookie.
fn cookie(req: &Request, name: &str) -> Option<String> {
    req.header(COOKIE).and_then(|values| {
        values.iter().find_map(|v| {
            v.as_str().split(';').find_map(|pair| {
                let (n, value) = pair.trim().split_once('=')?;
                (n == name).then(|| value.to_string())
            })
        })
    })
}

/// Refuses a post that a page on another site made a visitor's browser send. A post
/// with neither `Origin` nor `Referer` (curl, scripts) is let through: a browser
/// always sends one of them on a cross-site form post.
pub fn same_origin(req: &Request) -> Result<(), Error> {
    let host = req.header(HOST).map(|h| h.as_str()).unwrap_or("");
    let source = req
        .header(ORIGIN)
        .or_else(|| req.header(REFERER))
        .map(|v| v.as_str());
    let Some(source) = source else {
        return Ok(());
    };
    // The chat is served over plain http only: `https://` with its host and port is
    // another origin (RFC 6454), and a page there is not the chat's.
    let authority = source
        .split_once("://")
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("http"))
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match authority {
        Some(a) if a.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(Error::Forbidden(
            "other_site",
            "posts from other sites are not accepted",
        )),
    }
}
