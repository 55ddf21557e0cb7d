//! Reading a history file (pure: bytes in, records out): which lines are records,
//! in which order, which deletions fold into which messages, and how many of them a
//! history of `keep` messages holds. [`super::Store`] uses it to open and to compact;
//! the `history_file` fuzz target feeds it any bytes.

use std::collections::HashMap;

use crate::message::{Id, Record, RECORDS_PER_MESSAGE};

/// What a history file held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The newest `keep` records, oldest first, each id once, with no message that
    /// a deletion names.
    pub records: Vec<Record>,
    /// Numbers (from 1) of the lines that did not read as a record, blank lines
    /// aside.
    pub skipped: Vec<usize>,
    /// Lines in the file, a last line without its line break included.
    pub lines: usize,
    /// Records that read, before `keep` cut them (duplicates counted once).
    pub valid: usize,
}

/// Reads a history file: every line that is a record, each id once, in id order,
/// deletions folded in, then the newest `keep` messages (with at most
/// [`RECORDS_PER_MESSAGE`] times as many records). Of several epochs (runs), the one
/// on the file's last line is the one that goes on; the others come before it, in
/// the order of their last lines, so that one stray line from elsewhere cannot take
/// over.
///
/// Folded means: a message a moderator deleted is gone; one its sender took back is
/// kept empty, as deleted; nothing changes a deleted message later (its reactions
/// and edits are gone); a reply to a deleted message quotes nothing of it. So the
/// text of a deleted message leaves the file at the next compaction.
pub fn load(bytes: &[u8], keep: usize) -> Loaded {
    let mut loaded = Loaded::default();
    // The line on which each epoch last appears. A file normally holds one.
    let mut epochs: HashMap<u64, usize> = HashMap::new();
    let mut found: Vec<(Id, Record)> = Vec::new();
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if !bytes.is_empty() {
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            loaded.lines += 1;
            if line.trim_ascii().is_empty() {
                continue;
            }
            let read = serde_json::from_slice::<Record>(line)
                .ok()
                .and_then(|r| Some((r.id().parse::<Id>().ok()?, r)))
                // An edited or corrupt file must not make the next id overflow.
                .filter(|(id, _)| id.n < u64::MAX / 2);
            match read {
                Some((id, r)) => {
                    epochs.insert(id.epoch, i);
                    found.push((id, r));
                }
                None => loaded.skipped.push(i + 1),
            }
        }
    }
    // Stable: of two lines with one id, the first stays.
    found.sort_by_key(|(id, _)| (epochs.get(&id.epoch).copied(), id.n));
    found.dedup_by_key(|(id, _)| *id);
    fold_deletions(&mut found);
    loaded.valid = found.len();
    let skip = kept_from(found.iter().map(|(_, r)| r), keep);
    loaded.records = found.into_iter().skip(skip).map(|(_, r)| r).collect();
    loaded
}

/// Applies every deletion in `found` to the messages before it (see [`load`]).
fn fold_deletions(found: &mut Vec<(Id, Record)>) {
    // Each deleted message, and whether its sender took it back (kept, empty).
    let mut deleted: HashMap<Id, bool> = HashMap::new();
    for (id, r) in found.iter() {
        if let Record::Deletion(d) = r {
            if let Ok(target) = d.delete.parse::<Id>() {
                // A deletion names a message before it; of two, the moderator's
                // removes it whatever came first.
                if target < *id || target.epoch != id.epoch {
                    let own = deleted.get(&target).copied().unwrap_or(true) && d.own;
                    deleted.insert(target, own);
                }
            }
        }
    }
    if deleted.is_empty() {
        return;
    }
    found.retain_mut(|(id, r)| match r {
        Record::Message(m) => {
            if let Some(own) = deleted.get(id) {
                if !own {
                    return false;
                }
                m.take_back();
            }
            if let Some(to) = m.reply.as_ref().and_then(|q| q.id.parse::<Id>().ok()) {
                if deleted.contains_key(&to) {
                    m.unquote();
                }
            }
            true
        }
        Record::Reaction(_) | Record::Edit(_) => r
            .target()
            .and_then(|t| t.parse::<Id>().ok())
            .map_or(true, |t| !deleted.contains_key(&t)),
        Record::Deletion(_) => true,
    });
}

/// Where the newest `keep` messages begin in `records` (oldest first), with at most
/// [`RECORDS_PER_MESSAGE`] times `keep` records from there: what a history of
/// `keep` holds (see `registry::history`).
pub fn kept_from<'a>(
    records: impl DoubleEndedIterator<Item = &'a Record> + ExactSizeIterator,
    keep: usize,
) -> usize {
    let total = records.len();
    let most = keep.saturating_mul(RECORDS_PER_MESSAGE);
    let mut messages = 0;
    let mut start = total;
    for r in records.rev() {
        if start == total - most.min(total) {
            break;
        }
        if matches!(r, Record::Message(_)) {
            if messages == keep {
                break;
            }
            messages += 1;
        }
        start -= 1;
    }
    start
}
