//! The chat's own routes: the event stream, posting, older messages, the newest as
//! plain HTML for a page without JavaScript, `/ping`, and the limits the page needs.

use std::net::IpAddr;

use futures_lite::{AsyncReadExt as _, FutureExt as _};
use http_types::headers::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http_types::{Request, Response, StatusCode};
use smol::Timer;

use crate::config::Config;
use crate::error::Error;
use crate::http::conn::Shared;
use crate::message::{Draft, Id};
use crate::registry::Handle;
use crate::upload;

use super::access::{is_moderator, query, same_origin};
use super::{wants_json, Reply};

/// The most messages `/messages` gives at once.
const OLDER_MAX: usize = 200;

/// How many messages the page without JavaScript shows.
const RECENT: usize = 50;

/// `GET /events`: a stream, resumed after the id the browser last saw.
pub async fn events(req: &Request, registry: &Handle) -> Reply {
    // The header is what a reconnecting EventSource sends; the query parameter lets a
    // page that was reloaded (a new EventSource, no header) resume where it was.
    let last_event_id = req
        .header("last-event-id")
        .map(|v| v.as_str().to_string())
        .or_else(|| query(req, "last_event_id"));
    match registry.join(last_event_id).await {
        Some(sub) => Reply::Events(sub),
        None => Reply::ComeBackLater,
    }
}

/// `POST /message`: a form, or a form with files. Answered with the stored message
/// as JSON when asked for, else by a redirect to the page (the form without
/// JavaScript; a reload does not post it again).
pub async fn post(mut req: Request, client: IpAddr, shared: &Shared) -> Result<Response, Error> {
    let (config, registry, media) = (&shared.config, &shared.registry, &shared.media);
    same_origin(&req)?;
    // A moderator slowed for wrong keys posts as anyone: a post is never refused for
    // a stale cookie.
    let by_mod = is_moderator(&req, client.into(), &shared.keys).unwrap_or(false);
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
        Draft::from_form(&body).map_err(Error::Invalid)?
    } else if let Some(boundary) = crate::multipart::boundary(&content_type) {
        let poster = upload::Poster {
            registry,
            client: client.into(),
            by_mod,
            keys: &shared.keys,
        };
        // Boxed: a multipart read holds buffers for files, and unboxed they would
        // make every request's future (a plain post's too) as large as theirs.
        Box::pin(upload::read(&mut req, &boundary, config, media, poster)).await?
    } else {
        return Err(Error::UnsupportedType);
    };
    draft.by_mod = by_mod;
    // The secret goes no further than here.
    draft.device = draft
        .device_secret
        .take()
        .map(|d| shared.keys.device_tag(&d));
    let mut files: Vec<String> = draft.files.iter().map(|f| f.id.clone()).collect();
    let published = registry.publish(draft, client.into()).await;
    // Nothing of a post that reached no one stays behind, nor the files of a post
    // sent again and answered with the message it already is (which has its own).
    if let Ok(message) = &published {
        files.retain(|id| !message.files.iter().any(|f| &f.id == id));
    }
    media.remove(&files);
    let message = published.map_err(upload::refusal)?;
    if wants_json(&req) {
        let mut res = Response::new(StatusCode::Created);
        res.insert_header(CONTENT_TYPE, "application/json");
        res.insert_header(CACHE_CONTROL, "no-store");
        res.set_body(message.to_json());
        Ok(res)
    } else {
        let mut res = Response::new(StatusCode::SeeOther);
        res.insert_header(LOCATION, "/");
        Ok(res)
    }
}

/// The body, up to `limit` bytes, within `--body-timeout`.
pub async fn read_body(req: &mut Request, limit: usize, config: &Config) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let read = async {
        req.take_body()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|_| Error::BadRequest("bad_body", "the request body could not be read"))
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

