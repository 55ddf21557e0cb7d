//! The reading side of one connection: request heads read, parsed and vetted before
//! any byte of them reaches http-types, and request bodies framed exactly, so that
//! the bytes after one request are the next request's.
//!
//! Why not `async_h1::server::decode`: it hands every header value to http-types,
//! whose `Headers::append` panics on a byte above 0x7F (one cookie set by another
//! web app on the same host would stop the server); it reads ahead through a
//! buffer that is dropped with the request, so pipelined requests after the first
//! are lost; it takes the last of several `Content-Length`s and lets a sign through;
//! it treats any `Transfer-Encoding` but `chunked` as no body (the body then parses
//! as the next request); and it answers `Expect: 100-continue` from a thread of an
//! executor of its own, out of order with the responses.
//!
//! Invariants:
//! - What reaches http-types is checked first: header names are tokens (httparse),
//!   values are printable ASCII. A `Cookie` keeps its printable pairs; any other
//!   header with another byte is dropped, except `Host`, whose bad value is a `400`
//!   (RFC 9112 §3.2).
//! - A body is framed by one `Content-Length` of digits, or by `chunked` as the only
//!   transfer coding; anything else is refused and the connection closed.
//! - Nothing is read past the end of the current request's body except into
//!   [`Inbound`]'s own buffer, where the next head finds it.
//! - A pending head holds at most [`MAX_HEAD`] bytes, in a buffer that grows as the
//!   head does and is let go once the bytes are used.

use std::io;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_lite::future::poll_fn;
use futures_lite::io::BufReader;
use futures_lite::AsyncRead;
use http_types::headers::{self, HeaderName};
use http_types::{Method, Request, Url};

use crate::error::Error;
use crate::outbox::Socket;

