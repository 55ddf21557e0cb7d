//! The moderator's actions on one message: `DELETE /message/<id>` removes it for
//! everyone; `POST /message/<id>/mute` (form field `minutes`, default 10, 0 lifts
//! the mute) stops its sender's posts for a while. Who may: see [`super::access`].

use std::time::Duration;

use http_types::headers::CACHE_CONTROL;
use http_types::{Request, Response, StatusCode};

use crate::config::Config;
use crate::error::Error;
use crate::http::conn::Shared;
use crate::message::Id;
use crate::registry::{Moderated, ModerationRefused};

use super::access::same_origin;
use super::chat::read_body;

/// How long a mute lasts when the moderator does not say.
pub const MUTE_MINUTES: u64 = 10;
/// The longest mute: a day; a longer one is better done with `--key`.
const MUTE_MAX_MINUTES: u64 = 24 * 60;
/// A mute's form body is one small field.
const MUTE_BODY_BYTES: usize = 64;

/// `DELETE /message/<id>`.
pub async fn delete(req: Request, id: &str, shared: &Shared) -> Result<Response, Error> {
    same_origin(&req)?;
    let target: Id = id.parse().map_err(|_| Error::NoSuchMessage)?;
    let done = shared.registry.delete(target).await;
    if done.is_ok() {
        // Not the address: who posted it stays unknown to the log too.
        crate::info!("the host deleted message {target}");
    }
    let files = outcome(done)?;
    // A deleted message's photos go with it.
    shared.media.remove(&files);
    Ok(done_response())
}

/// `POST /message/<id>/mute`.
pub async fn mute(mut req: Request, id: &str, shared: &Shared) -> Result<Response, Error> {
    same_origin(&req)?;
    let target: Id = id.parse().map_err(|_| Error::NoSuchMessage)?;
    let minutes = mute_minutes(&mut req, &shared.config).await?;
    let done = shared
        .registry
        .mute(target, Duration::from_secs(minutes * 60))
        .await;
    if done.is_ok() {
        crate::info!("the host muted the sender of {target} for {minutes} minutes");
    }
    outcome(done)?;
    Ok(done_response())
}

fn outcome(done: Moderated) -> Result<Vec<String>, Error> {
    done.map_err(|e| match e {
        ModerationRefused::Stopped => Error::Unavailable,
        ModerationRefused::NotStored => Error::NotStored,
        ModerationRefused::NotFound => Error::NoSuchMessage,
        ModerationRefused::SenderUnknown => Error::SenderUnknown,
    })
}

fn done_response() -> Response {
    let mut res = Response::new(StatusCode::NoContent);
    res.insert_header(CACHE_CONTROL, "no-store");
    res
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
                "bad_minutes",
                "minutes must be a whole number from 0 (lifts the mute) to 1440",
            )),
    }
}
