//! The Server-Sent Events wire format (WHATWG HTML, "Server-sent events"), and the
//! chunked framing around it.
//!
//! Invariants:
//! - Text given as `data` can never forge a field or a second event: CR, LF and CRLF
//!   all end a line in the spec's parser, so each line of text gets its own `data:`
//!   line and no raw line break survives into the stream.
//! - `id` and `event` values are single-line by construction (the registry makes
//!   them); a line break in one is replaced, never written through.
//! - A [`Frame`] is a whole HTTP/1.1 chunk (`<hex len>\r\n … \r\n`): every subscriber
//!   gets the same bytes, so framing is done once per event, not once per client.

use std::io::Write as _;
use std::sync::Arc;

/// One encoded, chunk-framed piece of the stream, shared by every subscriber it goes to.
pub type Frame = Arc<[u8]>;

/// The chunk that ends a chunked response.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Encodes one event. `id` and `event` are omitted when `None`; an event with no
/// `event:` field reaches `EventSource.onmessage`.
pub fn event(id: Option<&str>, event: Option<&str>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    if let Some(id) = id {
        field(&mut out, "id", id);
    }
    if let Some(event) = event {
        field(&mut out, "event", event);
    }
    for line in lines(data) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// The reconnection delay a browser waits before it reconnects, in milliseconds
/// (the spec's unit; not seconds).
pub fn retry(millis: u64) -> Vec<u8> {
    format!("retry: {millis}\n\n").into_bytes()
}

/// A comment: ignored by every parser, but it proves the connection is alive.
pub fn comment(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 4);
    for line in lines(text) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Wraps SSE bytes in one HTTP/1.1 chunk, ready to be written as they are.
pub fn chunk(payload: &[u8]) -> Frame {
    let mut out = Vec::with_capacity(payload.len() + 12);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{:x}\r\n", payload.len());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out.into()
}

/// Splits text where the spec's parser would: at CRLF, a lone CR or a lone LF.
/// An empty text is one empty line, so `data:` is still sent.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(text)
            }
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[at + skip..]);
                Some(&text[..at])
            }
        }
    })
}

fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    for c in value.chars() {
        // A line break here would end the field early and start another.
        let c = if matches!(c, '\r' | '\n' | '\0') {
            ' '
        } else {
            c
        };
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out.push(b'\n');
}

