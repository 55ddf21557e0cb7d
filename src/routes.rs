//! Routing: a request's method and path to a handler, and handlers to a [`Reply`].
//!
//! Handlers never fail: every failure is an [`Error`], which
//! [`Error::into_response`] turns into a status with a short reason.

use futures_lite::io::Cursor;
use futures_lite::{AsyncReadExt as _, FutureExt as _};
use http_types::{Body, Method, Request, Response, StatusCode};
use smol::Timer;

use crate::assets;
pub use crate::error::Error;
use crate::message::Draft;
use crate::registry::{PublishError, Subscription};
use crate::server::Shared;

/// What the connection does next.
#[derive(Debug)]
pub enum Reply {
    /// Write this response.
    Response(Box<Response>),
    /// Write the event stream of this subscription until it or the client ends.
    Events(Subscription),
    /// Answer `/events` with `200`, a `retry:` and an end, so the browser comes back
    /// later: any other status would make it give up for good.
    ComeBackLater,
}

/// Answers one request.
pub async fn handle(req: Request, shared: &Shared) -> Reply {
    let path = req.url().path().to_string();
    let method = req.method();
    if let Some(key) = &shared.config.key {
        if let Some(res) = check_key(&req, &path, key) {
            return Reply::Response(Box::new(res));
        }
    }
    let result = match (path.as_str(), method) {
        ("/events", Method::Get) => return events(&req, shared).await,
        ("/events", _) => Err(Error::MethodNotAllowed("GET")),
        ("/message", Method::Post) => post_message(req, shared).await,
        ("/message", _) => Err(Error::MethodNotAllowed("POST")),
        ("/recent", Method::Get | Method::Head) => Ok(recent(shared).await),
        ("/recent", _) => Err(Error::MethodNotAllowed("GET, HEAD")),
        (path, Method::Get | Method::Head) => asset(&req, path),
        (path, _) if assets::lookup(path).is_some() => Err(Error::MethodNotAllowed("GET, HEAD")),
        _ => Err(Error::NotFound),
    };
    Reply::Response(Box::new(result.unwrap_or_else(Error::into_response)))
}

async fn events(req: &Request, shared: &Shared) -> Reply {
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
    match shared.registry.join(last_event_id).await {
        Some(sub) => Reply::Events(sub),
        None => Reply::ComeBackLater,
    }
}

async fn post_message(mut req: Request, shared: &Shared) -> Result<Response, Error> {
    same_origin(&req)?;
    let is_form = req.header("content-type").is_some_and(|v| {
        let essence = v.as_str().split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return Err(Error::UnsupportedType);
    }
    let limit = shared.config.max_body;
    if req.len().is_some_and(|len| len > limit) {
        return Err(Error::TooLarge);
    }
    let mut body = Vec::new();
    let read = async {
        req.take_body()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|_| Error::BadRequest("the request body could not be read"))
    };
    let timeout = async {
        Timer::after(shared.config.body_timeout).await;
        Err(Error::Timeout)
    };
    read.or(timeout).await?;
    if body.len() > limit {
        return Err(Error::TooLarge);
    }
    let draft = Draft::from_form(&body).map_err(|e| Error::BadRequest(e.reason()))?;
    let message = shared.registry.publish(draft).await.map_err(|e| match e {
        PublishError::Stopped => Error::Unavailable,
        PublishError::NotStored => Error::NotStored,
    })?;

    let wants_json = req
        .header("accept")
        .is_some_and(|v| v.as_str().contains("application/json"));
    if wants_json {
        let mut res = Response::new(StatusCode::Created);
        res.insert_header("content-type", "application/json");
        res.insert_header("cache-control", "no-store");
        res.set_body(message.to_json());
        Ok(res)
    } else {
        // A plain form post: back to the page, which shows the message (no JavaScript
        // needed), and a reload does not post it again.
        let mut res = Response::new(StatusCode::SeeOther);
        res.insert_header("location", "/");
        Ok(res)
    }
}

/// How many messages the page without JavaScript shows.
const RECENT: usize = 50;

/// The newest messages as plain HTML, for readers without JavaScript: the chat page
/// shows it in a frame inside `<noscript>`, and it reloads itself.
async fn recent(shared: &Shared) -> Response {
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"10; url=/recent#end\">\
         <title>lanchat: recent messages</title>\
         <link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body class=\"recent\"><ol id=\"messages\">",
    );
    for frame in shared.registry.recent(RECENT).await {
        let Some(m) = frame_message(&frame) else {
            continue;
        };
        html.push_str("<li class=\"msg\"><div class=\"meta\"><span class=\"who\">");
        escape_into(&mut html, &m.name);
        html.push_str("</span></div><div class=\"text\">");
        escape_into(&mut html, &m.text);
        html.push_str("</div></li>");
    }
    html.push_str("</ol><p id=\"end\" class=\"note\">Newest last; this page reloads every 10 seconds.</p></body></html>\n");
    let mut res = Response::new(StatusCode::Ok);
    res.insert_header("content-type", "text/html; charset=utf-8");
    res.insert_header("cache-control", "no-store");
    res.set_body(html);
    res
}

