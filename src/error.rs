//! Every way a request can fail, and the one place where each becomes a status with a
//! stable code a program can read and a short reason a person can.
//!
//! Handlers and the head reader never return an `Err` to async-h1 (it would close
//! the connection without a word): whatever goes wrong is an [`Error`], and
//! [`Error::into_response`] answers it: as JSON `{"error": code, "message": reason,
//! …}` to a client that asks for JSON, as one line of text otherwise (a page for a
//! browser locked out by the access key). The codes are the contract (docs/http.md
//! lists them); the reasons may be reworded.

use http_types::headers::{
    ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_RANGE, CONTENT_TYPE, RETRY_AFTER,
};
use http_types::{Response, StatusCode};

use crate::message::Invalid;

/// Every way a request can fail, each with its status and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `400`, with its code and reason.
    BadRequest(&'static str, &'static str),
    /// `400`: a posted message that is not one.
    Invalid(Invalid),
    /// `401`: an access key is set and the request lacks it or has a wrong one.
    Unauthorized,
    /// `401` for a page: the same, answered with a page that says what to do.
    Locked,
    /// `403`, with its code and reason.
    Forbidden(&'static str, &'static str),
    /// `404`.
    NotFound,
    /// `404` for an action on a message that is not there.
    NoSuchMessage,
    /// `404` for a mute of a message whose sender is not known.
    SenderUnknown,
    /// `403`: a moderator muted this client for this many more minutes.
    Muted(u64),
    /// `405`, with the methods allowed.
    MethodNotAllowed(&'static str),
    /// `408`: the body did not arrive in time.
    Timeout,
    /// `413`.
    TooLarge,
    /// `413` for one file over `--max-upload` (this many bytes).
    FileTooLarge(u64),
    /// `410`: a file that is no longer kept.
    Gone,
    /// `416`: a range beyond the end of the file (its size).
    RangeNotSatisfiable(u64),
    /// `415`.
    UnsupportedType,
    /// `429`: the client posted faster than `--post-rate`; one more is allowed after
    /// this many seconds.
    TooManyRequests(u64),
    /// `429`: this client presented too many wrong keys lately; it may present one
    /// again after this many seconds.
    WrongKeys(u64),
    /// `431`: the head is over its size or header count.
    HeadTooLarge,
    /// `500`: a bug, caught before it could stop the server.
    Internal,
    /// `501`, with what is not implemented.
    NotImplemented(&'static str),
    /// `503`: shutting down or full.
    Unavailable,
    /// `505`.
    VersionNotSupported,
    /// `507`: the history file could not be written, so the message was not taken.
    NotStored,
    /// `507`: the disk is down to the room kept for the history, and no file is
    /// left to make room: files are refused, messages still go.
    NoRoomForFiles,
}

impl Error {
    /// The status, the stable code, and the one line that explains it.
    pub fn parts(self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Error::BadRequest(code, why) => (S::BadRequest, code, why),
            Error::Invalid(invalid) => (S::BadRequest, invalid.code(), invalid.reason()),
            Error::Unauthorized | Error::Locked => (
                S::Unauthorized,
                "key_needed",
                "this chat needs its key: open the link or scan the QR code again",
            ),
            Error::Forbidden(code, why) => (S::Forbidden, code, why),
            Error::NotFound => (S::NotFound, "not_found", "no such page"),
            Error::NoSuchMessage => (
                S::NotFound,
                "no_such_message",
                "no such message: it was deleted, or is older than the history kept",
            ),
            Error::SenderUnknown => (
                S::NotFound,
                "sender_unknown",
                "who sent this message is not known: it was posted before the server restarted",
            ),
            Error::Muted(_) => (S::Forbidden, "muted", "muted by the host"),
            Error::MethodNotAllowed(_) => (
                S::MethodNotAllowed,
                "method_not_allowed",
                "method not allowed",
            ),
            Error::Timeout => (
                S::RequestTimeout,
                "too_slow",
                "the request body came too slowly",
            ),
            Error::TooLarge => (
                S::PayloadTooLarge,
                "too_large",
                "the request body is too large",
            ),
            Error::FileTooLarge(_) => (
                S::PayloadTooLarge,
                "file_too_large",
                "the file is too large",
            ),
            Error::Gone => (
                S::Gone,
                "file_gone",
                "this file is no longer kept: newer files took its room",
            ),
            Error::RangeNotSatisfiable(_) => (
                S::RequestedRangeNotSatisfiable,
                "bad_range",
                "the range is beyond the end of the file",
            ),
            Error::UnsupportedType => (
                S::UnsupportedMediaType,
                "unsupported_type",
                "send the message as application/x-www-form-urlencoded or multipart/form-data",
            ),
            Error::TooManyRequests(_) => (
                S::TooManyRequests,
                "rate_limited",
                "too many messages at once; slow down",
            ),
            Error::WrongKeys(_) => (
                S::TooManyRequests,
                "too_many_wrong_keys",
                "too many wrong keys from this device",
            ),
            Error::HeadTooLarge => (
                S::RequestHeaderFieldsTooLarge,
                "head_too_large",
                "the request head is too large",
            ),
            Error::Internal => (
                S::InternalServerError,
                "internal",
                "something went wrong on the server; the request was not done",
            ),
            Error::NotImplemented(what) => (S::NotImplemented, "not_implemented", what),
            Error::Unavailable => (
                S::ServiceUnavailable,
                "unavailable",
                "the server is busy or stopping; try again shortly",
            ),
            Error::VersionNotSupported => (
                S::HttpVersionNotSupported,
                "http_version",
                "only HTTP/1.1 is supported",
            ),
            Error::NotStored => (
                S::InsufficientStorage,
                "not_stored",
                "the server cannot save messages right now (its disk is full or failing); \
                 the message was not sent",
            ),
            Error::NoRoomForFiles => (
                S::InsufficientStorage,
                "no_room_for_files",
                "the server has no room for more files right now; messages without files still go",
            ),
        }
    }

    /// Whether the connection must close after this answer because the body may be
    /// unread or half read. (A head that could not be read always closes: the
    /// connection does that itself.)
    pub fn closes(self) -> bool {
        matches!(
            self,
            Error::Timeout
                | Error::TooLarge
                | Error::FileTooLarge(_)
                | Error::BadRequest("bad_body" | "body_cut" | "bad_form", _)
        )
    }

    /// What a program needs beside the code: `(name, number)`.
    fn detail(self) -> Option<(&'static str, u64)> {
        match self {
            Error::TooManyRequests(seconds) | Error::WrongKeys(seconds) => {
                Some(("retry_after", seconds))
            }
            Error::FileTooLarge(max) => Some(("limit", max)),
            Error::Muted(minutes) => Some(("minutes", minutes)),
            Error::RangeNotSatisfiable(size) => Some(("size", size)),
            _ => None,
        }
    }

    /// The one line a person reads, with the numbers in it.
    fn sentence(self) -> String {
        let reason = self.parts().2;
        match self {
            Error::TooManyRequests(seconds) | Error::WrongKeys(seconds) => {
                format!("{reason}: wait {seconds} s")
            }
            Error::FileTooLarge(max) => match max % (1 << 20) {
                0 => format!("{reason}: the most is {} MiB", max >> 20),
                _ => format!("{reason}: the most is {} KiB", max.div_ceil(1 << 10)),
            },
            Error::Muted(minutes) => {
                let unit = if minutes == 1 { "minute" } else { "minutes" };
                format!("muted for {minutes} {unit} by the host")
            }
            _ => reason.to_string(),
        }
    }

    /// The response for this error: JSON for a client that asked for it, else one
    /// line of text (for a page locked by the key, a page).
    pub fn into_response(self, json: bool) -> Response {
        let (status, code, _) = self.parts();
        let mut res = Response::new(status);
        res.insert_header(CACHE_CONTROL, "no-store");
        if let Error::MethodNotAllowed(allow) = self {
            res.insert_header(ALLOW, allow);
        }
        if let Error::TooManyRequests(seconds) | Error::WrongKeys(seconds) = self {
            res.insert_header(RETRY_AFTER, seconds.to_string());
        }
        if let Error::RangeNotSatisfiable(size) = self {
            res.insert_header(CONTENT_RANGE, format!("bytes */{size}"));
        }
        if self.closes() {
            res.insert_header(CONNECTION, "close");
        }
        let sentence = self.sentence();
        if json {
            let mut body = serde_json::json!({ "error": code, "message": sentence });
            if let Some((name, value)) = self.detail() {
                body[name] = value.into();
            }
            res.insert_header(CONTENT_TYPE, "application/json");
            res.set_body(body.to_string());
        } else if self == Error::Locked {
            res.insert_header(CONTENT_TYPE, "text/html; charset=utf-8");
            res.set_body(LOCKED_PAGE);
        } else {
            res.insert_header(CONTENT_TYPE, "text/plain; charset=utf-8");
            res.set_body(format!(
                "{} {}: {sentence}\n",
                u16::from(status),
                status.canonical_reason()
            ));
        }
        res
    }
}

