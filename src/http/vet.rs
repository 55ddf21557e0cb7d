//! Vetting a request head before any byte of it reaches http-types: parsed by
//! `httparse`, every header name a token and every value kept printable ASCII
//! (http-types' `Headers` panic on anything else), only the headers a handler reads
//! handed on, and the body's framing decided strictly (RFC 9112), so that a proxy in
//! front cannot read the request differently.

use std::str::FromStr as _;

use http_types::headers::{self, HeaderName};
use http_types::{Method, Request, Url};

use crate::error::Error;

use super::inbound::MAX_HEADERS;

/// The request headers a handler reads; no other is handed to http-types (the
/// body's length is the body's, `Request::len`, not a header). With
/// http-types' own names where it has them: those are static, while a name parsed
/// from text is a lowercased copy, an allocation per header per request.
const USED: &[(&str, Option<HeaderName>)] = &[
    ("host", Some(headers::HOST)),
    ("accept", Some(headers::ACCEPT)),
    ("accept-encoding", Some(headers::ACCEPT_ENCODING)),
    ("connection", Some(headers::CONNECTION)),
    ("content-type", Some(headers::CONTENT_TYPE)),
    ("cookie", Some(headers::COOKIE)),
    ("if-none-match", Some(headers::IF_NONE_MATCH)),
    ("last-event-id", None),
    ("origin", Some(headers::ORIGIN)),
    ("range", None),
    ("referer", Some(headers::REFERER)),
];

/// A request head, parsed and vetted.
#[derive(Debug)]
pub struct RequestHead {
    /// The request, its body (if any) reading from this connection.
    pub request: Request,
    /// The client sent `Expect: 100-continue` and has a body to send.
    pub expects_continue: bool,
    /// The method and path (no query), for log lines.
    pub line: String,
}

/// How the current request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body, or all of it read.
    Done,
    /// This many bytes of a `Content-Length` body are left.
    Length(u64),
    /// In a chunked body.
    Chunked(Chunk),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Next is a chunk-size line.
    Size,
    /// This many bytes of chunk data are left.
    Data(u64),
    /// Next is the line break after a chunk's data.
    DataEnd,
    /// In the trailer section; this many bytes of it read so far.
    Trailers(usize),
}

