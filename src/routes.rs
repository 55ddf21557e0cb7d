//! Routing: a request's method and path to a handler, and handlers to a [`Reply`].
//!
//! Handlers never fail: every failure is an [`Error`], which
//! [`Error::into_response`] turns into a status with a short reason.

use futures_lite::{AsyncReadExt as _, FutureExt as _};
use http_types::headers::{
    ACCEPT, ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_TYPE, COOKIE, ETAG, HOST,
    IF_NONE_MATCH, LOCATION, ORIGIN, REFERER, SET_COOKIE,
};
use http_types::{Method, Request, Response, StatusCode};
use smol::Timer;

use crate::assets;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use crate::client::ClientKey;
use crate::config::Config;
use crate::download::{Download, Head, Source};
pub use crate::error::Error;
use crate::keys::{Keys, Presented, Slowed};
use crate::media::Media;
use crate::message::{Draft, Id};
use crate::registry::Handle;
use crate::registry::{Refused, Subscription};

/// What the connection does next.
#[derive(Debug)]
pub enum Reply {
    /// Write this response.
    Response(Box<Response>),
    /// Write this file (its head and its bytes, by the kernel where it can).
    File(Box<crate::download::Download>),
    /// Write the event stream of this subscription until it or the client ends.
    Events(Subscription),
    /// Answer `/events` with `200`, a `retry:` and an end, so the browser comes back
    /// later: any other status would make it give up for good.
    ComeBackLater,
}

/// Who sent a request, and where it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address.
    pub client: IpAddr,
    /// The server's address the connection came in on: where a hotspot's redirects
    /// point. Looked up in `--portal` mode only.
    pub local: Option<SocketAddr>,
}

/// Answers one request: a plain function of the request, the settings and the way
/// to the registry, so that it can be tested without a socket.
pub async fn handle(
    req: Request,
    peer: Peer,
    config: &Config,
    registry: &Handle,
    media: &Media,
    keys: &Keys,
) -> Reply {
    let path = req.url().path().to_string();
    let method = req.method();
    let client = peer.client;
    if let (true, Some(local)) = (config.portal, peer.local) {
        if let Some(res) = portal(&req, &path, client, local, registry).await {
            return Reply::Response(Box::new(res));
        }
    }
    match access(&req, &path, client.into(), keys) {
        Ok(None) => {}
        Ok(Some(remember)) => return Reply::Response(Box::new(remember)),
        Err(e) => return Reply::Response(Box::new(e.into_response())),
    }
    if let Some(id) = path.strip_prefix("/media/") {
        let result = match method {
            Method::Get | Method::Head => serve_file(&req, id, media),
            _ => Err(Error::MethodNotAllowed("GET, HEAD")),
        };
        return match result {
            Ok(download) => Reply::File(Box::new(download)),
            Err(e) => Reply::Response(Box::new(e.into_response())),
        };
    }
    if let Some(rest) = path.strip_prefix("/message/") {
        // Boxed, as rare and larger than a post (see `post_message`).
        let result = Box::pin(moderate(req, rest, client, config, registry, media, keys)).await;
        return Reply::Response(Box::new(result.unwrap_or_else(Error::into_response)));
    }
    let result = match (path.as_str(), method) {
        ("/events", Method::Get) => return events(&req, registry).await,
        ("/events", _) => Err(Error::MethodNotAllowed("GET")),
        ("/message", Method::Post) => {
            post_message(req, client, config, registry, media, keys).await
        }
        ("/message", _) => Err(Error::MethodNotAllowed("POST")),
        ("/recent", Method::Get | Method::Head) => Ok(recent(registry).await),
        ("/recent", _) => Err(Error::MethodNotAllowed("GET, HEAD")),
        ("/messages", Method::Get) => older(&req, registry).await,
        ("/messages", _) => Err(Error::MethodNotAllowed("GET")),
        ("/ping", Method::Get | Method::Head) => Ok(no_content()),
        ("/ping", _) => Err(Error::MethodNotAllowed("GET, HEAD")),
        (path, Method::Get | Method::Head) => {
            return match asset(&req, path) {
                Ok(download) => Reply::File(Box::new(download)),
                Err(e) => Reply::Response(Box::new(e.into_response())),
            };
        }
        (path, _) if assets::lookup(path).is_some() => Err(Error::MethodNotAllowed("GET, HEAD")),
        _ => Err(Error::NotFound),
    };
    Reply::Response(Box::new(result.unwrap_or_else(Error::into_response)))
}

