//! History on disk, for `--data-dir`: `history.jsonl` holds one [`Record`] as JSON
//! per line (a message, or a moderator's deletion of one), so that after a restart
//! (or a power cut) the history is loaded again and ids go on from the last one. A
//! phone that reconnects with its last id after the Pi rebooted then loses nothing.
//!
//! Invariants:
//! - A message is acknowledged only after its line is on the device: [`Store::append`]
//!   writes a batch of lines and flushes them (`fdatasync`) before it returns `Ok`,
//!   one flush per batch however many posts came together.
//! - A failed write leaves no partial line: the file is cut back to where the batch
//!   began (which needs no free space).
//! - The file is never rewritten with fewer valid messages than it holds, except by
//!   compaction, which keeps the newest `keep` once the file has grown to twice that.
//!   Compaction writes a temporary file, flushes it and renames it over the old one,
//!   so a crash leaves one or the other; when it cannot write (a full disk) the old
//!   file stays and compaction is tried again later.
//! - Loading keeps every line that reads as a record, in id order, each id once; a
//!   line that does not read is skipped and its number reported. A file with content
//!   but no record at all is moved aside, never deleted.
//! - A deleted message never loads again: loading drops every message a deletion
//!   names, and a batch with a deletion in it is followed at once by a compaction,
//!   so that the text is gone from the file when the deletion is acknowledged (or,
//!   on a full disk, at the first compaction that can write).
//! - Only the registry uses a [`Store`], one call at a time (from a blocking thread).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::message::Record;

mod load;

pub use load::{kept_from, load, Loaded};

/// The file inside the data directory.
pub const FILE_NAME: &str = "history.jsonl";

/// The name compaction writes to before it renames.
const TMP_NAME: &str = "history.jsonl.tmp";

/// How many skipped line numbers a start-up log line lists.
const LINES_LISTED: usize = 10;

/// An open history file.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    file: File,
    /// Where the file's last whole line ends: everything before is good lines.
    len: u64,
    /// Lines in the file, read or not.
    lines: usize,
    keep: usize,
    /// The next write must start with a line break: the file ends in a line that is
    /// a message but lacks its own (an edited file).
    newline_first: bool,
    /// A write failed and the cut back to `len` failed too: cut before writing.
    cut_pending: bool,
    /// Lines at which compaction is next tried.
    compact_at: usize,
    /// Set after a failed compaction, so that it is logged once, not per try.
    compact_failing: bool,
    /// Each append writes half its lines, then fails as a full disk would.
    #[cfg(test)]
    pub(crate) fail_writes: bool,
    /// Appends made, each one write and one flush.
    #[cfg(test)]
    pub(crate) appends: usize,
}