/// `GET /messages?before=<id>&limit=<n>`: the `n` (default 50; without `before`,
/// `--backlog`) messages before `before` in history, oldest first, as `{"messages":[…],"more":bool}`, for a page
/// scrolled up past the first it shows; `more` says whether older ones are kept.
pub async fn older(req: &Request, registry: &Handle, backlog: usize) -> Result<Response, Error> {
    let before = before(req)?;
    let limit = match query(req, "limit") {
        // A page's first look is what a new stream would replay (`--backlog`).
        None if before.is_none() => backlog.clamp(1, OLDER_MAX),
        None => 50,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=OLDER_MAX).contains(n))
            .ok_or(Error::BadRequest(
                "bad_query",
                "limit must be a number from 1 to 200",
            ))?,
    };
    // One more than asked tells whether there are more.
    let mut messages = registry.recent(before, limit + 1).await;
    let more = messages.len() > limit;
    if more {
        messages.remove(0);
    }
    let body = serde_json::json!({ "messages": messages, "more": more });
    Ok(json(body.to_string()))
}

/// The `before` of a request for messages: the id they come before, if any.
pub fn before(req: &Request) -> Result<Option<Id>, Error> {
    query(req, "before")
        .map(|id| {
            id.parse::<Id>().map_err(|_| {
                Error::BadRequest(
                    "bad_query",
                    "before must be a message id such as 1795560292000417-41",
                )
            })
        })
        .transpose()
}

/// `GET /limits`: what the page checks before it sends, as the server counts it, so
/// that a limit changes in one place.
pub fn limits(config: &Config) -> Response {
    let body = serde_json::json!({
        "message_chars": crate::message::MAX_TEXT_CHARS,
        "name_chars": crate::message::MAX_NAME_CHARS,
        "files_per_message": upload::MAX_FILES,
        "max_upload": config.max_upload,
        "inline_types": crate::media::INLINE,
        "mute_minutes": super::moderation::MUTE_MINUTES,
        "reactions": crate::message::REACTIONS,
        "edit_minutes": crate::message::EDIT_WINDOW.as_secs() / 60,
    });
    json(body.to_string())
}

fn json(body: String) -> Response {
    let mut res = Response::new(StatusCode::Ok);
    res.insert_header(CONTENT_TYPE, "application/json");
    res.insert_header(CACHE_CONTROL, "no-store");
    res.set_body(body);
    res
}

/// An empty answer: for `/ping`, which a page asks to learn at once whether the
/// server is there (its stream may be quiet, or stalled).
pub fn no_content() -> Response {
    let mut res = Response::new(StatusCode::NoContent);
    res.insert_header(CACHE_CONTROL, "no-store");
    res
}

/// The newest messages as plain HTML, for readers without JavaScript: the chat page
/// shows it in a frame inside `<noscript>`, and it reloads itself.
pub async fn recent(registry: &Handle) -> Response {
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"10; url=/recent#end\">\
         <title>lanchat: recent messages</title>\
         <link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body class=\"recent\"><ol id=\"messages\">",
    );
    for m in registry.recent(None, RECENT).await {
        let class = if m.deleted { "msg deleted" } else { "msg" };
        html.push_str(&format!(
            "<li class=\"{class}\"><div class=\"meta\"><span class=\"who\">"
        ));
        escape_into(&mut html, &m.name);
        if m.by_mod {
            html.push_str("</span><span class=\"host\">host");
        }
        if m.edited.is_some() {
            html.push_str("</span><span class=\"edited\">edited");
        }
        html.push_str("</span></div>");
        // As it now stands: a reply says what it answers, a message taken back says
        // so, reactions are counted.
        if let Some(q) = &m.reply {
            html.push_str("<div class=\"quote\">");
            if q.gone || q.missing {
                html.push_str("<span class=\"q-text\">a message no longer here</span>");
            } else {
                html.push_str("<span class=\"q-who\">");
                escape_into(&mut html, &q.name);
                html.push_str("</span> <span class=\"q-text\">");
                escape_into(&mut html, q.text.lines().next().unwrap_or_default());
                html.push_str("</span>");
            }
            html.push_str("</div>");
        }
        html.push_str("<div class=\"text\">");
        if m.deleted {
            html.push_str("<em>message deleted</em>");
        } else {
            escape_into(&mut html, &m.text);
        }
        html.push_str("</div>");
        if !m.reactions.is_empty() {
            html.push_str("<div class=\"reactions\">");
            for r in &m.reactions {
                html.push_str("<span>");
                escape_into(&mut html, &r.emoji);
                html.push_str(&format!(" {}</span> ", r.by.len()));
            }
            html.push_str("</div>");
        }
        html.push_str("</li>");
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
}
