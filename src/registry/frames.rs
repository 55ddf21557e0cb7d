//! The events the registry sends, each encoded once (SSE and chunk framing) into a
//! [`Frame`] that every stream it goes to shares.

use std::time::Duration;

use crate::message::{Deletion, Message, Record};
use crate::sse::{self, Frame};

/// A chat message: no `event:` field, so it reaches `EventSource.onmessage`.
pub fn message(message: &Message) -> Frame {
    sse::chunk(&sse::event(Some(&message.id), None, &message.to_json()))
}

/// A deletion, with its own id in the sequence.
pub fn deletion(deletion: &Deletion) -> Frame {
    sse::chunk(&sse::event(
        Some(&deletion.id),
        Some("delete"),
        &deletion.event_json(),
    ))
}

/// A change to a message (a deletion, a reaction, an edit), with its own id in the
/// sequence; `None` for a message, which is no change.
pub fn change(record: &Record) -> Option<Frame> {
    let (event, data) = match record {
        Record::Message(_) => return None,
        Record::Deletion(d) => return Some(deletion(d)),
        Record::Reaction(r) => ("react", r.event_json()),
        Record::Edit(e) => ("edit", e.event_json()),
    };
    Some(sse::chunk(&sse::event(
        Some(record.id()),
        Some(event),
        &data,
    )))
}

/// The heartbeat: a comment for proxies and curl, and an `event: ping` carrying the
/// interval in milliseconds, because a page cannot see comments and must know when
/// silence means a dead connection. Unframed: the opening chunk carries one too.
pub fn ping(interval: Duration) -> Vec<u8> {
    let mut bytes = sse::comment("ping");
    bytes.extend(sse::event(
        None,
        Some("ping"),
        &interval.as_millis().to_string(),
    ));
    bytes
}

/// How many streams are open.
pub fn presence(online: usize) -> Frame {
    sse::chunk(&sse::event(
        None,
        Some("presence"),
        &format!("{{\"online\":{online}}}"),
    ))
}

/// The client's last id cannot be caught up from: it starts over.
pub fn reset() -> Frame {
    sse::chunk(&sse::event(None, Some("reset"), "{}"))
}

/// The events in `frames` as a page reads them (tests of the parts that send them).
#[cfg(test)]
pub fn read(frames: &[Frame]) -> Vec<crate::sse::parse::Event> {
    let mut parser = crate::sse::parse::Parser::default();
    frames
        .iter()
        .flat_map(|f| {
            // Strip the chunk framing: "<len>\r\n" … "\r\n".
            let text = std::str::from_utf8(f).unwrap_or_default();
            let start = text.find("\r\n").map_or(0, |i| i + 2);
            parser.feed(&text[start..text.len().saturating_sub(2)])
        })
        .collect()
}

/// The ids of the messages in `frames`, and the names of the other events.
#[cfg(test)]
pub fn ids(frames: &[Frame]) -> Vec<String> {
    read(frames)
        .into_iter()
        .map(|e| if e.event == "message" { e.id } else { e.event })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frame: &Frame) -> &str {
        std::str::from_utf8(frame).unwrap()
    }

    #[test]
    fn each_event_is_one_chunk_with_its_fields() {
        let m = Message {
            id: "5-1".into(),
            name: "a".into(),
            text: "two\nlines".into(),
            time: 1,
            by_mod: false,
            cid: None,
            files: Vec::new(),
            device: None,
            written: None,
            reply: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        };
        let frame = message(&m);
        let (len, body) = text(&frame).split_once("\r\n").unwrap();
        assert_eq!(usize::from_str_radix(len, 16).unwrap(), body.len() - 2);
        assert!(body.starts_with("id: 5-1\ndata: "), "{body}");
        assert!(text(&frame).ends_with("\n\n\r\n"));
        let d = Deletion {
            id: "5-2".into(),
            delete: "5-1".into(),
            own: false,
        };
        assert!(text(&deletion(&d)).contains("id: 5-2\nevent: delete\ndata: {\"id\":\"5-1\"}\n"));
        assert!(text(&presence(3)).contains("event: presence\ndata: {\"online\":3}\n"));
        let beat = String::from_utf8(ping(Duration::from_secs(15))).unwrap();
        assert_eq!(beat, ": ping\n\nevent: ping\ndata: 15000\n\n");
    }
}
