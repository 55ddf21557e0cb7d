//! The records of the one id sequence besides messages: what a moderator's or a
//! sender's deletion, a reaction and an edit are, each as a line of the history file
//! and as the `data:` of its event, and [`Record`], any line of that file.

use serde::{Deserialize, Serialize};

use super::{is_false, Message};

/// A moderator removed a message: `id` is this event's own place in the sequence,
/// `delete` the message removed. Sent as `event: delete` with `{"id":"<delete>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    /// `<epoch>-<n>`, the next in the sequence after the messages before it.
    pub id: String,
    /// The id of the message removed.
    pub delete: String,
    /// Taken back by its sender: its place stays, as "message deleted".
    #[serde(default, skip_serializing_if = "is_false")]
    pub own: bool,
}

impl Deletion {
    /// The `data:` of its event: what every page needs to remove the message (or,
    /// `own`, to show it as deleted).
    pub fn event_json(&self) -> String {
        if self.own {
            serde_json::json!({ "id": self.delete, "own": true }).to_string()
        } else {
            serde_json::json!({ "id": self.delete }).to_string()
        }
    }
}

/// A device gave (`on`) or took back a reaction. Sent as `event: react` with
/// `{"id":"<react>","emoji":…,"device":…,"name":…,"on":…}`: a page sets or clears
/// that one reaction, so that the same event twice changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reaction {
    /// Its own place in the sequence.
    pub id: String,
    /// The message reacted to.
    pub react: String,
    /// One of [`REACTIONS`].
    pub emoji: String,
    /// The device tag that reacted.
    pub device: String,
    /// The name it used.
    pub name: String,
    /// Given (`true`) or taken back.
    pub on: bool,
}

impl Reaction {
    /// The `data:` of its event.
    pub fn event_json(&self) -> String {
        serde_json::json!({
            "id": self.react,
            "emoji": self.emoji,
            "device": self.device,
            "name": self.name,
            "on": self.on,
        })
        .to_string()
    }
}

/// The sender of a message changed its text. Sent as `event: edit` with
/// `{"id":"<edit>","text":…,"edited":<time>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// Its own place in the sequence.
    pub id: String,
    /// The message changed.
    pub edit: String,
    /// The new text.
    pub text: String,
    /// When (server time).
    pub time: u64,
}

impl Edit {
    /// The `data:` of its event.
    pub fn event_json(&self) -> String {
        serde_json::json!({ "id": self.edit, "text": self.text, "edited": self.time }).to_string()
    }
}

/// One line of the history file, one event with an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    /// A message (a line with `name`, `text` and `time`).
    Message(Message),
    /// A removal (a line with `delete`).
    Deletion(Deletion),
    /// A reaction given or taken back (a line with `react`).
    Reaction(Reaction),
    /// A new text for a message (a line with `edit`).
    Edit(Edit),
}

impl Record {
    /// The record's own id.
    pub fn id(&self) -> &str {
        match self {
            Record::Message(m) => &m.id,
            Record::Deletion(d) => &d.id,
            Record::Reaction(r) => &r.id,
            Record::Edit(e) => &e.id,
        }
    }

    /// The message a change acts on; `None` for a message.
    pub fn target(&self) -> Option<&str> {
        match self {
            Record::Message(_) => None,
            Record::Deletion(d) => Some(&d.delete),
            Record::Reaction(r) => Some(&r.react),
            Record::Edit(e) => Some(&e.edit),
        }
    }

    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        // Structs of strings, integers and booleans cannot fail to serialise.
        match self {
            Record::Message(m) => m.to_json(),
            Record::Deletion(d) => serde_json::to_string(d).unwrap_or_default(),
            Record::Reaction(r) => serde_json::to_string(r).unwrap_or_default(),
            Record::Edit(e) => serde_json::to_string(e).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_what_they_are() {
        let m = Record::Message(Message {
            id: "5-1".into(),
            name: "a".into(),
            text: "delete".into(),
            time: 1,
            by_mod: true,
            cid: None,
            files: Vec::new(),
            device: None,
            written: None,
            reply: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        });
        let d = Record::Deletion(Deletion {
            id: "5-2".into(),
            delete: "5-1".into(),
            own: false,
        });
        for r in [&m, &d] {
            assert_eq!(serde_json::from_str::<Record>(&r.to_json()).unwrap(), *r);
        }
        assert_eq!(d.to_json(), r#"{"id":"5-2","delete":"5-1"}"#);
        // Neither half of a line reads as the other.
        for bad in [
            r#"{"id":"5-2"}"#,
            r#"{"id":"5-2","delete":"5-1","name":"x"}"#,
        ] {
            assert!(serde_json::from_str::<Record>(bad).is_err(), "{bad}");
        }
    }
}