/// `?` for a `Poll<io::Result<T>>` inside a poll function: returns `Pending` or the
/// error, else gives the value.
macro_rules! try_ready {
    ($e:expr) => {
        match $e {
            Poll::Ready(Ok(v)) => v,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    };
}

/// Longest request head: far more than any browser sends, small enough that a
/// crowd of half-sent heads cannot use much memory.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most header lines in one head.
pub const MAX_HEADERS: usize = 128;

/// Longest chunk-size line of a chunked body (with extensions, which are ignored).
const MAX_CHUNK_LINE: usize = 1024;

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

/// The first read of a head goes to the stack, this much: more than a browser's
/// head with its cookies, so the common case is one read and no question to the
/// kernel of how much is waiting.
const STACK_READ: usize = 2048;

/// A request head, parsed and vetted.
#[derive(Debug)]
pub struct Head {
    /// The request, its body (if any) reading from this connection.
    pub request: Request,
    /// The client sent `Expect: 100-continue` and has a body to send.
    pub expects_continue: bool,
    /// The method and path (no query), for log lines.
    pub line: String,
}

/// Why no head came.
#[derive(Debug)]
pub enum Failed {
    /// The client closed, or the socket failed: no one to answer.
    Gone,
    /// A head that cannot be served: answer with this and close.
    Refused(Error),
}

/// The reading side of a connection. Shared between the connection's loop and the
/// body of the request being handled; the loop reads heads, the body reads its own
/// bytes, never both at once.
#[derive(Debug, Clone)]
pub struct Inbound {
    wire: Arc<Mutex<Wire>>,
}

#[derive(Debug)]
struct Wire {
    stream: Socket,
    /// Bytes read but not yet used: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// Where the current request's body is.
    body: Framing,
    /// How much of the pending head has been searched for its end already, so a
    /// head that trickles in is searched once, not once per byte.
    scanned: usize,
    /// The last read took less than it asked for: the socket was empty after it.
    drained: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body, or all of it read.
    Done,
    /// This many bytes of a `Content-Length` body are left.
    Length(u64),
    /// In a chunked body.
    Chunked(Chunk),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Next is a chunk-size line.
    Size,
    /// This many bytes of chunk data are left.
    Data(u64),
    /// Next is the line break after a chunk's data.
    DataEnd,
    /// In the trailer section; this many bytes of it read so far.
    Trailers(usize),
}

impl Inbound {
    /// The reading side of `stream`.
    pub fn new(stream: Socket) -> Self {
        Inbound {
            wire: Arc::new(Mutex::new(Wire {
                stream,
                buf: Vec::new(),
                pos: 0,
                body: Framing::Done,
                scanned: 0,
                drained: false,
            })),
        }
    }

    fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
        self.wire.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether bytes of a next request have already been read (the client sent
    /// requests without waiting for answers).
    pub fn has_buffered(&self) -> bool {
        let wire = self.wire();
        wire.pos < wire.buf.len()
    }

    /// Waits for the first bytes of a next request, and keeps them for
    /// [`Inbound::head`]: the same read a head would start with, where a `peek` would
    /// cost one more. `false`: the client closed, or the socket failed.
    pub async fn arrival(&self) -> bool {
        // A client that waits for each answer has sent nothing more when the last
        // read emptied its socket: try no read that would only say so, ask to be
        // woken first. async-io is asked twice: it keeps the readiness of the
        // wake-up that brought the last request until asked again, and that one
        // is no news; the second ask registers the interest. Any wake-up then
        // means read, not a third ask: async-io's own check passes over an event
        // that came in a reactor turn under way on another thread when the
        // interest was registered, which would cost a second turn.
        let mut wait = std::mem::take(&mut self.wire().drained);
        poll_fn(|cx| {
            let mut wire = self.wire();
            if std::mem::take(&mut wait)
                && (wire.stream.poll_readable(cx).is_pending()
                    || wire.stream.poll_readable(cx).is_pending())
            {
                return Poll::Pending;
            }
            let read = std::task::ready!(wire.poll_fill(cx, MAX_HEAD));
            if !matches!(read, Ok(n) if n > 0) {
                wire.release();
                return Poll::Ready(false);
            }
            Poll::Ready(true)
        })
        .await
    }

    /// Reads the next request head. `Ok(None)`: the client closed between requests.
    pub async fn head(&self) -> Result<Option<Head>, Failed> {
        let mut head = poll_fn(|cx| self.wire().poll_head(cx)).await?;
        if let Some(head) = &mut head {
            self.attach_body(head);
        }
        Ok(head)
    }

    /// Reads and throws away what is left of the current body, up to `limit` bytes.
    /// `true` when it ended within the limit, so the connection can serve another.
    pub async fn discard_body(&self, limit: u64) -> bool {
        let mut left = limit + 1;
        poll_fn(|cx| {
            let mut wire = self.wire();
            // On the stack, and only while a body is left: the usual request's body
            // was read whole by its handler (`io::copy` would allocate and zero
            // 8 KiB for each of them to find that out).
            let mut scrap = [0u8; 2048];
            while wire.body != Framing::Done && left > 0 {
                let want = scrap.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                match wire.poll_body(cx, &mut scrap[..want]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                    Poll::Ready(Ok(n)) => left -= n as u64,
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(())
        })
        .await;
        left > 0 && self.wire().body == Framing::Done
    }
}

impl Wire {
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Head>, Failed>> {
        loop {
            // Empty lines before a request are allowed (RFC 9112 §2.2), e.g. a CRLF
            // that a client sent after a body.
            while self.pos < self.buf.len() && matches!(self.buf[self.pos], b'\r' | b'\n') {
                self.pos += 1;
            }
            let pending = &self.buf[self.pos..];
            if let Some(end) = head_end(pending, self.scanned) {
                let result = vet(&pending[..end]);
                self.pos += end;
                self.scanned = 0;
                return Poll::Ready(match result {
                    Ok((head, framing)) => {
                        self.body = framing;
                        self.release();
                        Ok(Some(head))
                    }
                    Err(e) => Err(Failed::Refused(e)),
                });
            }
            self.scanned = pending.len();
            if pending.len() >= MAX_HEAD {
                return Poll::Ready(Err(Failed::Refused(Error::HeadTooLarge)));
            }
            match self.poll_fill(cx, MAX_HEAD) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    let nothing_started = self.pos >= self.buf.len();
                    self.release();
                    return Poll::Ready(if nothing_started {
                        Ok(None)
                    } else {
                        Err(Failed::Gone)
                    });
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Failed::Gone)),
            }
        }
    }

    /// Reads from the socket into the buffer, at most so much that the unused bytes
    /// stay within `cap`. `Ok(0)`: end of file.
    ///
    /// The read goes to the stack first, so a connection that waits holds no spare
    /// room and a head that came in one piece costs one read, and is kept in a buffer
    /// of its own size. Only when it fills the stack is the kernel asked how much
    /// more the socket holds, so that a long head also gets a buffer of its size.
    fn poll_fill(&mut self, cx: &mut Context<'_>, cap: usize) -> Poll<io::Result<usize>> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let have = self.buf.len();
        let limit = cap.saturating_sub(have).max(1);
        let mut stack = [0u8; STACK_READ];
        let want = limit.min(stack.len());
        let n = try_ready!(Pin::new(&mut &*self.stream).poll_read(cx, &mut stack[..want]));
        let waiting = match n == STACK_READ && limit > n {
            true => rustix::io::ioctl_fionread(self.stream.get_ref()).map_or(0, |w| w as usize),
            false => 0,
        };
        let room = waiting.min(limit - n);
        self.drained = n < want;
        self.grow(n + room);
        self.buf.extend_from_slice(&stack[..n]);
        if room == 0 {
            return Poll::Ready(Ok(n));
        }
        self.buf.resize(have + n + room, 0);
        let more = match Pin::new(&mut &*self.stream).poll_read(cx, &mut self.buf[have + n..]) {
            Poll::Ready(Ok(more)) => more,
            // What came first is the answer; an error shows again at the next read.
            _ => 0,
        };
        self.buf.truncate(have + n + more);
        Poll::Ready(Ok(n + more))
    }

    /// Makes room for `more` bytes: exactly, when they are at least as many as the
    /// buffer holds; by doubling, when a head trickles in, so that it is not copied
    /// once per byte.
    fn grow(&mut self, more: usize) {
        if more >= self.buf.len() {
            self.buf.reserve_exact(more);
        } else {
            self.buf.reserve(more);
        }
    }

    /// Lets go of the buffer once everything in it is used, so that a connection
    /// at rest, or a stream, holds none.
    fn release(&mut self) {
        if self.pos >= self.buf.len() {
            self.pos = 0;
            self.buf = Vec::new();
        }
    }

    /// Reads body bytes into `out`.
    fn poll_body(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.body {
                Framing::Done => return Poll::Ready(Ok(0)),
                Framing::Length(0) => self.body = Framing::Done,
                Framing::Length(left) => {
                    let n = try_ready!(self.poll_data(cx, out, left));
                    self.body = Framing::Length(left - n as u64);
                    return Poll::Ready(Ok(n));
                }
                Framing::Chunked(Chunk::Data(0)) => self.body = Framing::Chunked(Chunk::DataEnd),
                Framing::Chunked(Chunk::Data(left)) => {
                    let n = try_ready!(self.poll_data(cx, out, left));
                    self.body = Framing::Chunked(Chunk::Data(left - n as u64));
                    return Poll::Ready(Ok(n));
                }
                Framing::Chunked(Chunk::Size) => {
                    let (start, end) = try_ready!(self.poll_line(cx, MAX_CHUNK_LINE));
                    let size = chunk_size(&self.buf[start..end]).ok_or_else(bad_chunk)?;
                    self.body = Framing::Chunked(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    let (start, end) = try_ready!(self.poll_line(cx, 2));
                    if start != end {
                        return Poll::Ready(Err(bad_chunk()));
                    }
                    self.body = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailers(seen)) => {
                    let (start, end) =
                        try_ready!(self.poll_line(cx, MAX_HEAD.saturating_sub(seen)));
                    // Trailers are read past, never used.
                    self.body = if start == end {
                        Framing::Done
                    } else {
                        Framing::Chunked(Chunk::Trailers(seen + (end - start) + 2))
                    };
                }
            }
        }
    }

    /// Up to `left` bytes of body data into `out`: buffered ones first, else straight
    /// from the socket, never more than the body has.
    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
        left: u64,
    ) -> Poll<io::Result<usize>> {
        let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        let buffered = &self.buf[self.pos..];
        let n = if buffered.is_empty() {
            match Pin::new(&mut &*self.stream).poll_read(cx, &mut out[..want]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                other => return other,
            }
        } else {
            let n = want.min(buffered.len());
            out[..n].copy_from_slice(&buffered[..n]);
            n
        };
        self.pos += n;
        self.release();
        Poll::Ready(Ok(n))
    }

    /// The next line of the buffer, without its line break, as a range of `buf`;
    /// reads more until it is there. The line is consumed.
    fn poll_line(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<(usize, usize)>> {
        loop {
            let pending = &self.buf[self.pos..];
            if let Some(lf) = pending.iter().position(|&b| b == b'\n') {
                let start = self.pos;
                let mut end = start + lf;
                if end > start && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                self.pos += lf + 1;
                // The range stays valid: the buffer moves only on the next fill.
                return Poll::Ready(Ok((start, end)));
            }
            if pending.len() > max {
                return Poll::Ready(Err(bad_chunk()));
            }
            if try_ready!(self.poll_fill(cx, max + 2)) == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

fn bad_chunk() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body")
}

/// The size on a chunk-size line: hex digits, then optional extensions after `;`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?;
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// The length of the head at the start of `bytes`, through its empty line; `None`
/// while it is incomplete. Bare LF line endings are accepted, as httparse does.
/// The first `scanned` bytes were searched before: the search goes on from there,
/// less the two bytes an end could straddle.
fn head_end(bytes: &[u8], scanned: usize) -> Option<usize> {
    let mut i = scanned.saturating_sub(2).min(bytes.len());
    while let Some(lf) = bytes[i..].iter().position(|&b| b == b'\n') {
        let at = i + lf;
        match bytes.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if bytes.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

/// A field value http-types can hold and a person could have meant: printable
/// ASCII and tabs.
fn printable(value: &[u8]) -> bool {
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
fn vet(bytes: &[u8]) -> Result<(Head, Framing), Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Error::BadRequest("the request head could not be parsed"))
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
        Err(_) => return Err(Error::BadRequest("the request head could not be parsed")),
    }
    if parsed.version != Some(1) {
        return Err(Error::VersionNotSupported);
    }
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Err(Error::BadRequest("the request head could not be parsed"));
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
                return Err(Error::BadRequest("the Host header is missing or not valid"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
                return Err(Error::BadRequest("the Content-Length is not a number"));
            }
            if lengths.is_some_and(|seen| seen != value) {
                return Err(Error::BadRequest("the request has two different lengths"));
            }
            lengths = Some(value);
            continue;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !printable(value) {
                return Err(Error::BadRequest("the Transfer-Encoding is not valid"));
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
        return Err(Error::BadRequest("the Host header is missing or not valid"));
    }
    let framing = match (lengths, codings.as_slice()) {
        (Some(_), [_, ..]) => {
            return Err(Error::BadRequest(
                "the request has both a Content-Length and a Transfer-Encoding",
            ))
        }
        (Some(len), []) => {
            let len: u64 = std::str::from_utf8(len)
                .ok()
                .and_then(|l| l.parse().ok())
                .ok_or(Error::BadRequest("the Content-Length is not a number"))?;
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
                "a request body's transfer coding must end with chunked",
            ))
        }
    };
    let head = Head {
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
    let bad = Error::BadRequest("the request target is not a path");
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

/// The request body as http-types reads it: this connection's bytes, framed.
struct BodyReader(Inbound);

impl AsyncRead for BodyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.0.wire().poll_body(cx, out)
    }
}

impl Inbound {
    /// Gives `head`'s request the body that follows it on this connection.
    fn attach_body(&self, head: &mut Head) {
        let framing = self.wire().body;
        let len = match framing {
            Framing::Done => return,
            Framing::Length(n) => usize::try_from(n).ok(),
            Framing::Chunked(_) => None,
        };
        // Small: bodies here are short forms, read once. Under 1 KiB on purpose:
        // glibc's malloc sweeps all its small freed chunks (`malloc_consolidate`)
        // before each allocation from 1 KiB up, which cost every post that sweep.
        let reader = BufReader::with_capacity(512, BodyReader(self.clone()));
        head.request
            .set_body(http_types::Body::from_reader(reader, len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vetted(head: &str) -> Result<(Head, Framing), Error> {
        vet(head.as_bytes())
    }

    #[test]
    fn the_end_of_a_head_is_found_with_either_line_ending() {
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 0),
            Some(27)
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: a\n\nrest", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
        // A head that arrives a byte at a time: each search goes on from the last,
        // and an end split across two arrivals is found.
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut scanned = 0;
        for len in 1..head.len() {
            assert_eq!(head_end(&head[..len], scanned), None, "{len}");
            scanned = len;
        }
        assert_eq!(head_end(head, scanned), Some(head.len()));
        let bare = b"GET / HTTP/1.1\nHost: a\n\n";
        assert_eq!(head_end(bare, bare.len() - 1), Some(bare.len()));
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
            Error::BadRequest("the Host header is missing or not valid")
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
            assert!(matches!(with(bad), Err(Error::BadRequest(_))), "{bad}");
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
        assert!(matches!(with("gzip"), Err(Error::BadRequest(_))));
        assert!(matches!(with("chunked, gzip"), Err(Error::BadRequest(_))));
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

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"1A;name=value"), Some(26));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"-1"), None);
        assert_eq!(chunk_size(b"fffffffffffffffff"), None);
    }
}