/// A parser that follows the spec's "interpret an event stream" steps, so that tests
/// (unit, integration and fuzz) check the encoder against the reader that matters.
pub mod parse {
    /// One dispatched event, as a browser would see it.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Event {
        /// The `event:` field, or `"message"`.
        pub event: String,
        /// The `data:` lines joined with LF.
        pub data: String,
        /// The last event id in force when this event was dispatched.
        pub id: String,
    }

    /// An incremental parser for the text of an event stream.
    #[derive(Debug, Default)]
    pub struct Parser {
        buf: String,
        data: String,
        event: String,
        last_id: String,
        /// The last `retry:` value seen, in milliseconds.
        pub retry: Option<u64>,
        /// How many comment lines were seen (heartbeats).
        pub comments: usize,
    }

    impl Parser {
        /// Feeds text and returns the events it completes.
        pub fn feed(&mut self, text: &str) -> Vec<Event> {
            self.buf.push_str(text);
            let mut events = Vec::new();
            while let Some(at) = self.buf.find(['\r', '\n']) {
                // A CR at the very end may be the first half of a CRLF.
                if self.buf[at..].starts_with('\r') && at + 1 == self.buf.len() {
                    break;
                }
                let skip = if self.buf[at..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                let line: String = self.buf[..at].to_string();
                self.buf.drain(..at + skip);
                if let Some(event) = self.line(&line) {
                    events.push(event);
                }
            }
            events
        }

        /// The id a reconnecting browser would send as `Last-Event-ID`.
        pub fn last_event_id(&self) -> &str {
            &self.last_id
        }

        fn line(&mut self, line: &str) -> Option<Event> {
            if line.is_empty() {
                let event = std::mem::take(&mut self.event);
                let mut data = std::mem::take(&mut self.data);
                if data.is_empty() {
                    return None;
                }
                data.pop(); // the LF appended after the last data line
                return Some(Event {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                    id: self.last_id.clone(),
                });
            }
            if line.starts_with(':') {
                self.comments += 1;
                return None;
            }
            let (name, value) = match line.find(':') {
                Some(at) => {
                    let value = &line[at + 1..];
                    (&line[..at], value.strip_prefix(' ').unwrap_or(value))
                }
                None => (line, ""),
            };
            match name {
                "data" => {
                    self.data.push_str(value);
                    self.data.push('\n');
                }
                "event" => self.event = value.to_string(),
                "id" if !value.contains('\0') => self.last_id = value.to_string(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    self.retry = value.parse().ok();
                }
                _ => {}
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse::Parser;
    use super::*;

    fn roundtrip(id: Option<&str>, name: Option<&str>, data: &str) -> Vec<parse::Event> {
        let bytes = event(id, name, data);
        Parser::default().feed(std::str::from_utf8(&bytes).unwrap())
    }

    #[test]
    fn plain_message_is_one_event() {
        let events = roundtrip(Some("7-1"), None, "hello");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].data, "hello");
        assert_eq!(events[0].id, "7-1");
    }

    #[test]
    fn every_line_break_becomes_a_data_line() {
        let bytes = event(None, None, "a\nb\rc\r\nd");
        assert_eq!(bytes, b"data: a\ndata: b\ndata: c\ndata: d\n\n");
        let events = roundtrip(None, None, "a\nb\rc\r\nd");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a\nb\nc\nd");
    }

    #[test]
    fn text_cannot_forge_a_field_or_second_event() {
        let hostile = "x\n\nevent: reset\nid: 999\r\rdata: forged\r\n\r\n";
        let events = roundtrip(Some("1-1"), None, hostile);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].id, "1-1");
        assert_eq!(
            events[0].data,
            "x\n\nevent: reset\nid: 999\n\ndata: forged\n\n"
        );
    }

    #[test]
    fn empty_and_trailing_line_breaks_survive() {
        assert_eq!(roundtrip(None, None, "")[0].data, "");
        assert_eq!(roundtrip(None, None, "a\n")[0].data, "a\n");
        assert_eq!(roundtrip(None, None, "\n")[0].data, "\n");
    }

    #[test]
    fn named_event_and_id_fields() {
        let bytes = event(Some("3-9"), Some("presence"), "{\"online\":2}");
        assert_eq!(
            bytes,
            b"id: 3-9\nevent: presence\ndata: {\"online\":2}\n\n".as_slice()
        );
    }

    #[test]
    fn line_breaks_in_id_or_event_are_neutralised() {
        let events = roundtrip(Some("1\n\ndata: x"), Some("a\rb"), "ok");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "ok");
        assert_eq!(events[0].event, "a b");
    }

    #[test]
    fn retry_is_in_milliseconds() {
        assert_eq!(retry(2000), b"retry: 2000\n\n");
        let mut p = Parser::default();
        assert!(p.feed("retry: 2000\n\n").is_empty());
        assert_eq!(p.retry, Some(2000));
    }

    #[test]
    fn comment_dispatches_nothing() {
        let mut p = Parser::default();
        let text = String::from_utf8(comment("ping")).unwrap();
        assert_eq!(text, ": ping\n\n");
        assert!(p.feed(&text).is_empty());
        assert_eq!(p.comments, 1);
    }

    #[test]
    fn chunk_framing() {
        assert_eq!(&*chunk(b"data: hi\n\n"), b"a\r\ndata: hi\n\n\r\n");
        let big = vec![b'x'; 300];
        assert!(chunk(&big).starts_with(b"12c\r\n"));
    }

    #[test]
    fn parser_waits_for_crlf_across_feeds() {
        let mut p = Parser::default();
        assert!(p.feed("data: a\r").is_empty());
        let events = p.feed("\n\r\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a");
    }
}
