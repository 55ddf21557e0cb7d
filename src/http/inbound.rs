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

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_lite::future::poll_fn;
use futures_lite::io::BufReader;
use futures_lite::AsyncRead;

use crate::error::Error;

pub use super::vet::RequestHead;
use super::vet::{vet, Chunk, Framing};
use crate::io::Socket;

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

/// The first read of a head goes to the stack, this much: more than a browser's
/// head with its cookies, so the common case is one read and no question to the
/// kernel of how much is waiting.
const STACK_READ: usize = 2048;

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
        poll_fn(|cx| {
            let mut wire = self.wire();
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
    pub async fn head(&self) -> Result<Option<RequestHead>, Failed> {
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
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<RequestHead>, Failed>> {
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
    fn attach_body(&self, head: &mut RequestHead) {
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
    fn chunk_sizes() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"1A;name=value"), Some(26));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"-1"), None);
        assert_eq!(chunk_size(b"fffffffffffffffff"), None);
    }
}