/// A field value http-types can hold and a person could have meant: printable
/// ASCII and tabs.
pub fn printable(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// `value` as text, if it is [`printable`] (and so UTF-8).
fn printable_text(value: &[u8]) -> Option<&str> {
    printable(value)
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// Parses and vets a complete head. Works on the stack: the header slots live only
/// for this call, never in a connection's future.
pub fn vet(bytes: &[u8]) -> Result<(RequestHead, Framing), Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Error::BadRequest(
                "bad_head",
                "the request head could not be parsed",
            ))
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
        Err(_) => {
            return Err(Error::BadRequest(
                "bad_head",
                "the request head could not be parsed",
            ))
        }
    }
    if parsed.version != Some(1) {
        return Err(Error::VersionNotSupported);
    }
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Err(Error::BadRequest(
            "bad_head",
            "the request head could not be parsed",
        ));
    };
    // Without the query: it may hold the access key, and this goes to the log.
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let line = format!("{method} {path}");
    let method = Method::from_str(method)
        .map_err(|_| Error::NotImplemented("this method is not supported"))?;
    let url = target_url(target)?;
    let mut request = Request::new(method, url);

    let mut hosts = 0;
    let mut lengths: Option<&[u8]> = None;
    let mut codings: Vec<String> = Vec::new();
    let mut expects_continue = false;
    for header in parsed.headers.iter() {
        let name = header.name;
        let value = header.value.trim_ascii();
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if hosts > 1 || value.is_empty() || !printable(value) {
                return Err(Error::BadRequest(
                    "bad_host",
                    "the Host header is missing or not valid",
                ));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
                return Err(Error::BadRequest(
                    "bad_length",
                    "the Content-Length is not a number",
                ));
            }
            if lengths.is_some_and(|seen| seen != value) {
                return Err(Error::BadRequest(
                    "bad_length",
                    "the request has two different lengths",
                ));
            }
            lengths = Some(value);
            continue;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !printable(value) {
                return Err(Error::BadRequest(
                    "bad_framing",
                    "the Transfer-Encoding is not valid",
                ));
            }
            let text = String::from_utf8_lossy(value);
            codings.extend(
                text.split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        } else if name.eq_ignore_ascii_case("expect") {
            // Answered here, in order, never passed on (see the module docs).
            expects_continue = value.eq_ignore_ascii_case(b"100-continue");
            continue;
        }
        // Only what some handler reads is handed on: a browser sends a dozen more
        // (User-Agent, Accept-Language, Sec-Fetch-*), each an allocation and a
        // hash in http-types for nothing.
        let Some((_, known)) = USED
            .iter()
            .find(|(used, _)| name.eq_ignore_ascii_case(used))
        else {
            continue;
        };
        let name = match known {
            Some(known) => known.clone(),
            None => match HeaderName::from_str(name) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        // Handed over as text: http-types copies a value in whatever form it gets
        // it, and a `HeaderValue` it would copy again. Printable ASCII only, which
        // is also all that http-types takes without a panic.
        if name == headers::COOKIE {
            if let Some(kept) = printable_cookies(value) {
                request.append_header(name, kept.as_str());
            }
        } else if let Some(text) = printable_text(value) {
            request.append_header(name, text);
        }
    }
    if hosts == 0 {
        return Err(Error::BadRequest(
            "bad_host",
            "the Host header is missing or not valid",
        ));
    }
    let framing = match (lengths, codings.as_slice()) {
        (Some(_), [_, ..]) => {
            return Err(Error::BadRequest(
                "bad_framing",
                "the request has both a Content-Length and a Transfer-Encoding",
            ))
        }
        (Some(len), []) => {
            let len: u64 = std::str::from_utf8(len)
                .ok()
                .and_then(|l| l.parse().ok())
                .ok_or(Error::BadRequest(
                    "bad_length",
                    "the Content-Length is not a number",
                ))?;
            if len == 0 {
                Framing::Done
            } else {
                Framing::Length(len)
            }
        }
        (None, []) => Framing::Done,
        (None, [only]) if only == "chunked" => Framing::Chunked(Chunk::Size),
        (None, [.., last]) if last == "chunked" => {
            return Err(Error::NotImplemented(
                "no transfer coding but chunked is supported",
            ))
        }
        (None, _) => {
            return Err(Error::BadRequest(
                "bad_framing",
                "a request body's transfer coding must end with chunked",
            ))
        }
    };
    let head = RequestHead {
        request,
        expects_continue: expects_continue && framing != Framing::Done,
        line,
    };
    Ok((head, framing))
}

/// The URL of a request target: origin form (`/path?query`), or absolute form
/// (`http://host/path`), of which only the path and query are used. Its host is
/// never the `Host` header; read that header where it matters.
fn target_url(target: &str) -> Result<Url, Error> {
    let bad = Error::BadRequest("bad_target", "the request target is not a path");
    let path = if target.starts_with('/') {
        target
    } else {
        let rest = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))
            .ok_or(bad)?;
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => "/",
        }
    };
    Url::parse(&format!("http://lanchat{path}")).map_err(|_| bad)
}