async fn events(req: &Request, registry: &Handle) -> Reply {
    // The header is what a reconnecting EventSource sends; the query parameter lets a
    // page that was reloaded (a new EventSource, no header) resume where it was.
    let last_event_id = req
        .header("last-event-id")
        .map(|v| v.as_str().to_string())
        .or_else(|| {
            req.url()
                .query_pairs()
                .find(|(k, _)| k == "last_event_id")
                .map(|(_, v)| v.into_owned())
        });
    match registry.join(last_event_id).await {
        Some(sub) => Reply::Events(sub),
        None => Reply::ComeBackLater,
    }
}

async fn post_message(
    mut req: Request,
    client: IpAddr,
    config: &Config,
    registry: &Handle,
    media: &Media,
    keys: &Keys,
) -> Result<Response, Error> {
    same_origin(&req)?;
    // A moderator slowed for wrong keys posts as anyone: a post is never refused for
    // a stale cookie.
    let by_mod = is_moderator(&req, client.into(), keys).unwrap_or(false);
    let content_type = req
        .header(CONTENT_TYPE)
        .map_or(String::new(), |v| v.as_str().to_string());
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let mut draft = if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let limit = config.max_body;
        if req.len().is_some_and(|len| len > limit) {
            return Err(Error::TooLarge);
        }
        let body = read_body(&mut req, limit, config).await?;
        Draft::from_form(&body).map_err(|e| Error::BadRequest(e.reason()))?
    } else if let Some(boundary) = crate::multipart::boundary(&content_type) {
        // Boxed: a multipart read holds buffers for files, and unboxed they would
        // make every request's future (a plain post's too) as large as theirs.
        let poster = crate::upload::Poster {
            registry,
            client: client.into(),
            by_mod,
        };
        Box::pin(crate::upload::read(
            &mut req, &boundary, config, media, poster,
        ))
        .await?
    } else {
        return Err(Error::UnsupportedType);
    };
    draft.by_mod = by_mod;
    let mut files: Vec<String> = draft.files.iter().map(|f| f.id.clone()).collect();
    let published = registry.publish(draft, client.into()).await;
    // Nothing of a post that reached no one stays behind, nor the files of a post
    // sent again and answered with the message it already is (which has its own).
    if let Ok(message) = &published {
        files.retain(|id| !message.files.iter().any(|f| &f.id == id));
    }
    media.remove(&files);
    let message = published.map_err(crate::upload::refusal)?;

    let wants_json = req
        .header(ACCEPT)
        .is_some_and(|v| v.as_str().contains("application/json"));
    if wants_json {
        let mut res = Response::new(StatusCode::Created);
        res.insert_header(CONTENT_TYPE, "application/json");
        res.insert_header(CACHE_CONTROL, "no-store");
        res.set_body(message.to_json());
        Ok(res)
    } else {
        // A plain form post: back to the page, which shows the message (no JavaScript
        // needed), and a reload does not post it again.
        let mut res = Response::new(StatusCode::SeeOther);
        res.insert_header(LOCATION, "/");
        Ok(res)
    }
}

/// Hotspot mode: a request for another site gets a probe's answer or a redirect to
/// the chat; `POST /portal` on the chat lets its client go online. `None`: a request
/// for the chat itself, answered as always.
async fn portal(
    req: &Request,
    path: &str,
    client: IpAddr,
    local: SocketAddr,
    registry: &Handle,
) -> Option<Response> {
    static HOSTNAME: OnceLock<Option<String>> = OnceLock::new();
    let hostname = HOSTNAME.get_or_init(crate::net::hostname);
    let host = req.header(HOST).map_or("", |h| h.as_str());
    if !crate::portal::is_own(host, hostname.as_deref()) {
        let let_in = registry.portal(client, false).await;
        return Some(crate::portal::answer(req, local, let_in));
    }
    if path != "/portal" {
        return None;
    }
    let res = match (req.method(), same_origin(req)) {
        (Method::Post, Ok(())) => {
            registry.portal(client, true).await;
            let from_script = req
                .header(ACCEPT)
                .is_some_and(|v| v.as_str().contains("application/json"));
            // The page's own request gets a bare 204; the form without JavaScript
            // goes back to the chat.
            let mut res = match from_script {
                true => Response::new(StatusCode::NoContent),
                false => {
                    let mut res = Response::new(StatusCode::SeeOther);
                    res.insert_header(LOCATION, "/");
                    res
                }
            };
            res.insert_header(CACHE_CONTROL, "no-store");
            res
        }
        (Method::Post, Err(e)) => e.into_response(),
        _ => Error::MethodNotAllowed("POST").into_response(),
    };
    Some(res)
}

