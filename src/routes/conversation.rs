//! What a device does to a message after it is sent: react to any, edit or delete
//! its own; and finding messages by words. Each change is the registry's to check
//! (the message is there; it is this device's own) and to put in the one sequence.

use std::time::{Duration, Instant};

use http_types::headers::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http_types::{Request, Response, StatusCode};

use crate::client::ClientKey;
use crate::error::Error;
use crate::http::conn::Shared;
use crate::message::{self, Draft, Id, MAX_FORM_BYTES};
use crate::registry::{is_reaction, Act, ActRefused, Acted, Refused};

use super::access::same_origin;
use super::chat::{before, read_body};
use super::wants_json;

/// A reaction's or a deletion's body: a device secret, a name and an emoji.
const SMALL_BODY_BYTES: usize = 1024;

/// Places of history one step of a search looks at: a step takes the registry
/// well under a millisecond on a Pi, so messages never wait behind a search.
const SEARCH_STEP: usize = 2000;
/// Messages a search answers with, at most.
const SEARCH_LIMIT: usize = 50;
/// How long a search may go on before it answers with what it found so far (and
/// where to go on).
const SEARCH_TIME: Duration = Duration::from_secs(1);
/// Longest query, in bytes.
const MAX_QUERY_BYTES: usize = 200;

/// Which change a route asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// `POST /message/<id>/react`: `emoji`, `on` (`1`, the default, or `0`),
    /// `device`, `name`.
    React,
    /// `POST /message/<id>/edit`: `message` (the new text) and `device`.
    Edit,
    /// `POST /message/<id>/delete`: `device`. The host's deletion is `DELETE`.
    Delete,
}

/// A change to the message `id`, by the device whose secret the form carries. One
/// function for the three (not one each): each async function is a state machine
/// of its own in the binary.
pub async fn change(
    req: Request,
    id: &str,
    what: What,
    shared: &Shared,
    client: ClientKey,
) -> Result<Response, Error> {
    let limit = match what {
        What::Edit => MAX_FORM_BYTES,
        What::React | What::Delete => SMALL_BODY_BYTES,
    };
    let (target, fields, mut req) = read(req, id, limit, shared).await?;
    let act = act(what, &fields)?;
    let device = device(&fields, shared)?;
    let done = shared
        .registry
        .act(target, device.clone(), act, client)
        .await;
    if what == What::Delete && done.is_ok() {
        crate::info!("message {target} was deleted by its sender");
    }
    answer(&mut req, &device, done, shared)
}

/// What the form of a change asks.
fn act(what: What, fields: &[(String, String)]) -> Result<Act, Error> {
    match what {
        What::React => {
            let emoji = field(fields, "emoji").unwrap_or_default();
            if !is_reaction(emoji) {
                return Err(Error::BadRequest(
                    "bad_reaction",
                    "the reaction must be one of \u{1f44d} \u{2764}\u{fe0f} \u{1f602} \u{1f62e} \u{1f622} \u{1f64f}",
                ));
            }
            let on = match field(fields, "on") {
                None | Some("1") => true,
                Some("0") => false,
                Some(_) => return Err(Error::BadRequest("bad_reaction", "on must be 1 or 0")),
            };
            let name = Draft::new(field(fields, "name").unwrap_or_default(), "-")
                .map_err(Error::Invalid)?
                .name;
            Ok(Act::React {
                emoji: emoji.to_string(),
                on,
                name,
            })
        }
        What::Edit => {
            let text = message::valid_text(field(fields, "message").unwrap_or_default());
            Ok(Act::Edit {
                text: text.map_err(Error::Invalid)?,
            })
        }
        What::Delete => Ok(Act::Delete),
    }
}

/// The target and the form of a change, checked for its origin.
async fn read(
    mut req: Request,
    id: &str,
    limit: usize,
    shared: &Shared,
) -> Result<(Id, Vec<(String, String)>, Request), Error> {
    same_origin(&req)?;
    let target: Id = id.parse().map_err(|_| Error::NoSuchMessage)?;
    if req.len().is_some_and(|len| len > limit) {
        return Err(Error::TooLarge);
    }
    let body = read_body(&mut req, limit, &shared.config).await?;
    let fields = message::form(&body, &["emoji", "on", "name", "message", "device"])
        .map_err(Error::Invalid)?;
    Ok((target, fields, req))
}

