//! The history ring: the newest `--history` messages of the one id sequence with the
//! changes made to them since (deletions, reactions, edits), each with the frame it
//! is replayed as; an index of the `cid`s of the messages in it; the replay a stream
//! is sent when it joins; and a search of the text kept. Pure: no I/O, no clock.
//!
//! Invariants:
//! - Records are in id order: those of the current epoch in `n` order (with gaps
//!   where lines were lost on disk or ids were never used), after any of older
//!   epochs that were restored.
//! - The ring holds at most `capacity` messages, and at most
//!   [`RECORDS_PER_MESSAGE`] times as many records: changes do not push messages
//!   out, and a flood of changes cannot grow it without end.
//! - A message is kept as it now stands (its changes folded in by
//!   [`changes::fold`]), its frame encoded again at each change: a page that opens
//!   is sent each message once, never the list of changes.
//! - A message a moderator deleted keeps its place, holding only who sent it (for a
//!   mute); it is in no replay, no page and no `cid` lookup from then on. One its
//!   sender deleted stays, as "deleted", with nothing of what it said.
//! - A `cid` names the newest message in the ring that carries it.

use std::collections::{HashMap, VecDeque};

use crate::client::ClientKey;
use crate::message::{Id, Message, Record, RECORDS_PER_MESSAGE};
use crate::sse::Frame;

use super::changes;
use super::frames;
use super::moderation::Who;

/// What a place in the ring holds.
#[derive(Debug)]
pub enum Kept {
    /// A message with its frame: the frame for replays, the message for those who
    /// read it as a page, the sender (not known for one restored from disk) for a
    /// moderator's mute.
    Message {
        /// The message as it now stands (boxed: the ring's places are mostly this,
        /// and a change's place then weighs little).
        message: Box<Message>,
        /// Its event, encoded once per state.
        frame: Frame,
        /// Who posted it, while this run of the server knows.
        sender: Option<ClientKey>,
    },
    /// A message a moderator deleted: nothing of it is sent again.
    Removed {
        /// Who had posted it.
        sender: Option<ClientKey>,
        /// Its device tag.
        device: Option<String>,
    },
    /// A change to a message, replayed so that pages that showed the message show
    /// it as it now stands.
    Change {
        /// Its event.
        frame: Frame,
        /// The message it changed.
        target: Id,
        /// A deletion: replayed to every page that comes back from before it, as
        /// deletions always were; other changes only to pages that had their message.
        deletion: bool,
    },
}

impl Kept {
    /// A message as the ring keeps it.
    pub fn message(message: Message, sender: Option<ClientKey>) -> Kept {
        Kept::Message {
            frame: frames::message(&message),
            message: Box::new(message),
            sender,
        }
    }

    /// What a replay sends for this place.
    fn frame(&self) -> Option<&Frame> {
        match self {
            Kept::Message { frame, .. } | Kept::Change { frame, .. } => Some(frame),
            Kept::Removed { .. } => None,
        }
    }

    fn is_message(&self) -> bool {
        !matches!(self, Kept::Change { .. })
    }
}

/// What a change did.
#[derive(Debug)]
pub struct Changed {
    /// Its event.
    pub frame: Frame,
    /// The message as it now stands; `None` when a moderator removed it.
    pub message: Option<Message>,
    /// The ids of the files the change took from the message (a deletion's).
    pub files: Vec<String>,
    /// What the change pushed out of the ring.
    pub gone: Vec<Kept>,
}

/// One place in the ring.
#[derive(Debug)]
struct Stored {
    id: Id,
    kept: Kept,
}

/// Why a message cannot be acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Not in the ring: never posted, deleted, too old, or not a message.
    NotFound,
    /// In the ring, but restored from disk without a device tag: its sender was
    /// never written down.
    SenderUnknown,
}

/// What a search found, newest first, and where a search that stopped early goes on.
#[derive(Debug, Default)]
pub struct Found {
    /// The messages that match, newest first.
    pub messages: Vec<Message>,
    /// The oldest place looked at, when older ones were not: the next search's
    /// `before`.
    pub next: Option<Id>,
}

/// The newest records, at most `capacity` messages of them.
#[derive(Debug)]
pub struct History {
    ring: VecDeque<Stored>,
    cids: HashMap<String, Id>,
    capacity: usize,
    /// Places in the ring that are messages (deleted or not).
    messages: usize,
}