/// `GET /media/<id>`: a shared file. Immutable (the id names its bytes forever),
/// with `ETag` and one `Range`. Images whose bytes are JPEG, PNG, WebP or GIF are
/// shown inline; anything else is a download in a sandbox, so that no upload can
/// run script in the chat's origin.
fn serve_file(req: &Request, id: &str, media: &Media) -> Result<Download, Error> {
    if !crate::media::is_id(id) {
        return Err(Error::NotFound);
    }
    let (info, bytes) = media.get(id).ok_or(Error::Gone)?;
    let etag = format!("\"{id}\"");
    let fresh = not_modified(req, &etag);
    let range = match req.header("range") {
        Some(v) if !fresh => byte_range(v.as_str(), info.size)?,
        _ => None,
    };
    let status = match (fresh, range) {
        (true, _) => StatusCode::NotModified,
        (false, Some(_)) => StatusCode::PartialContent,
        (false, None) => StatusCode::Ok,
    };
    let mut res = Response::new(status);
    res.insert_header(ETAG, etag.as_str());
    res.insert_header(CACHE_CONTROL, "private, max-age=31536000, immutable");
    res.insert_header("x-content-type-options", "nosniff");
    res.insert_header(ACCEPT_RANGES, "bytes");
    if fresh {
        return Ok(Download {
            head: Head::Response(Box::new(res)),
            source: Source::None,
            start: 0,
            len: 0,
        });
    }
    let inline = crate::media::INLINE.contains(&info.kind.as_str());
    if inline {
        res.insert_header(CONTENT_TYPE, info.kind.as_str());
        res.insert_header(
            "content-security-policy",
            "sandbox; default-src 'none'; img-src 'self'",
        );
    } else {
        res.insert_header(CONTENT_TYPE, "application/octet-stream");
        res.insert_header("content-security-policy", "sandbox");
        res.insert_header("content-disposition", attachment(&info.name));
    }
    let (start, end) = range.unwrap_or((0, info.size.saturating_sub(1)));
    let len = if info.size == 0 { 0 } else { end - start + 1 };
    if range.is_some() {
        res.insert_header(
            "content-range",
            format!("bytes {start}-{end}/{}", info.size),
        );
    }
    let source = match bytes {
        crate::media::Bytes::Memory(all) => Source::Memory(all),
        // Opened here (an open does not wait long, even on an SD card); the kernel
        // then copies from it to the socket.
        crate::media::Bytes::Disk(path) => {
            Source::Disk(std::fs::File::open(&path).map_err(|_| Error::Gone)?)
        }
    };
    Ok(Download {
        head: Head::Response(Box::new(res)),
        source,
        start,
        len,
    })
}

