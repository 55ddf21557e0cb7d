//! What a device may do to a message after it is sent (react, edit its own, take
//! its own back) and how each change folds into the message as it now stands. Pure:
//! the same folding serves a change as it happens, a history loaded after a restart
//! and the history file's compaction, so a change is never applied twice or
//! differently.
//!
//! Invariants:
//! - A change acts on a message that is there and not deleted; a deleted message
//!   loses its reactions, and nothing changes it again.
//! - Only the device that sent a message edits or deletes it; an edit comes within
//!   [`EDIT_WINDOW`] of the message.
//! - A reaction is one per kind per device: giving it twice, or taking back one not
//!   given, changes nothing. At most [`MAX_REACTORS`] devices per kind.

use crate::message::{
    Message, Quote, Reaction, Reactions, Reactor, Record, EDIT_WINDOW, MAX_REACTORS, REACTIONS,
};

/// What a device asks to do to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Give (`on`) or take back a reaction, under `name`.
    React {
        /// One of [`REACTIONS`].
        emoji: String,
        /// Given or taken back.
        on: bool,
        /// The name the device uses now.
        name: String,
    },
    /// Give the message a new text (already valid as a message's).
    Edit {
        /// The new text.
        text: String,
    },
    /// Take the message back.
    Delete,
}

/// Why a change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The message is not there: never sent, deleted, or older than history.
    NotFound,
    /// The message is another device's.
    NotYours,
    /// The message is older than [`EDIT_WINDOW`].
    TooLate,
    /// This reaction has [`MAX_REACTORS`] devices already.
    Full,
}

/// Whether `device` may do `act` to `message` at server time `now` (ms):
/// `Ok(false)` when it would change nothing (a reaction as it already is).
pub fn check(message: &Message, device: &str, act: &Act, now: u64) -> Result<bool, Refused> {
    if message.deleted {
        return Err(Refused::NotFound);
    }
    let own = message.device.as_deref() == Some(device);
    match act {
        Act::React { emoji, on, .. } => {
            let given = message.reactions.iter().find(|r| r.emoji == *emoji);
            let has = given.is_some_and(|r| r.by.iter().any(|b| b.device == device));
            if *on && !has && given.is_some_and(|r| r.by.len() >= MAX_REACTORS) {
                return Err(Refused::Full);
            }
            Ok(has != *on)
        }
        Act::Edit { text } => {
            if !own {
                return Err(Refused::NotYours);
            }
            if now.saturating_sub(message.time) > EDIT_WINDOW.as_millis() as u64 {
                return Err(Refused::TooLate);
            }
            Ok(*text != message.text)
        }
        Act::Delete if own => Ok(true),
        Act::Delete => Err(Refused::NotYours),
    }
}

/// Whether `emoji` is one of the reactions a message can get.
pub fn is_reaction(emoji: &str) -> bool {
    REACTIONS.contains(&emoji)
}

/// Folds a change into the message it acts on; returns whether it changed it. A
/// message's own line (a [`Record::Message`]) changes nothing; a moderator's
/// deletion is not folded (the message goes: see `History::remove`).
pub fn fold(message: &mut Message, change: &Record) -> bool {
    if message.deleted {
        return false;
    }
    match change {
        Record::Reaction(r) => react(message, r),
        Record::Edit(e) => {
            message.text.clone_from(&e.text);
            message.edited = Some(e.time);
            true
        }
        Record::Deletion(d) if d.own => {
            message.take_back();
            true
        }
        Record::Deletion(_) | Record::Message(_) => false,
    }
}

fn react(message: &mut Message, r: &Reaction) -> bool {
    if !is_reaction(&r.emoji) {
        return false;
    }
    let at = message.reactions.iter().position(|g| g.emoji == r.emoji);
    match (at, r.on) {
        (Some(at), true) => {
            let by = &mut message.reactions[at].by;
            if by.len() >= MAX_REACTORS || by.iter().any(|b| b.device == r.device) {
                return false;
            }
            by.push(reactor(r));
        }
        (None, true) => message.reactions.push(Reactions {
            emoji: r.emoji.clone(),
            by: vec![reactor(r)],
        }),
        (Some(at), false) => {
            let by = &mut message.reactions[at].by;
            let before = by.len();
            by.retain(|b| b.device != r.device);
            if by.len() == before {
                return false;
            }
            if by.is_empty() {
                message.reactions.remove(at);
            }
        }
        (None, false) => return false,
    }
    true
}

fn reactor(r: &Reaction) -> Reactor {
    Reactor {
        device: r.device.clone(),
        name: r.name.clone(),
    }
}

/// What a reply to `message` quotes of it.
pub fn quote(message: &Message) -> Quote {
    let photo = message
        .files
        .iter()
        .find(|f| f.width.is_some() && crate::media::INLINE.contains(&f.kind.as_str()))
        .map(|f| f.id.clone());
    Quote {
        id: message.id.clone(),
        name: message.name.clone(),
        text: crate::message::quote_of(&message.text),
        photo,
        gone: false,
        missing: false,
    }
}