impl Store {
    /// Opens (creating) `dir/history.jsonl` and returns the records to start with.
    /// Writes nothing that needs free space: on a full disk it starts all the same.
    pub fn open(dir: &Path, keep: usize) -> io::Result<(Store, Vec<Record>)> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        match fs::remove_file(dir.join(TMP_NAME)) {
            Ok(()) => crate::info!("removed {TMP_NAME}, left by a compaction cut short"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => crate::warn!("cannot remove {TMP_NAME}: {e}"),
        }
        let mut bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut loaded = load(&bytes, keep);
        if !loaded.skipped.is_empty() {
            crate::warn!(
                "{}: {} lines could not be read and are skipped: {}",
                path.display(),
                loaded.skipped.len(),
                listed(&loaded.skipped)
            );
        }
        if loaded.valid == 0 && bytes.iter().any(|b| !b.is_ascii_whitespace()) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = dir.join(format!("{FILE_NAME}.unreadable-{now}"));
            fs::rename(&path, &aside)?;
            crate::warn!(
                "{} holds no record that can be read; moved to {} and started afresh",
                path.display(),
                aside.display()
            );
            bytes.clear();
            loaded = Loaded::default();
        }
        let created = !path.exists();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if created {
            // The new name must be on the device before the first line is
            // acknowledged, or a power cut could take the file with it.
            File::open(dir)?.sync_all()?;
        }
        let mut store = Store {
            path,
            file,
            len: bytes.len() as u64,
            lines: loaded.lines,
            keep: keep.max(1),
            newline_first: false,
            cut_pending: false,
            compact_at: 2 * keep.max(1),
            compact_failing: false,
            #[cfg(test)]
            fail_writes: false,
            #[cfg(test)]
            appends: 0,
        };
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let start = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if serde_json::from_slice::<Record>(&bytes[start..]).is_ok() {
                store.newline_first = true;
            } else {
                // A line torn by a power cut: cut it off, so appends start clean.
                store.len = start as u64;
                store.lines -= 1;
                store.file.set_len(store.len)?;
                crate::info!("the history file's last line was cut short and is removed");
            }
        }
        if store.lines >= store.compact_at {
            store.compact();
        }
        Ok((store, loaded.records))
    }

    /// Writes `records`, one line each, and flushes them to the device. On an error
    /// none of them is in the file.
    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        if self.cut_pending {
            self.file.set_len(self.len)?;
            self.cut_pending = false;
        }
        let mut text = String::new();
        if self.newline_first {
            text.push('\n');
        }
        for r in records {
            text.push_str(&r.to_json());
            text.push('\n');
        }
        if let Err(e) = self.write_and_flush(text.as_bytes()) {
            // Whatever part of the batch reached the file goes: no torn line may stay
            // in front of the next good one. A cut needs no free space.
            if self.file.set_len(self.len).is_err() {
                self.cut_pending = true;
            }
            return Err(e);
        }
        self.newline_first = false;
        self.len += text.len() as u64;
        self.lines += records.len();
        let deletes = records.iter().any(|r| matches!(r, Record::Deletion(_)));
        if deletes || self.lines >= self.compact_at {
            self.compact();
        }
        Ok(())
    }

    /// One write and one flush to the device.
    fn write_and_flush(&mut self, bytes: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        {
            self.appends += 1;
            if self.fail_writes {
                self.file.write_all(&bytes[..bytes.len() / 2])?;
                return Err(io::ErrorKind::StorageFull.into());
            }
        }
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }

    /// Rewrites the file with its newest `keep` records, less the deleted messages.
    /// Failing (a full disk), it leaves the file as it is and tries again after
    /// another `keep` lines.
    fn compact(&mut self) {
        match self.rewrite() {
            Ok(()) => {
                if self.compact_failing {
                    crate::info!("history file compacted again");
                }
                self.compact_failing = false;
                self.compact_at = (self.lines + self.keep).max(2 * self.keep);
            }
            Err(e) => {
                let _ = fs::remove_file(self.path.with_file_name(TMP_NAME));
                if !self.compact_failing {
                    crate::warn!(
                        "cannot compact {}: {e}; it grows until compaction can write",
                        self.path.display()
                    );
                }
                self.compact_failing = true;
                self.compact_at = self.lines + self.keep;
            }
        }
    }

    fn rewrite(&mut self) -> io::Result<()> {
        let loaded = load(&fs::read(&self.path)?, self.keep);
        let mut text = String::new();
        for r in &loaded.records {
            text.push_str(&r.to_json());
            text.push('\n');
        }
        let tmp = self.path.with_file_name(TMP_NAME);
        let mut out = File::create(&tmp)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        drop(out);
        fs::rename(&tmp, &self.path)?;
        // The rename itself must reach the device before the old lines are gone
        // for good.
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.len = text.len() as u64;
        self.lines = loaded.records.len();
        self.newline_first = false;
        self.cut_pending = false;
        Ok(())
    }
}