/// One range of `Range: bytes=...` within a file of `size` bytes, as first and
/// last byte; `None` for a header this server does not take (several ranges, other
/// units), which is answered with the whole file.
fn byte_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, Error> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = |t: &str| t.parse::<u64>().ok();
    let range = match (a.is_empty(), b.is_empty()) {
        // The last b bytes.
        (true, false) => {
            let Some(n) = parsed(b) else { return Ok(None) };
            if n == 0 {
                return Err(Error::RangeNotSatisfiable(size));
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (false, _) => {
            let Some(first) = parsed(a) else {
                return Ok(None);
            };
            let last = if b.is_empty() {
                Some(u64::MAX)
            } else {
                parsed(b)
            };
            let Some(last) = last else { return Ok(None) };
            if last < first {
                return Ok(None);
            }
            (first, last.min(size.saturating_sub(1)))
        }
        (true, true) => return Ok(None),
    };
    if size == 0 || range.0 >= size {
        return Err(Error::RangeNotSatisfiable(size));
    }
    Ok(Some(range))
}

/// `Content-Disposition` for a download under its own name, in any script
/// (RFC 6266: an ASCII fallback and the UTF-8 name percent-encoded).
fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// How long a mute lasts when the moderator does not say.
const MUTE_MINUTES: u64 = 10;
/// The longest mute: a day; a longer one is better done with `--key`.
const MUTE_MAX_MINUTES: u64 = 24 * 60;
/// A mute's form body is one small field.
const MUTE_BODY_BYTES: usize = 64;

/// A moderator's action on one message: `DELETE /message/<id>` removes it for
/// everyone; `POST /message/<id>/mute` (form field `minutes`, default 10, 0 lifts
/// the mute) stops its sender's posts for a while.
async fn moderate(
    mut req: Request,
    rest: &str,
    client: IpAddr,
    config: &Config,
    registry: &Handle,
    media: &Media,
    keys: &Keys,
) -> Result<Response, Error> {
    let (id, action) = match rest.split_once('/') {
        Some((id, action)) => (id, Some(action)),
        None => (rest, None),
    };
    match (action, req.method()) {
        (None, Method::Delete) | (Some("mute"), Method::Post) => {}
        (None, _) => return Err(Error::MethodNotAllowed("DELETE")),
        (Some("mute"), _) => return Err(Error::MethodNotAllowed("POST")),
        (Some(_), _) => return Err(Error::NotFound),
    }
    if !is_moderator(&req, client.into(), keys)? {
        return Err(Error::Forbidden(
            "only the host can do this: open the moderator link printed where lanchat runs",
        ));
    }
    same_origin(&req)?;
    let target: Id = id.parse().map_err(|_| Error::NoSuchMessage)?;
    let done = if action.is_none() {
        let done = registry.delete(target).await;
        if done.is_ok() {
            // Not the address: who posted it stays unknown to the log too.
            crate::info!("the host deleted message {target}");
        }
        done
    } else {
        let minutes = mute_minutes(&mut req, config).await?;
        let done = registry
            .mute(target, std::time::Duration::from_secs(minutes * 60))
            .await;
        if done.is_ok() {
            crate::info!("the host muted the sender of {target} for {minutes} minutes");
        }
        done
    };
    let files = done.map_err(|e| match e {
        Refused::Stopped => Error::Unavailable,
        Refused::NotStored => Error::NotStored,
        Refused::NotFound => Error::NoSuchMessage,
        Refused::SenderUnknown => Error::SenderUnknown,
    })?;
    // A deleted message's photos go with it.
    media.remove(&files);
    let mut res = Response::new(StatusCode::NoContent);
    res.insert_header(CACHE_CONTROL, "no-store");
    Ok(res)
}

/// The body, up to `limit` bytes, within `--body-timeout`.
async fn read_body(req: &mut Request, limit: usize, config: &Config) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let read = async {
        req.take_body()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|_| Error::BadRequest("the request body could not be read"))
    };
    let timeout = async {
        Timer::after(config.body_timeout).await;
        Err(Error::Timeout)
    };
    read.or(timeout).await?;
    if body.len() > limit {
        return Err(Error::TooLarge);
    }
    Ok(body)
}

/// The `minutes` of a mute's form body, if it has one.
async fn mute_minutes(req: &mut Request, config: &Config) -> Result<u64, Error> {
    let body = read_body(req, MUTE_BODY_BYTES, config).await?;
    // A number needs no decoding: anything else in it is refused.
    let given = body
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"minutes="));
    match given {
        None => Ok(MUTE_MINUTES),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|m| *m <= MUTE_MAX_MINUTES)
            .ok_or(Error::BadRequest(
                "minutes must be a whole number from 0 (lifts the mute) to 1440",
            )),
    }
}

/// The most messages `/messages` gives at once.
const OLDER_MAX: usize = 200;

/// `GET /messages?before=<id>&limit=<n>`: the `n` (default 50) messages before
/// `before` in history, oldest first, as `{"messages":[…],"more":bool}`, for a page
/// scrolled up past the first it shows; `more` says whether older ones are kept.
async fn older(req: &Request, registry: &Handle) -> Result<Response, Error> {
    let before = match query(req, "before") {
        None => None,
        Some(id) => Some(id.parse::<Id>().map_err(|_| {
            Error::BadRequest("before must be a message id such as 1795560292000417-41")
        })?),
    };
    let limit = match query(req, "limit") {
        None => 50,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=OLDER_MAX).contains(n))
            .ok_or(Error::BadRequest("limit must be a number from 1 to 200"))?,
    };
    // One more than asked tells whether there are more.
    let mut messages = registry.recent(before, limit + 1).await;
    let more = messages.len() > limit;
    if more {
        messages.remove(0);
    }
    let body = serde_json::json!({ "messages": messages, "more": more });
    let mut res = Response::new(StatusCode::Ok);
    res.insert_header(CONTENT_TYPE, "application/json");
    res.insert_header(CACHE_CONTROL, "no-store");
    res.set_body(body.to_string());
    Ok(res)
}