/// What a browser shows when the chat needs a key it does not have.
const LOCKED_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>lanchat: key needed</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
<body><main class=\"locked\"><h1>This chat needs its key</h1>\
<p>Scan the QR code shown where lanchat runs again, or ask for the link with\
 <code>?key=</code> in it.</p></main></body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn body(mut res: Response) -> String {
        smol::block_on(res.take_body().into_string()).unwrap()
    }

    #[test]
    fn every_answer_names_its_status_code_and_reason() {
        for e in [
            Error::BadRequest("bad_head", "bad"),
            Error::Invalid(Invalid::Empty),
            Error::HeadTooLarge,
            Error::NotStored,
            Error::VersionNotSupported,
        ] {
            let (status, code, reason) = e.parts();
            let res = e.into_response(false);
            assert_eq!(res.status(), status);
            assert!(!reason.is_empty() && !code.is_empty());
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        let res = Error::MethodNotAllowed("GET, HEAD").into_response(false);
        assert_eq!(res.header("allow").unwrap().as_str(), "GET, HEAD");
        assert!(res.header("connection").is_none());
        let res = Error::TooLarge.into_response(true);
        assert_eq!(res.header("connection").unwrap().as_str(), "close");
    }

    #[test]
    fn a_program_gets_json_with_the_code_and_the_numbers_it_needs() {
        let res = Error::TooManyRequests(7).into_response(true);
        assert_eq!(res.header("retry-after").unwrap().as_str(), "7");
        let json: serde_json::Value = serde_json::from_str(&body(res)).unwrap();
        assert_eq!(json["error"], "rate_limited");
        assert_eq!(json["retry_after"], 7);
        assert!(json["message"].as_str().unwrap().contains("wait 7 s"));
        let json: serde_json::Value =
            serde_json::from_str(&body(Error::FileTooLarge(16 << 20).into_response(true))).unwrap();
        assert_eq!(
            (json["error"].as_str(), json["limit"].as_u64()),
            (Some("file_too_large"), Some(16 << 20))
        );
        let text = body(Error::Muted(1).into_response(false));
        assert_eq!(text, "403 Forbidden: muted for 1 minute by the host\n");
    }
}