impl History {
    /// An empty history of at most `capacity` messages.
    pub fn new(capacity: usize) -> History {
        History {
            ring: VecDeque::with_capacity(capacity.min(1024)),
            cids: HashMap::new(),
            capacity,
            messages: 0,
        }
    }

    /// `records` (oldest first, in id order) with every change folded in, as far as
    /// `capacity` keeps them, and the id of the last one, after which the sequence
    /// goes on.
    pub fn restore(capacity: usize, records: Vec<Record>) -> (History, Option<Id>) {
        let mut history = History::new(capacity);
        let mut last = None;
        for record in records {
            let Ok(id) = record.id().parse::<Id>() else {
                continue;
            };
            last = Some(id);
            match record {
                Record::Message(message) => {
                    history.push(id, Kept::message(message, None));
                }
                change => {
                    // Kept even when it changes nothing here (the file holds its
                    // message already folded, or no longer): a page that had the
                    // message before the restart is still owed its event.
                    if history.change(id, &change).is_none() {
                        let target = change.target().and_then(|t| t.parse().ok());
                        if let (Some(frame), Some(target)) = (frames::change(&change), target) {
                            let deletion = matches!(change, Record::Deletion(_));
                            history.push(
                                id,
                                Kept::Change {
                                    frame,
                                    target,
                                    deletion,
                                },
                            );
                        }
                    }
                }
            }
        }
        (history, last)
    }

    /// Adds a record; returns what it pushed out of the ring (the files of a
    /// message pushed out are then no page's to fetch).
    pub fn push(&mut self, id: Id, kept: Kept) -> Vec<Kept> {
        if self.capacity == 0 {
            return Vec::new();
        }
        if let Kept::Message { message, .. } = &kept {
            if let Some(cid) = &message.cid {
                self.cids.insert(cid.clone(), id);
            }
        }
        if kept.is_message() {
            self.messages += 1;
        }
        self.ring.push_back(Stored { id, kept });
        let mut gone = Vec::new();
        while self.messages > self.capacity
            || self.ring.len() > self.capacity.saturating_mul(RECORDS_PER_MESSAGE)
        {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            self.unindex(&old.kept);
            if old.kept.is_message() {
                self.messages -= 1;
            }
            gone.push(old.kept);
        }
        gone
    }

    /// Applies a change (a deletion, a reaction, an edit) with its own id `id` to
    /// the message it names, and keeps it for replays. `None` when it changes
    /// nothing: the message is not there, is deleted, or already so.
    pub fn change(&mut self, id: Id, record: &Record) -> Option<Changed> {
        let target: Id = record.target()?.parse().ok()?;
        let Some(at) = self.position(target) else {
            // Its message has left (a compaction kept the replies, not it): the
            // replies still quote it as it was last.
            if let Record::Edit(e) = record {
                self.requote(0, &target.to_string(), Some(&e.text));
            }
            return None;
        };
        let mut files = Vec::new();
        let message = match record {
            Record::Deletion(d) if !d.own => {
                files = self.remove(target)?;
                None
            }
            _ => {
                let Kept::Message { message, frame, .. } = &mut self.ring[at].kept else {
                    return None;
                };
                let had: Vec<String> = message.files.iter().map(|f| f.id.clone()).collect();
                if !changes::fold(message, record) {
                    return None;
                }
                if message.deleted {
                    files = had;
                }
                *frame = frames::message(message);
                Some(Message::clone(message))
            }
        };
        if matches!(record, Record::Deletion(_) | Record::Edit(_)) {
            let now = message
                .as_ref()
                .filter(|m| !m.deleted)
                .map(|m| m.text.as_str());
            self.requote(at + 1, &target.to_string(), now);
        }
        if let (Some(m), Some(cid)) = (&message, message.as_ref().and_then(|m| m.cid.as_ref())) {
            // Taken back: a page sending it again must not bring it back.
            if m.deleted {
                self.cids.remove(cid);
            }
        }
        let frame = frames::change(record)?;
        let gone = self.push(
            id,
            Kept::Change {
                frame: frame.clone(),
                target,
                deletion: matches!(record, Record::Deletion(_)),
            },
        );
        Some(Changed {
            frame,
            message,
            files,
            gone,
        })
    }