/// An empty answer: for `/ping`, which a page asks to learn at once whether the
/// server is there (its stream may be quiet, or stalled).
fn no_content() -> Response {
    let mut res = Response::new(StatusCode::NoContent);
    res.insert_header(CACHE_CONTROL, "no-store");
    res
}

/// How many messages the page without JavaScript shows.
const RECENT: usize = 50;

/// The newest messages as plain HTML, for readers without JavaScript: the chat page
/// shows it in a frame inside `<noscript>`, and it reloads itself.
async fn recent(registry: &Handle) -> Response {
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"10; url=/recent#end\">\
         <title>lanchat: recent messages</title>\
         <link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body class=\"recent\"><ol id=\"messages\">",
    );
    for m in registry.recent(None, RECENT).await {
        html.push_str("<li class=\"msg\"><div class=\"meta\"><span class=\"who\">");
        escape_into(&mut html, &m.name);
        if m.by_mod {
            html.push_str("</span><span class=\"host\">host");
        }
        html.push_str("</span></div><div class=\"text\">");
        escape_into(&mut html, &m.text);
        html.push_str("</div></li>");
    }
    html.push_str("</ol><p id=\"end\" class=\"note\">Newest last; this page reloads every 10 seconds.</p></body></html>\n");
    let mut res = Response::new(StatusCode::Ok);
    res.insert_header(CONTENT_TYPE, "text/html; charset=utf-8");
    res.insert_header(CACHE_CONTROL, "no-store");
    res.set_body(html);
    res
}

/// Appends text as HTML text: nothing a poster writes can become markup.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Refuses a post that a page on another site made a visitor's browser send. A post
/// with neither `Origin` nor `Referer` (curl, scripts) is let through: a browser
/// always sends one of them on a cross-site form post.
fn same_origin(req: &Request) -> Result<(), Error> {
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
        _ => Err(Error::Forbidden("posts from other sites are not accepted")),
    }
}

/// One of the page's files, built into the binary: the same bytes for every request,
/// written with their head in one `send`.
fn asset(req: &Request, path: &str) -> Result<Download, Error> {
    let asset = assets::lookup(path).ok_or(Error::NotFound)?;
    let accepts_gzip = req
        .header(ACCEPT_ENCODING)
        .is_some_and(|v| v.as_str().split(',').any(|e| e.trim().starts_with("gzip")));
    let gzip = asset.gzip.filter(|_| accepts_gzip);
    let etag = match gzip {
        Some(_) => &asset.gzip_etag,
        None => &asset.etag,
    };
    let fresh = not_modified(req, etag);
    let (status, bytes) = match fresh {
        true => (StatusCode::NotModified, None),
        false => (StatusCode::Ok, Some(gzip.unwrap_or(asset.body))),
    };
    // The headers are the same for every request: made once, with the table.
    Ok(Download {
        head: Head::Lines(status, asset.head(gzip.is_some(), fresh)),
        source: bytes.map_or(Source::None, Source::Static),
        start: 0,
        len: bytes.map_or(0, |b| b.len() as u64),
    })
}

/// Whether `If-None-Match` names `etag`, by the weak comparison RFC 9110 (13.1.2)
/// asks of it: `W/"x"` and `"x"` are the same tag there (a proxy may have weakened
/// it), and `*` matches any.
fn not_modified(req: &Request, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let own = opaque(etag);
    req.header(IF_NONE_MATCH).is_some_and(|values| {
        values.iter().any(|v| {
            v.as_str()
                .split(',')
                .any(|t| t.trim() == "*" || opaque(t) == own)
        })
    })
}