/// The first value of a field.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The device tag of the `device` secret posted: who a change is by.
fn device(fields: &[(String, String)], shared: &Shared) -> Result<String, Error> {
    let secret = field(fields, "device").ok_or(Error::BadRequest(
        "device_needed",
        "send the device field: a change is made by the device that asks for it",
    ))?;
    let secret = message::device_secret(secret).map_err(Error::Invalid)?;
    Ok(shared.keys.device_tag(secret))
}

/// `{"message": <the message as it now stands>, "device": <the tag of the device
/// that asked>, "event": <the change's id, null when it changed nothing>}` (a page
/// learns its own tag so), or a redirect to the page for a form.
fn answer(
    req: &mut Request,
    device: &str,
    done: Acted,
    shared: &Shared,
) -> Result<Response, Error> {
    let done = done.map_err(refusal)?;
    // A deleted message's photos go with it.
    shared.media.remove(&done.files);
    if wants_json(req) {
        let mut res = Response::new(StatusCode::Ok);
        res.insert_header(CONTENT_TYPE, "application/json");
        res.insert_header(CACHE_CONTROL, "no-store");
        let body = serde_json::json!({
            "message": done.message,
            "device": device,
            "event": done.event,
        });
        res.set_body(body.to_string());
        Ok(res)
    } else {
        let mut res = Response::new(StatusCode::SeeOther);
        res.insert_header(LOCATION, "/");
        Ok(res)
    }
}

fn refusal(why: ActRefused) -> Error {
    match why {
        ActRefused::Stopped => Error::Unavailable,
        ActRefused::NotStored => Error::NotStored,
        ActRefused::Limited(wait) => Error::TooManyRequests(wait.as_secs() + 1),
        ActRefused::Muted(wait) => Error::Muted(wait.as_secs().div_ceil(60).max(1)),
        ActRefused::Refused(Refused::NotFound) => Error::NoSuchMessage,
        ActRefused::Refused(Refused::NotYours) => Error::Forbidden(
            "not_your_message",
            "only the device that sent this message can change it",
        ),
        ActRefused::Refused(Refused::TooLate) => Error::Forbidden(
            "edit_too_late",
            "a message can be edited for 15 minutes after it was sent",
        ),
        ActRefused::Refused(Refused::Full) => Error::Forbidden(
            "reactions_full",
            "this reaction has as many devices as one message can hold",
        ),
    }
}

/// `GET /messages?q=<words>[&before=<id>]`: the newest messages (at most 50) whose
/// text holds every word, case and accents aside, newest first, as
/// `{"messages":[…],"more":bool,"next":id}`; `more` says whether older history is
/// left to search, from `next` on (as `before`).
pub async fn search(req: &Request, q: &str, shared: &Shared) -> Result<Response, Error> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(Error::BadRequest(
            "bad_query",
            "q must be at most 200 bytes",
        ));
    }
    let words = crate::search::words(q);
    if words.is_empty() {
        return Err(Error::BadRequest("bad_query", "q must have a word to find"));
    }
    let mut before = before(req)?;
    let start = Instant::now();
    let mut messages = Vec::new();
    loop {
        let left = SEARCH_LIMIT - messages.len();
        let found = shared
            .registry
            .search(words.clone(), before, SEARCH_STEP, left)
            .await;
        messages.extend(found.messages);
        before = found.next;
        if before.is_none() || messages.len() == SEARCH_LIMIT || start.elapsed() > SEARCH_TIME {
            break;
        }
    }
    let body = serde_json::json!({
        "messages": messages,
        "more": before.is_some(),
        "next": before.map(|id| id.to_string()),
    });
    let mut res = Response::new(StatusCode::Ok);
    res.insert_header(CONTENT_TYPE, "application/json");
    res.insert_header(CACHE_CONTROL, "no-store");
    res.set_body(body.to_string());
    Ok(res)
}