/// "3, 51, 77 and 4 more".
fn listed(numbers: &[usize]) -> String {
    let shown: Vec<String> = numbers
        .iter()
        .take(LINES_LISTED)
        .map(usize::to_string)
        .collect();
    let mut text = shown.join(", ");
    if numbers.len() > LINES_LISTED {
        text.push_str(&format!(" and {} more", numbers.len() - LINES_LISTED));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::message::{Deletion, Message};

    fn msg(epoch: u64, n: u64) -> Record {
        Record::Message(Message {
            id: format!("{epoch}-{n}"),
            name: "a".into(),
            text: format!("m{n}"),
            time: n,
            by_mod: false,
            cid: None,
            files: Vec::new(),
            device: None,
            written: None,
            reply: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        })
    }

    fn deletion(epoch: u64, n: u64, of: u64) -> Record {
        Record::Deletion(Deletion {
            id: format!("{epoch}-{n}"),
            delete: format!("{epoch}-{of}"),
            own: false,
        })
    }

    fn lines(records: &[Record]) -> Vec<u8> {
        records
            .iter()
            .flat_map(|r| (r.to_json() + "\n").into_bytes())
            .collect()
    }

    fn ids(records: &[Record]) -> Vec<&str> {
        records.iter().map(Record::id).collect()
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("lanchat-store-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }

        fn history(&self) -> PathBuf {
            self.0.join(FILE_NAME)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn keeps_the_newest() {
        let all: Vec<Record> = (1..=5).map(|n| msg(9, n)).collect();
        assert_eq!(ids(&load(&lines(&all), 3).records), ["9-3", "9-4", "9-5"]);
        assert_eq!(load(&lines(&all), 10).records.len(), 5);
    }

    #[test]
    fn a_damaged_line_costs_only_itself_and_is_reported() {
        let all: Vec<Record> = (1..=100).map(|n| msg(9, n)).collect();
        let mut text: Vec<Vec<u8>> = all.iter().map(|m| m.to_json().into_bytes()).collect();
        // A flipped bit, a line from elsewhere, a duplicate, a stray blank line.
        text[50][7] ^= 0x40;
        text[20] = msg(3, 7).to_json().into_bytes();
        text.insert(70, all[69].to_json().into_bytes());
        text.insert(10, Vec::new());
        let bytes = text.join(&b'\n');
        let loaded = load(&bytes, 1000);
        assert_eq!(loaded.skipped, [52]);
        assert_eq!(
            loaded.records.len(),
            99,
            "100, less the damaged line 51, less 21, plus 3-7"
        );
        // The stray line's epoch goes first; the file's own goes on.
        assert_eq!(loaded.records[0].id(), "3-7");
        assert_eq!(loaded.records[1].id(), "9-1");
        assert_eq!(loaded.records.last().unwrap().id(), "9-100");
        let ns: Vec<&str> = loaded.records.iter().map(Record::id).collect();
        assert!(!ns.contains(&"9-51") && !ns.contains(&"9-21"));
        let mut sorted = ns.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), ns.len(), "each id once");
    }

    #[test]
    fn ids_come_out_in_order_whatever_the_order_of_the_lines() {
        let bytes = lines(&[msg(9, 3), msg(9, 1), msg(9, 2), msg(9, 1)]);
        assert_eq!(ids(&load(&bytes, 10).records), ["9-1", "9-2", "9-3"]);
    }

    #[test]
    fn every_damaged_line_of_a_file_is_skipped_alone() {
        // Each line in turn cut at each length, as a power cut or a bad block would.
        let all: Vec<Record> = (1..=6).map(|n| msg(4, n)).collect();
        for damaged in 0..all.len() {
            let json = all[damaged].to_json();
            for cut in 0..json.len() {
                let mut text: Vec<String> = all.iter().map(Record::to_json).collect();
                text[damaged] = json[..cut].to_string();
                let loaded = load(text.join("\n").as_bytes(), 100);
                assert_eq!(loaded.records.len(), 5, "line {damaged} cut at {cut}");
                if cut > 0 {
                    assert_eq!(loaded.skipped, [damaged + 1]);
                }
            }
        }
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_appends_go_on() {
        let dir = TempDir::new("torn");
        let (mut store, loaded) = Store::open(&dir.0, 3).unwrap();
        assert!(loaded.is_empty());
        store.append(&[msg(4, 1), msg(4, 2)]).unwrap();
        for n in 3..=10 {
            store.append(&[msg(4, n)]).unwrap();
        }
        let on_disk = fs::read_to_string(dir.history()).unwrap();
        assert!(on_disk.lines().count() <= 6, "compacted: {on_disk}");
        let mut f = OpenOptions::new().append(true).open(dir.history()).unwrap();
        f.write_all(b"{\"id\":\"4-11\"").unwrap();
        drop((store, f));
        let (mut store, loaded) = Store::open(&dir.0, 3).unwrap();
        assert_eq!(ids(&loaded), ["4-8", "4-9", "4-10"]);
        store.append(&[msg(4, 11)]).unwrap();
        let (_, loaded) = Store::open(&dir.0, 3).unwrap();
        assert_eq!(ids(&loaded), ["4-9", "4-10", "4-11"]);
        let text = fs::read_to_string(dir.history()).unwrap();
        assert!(
            text.lines().all(|l| l.starts_with('{') && l.ends_with('}')),
            "{text}"
        );
    }

    #[test]
    fn opening_never_drops_a_message_it_can_read() {
        let dir = TempDir::new("damaged");
        fs::create_dir_all(&dir.0).unwrap();
        let all: Vec<Record> = (1..=100).map(|n| msg(9, n)).collect();
        let mut text: Vec<String> = all.iter().map(Record::to_json).collect();
        text[50] = "{\"id\":\"9-51\",\"na\u{1}me".into();
        fs::write(dir.history(), text.join("\n") + "\n").unwrap();
        let (store, loaded) = Store::open(&dir.0, 1000).unwrap();
        assert_eq!(loaded.len(), 99);
        drop(store);
        let again = fs::read_to_string(dir.history()).unwrap();
        assert_eq!(again.lines().count(), 100, "the file is left as it was");
        let (_, loaded) = Store::open(&dir.0, 1000).unwrap();
        assert_eq!(loaded.len(), 99);
    }

    #[test]
    fn a_file_with_no_message_is_moved_aside_not_deleted() {
        let dir = TempDir::new("unreadable");
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(dir.history(), b"\x00\x01 this is not a history file\n").unwrap();
        fs::write(dir.0.join(TMP_NAME), b"stale").unwrap();
        let (_, loaded) = Store::open(&dir.0, 10).unwrap();
        assert!(loaded.is_empty());
        let names: Vec<String> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let aside = names
            .iter()
            .find(|n| n.starts_with("history.jsonl.unreadable-"))
            .expect("moved aside");
        assert_eq!(
            fs::read(dir.0.join(aside)).unwrap(),
            b"\x00\x01 this is not a history file\n"
        );
        assert!(
            !names.contains(&TMP_NAME.to_string()),
            "stale temporary file removed"
        );
    }

    #[test]
    fn a_message_without_its_line_break_is_kept_and_the_next_starts_a_line() {
        let dir = TempDir::new("no-newline");
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(dir.history(), msg(2, 1).to_json()).unwrap();
        let (mut store, loaded) = Store::open(&dir.0, 10).unwrap();
        assert_eq!(ids(&loaded), ["2-1"]);
        store.append(&[msg(2, 2)]).unwrap();
        let (_, loaded) = Store::open(&dir.0, 10).unwrap();
        assert_eq!(ids(&loaded), ["2-1", "2-2"]);
    }

    #[test]
    fn a_deleted_message_never_loads_and_its_deletion_does() {
        let bytes = lines(&[msg(4, 1), msg(4, 2), deletion(4, 3, 1), msg(4, 4)]);
        assert_eq!(ids(&load(&bytes, 10).records), ["4-2", "4-3", "4-4"]);
        // Whatever the order of the lines.
        let bytes = lines(&[deletion(4, 3, 1), msg(4, 2), msg(4, 1)]);
        assert_eq!(ids(&load(&bytes, 10).records), ["4-2", "4-3"]);
        // A deletion of a message of another epoch removes that one only.
        let bytes = lines(&[msg(3, 1), msg(4, 1), deletion(4, 2, 1)]);
        assert_eq!(ids(&load(&bytes, 10).records), ["3-1", "4-2"]);
    }

    fn change(epoch: u64, n: u64, of: u64, kind: &str) -> Record {
        let (id, target) = (format!("{epoch}-{n}"), format!("{epoch}-{of}"));
        match kind {
            "own" => Record::Deletion(Deletion {
                id,
                delete: target,
                own: true,
            }),
            "edit" => Record::Edit(crate::message::Edit {
                id,
                edit: target,
                text: "secret, edited".into(),
                time: n,
            }),
            _ => Record::Reaction(crate::message::Reaction {
                id,
                react: target,
                emoji: crate::message::REACTIONS[0].into(),
                device: kind.into(),
                name: "a".into(),
                on: true,
            }),
        }
    }

    #[test]
    fn a_message_taken_back_loads_empty_and_nothing_changes_it_after() {
        let mut reply = msg(4, 3);
        if let Record::Message(m) = &mut reply {
            m.reply = Some(crate::message::Quote {
                id: "4-1".into(),
                name: "a".into(),
                text: "m1".into(),
                photo: None,
                gone: false,
                missing: false,
            });
        }
        let bytes = lines(&[
            msg(4, 1),
            change(4, 2, 1, "edit"),
            reply,
            change(4, 4, 1, "dev"),
            change(4, 5, 1, "own"),
            change(4, 6, 3, "dev"),
        ]);
        let loaded = load(&bytes, 10).records;
        // Its edit and its reaction are gone; the deletion and the reply stay.
        assert_eq!(ids(&loaded), ["4-1", "4-3", "4-5", "4-6"]);
        let Record::Message(taken) = &loaded[0] else {
            panic!("{loaded:?}")
        };
        assert!(taken.deleted && taken.text.is_empty());
        let Record::Message(reply) = &loaded[1] else {
            panic!("{loaded:?}")
        };
        let quote = reply.reply.as_ref().unwrap();
        assert!(quote.gone && quote.text.is_empty());
        assert!(!String::from_utf8_lossy(&lines(&loaded)).contains("m1"));
    }

    #[test]
    fn changes_ride_with_the_messages_kept_and_do_not_push_them_out() {
        let mut records = vec![msg(4, 1), msg(4, 2)];
        for n in 3..=6 {
            records.push(change(4, n, 2, &format!("d{n}")));
        }
        records.push(msg(4, 7));
        let bytes = lines(&records);
        // Two messages kept: the changes between them stay too.
        assert_eq!(
            ids(&load(&bytes, 2).records),
            ["4-2", "4-3", "4-4", "4-5", "4-6", "4-7"]
        );
        // But no more than four records per message kept.
        assert_eq!(ids(&load(&bytes, 1).records), ["4-4", "4-5", "4-6", "4-7"]);
    }

    #[test]
    fn a_deleted_text_is_gone_from_the_file_once_the_deletion_is_written() {
        let dir = TempDir::new("deleted");
        let (mut store, _) = Store::open(&dir.0, 100).unwrap();
        let secret = Record::Message(Message {
            id: "4-2".into(),
            name: "a".into(),
            text: "my phone number".into(),
            time: 2,
            by_mod: false,
            cid: None,
            files: Vec::new(),
            device: None,
            written: None,
            reply: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        });
        store.append(&[msg(4, 1), secret, msg(4, 3)]).unwrap();
        assert!(fs::read_to_string(dir.history()).unwrap().contains("phone"));
        store.append(&[deletion(4, 4, 2)]).unwrap();
        let text = fs::read_to_string(dir.history()).unwrap();
        assert!(!text.contains("phone"), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
        store.append(&[msg(4, 5)]).unwrap();
        drop(store);
        let (_, loaded) = Store::open(&dir.0, 100).unwrap();
        assert_eq!(ids(&loaded), ["4-1", "4-3", "4-4", "4-5"]);
    }

    #[test]
    fn skipped_lines_are_listed_briefly() {
        assert_eq!(listed(&[3, 51]), "3, 51");
        let many: Vec<usize> = (1..=14).collect();
        assert_eq!(listed(&many), "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 4 more");
    }
}