/// The cookie that holds the access key once a page was opened with it.
const KEY_COOKIE: &str = "lanchat_key";
/// The cookie that holds the moderator key, scripts cannot read it.
const MOD_COOKIE: &str = "lanchat_mod";
/// Tells the page's script to show the moderator's actions. It grants nothing:
/// every action checks [`MOD_COOKIE`].
const MOD_MARK_COOKIE: &str = "lanchat_moderator";
/// How long a browser remembers a key: a year.
const COOKIE_MAX_AGE: &str = "Max-Age=31536000";

/// Whether a request may go on: `Ok(None)` when it may, `Ok(Some(redirect))` for a
/// page opened with `?key=` or `?mod=`, whose keys' tokens go into cookies.
fn access(
    req: &Request,
    path: &str,
    client: ClientKey,
    keys: &Keys,
) -> Result<Option<Response>, Error> {
    let page = matches!(path, "/" | "/index.html" | "/recent");
    let mut cookies = Vec::new();
    if let (true, Some(given)) = (page, query(req, "mod")) {
        if !keys.has_mod_key() {
            return Err(Error::Forbidden(
                "this chat has no moderator: start lanchat with --mod-key",
            ));
        }
        if !keys
            .is_mod_key(client, Presented::Query, &given)
            .map_err(slowed)?
        {
            return Err(Error::Forbidden("this is not the moderator key"));
        }
        let token = keys.mod_token().unwrap_or_default();
        cookies.push(format!(
            "{MOD_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; {COOKIE_MAX_AGE}"
        ));
        cookies.push(format!(
            "{MOD_MARK_COOKIE}=1; Path=/; SameSite=Strict; {COOKIE_MAX_AGE}"
        ));
    }
    if keys.has_key() && check_key(req, path, client, keys)? == Access::Remember {
        let token = keys.key_token().unwrap_or_default();
        cookies.push(format!(
            "{KEY_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; {COOKIE_MAX_AGE}"
        ));
    }
    if cookies.is_empty() {
        return Ok(None);
    }
    // Keys' tokens go into cookies scripts cannot read and other sites cannot send;
    // the keys themselves out of the address bar (and so out of shared screenshots).
    let mut res = Response::new(StatusCode::SeeOther);
    res.insert_header(LOCATION, "/");
    res.insert_header(CACHE_CONTROL, "no-store");
    for cookie in cookies {
        res.append_header(SET_COOKIE, cookie);
    }
    Ok(Some(res))
}

/// A client slowed for wrong keys, as the answer.
fn slowed(Slowed(wait): Slowed) -> Error {
    Error::WrongKeys(wait.as_secs() + 1)
}