    /// The replies from place `from` on to the message `target` quote it as it now
    /// is: `now`, its text, or `None`, deleted.
    fn requote(&mut self, from: usize, target: &str, now: Option<&str>) {
        for stored in self.ring.range_mut(from..) {
            if let Kept::Message { message, frame, .. } = &mut stored.kept {
                if changes::requote(message, target, now) {
                    *frame = frames::message(message);
                }
            }
        }
    }

    /// Forgets the `cid` of a message leaving the ring (or its replays), unless a
    /// newer message took it over.
    fn unindex(&mut self, kept: &Kept) {
        if let Kept::Message { message, .. } = kept {
            if let (Some(cid), Some(id)) = (&message.cid, message.parsed_id()) {
                if self.cids.get(cid) == Some(&id) {
                    self.cids.remove(cid);
                }
            }
        }
    }

    fn position(&self, id: Id) -> Option<usize> {
        // Ids are in order within an epoch: most lookups are for recent messages.
        self.ring.iter().rposition(|s| s.id == id)
    }

    /// Whether the message `id` is in the ring and not deleted by a moderator.
    pub fn has_message(&self, id: Id) -> bool {
        self.message(id).is_some()
    }

    /// The message `id` as it now stands, while it is in the ring and a moderator
    /// has not deleted it.
    pub fn message(&self, id: Id) -> Option<&Message> {
        match &self.ring[self.position(id)?].kept {
            Kept::Message { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The message a page posted with this `cid`, while it is in the ring.
    pub fn posted(&self, cid: &str) -> Option<&Message> {
        let at = self.position(*self.cids.get(cid)?)?;
        match &self.ring[at].kept {
            Kept::Message { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Takes a deleted message's text out of the ring (its place stays, with its
    /// sender); returns the ids of its files. `None` when it is not there.
    pub fn remove(&mut self, id: Id) -> Option<Vec<String>> {
        let at = self.position(id)?;
        let Kept::Message {
            sender, message, ..
        } = &self.ring[at].kept
        else {
            return None;
        };
        let gone = Kept::Removed {
            sender: *sender,
            device: message.device.clone(),
        };
        let removed = std::mem::replace(&mut self.ring[at].kept, gone);
        self.unindex(&removed);
        match removed {
            Kept::Message { message, .. } => {
                Some(message.files.iter().map(|f| f.id.clone()).collect())
            }
            _ => None,
        }
    }

    /// Who posted the message `id` (deleted or not), for a mute: its client, while
    /// this run knows it, and its device tag, which the history file keeps.
    pub fn who(&self, id: Id) -> Result<Who, Missing> {
        let at = self.position(id).ok_or(Missing::NotFound)?;
        let who = match &self.ring[at].kept {
            Kept::Message {
                sender, message, ..
            } => Who {
                client: *sender,
                device: message.device.clone(),
            },
            Kept::Removed { sender, device } => Who {
                client: *sender,
                device: device.clone(),
            },
            Kept::Change { .. } => return Err(Missing::NotFound),
        };
        if who.client.is_none() && who.device.is_none() {
            return Err(Missing::SenderUnknown);
        }
        Ok(who)
    }

    /// What a stream must be sent before live events, given the last id it saw
    /// (`None` or empty: a new page), in a sequence of `epoch` whose next id is
    /// `next_n`. A new page gets the newest `backlog` messages; a page that saw an
    /// id still here gets exactly what came after it (less the reactions and edits
    /// of messages it had not seen, which it gets as they now stand); any other id (unknown,
    /// another run's, older than the ring) gets a `reset` and every message kept.
    pub fn replay_after(
        &self,
        last_event_id: Option<&str>,
        epoch: u64,
        next_n: u64,
        backlog: usize,
    ) -> Vec<Frame> {
        // Where this epoch's records begin, and whether any of them have been let
        // go: the front being of an older epoch means none have.
        let first = self.ring.partition_point(|s| s.id.epoch != epoch);
        let oldest = match self.ring.front() {
            Some(s) if s.id.epoch != epoch => 1,
            _ => self.ring.get(first).map_or(next_n, |s| s.id.n),
        };
        let messages = || {
            self.ring.iter().filter_map(|s| match &s.kept {
                Kept::Message { frame, .. } => Some(frame.clone()),
                _ => None,
            })
        };
        match last_event_id.filter(|id| !id.is_empty()) {
            // A new page needs the newest messages only, as they now stand.
            None => {
                let mut frames: Vec<Frame> = messages().rev().take(backlog).collect();
                frames.reverse();
                frames
            }
            Some(id) => match id.trim().parse::<Id>() {
                // Everything after `n` is still here: send exactly that.
                Ok(Id { epoch: e, n }) if e == epoch && n < next_n && n + 1 >= oldest => {
                    let after = self
                        .ring
                        .partition_point(|s| s.id.epoch != epoch || s.id.n <= n);
                    self.ring
                        .iter()
                        .skip(after)
                        .filter_map(|s| match &s.kept {
                            Kept::Change {
                                target,
                                deletion: false,
                                ..
                            } if target.epoch == epoch && target.n > n => None,
                            kept => kept.frame().cloned(),
                        })
                        .collect()
                }
                _ => std::iter::once(frames::reset()).chain(messages()).collect(),
            },
        }
    }

    /// The newest `count` messages before `before` (all of history for `None`, none
    /// for an id history does not hold), oldest first.
    pub fn recent(&self, before: Option<Id>, count: usize) -> Vec<Message> {
        let Some(end) = self.end(before) else {
            return Vec::new();
        };
        let mut messages: Vec<Message> = self
            .ring
            .range(..end)
            .rev()
            .filter_map(|s| match &s.kept {
                Kept::Message { message, .. } => Some(Message::clone(message)),
                _ => None,
            })
            .take(count)
            .collect();
        messages.reverse();
        messages
    }

    /// Where the places before `before` end.
    fn end(&self, before: Option<Id>) -> Option<usize> {
        match before {
            None => Some(self.ring.len()),
            Some(id) => self.position(id),
        }
    }

    /// The newest `limit` messages before `before` whose text holds every one of
    /// `words` (see [`crate::search`]), looking at no more than `scan` places: a
    /// search of a long history is done in steps, each short, so that the messages
    /// of everyone else never wait behind it.
    pub fn search(&self, words: &[String], before: Option<Id>, scan: usize, limit: usize) -> Found {
        let mut found = Found::default();
        let Some(end) = self.end(before) else {
            return found;
        };
        let start = end.saturating_sub(scan);
        for stored in self.ring.range(start..end).rev() {
            if let Kept::Message { message, .. } = &stored.kept {
                if crate::search::matches(words, message) {
                    found.messages.push(Message::clone(message));
                    if found.messages.len() == limit {
                        found.next = Some(stored.id);
                        return found;
                    }
                }
            }
        }
        if start > 0 {
            found.next = self.ring.get(start).map(|s| s.id);
        }
        found
    }

    /// `cid`s indexed, for tests.
    #[cfg(test)]
    pub fn cids(&self) -> usize {
        self.cids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Deletion;
    use crate::registry::frames::ids;

    fn message(id: &str, cid: Option<&str>) -> Record {
        Record::Message(Message {
            id: id.into(),
            name: "a".into(),
            text: id.into(),
            time: 1,
            by_mod: false,
            cid: cid.map(str::to_string),
            files: Vec::new(),
            device: None,
            written: None,
            reply: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        })
    }

    fn kept(record: &Record, sender: Option<ClientKey>) -> Kept {
        match record {
            Record::Message(m) => Kept::message(m.clone(), sender),
            other => panic!("not a message: {other:?}"),
        }
    }

    fn filled(capacity: usize, n: u64) -> History {
        let mut h = History::new(capacity);
        for i in 1..=n {
            let record = message(&format!("77-{i}"), None);
            h.push(Id { epoch: 77, n: i }, kept(&record, None));
        }
        h
    }

    #[test]
    fn replay_after_a_known_id_is_exact_and_a_new_page_gets_the_backlog() {
        let h = filled(10, 5);
        assert_eq!(
            ids(&h.replay_after(Some("77-2"), 77, 6, 3)),
            ["77-3", "77-4", "77-5"]
        );
        assert!(h.replay_after(Some("77-5"), 77, 6, 3).is_empty());
        assert_eq!(
            ids(&h.replay_after(None, 77, 6, 3)),
            ["77-3", "77-4", "77-5"]
        );
        assert_eq!(
            ids(&h.replay_after(Some(""), 77, 6, 3)),
            ["77-3", "77-4", "77-5"]
        );
    }

    #[test]
    fn unknown_foreign_future_or_evicted_ids_reset() {
        let h = filled(3, 6); // holds 4, 5, 6
        let all = ["reset", "77-4", "77-5", "77-6"];
        for id in ["garbage", "76-5", "77-9", "77-2"] {
            assert_eq!(ids(&h.replay_after(Some(id), 77, 7, 3)), all, "{id}");
        }
        // 3 is gone, but everything after it is still here.
        assert_eq!(
            ids(&h.replay_after(Some("77-3"), 77, 7, 3)),
            ["77-4", "77-5", "77-6"]
        );
    }

    #[test]
    fn restored_history_with_gaps_and_an_older_epoch_replays_exactly() {
        let records = ["5-8", "5-9", "9-1", "9-2", "9-4", "9-5"]
            .map(|id| message(id, None))
            .to_vec();
        let (h, last) = History::restore(100, records);
        assert_eq!(last, Some(Id { epoch: 9, n: 5 }));
        let replay = |id| ids(&h.replay_after(Some(id), 9, 6, 100));
        assert_eq!(replay("9-2"), ["9-4", "9-5"]);
        // 9-3 was lost on disk: after it comes what is left.
        assert_eq!(replay("9-3"), ["9-4", "9-5"]);
        assert!(replay("9-5").is_empty());
        let all = ["reset", "5-8", "5-9", "9-1", "9-2", "9-4", "9-5"];
        assert_eq!(replay("5-9"), all);
        assert_eq!(replay("9-6"), all);
        assert_eq!(ids(&h.replay_after(None, 9, 6, 100)), all[1..]);
    }

    #[test]
    fn a_deleted_message_leaves_replays_pages_and_cids_but_keeps_who_sent_it() {
        let mut h = History::new(10);
        let sender = ClientKey::v4([10, 0, 0, 9]);
        for (n, cid) in [(1, None), (2, Some("c2")), (3, None)] {
            let record = message(&format!("77-{n}"), cid);
            h.push(Id { epoch: 77, n }, kept(&record, Some(sender)));
        }
        let target = Id { epoch: 77, n: 2 };
        assert_eq!(h.posted("c2").map(|m| m.id.as_str()), Some("77-2"));
        let d = Record::Deletion(Deletion {
            id: "77-4".into(),
            delete: "77-2".into(),
            own: false,
        });
        let changed = h.change(Id { epoch: 77, n: 4 }, &d).unwrap();
        assert_eq!((changed.message, changed.files), (None, Vec::new()));
        assert_eq!(
            ids(&h.replay_after(Some("77-1"), 77, 5, 10)),
            ["77-3", "delete"]
        );
        assert_eq!(ids(&h.replay_after(None, 77, 5, 10)), ["77-1", "77-3"]);
        let texts: Vec<String> = h.recent(None, 10).into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["77-1", "77-3"]);
        assert!(h.posted("c2").is_none());
        assert!(!h.has_message(target));
        assert_eq!(h.remove(target), None, "twice");
        assert_eq!(
            h.who(target).map(|w| w.client),
            Ok(Some(sender)),
            "still mutable"
        );
        assert_eq!(h.who(Id { epoch: 77, n: 4 }), Err(Missing::NotFound));
    }

    #[test]
    fn older_messages_page_back_and_a_full_ring_hands_back_what_it_pushed_out() {
        let mut h = filled(3, 3);
        let before = |h: &History, n, count| -> Vec<String> {
            h.recent(Some(Id { epoch: 77, n }), count)
                .into_iter()
                .map(|m| m.id)
                .collect()
        };
        assert_eq!(before(&h, 3, 10), ["77-1", "77-2"]);
        assert_eq!(before(&h, 3, 1), ["77-2"]);
        assert!(before(&h, 9, 10).is_empty(), "not in history");
        let record = message("77-4", Some("c4"));
        let gone = h.push(Id { epoch: 77, n: 4 }, kept(&record, None));
        assert!(matches!(&gone[..], [Kept::Message { message, .. }] if message.id == "77-1"));
        // A cid leaves with its message.
        for n in 5..=7 {
            let record = message(&format!("77-{n}"), None);
            h.push(Id { epoch: 77, n }, kept(&record, None));
        }
        assert_eq!(h.cids(), 0);
        assert!(History::new(0)
            .push(Id { epoch: 1, n: 1 }, kept(&record, None))
            .is_empty());
    }
}
