//! Every way a request can fail, and the one place where each becomes a status with
//! a short reason a person can read.
//!
//! Handlers and the head reader never return an `Err` to async-h1 (it would close
//! the connection without a word): whatever goes wrong is an [`Error`], and
//! [`Error::into_response`] answers it.

use http_types::headers::{
    ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_RANGE, CONTENT_TYPE, RETRY_AFTER,
};
use http_types::{Response, StatusCode};

/// Every way a request can fail, each with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `400`, with the reason.
    BadRequest(&'static str),
    /// `401`: an access key is set and the request lacks it or has a wrong one.
    Unauthorized,
    /// `401` for a page: the same, answered with a page that says what to do.
    Locked,
    /// `403`, with the reason.
    Forbidden(&'static str),
    /// `404`.
    NotFound,
    /// `404` for a moderator's action on a message that is not there.
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
    /// The status and the one line that explains it.
    pub fn status_and_reason(self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(why) => (StatusCode::BadRequest, why),
            Error::Unauthorized | Error::Locked => (
                StatusCode::Unauthorized,
                "this chat needs its key: open the link or scan the QR code again",
            ),
            Error::Forbidden(why) => (StatusCode::Forbidden, why),
            Error::NotFound => (StatusCode::NotFound, "no such page"),
            Error::NoSuchMessage => (
                StatusCode::NotFound,
                "no such message: it was deleted, or is older than the history kept",
            ),
            Error::SenderUnknown => (
                StatusCode::NotFound,
                "who sent this message is not known: it was posted before the server restarted",
            ),
            Error::Muted(_) => (StatusCode::Forbidden, "muted by the host"),
            Error::MethodNotAllowed(_) => (StatusCode::MethodNotAllowed, "method not allowed"),
            Error::Timeout => (
                StatusCode::RequestTimeout,
                "the request body came too slowly",
            ),
            Error::TooLarge => (StatusCode::PayloadTooLarge, "the request body is too large"),
            Error::FileTooLarge(_) => (StatusCode::PayloadTooLarge, "the file is too large"),
            Error::Gone => (
                StatusCode::Gone,
                "this file is no longer kept: newer files took its room",
            ),
            Error::RangeNotSatisfiable(_) => (
                StatusCode::RequestedRangeNotSatisfiable,
                "the range is beyond the end of the file",
            ),
            Error::UnsupportedType => (
                StatusCode::UnsupportedMediaType,
                "send the message as application/x-www-form-urlencoded or multipart/form-data",
            ),
            Error::TooManyRequests(_) => (
                StatusCode::TooManyRequests,
                "too many messages at once; slow down",
            ),
            Error::WrongKeys(_) => (
                StatusCode::TooManyRequests,
                "too many wrong keys from this device",
            ),
            Error::HeadTooLarge => (
                StatusCode::RequestHeaderFieldsTooLarge,
                "the request head is too large",
            ),
            Error::Internal => (
                StatusCode::InternalServerError,
                "something went wrong on the server; the request was not done",
            ),
            Error::NotImplemented(what) => (StatusCode::NotImplemented, what),
            Error::Unavailable => (
                StatusCode::ServiceUnavailable,
                "the server is busy or stopping; try again shortly",
            ),
            Error::VersionNotSupported => (
                StatusCode::HttpVersionNotSupported,
                "only HTTP/1.1 is supported",
            ),
            Error::NoRoomForFiles => (
                StatusCode::InsufficientStorage,
                "the server has no room for more files right now; messages without files still go",
            ),
            Error::NotStored => (
                StatusCode::InsufficientStorage,
                "the server cannot save messages right now (its disk is full or failing); \
                 the message was not sent",
            ),
        }
    }

    /// Whether the connection must close after this answer because the body may be
    /// unread or half read. (A head that could not be read always closes: the
    /// connection does that itself.)
    pub fn closes(self) -> bool {
        matches!(
            self,
            Error::Timeout | Error::TooLarge | Error::FileTooLarge(_)
        )
    }

    /// The response for this error: a plain-text reason a person can read (for a
    /// page, a page).
    pub fn into_response(self) -> Response {
        let (status, reason) = self.status_and_reason();
        let mut res = Response::new(status);
        res.insert_header(CACHE_CONTROL, "no-store");
        if self == Error::Locked {
            res.insert_header(CONTENT_TYPE, "text/html; charset=utf-8");
            res.set_body(LOCKED_PAGE);
            return res;
        }
        res.insert_header(CONTENT_TYPE, "text/plain; charset=utf-8");
        if let Error::MethodNotAllowed(allow) = self {
            res.insert_header(ALLOW, allow);
        }
        let mut reason = reason.to_string();
        if let Error::TooManyRequests(seconds) | Error::WrongKeys(seconds) = self {
            res.insert_header(RETRY_AFTER, seconds.to_string());
            reason = format!("{reason}: wait {seconds} s");
        }
        if let Error::FileTooLarge(max) = self {
            reason = match max % (1 << 20) {
                0 => format!("{reason}: the most is {} MiB", max >> 20),
                _ => format!("{reason}: the most is {} KiB", max.div_ceil(1 << 10)),
            };
        }
        if let Error::RangeNotSatisfiable(size) = self {
            res.insert_header(CONTENT_RANGE, format!("bytes */{size}"));
        }
        if let Error::Muted(minutes) = self {
            let unit = if minutes == 1 { "minute" } else { "minutes" };
            reason = format!("muted for {minutes} {unit} by the host");
        }
        if self.closes() {
            res.insert_header(CONNECTION, "close");
        }
        res.set_body(format!(
            "{} {}: {reason}\n",
            u16::from(status),
            status.canonical_reason()
        ));
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

    #[test]
    fn every_answer_names_its_status_and_reason() {
        for e in [
            Error::BadRequest("bad"),
            Error::HeadTooLarge,
            Error::NotStored,
            Error::VersionNotSupported,
        ] {
            let (status, reason) = e.status_and_reason();
            let res = e.into_response();
            assert_eq!(res.status(), status);
            assert!(!reason.is_empty());
        }
        let res = Error::MethodNotAllowed("GET, HEAD").into_response();
        assert_eq!(res.header("allow").unwrap().as_str(), "GET, HEAD");
        assert!(res.header("connection").is_none());
        let res = Error::TooLarge.into_response();
        assert_eq!(res.header("connection").unwrap().as_str(), "close");
    }
}