/// A reply whose message is gone (`now` is `None`) quotes nothing of it; an edited
/// one, its new text. Returns whether `reply` quoted `target`.
pub fn requote(reply: &mut Message, target: &str, now: Option<&str>) -> bool {
    let Some(q) = reply.reply.as_mut().filter(|q| q.id == target) else {
        return false;
    };
    match now {
        Some(text) => q.text = crate::message::quote_of(text),
        None => reply.unquote(),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Deletion, Edit};

    fn msg(device: Option<&str>) -> Message {
        let mut m = Message {
            id: "7-1".into(),
            name: "Ana".into(),
            text: "meet at 6".into(),
            time: 1_000_000,
            ..Message::default()
        };
        m.device = device.map(str::to_string);
        m
    }

    fn reaction(device: &str, emoji: &str, on: bool) -> Record {
        Record::Reaction(Reaction {
            id: "7-9".into(),
            react: "7-1".into(),
            emoji: emoji.into(),
            device: device.into(),
            name: device.to_uppercase(),
            on,
        })
    }

    #[test]
    fn one_reaction_of_a_kind_per_device_and_a_second_tap_takes_it_back() {
        let mut m = msg(None);
        let thumbs = REACTIONS[0];
        let act = |on| Act::React {
            emoji: thumbs.into(),
            on,
            name: "x".into(),
        };
        assert_eq!(check(&m, "a", &act(true), 0), Ok(true));
        assert!(fold(&mut m, &reaction("a", thumbs, true)));
        assert!(!fold(&mut m, &reaction("a", thumbs, true)), "twice");
        assert_eq!(check(&m, "a", &act(true), 0), Ok(false));
        assert!(fold(&mut m, &reaction("b", thumbs, true)));
        assert!(fold(&mut m, &reaction("c", REACTIONS[1], true)));
        assert!(
            !fold(&mut m, &reaction("c", "x", true)),
            "not one of the set"
        );
        let counts: Vec<(&str, usize)> = m
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.by.len()))
            .collect();
        assert_eq!(counts, [(thumbs, 2), (REACTIONS[1], 1)]);
        assert_eq!(m.reactions[0].by[1].name, "B");
        assert!(fold(&mut m, &reaction("a", thumbs, false)));
        assert!(!fold(&mut m, &reaction("a", thumbs, false)), "twice");
        assert!(fold(&mut m, &reaction("c", REACTIONS[1], false)));
        assert_eq!(m.reactions.len(), 1, "a kind no one gives is gone");
    }

    #[test]
    fn a_reaction_kind_holds_a_rooms_worth_of_devices() {
        let mut m = msg(None);
        for i in 0..MAX_REACTORS {
            assert!(fold(
                &mut m,
                &reaction(&format!("d{i}"), REACTIONS[0], true)
            ));
        }
        let act = Act::React {
            emoji: REACTIONS[0].into(),
            on: true,
            name: "x".into(),
        };
        assert_eq!(check(&m, "late", &act, 0), Err(Refused::Full));
        assert!(!fold(&mut m, &reaction("late", REACTIONS[0], true)));
    }

    #[test]
    fn only_its_own_device_edits_within_the_window_or_deletes() {
        let m = msg(Some("mine"));
        let edit = Act::Edit {
            text: "at 7".into(),
        };
        let in_time = m.time + EDIT_WINDOW.as_millis() as u64;
        assert_eq!(check(&m, "mine", &edit, in_time), Ok(true));
        assert_eq!(check(&m, "mine", &edit, in_time + 1), Err(Refused::TooLate));
        assert_eq!(check(&m, "other", &edit, m.time), Err(Refused::NotYours));
        assert_eq!(
            check(&m, "other", &Act::Delete, m.time),
            Err(Refused::NotYours)
        );
        assert_eq!(
            check(&msg(None), "any", &Act::Delete, 0),
            Err(Refused::NotYours)
        );
        assert_eq!(check(&m, "mine", &Act::Delete, u64::MAX), Ok(true));
    }

    #[test]
    fn a_deleted_message_loses_its_text_files_and_reactions_and_takes_no_change() {
        let mut m = msg(Some("mine"));
        fold(&mut m, &reaction("a", REACTIONS[0], true));
        let edit = Record::Edit(Edit {
            id: "7-3".into(),
            edit: "7-1".into(),
            text: "at 7".into(),
            time: 5,
        });
        assert!(fold(&mut m, &edit));
        assert_eq!((m.text.as_str(), m.edited), ("at 7", Some(5)));
        let gone = Record::Deletion(Deletion {
            id: "7-4".into(),
            delete: "7-1".into(),
            own: true,
        });
        assert!(fold(&mut m, &gone));
        assert!(m.deleted && m.text.is_empty() && m.reactions.is_empty());
        assert!(!fold(&mut m, &edit), "an edit of a deleted message");
        assert!(!fold(&mut m, &reaction("b", REACTIONS[0], true)));
        let act = Act::Edit { text: "x".into() };
        assert_eq!(check(&m, "mine", &act, m.time), Err(Refused::NotFound));
    }

    #[test]
    fn a_reply_quotes_the_start_and_forgets_a_deleted_original() {
        let mut original = msg(None);
        original.text = "w".repeat(500);
        let mut reply = Message {
            id: "7-2".into(),
            reply: Some(quote(&original)),
            ..msg(None)
        };
        assert_eq!(reply.reply.as_ref().unwrap().text.chars().count(), 120);
        original.text = "fixed".into();
        assert!(requote(&mut reply, "7-1", Some(&original.text)));
        assert_eq!(reply.reply.as_ref().unwrap().text, "fixed");
        assert!(!requote(&mut reply, "7-5", None), "another message");
        assert!(requote(&mut reply, "7-1", None));
        let q = reply.reply.unwrap();
        assert!(q.gone && q.text.is_empty() && q.name.is_empty());
    }
}
