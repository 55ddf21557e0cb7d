//! History on disk, for `--data-dir`: `history.jsonl` holds one message as JSON per
//! line, appended as each is published, so that after a restart the history ring is
//! loaded again and ids go on from the last one. A phone that reconnects with its
//! last id after the Pi rebooted then loses nothing.
//!
//! Invariants:
//! - What [`Store::open`] returns is a run of consecutive ids of one epoch, oldest
//!   first, at most `keep` long: what the registry's history ring requires. Lines
//!   that do not parse (a line torn by a power cut) are skipped, never fatal.
//! - The file is rewritten at open (dropping torn lines, so appends start on a clean
//!   line) and whenever it grows to twice `keep` lines, so it stays bounded.
//! - Only the registry task calls [`Store::append`]; there is no other writer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::message::Message;

/// The file inside the data directory.
pub const FILE_NAME: &str = "history.jsonl";

/// An open history file.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    file: File,
    lines: usize,
    keep: usize,
}

impl Store {
    /// Opens (creating) `dir/history.jsonl` and returns the messages to start with.
    pub fn open(dir: &Path, keep: usize) -> io::Result<(Store, Vec<Message>)> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let messages = load(&bytes, keep);
        rewrite(&path, &messages)?;
        let file = OpenOptions::new().append(true).open(&path)?;
        let store = Store {
            path,
            file,
            lines: messages.len(),
            keep,
        };
        Ok((store, messages))
    }

    /// Appends one message as one line (one `write`, so a crash tears at most the
    /// last line), compacting the file when it has grown to twice `keep`.
    pub fn append(&mut self, message: &Message) -> io::Result<()> {
        let mut line = message.to_json();
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.lines += 1;
        if self.lines >= 2 * self.keep.max(1) {
            self.compact()?;
        }
        Ok(())
    }

    fn compact(&mut self) -> io::Result<()> {
        let messages = load(&fs::read(&self.path)?, self.keep);
        rewrite(&self.path, &messages)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines = messages.len();
        Ok(())
    }
}

/// The newest run of consecutive ids of one epoch, at most `keep`, oldest first.
pub fn load(bytes: &[u8], keep: usize) -> Vec<Message> {
    let parsed: Vec<(u64, u64, Message)> = bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Message>(line).ok())
        .filter_map(|m| {
            let (epoch, n) = m.id.split_once('-')?;
            let n: u64 = n.parse().ok()?;
            // An edited or corrupt file must not make the next id overflow.
            (n < u64::MAX / 2).then_some((epoch.parse().ok()?, n, m))
        })
        .collect();
    let mut run: Vec<Message> = Vec::new();
    let mut next: Option<(u64, u64)> = None;
    for (epoch, n, message) in parsed.into_iter().rev() {
        if run.len() == keep {
            break;
        }
        match next {
            Some((e, want)) if e != epoch || n.checked_add(1) != Some(want) => break,
            _ => {}
        }
        next = Some((epoch, n));
        run.push(message);
    }
    run.reverse();
    run
}

/// Replaces the file with `messages`, through a temporary file and a rename so that a
/// crash leaves either the old file or the new one.
fn rewrite(path: &Path, messages: &[Message]) -> io::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut text = String::new();
    for m in messages {
        text.push_str(&m.to_json());
        text.push('\n');
    }
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(epoch: u64, n: u64) -> Message {
        Message {
            id: format!("{epoch}-{n}"),
            name: "a".into(),
            text: format!("m{n}"),
            time: n,
        }
    }

    fn lines(messages: &[Message]) -> Vec<u8> {
        messages
            .iter()
            .flat_map(|m| (m.to_json() + "\n").into_bytes())
            .collect()
    }

    fn ids(messages: &[Message]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn keeps_the_newest_consecutive_run() {
        let all: Vec<Message> = (1..=5).map(|n| msg(9, n)).collect();
        assert_eq!(ids(&load(&lines(&all), 3)), ["9-3", "9-4", "9-5"]);
        assert_eq!(ids(&load(&lines(&all), 10)).len(), 5);
    }

    #[test]
    fn a_torn_last_line_and_garbage_are_skipped() {
        let mut bytes = lines(&[msg(9, 1), msg(9, 2)]);
        bytes.extend_from_slice(b"{\"id\":\"9-3\",\"name\":\"a\",\"te");
        assert_eq!(ids(&load(&bytes, 10)), ["9-1", "9-2"]);
        let mut bytes = b"\xff\xfe not json\n".to_vec();
        bytes.extend(lines(&[msg(9, 1)]));
        assert_eq!(ids(&load(&bytes, 10)), ["9-1"]);
    }

    #[test]
    fn a_gap_or_an_older_epoch_ends_the_run() {
        let bytes = lines(&[msg(8, 7), msg(9, 1), msg(9, 2), msg(9, 4), msg(9, 5)]);
        assert_eq!(ids(&load(&bytes, 10)), ["9-4", "9-5"]);
    }

    #[test]
    fn appends_survive_reopening_and_the_file_stays_bounded() {
        let dir = std::env::temp_dir().join(format!("lanchat-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (mut store, loaded) = Store::open(&dir, 3).unwrap();
        assert!(loaded.is_empty());
        for n in 1..=10 {
            store.append(&msg(4, n)).unwrap();
        }
        let on_disk = fs::read_to_string(dir.join(FILE_NAME)).unwrap();
        assert!(on_disk.lines().count() <= 6, "{on_disk}");
        // A torn line at the end, as after a power cut.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(FILE_NAME))
            .unwrap();
        f.write_all(b"{\"id\":\"4-11\"").unwrap();
        drop((store, f));
        let (mut store, loaded) = Store::open(&dir, 3).unwrap();
        assert_eq!(ids(&loaded), ["4-8", "4-9", "4-10"]);
        store.append(&msg(4, 11)).unwrap();
        let (_, loaded) = Store::open(&dir, 3).unwrap();
        assert_eq!(ids(&loaded), ["4-9", "4-10", "4-11"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