/// Whether the request comes from the moderator: the token in its cookie, or the
/// key in `?mod=` (for scripts). `Err` while the client is slowed for wrong keys.
fn is_moderator(req: &Request, client: ClientKey, keys: &Keys) -> Result<bool, Error> {
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

/// The first value of a query parameter.
fn query(req: &Request, name: &str) -> Option<String> {
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

/// What an access check lets a request do.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    /// Go on.
    Granted,
    /// A page opened with the right `?key=`: keep the key's token in a cookie and
    /// send the browser to the bare address.
    Remember,
}

/// With an access key set: whether the request may go on. The page, the stream and
/// posting need the key; the other files (style, script, icons, the manifest, which
/// browsers fetch without cookies) hold nothing private. The key comes as `?key=`
/// (the URL in the QR code, or a script), or its token in the cookie the page got
/// when it was first opened with it. A page without it is [`Error::Locked`] (a page
/// that says what to do), anything else [`Error::Unauthorized`].
fn check_key(req: &Request, path: &str, client: ClientKey, keys: &Keys) -> Result<Access, Error> {
    let page = matches!(path, "/" | "/index.html" | "/recent");
    let protected =
        matches!(path, "/events" | "/message" | "/messages") || path.starts_with("/media/");
    if !page && !protected {
        return Ok(Access::Granted);
    }
    // The address's key first: a link scanned again must work whatever cookie an
    // earlier key left.
    let (by_query, by_cookie) = match (query(req, "key"), cookie(req, KEY_COOKIE)) {
        (Some(given), _) => (
            keys.is_key(client, Presented::Query, &given)
                .map_err(slowed)?,
            false,
        ),
        (None, Some(token)) => (
            false,
            keys.is_key(client, Presented::Cookie, &token)
                .map_err(slowed)?,
        ),
        (None, None) => (false, false),
    };
    match (by_query, by_cookie, page) {
        (true, _, true) => Ok(Access::Remember),
        (true, _, false) | (_, true, _) => Ok(Access::Granted),
        (false, false, true) => Err(Error::Locked),
        (false, false, false) => Err(Error::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::registry::{self, Options};

    /// A request as a browser sends it, to `path`.
    fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request {
        let url = http_types::Url::parse(&format!("http://lanchat{path}")).unwrap();
        let mut req = Request::new(method, url);
        req.insert_header("host", "chat.lan");
        for (name, value) in headers {
            req.insert_header(*name, *value);
        }
        req
    }

    /// Routes `req` with a registry running beside it; the response, or `None` for
    /// an event stream.
    fn route(config: &Config, req: Request) -> Option<Response> {
        let (registry, task) = registry::new(Options {
            history: 10,
            backlog: 10,
            queue: 4,
            heartbeat: Duration::from_secs(60),
            epoch: 5,
            store: None,
            post_rate: config.post_rate,
            restored: Vec::new(),
            released: None,
        });
        let ex = smol::LocalExecutor::new();
        ex.spawn(task).detach();
        let peer = Peer {
            client: IpAddr::from([127, 0, 0, 1]),
            local: Some(SocketAddr::from(([10, 42, 0, 1], 80))),
        };
        let media = Media::open(None, config.media_limits(), &Default::default()).unwrap();
        let secret = crate::keys::Secret::load(None).unwrap();
        let keys = Keys::new(config.key.as_deref(), config.mod_key.as_deref(), &secret);
        let reply = smol::block_on(ex.run(handle(req, peer, config, &registry, &media, &keys)));
        registry.shutdown();
        match reply {
            Reply::Response(res) => Some(*res),
            Reply::File(download) => Some(match download.head {
                Head::Response(res) => *res,
                Head::Lines(status, lines) => {
                    let mut res = Response::new(status);
                    for line in lines.lines() {
                        let (name, value) = line.split_once(": ").unwrap();
                        res.insert_header(name, value);
                    }
                    res
                }
            }),
            Reply::Events(_) | Reply::ComeBackLater => None,
        }
    }

    fn status(config: &Config, method: Method, path: &str, headers: &[(&str, &str)]) -> u16 {
        route(config, request(method, path, headers)).map_or(200, |r| r.status().into())
    }

    fn text(res: &mut Response) -> String {
        smol::block_on(res.take_body().into_string()).unwrap()
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_with_what_is_allowed() {
        let config = Config::default();
        let mut res = route(&config, request(Method::Get, "/nope", &[])).unwrap();
        assert_eq!(res.status(), StatusCode::NotFound);
        assert!(text(&mut res).contains("no such page"));
        for (method, path, allow) in [
            (Method::Post, "/events", "GET"),
            (Method::Get, "/message", "POST"),
            (Method::Delete, "/recent", "GET, HEAD"),
            (Method::Post, "/style.css", "GET, HEAD"),
        ] {
            let res = route(&config, request(method, path, &[])).unwrap();
            assert_eq!(
                res.status(),
                StatusCode::MethodNotAllowed,
                "{method} {path}"
            );
            assert_eq!(res.header("allow").unwrap().as_str(), allow);
        }
        assert_eq!(status(&config, Method::Post, "/nope", &[]), 404);
    }

    #[test]
    fn assets_revalidate_with_their_etag_and_come_gzipped_when_accepted() {
        let config = Config::default();
        let res = route(&config, request(Method::Get, "/", &[])).unwrap();
        assert_eq!(res.status(), StatusCode::Ok);
        assert!(res.header("content-encoding").is_none());
        let etag = res.header("etag").unwrap().as_str().to_string();
        let again = route(
            &config,
            request(Method::Get, "/", &[("if-none-match", &etag)]),
        );
        assert_eq!(again.unwrap().status(), StatusCode::NotModified);

        let gz = route(
            &config,
            request(Method::Get, "/app.js", &[("accept-encoding", "gzip, br")]),
        )
        .unwrap();
        assert_eq!(gz.header("content-encoding").unwrap().as_str(), "gzip");
        assert_eq!(gz.header("vary").unwrap().as_str(), "accept-encoding");
        let plain = route(&config, request(Method::Get, "/app.js", &[])).unwrap();
        let tag = |res: &Response| res.header("etag").unwrap().as_str().to_string();
        assert_ne!(tag(&gz), tag(&plain), "one tag per encoding");
    }

    #[test]
    fn with_a_key_the_page_stream_and_posts_need_it_and_the_files_do_not() {
        let config = Config {
            key: Some("tea-time".into()),
            ..Config::default()
        };
        let mut locked = route(&config, request(Method::Get, "/", &[])).unwrap();
        assert_eq!(locked.status(), StatusCode::Unauthorized);
        assert!(text(&mut locked).contains("needs its key"));
        let opened = route(&config, request(Method::Get, "/?key=tea-time", &[])).unwrap();
        assert_eq!(opened.status(), StatusCode::SeeOther);
        assert_eq!(opened.header("location").unwrap().as_str(), "/");
        let cookie = opened.header("set-cookie").unwrap().as_str();
        assert!(cookie.starts_with("lanchat_key=") && cookie.contains("HttpOnly"));
        assert!(
            !cookie.contains("tea-time"),
            "a token, not the key: {cookie}"
        );
        let with_key_itself = [("cookie", "theme=dark; lanchat_key=tea-time")];
        assert_eq!(status(&config, Method::Get, "/", &with_key_itself), 401);
        assert_eq!(status(&config, Method::Get, "/?key=wrong", &[]), 401);
        assert_eq!(status(&config, Method::Get, "/style.css", &[]), 200);
        assert_eq!(status(&config, Method::Post, "/message", &[]), 401);
        assert_eq!(
            status(&config, Method::Get, "/events?key=tea-time", &[]),
            200
        );
        assert_eq!(status(&config, Method::Get, "/events", &[]), 401);
    }

    #[test]
    fn a_post_is_stored_and_answered_as_the_client_asked() {
        let config = Config::default();
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let mut req = request(Method::Post, "/message", &form);
        req.insert_header("accept", "application/json");
        req.set_body("name=Ada&message=hello");
        let mut res = route(&config, req).unwrap();
        assert_eq!(res.status(), StatusCode::Created);
        let json: serde_json::Value = serde_json::from_str(&text(&mut res)).unwrap();
        assert_eq!(
            (json["id"].as_str(), json["text"].as_str()),
            (Some("5-1"), Some("hello"))
        );
        let mut req = request(Method::Post, "/message", &form);
        req.set_body("message=hi");
        let res = route(&config, req).unwrap();
        assert_eq!(
            res.status(),
            StatusCode::SeeOther,
            "a plain form goes back to the page"
        );
        let mut req = request(Method::Post, "/message", &[("content-type", "text/plain")]);
        req.set_body("message=hi");
        assert_eq!(
            route(&config, req).unwrap().status(),
            StatusCode::UnsupportedMediaType
        );
        let mut req = request(Method::Post, "/message", &form);
        req.insert_header("origin", "http://elsewhere.example");
        req.set_body("message=hi");
        assert_eq!(route(&config, req).unwrap().status(), StatusCode::Forbidden);
    }

    #[test]
    fn ranges_are_one_span_within_the_file() {
        assert_eq!(byte_range("bytes=0-99", 1000).unwrap(), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000).unwrap(), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000).unwrap(), Some((900, 999)));
        assert_eq!(
            byte_range("bytes=990-5000", 1000).unwrap(),
            Some((990, 999))
        );
        assert_eq!(byte_range("bytes=-5000", 1000).unwrap(), Some((0, 999)));
        for whole in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(byte_range(whole, 1000).unwrap(), None, "{whole}");
        }
        for beyond in ["bytes=1000-", "bytes=-0", "bytes=2000-3000"] {
            assert_eq!(
                byte_range(beyond, 1000),
                Err(Error::RangeNotSatisfiable(1000))
            );
        }
    }

    #[test]
    fn downloads_keep_their_name_in_any_script() {
        assert_eq!(
            attachment("menü \"x\".pdf"),
            "attachment; filename=\"men_ _x_.pdf\"; filename*=UTF-8''men%C3%BC%20%22x%22.pdf"
        );
    }

    #[test]
    fn text_is_escaped_for_html() {
        let mut out = String::new();
        escape_into(&mut out, "<img src=x onerror='a'> & \"b\"");
        assert_eq!(
            out,
            "&lt;img src=x onerror=&#39;a&#39;&gt; &amp; &quot;b&quot;"
        );
    }
}