/// The message inside a history frame: its `data:` line is the message as JSON, on
/// one line (JSON escapes line breaks).
fn frame_message(frame: &[u8]) -> Option<crate::message::Message> {
    let text = std::str::from_utf8(frame).ok()?;
    let data = text.split('\n').find_map(|l| l.strip_prefix("data: "))?;
    serde_json::from_str(data).ok()
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
    let host = req.header("host").map(|h| h.as_str()).unwrap_or("");
    let source = req
        .header("origin")
        .or_else(|| req.header("referer"))
        .map(|v| v.as_str());
    let Some(source) = source else {
        return Ok(());
    };
    let authority = source
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match authority {
        Some(a) if a.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(Error::Forbidden("posts from other sites are not accepted")),
    }
}

fn asset(req: &Request, path: &str) -> Result<Response, Error> {
    let asset = assets::lookup(path).ok_or(Error::NotFound)?;
    let accepts_gzip = req
        .header("accept-encoding")
        .is_some_and(|v| v.as_str().split(',').any(|e| e.trim().starts_with("gzip")));
    let gzip = asset.gzip.filter(|_| accepts_gzip);
    let etag = match gzip {
        Some(_) => asset.gzip_etag(),
        None => asset.etag.clone(),
    };
    let fresh = req.header("if-none-match").is_some_and(|v| {
        v.as_str()
            .split(',')
            .any(|t| t.trim() == etag || t.trim() == "*")
    });
    let mut res = Response::new(if fresh {
        StatusCode::NotModified
    } else {
        StatusCode::Ok
    });
    res.insert_header("etag", etag.as_str());
    res.insert_header("cache-control", "no-cache");
    res.insert_header("vary", "accept-encoding");
    if fresh {
        return Ok(res);
    }
    res.insert_header("content-type", asset.content_type);
    let bytes = match gzip {
        Some(gz) => {
            res.insert_header("content-encoding", "gzip");
            gz
        }
        None => asset.body,
    };
    res.set_body(Body::from_reader(Cursor::new(bytes), Some(bytes.len())));
    Ok(res)
}

/// The cookie that holds the access key once a page was opened with it.
const KEY_COOKIE: &str = "lanchat_key";

/// With an access key set: `None` lets the request through, `Some` is the answer
/// instead. The page, the stream and posting need the key; the other files (style,
/// script, icons, the manifest, which browsers fetch without cookies) hold nothing
/// private. The key comes as `?key=` (the URL in the QR code, or a script) or in the
/// cookie the page got when it was first opened with it.
fn check_key(req: &Request, path: &str, key: &str) -> Option<Response> {
    let page = matches!(path, "/" | "/index.html" | "/recent");
    if !page && !matches!(path, "/events" | "/message") {
        return None;
    }
    let in_query = req
        .url()
        .query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned());
    let in_cookie = req.header("cookie").and_then(|values| {
        values.iter().find_map(|v| {
            v.as_str().split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == KEY_COOKIE).then(|| value.to_string())
            })
        })
    });
    let by_query = in_query.is_some_and(|k| same_secret(k.as_bytes(), key.as_bytes()));
    let by_cookie = in_cookie.is_some_and(|k| same_secret(k.as_bytes(), key.as_bytes()));
    if by_query && page {
        // Keep it in a cookie scripts cannot read and other sites cannot send, and
        // take it out of the address bar (and so out of shared screenshots).
        let mut res = Response::new(StatusCode::SeeOther);
        res.insert_header("location", "/");
        res.insert_header("cache-control", "no-store");
        res.insert_header(
            "set-cookie",
            format!("{KEY_COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000"),
        );
        return Some(res);
    }
    if by_query || by_cookie {
        return None;
    }
    if page {
        let mut res = Response::new(StatusCode::Unauthorized);
        res.insert_header("content-type", "text/html; charset=utf-8");
        res.insert_header("cache-control", "no-store");
        res.set_body(LOCKED_PAGE);
        return Some(res);
    }
    Some(Error::Unauthorized.into_response())
}

const LOCKED_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>lanchat: key needed</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
<body><main class=\"locked\"><h1>This chat needs its key</h1>\
<p>Scan the QR code shown where lanchat runs again, or ask for the link with\
 <code>?key=</code> in it.</p></main></body></html>\n";

/// Compares a presented key with the real one in time that does not depend on
/// where they differ, so the key cannot be guessed a byte at a time.
fn same_secret(given: &[u8], key: &[u8]) -> bool {
    if given.len() != key.len() {
        return false;
    }
    let diff = given
        .iter()
        .zip(key)
        .fold(0u8, |acc, (a, b)| acc | std::hint::black_box(a ^ b));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        let mut out = String::new();
        escape_into(&mut out, "<img src=x onerror='a'> & \"b\"");
        assert_eq!(
            out,
            "&lt;img src=x onerror=&#39;a&#39;&gt; &amp; &quot;b&quot;"
        );
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"tea-time", b"tea-time"));
        assert!(!same_secret(b"tea-timf", b"tea-time"));
        assert!(!same_secret(b"tea", b"tea-time"));
        assert!(!same_secret(b"", b"tea-time"));
    }
}