/// The `name=value` pairs of a `Cookie` header that are printable ASCII, joined as
/// they came; `None` when none is. A browser sends every cookie of the host, also
/// those other web apps on it set, and one of those with a `é` in it must cost
/// nothing but itself.
fn printable_cookies(value: &[u8]) -> Option<String> {
    let kept: Vec<&str> = value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty() && printable(pair))
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vetted(head: &str) -> Result<(RequestHead, Framing), Error> {
        vet(head.as_bytes())
    }

    #[test]
    fn any_byte_in_any_header_is_served_or_refused_never_a_panic() {
        for byte in 0..=255u8 {
            for name in [
                "X-A",
                "Cookie",
                "Host",
                "Referer",
                "Content-Length",
                "Transfer-Encoding",
            ] {
                let mut head = b"POST /message HTTP/1.1\r\nHost: a\r\n".to_vec();
                if name == "Host" {
                    head = b"POST /message HTTP/1.1\r\n".to_vec();
                }
                head.extend_from_slice(format!("{name}: caf").as_bytes());
                head.push(byte);
                head.extend_from_slice(b"e\r\n\r\n");
                let _ = vet(&head);
            }
        }
    }

    #[test]
    fn a_foreign_cookie_with_utf8_keeps_the_others() {
        let head = "GET / HTTP/1.1\r\nHost: a\r\nCookie: theme=caf\u{e9}; lanchat_key=k1; x=1\r\n\
                    X-Name: J\u{fc}rgen\r\n\r\n";
        let (head, _) = vetted(head).unwrap();
        let cookie = head.request.header("cookie").unwrap().as_str();
        assert_eq!(cookie, "lanchat_key=k1; x=1");
        assert!(head.request.header("x-name").is_none());
    }

    #[test]
    fn a_non_ascii_host_is_a_bad_request() {
        let e = vetted("GET / HTTP/1.1\r\nHost: caf\u{e9}.lan\r\n\r\n").unwrap_err();
        assert_eq!(
            e,
            Error::BadRequest("bad_host", "the Host header is missing or not valid")
        );
        assert!(vetted("GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(vetted("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").is_err());
    }

    #[test]
    fn lengths_must_be_one_number() {
        let with = |cl: &str| vetted(&format!("POST / HTTP/1.1\r\nHost: a\r\n{cl}\r\n\r\n"));
        assert_eq!(with("Content-Length: 13").unwrap().1, Framing::Length(13));
        assert_eq!(
            with("Content-Length: 5\r\nContent-Length: 5").unwrap().1,
            Framing::Length(5)
        );
        for bad in [
            "Content-Length: +13",
            "Content-Length: -1",
            "Content-Length: 5, 5",
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: 0x10",
            "Content-Length: 99999999999999999999",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
        ] {
            assert!(matches!(with(bad), Err(Error::BadRequest(..))), "{bad}");
        }
    }

    #[test]
    fn only_chunked_alone_frames_a_body() {
        let with = |te: &str| {
            vetted(&format!(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n"
            ))
        };
        assert_eq!(with("chunked").unwrap().1, Framing::Chunked(Chunk::Size));
        assert_eq!(with("Chunked").unwrap().1, Framing::Chunked(Chunk::Size));
        assert!(matches!(with("gzip"), Err(Error::BadRequest(..))));
        assert!(matches!(with("chunked, gzip"), Err(Error::BadRequest(..))));
        assert!(matches!(
            with("gzip, chunked"),
            Err(Error::NotImplemented(_))
        ));
    }

    #[test]
    fn expect_is_answered_here_and_not_passed_on() {
        let (head, _) = vetted(
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        assert!(head.expects_continue);
        assert!(head.request.header("expect").is_none());
        let (head, _) =
            vetted("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert!(!head.expects_continue, "no body: nothing to continue with");
    }

    #[test]
    fn the_line_for_the_log_leaves_the_query_out() {
        let (head, _) = vetted("GET /?key=secret HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(head.line, "GET /");
    }

    #[test]
    fn targets_become_paths_on_one_host() {
        let path = |t: &str| target_url(t).map(|u| u.path().to_string());
        assert_eq!(path("/events?x=1").unwrap(), "/events");
        assert_eq!(path("//double/slashes").unwrap(), "//double/slashes");
        assert_eq!(path("http://other.example/message").unwrap(), "/message");
        assert_eq!(path("http://other.example").unwrap(), "/");
        assert!(path("*").is_err());
        assert!(path("message").is_err());
    }
}
