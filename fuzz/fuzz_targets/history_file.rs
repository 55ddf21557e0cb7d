//! Any history file (torn, edited, corrupt, and lines of every record kind in any
//! order): loading never panics; it yields at most `keep` messages and four records
//! per message, each id once, in id order within an epoch, each epoch in one run;
//! every line is either read or reported; no message a moderator's deletion names
//! is loaded, one its sender deleted loads empty, nothing loads that changes a
//! deleted message, and no reply quotes one.
#![no_main]

use std::collections::{HashMap, HashSet};

use lanchat::message::{Id, Record};
use lanchat::store;
use libfuzzer_sys::fuzz_target;

/// A line of a given kind from three bytes, so that the fuzzer reaches every
/// record kind and every order of them, not only lines that fail to parse.
fn line(kind: u8, n: u8, of: u8) -> String {
    let (id, target) = (format!("7-{n}"), format!("7-{of}"));
    match kind % 7 {
        0 => format!(
            r#"{{"id":"{id}","name":"a","text":"t{n}","time":1,"device":"d{}"}}"#,
            of % 3
        ),
        1 => format!(
            r#"{{"id":"{id}","name":"a","text":"r{n}","time":1,"reply":{{"id":"{target}","text":"t{of}"}}}}"#
        ),
        2 => format!(r#"{{"id":"{id}","delete":"{target}"}}"#),
        3 => format!(r#"{{"id":"{id}","delete":"{target}","own":true}}"#),
        4 => format!(
            r#"{{"id":"{id}","react":"{target}","emoji":"👍","device":"d{}","name":"a","on":{}}}"#,
            n % 3,
            n % 2 == 0
        ),
        5 => format!(r#"{{"id":"{id}","edit":"{target}","text":"e{n}","time":2}}"#),
        _ => format!(
            r#"{{"id":"{id}","react":"{target}","emoji":"x","device":"d","name":"a","on":true}}"#
        ),
    }
}

fuzz_target!(|input: (&[u8], u8, Vec<(u8, u8, u8)>)| {
    let (raw, keep, ops) = input;
    let keep = keep as usize;
    let mut bytes = raw.to_vec();
    for (kind, n, of) in ops {
        bytes.push(b'\n');
        bytes.extend(line(kind, n, of).into_bytes());
    }
    let loaded = store::load(&bytes, keep);
    let messages = loaded
        .records
        .iter()
        .filter(|r| matches!(r, Record::Message(_)))
        .count();
    assert!(messages <= keep);
    assert!(loaded.records.len() <= keep.saturating_mul(4));
    assert!(loaded.records.len() <= loaded.valid);
    assert!(loaded.skipped.len() <= loaded.lines);
    let ids: Vec<Id> = loaded
        .records
        .iter()
        .map(|r| r.id().parse().expect("an id of the form epoch-n"))
        .collect();
    // Every deletion in the whole file, not only in what `keep` left: whether its
    // sender's (true) or the moderator's.
    let mut deleted: HashMap<Id, bool> = HashMap::new();
    for r in &store::load(&bytes, usize::MAX).records {
        if let Record::Deletion(d) = r {
            let id: Id = d.id.parse().expect("an id");
            // A deletion acts on a message before it.
            if let Some(target) = d
                .delete
                .parse::<Id>()
                .ok()
                .filter(|t| *t < id || t.epoch != id.epoch)
            {
                let own = deleted.get(&target).copied().unwrap_or(true) && d.own;
                deleted.insert(target, own);
            }
        }
    }
    let deleted_before: HashSet<Id> = deleted.keys().copied().collect();
    for (r, id) in loaded.records.iter().zip(&ids) {
        match r {
            Record::Message(m) => {
                if let Some(own) = deleted.get(id) {
                    assert!(*own, "a message the moderator deleted loaded");
                    assert!(m.deleted && m.text.is_empty() && m.reactions.is_empty());
                }
                if let Some(q) = &m.reply {
                    if q.id
                        .parse()
                        .is_ok_and(|to: Id| deleted_before.contains(&to))
                    {
                        assert!(q.text.is_empty(), "a reply quotes a deleted message");
                    }
                }
            }
            Record::Reaction(_) | Record::Edit(_) => {
                let target: Option<Id> = r.target().and_then(|t| t.parse().ok());
                assert!(
                    !target.is_some_and(|t| deleted_before.contains(&t)),
                    "a change to a deleted message loaded"
                );
            }
            Record::Deletion(_) => {}
        }
    }
    let mut epochs_done = HashSet::new();
    for pair in ids.windows(2) {
        if pair[0].epoch == pair[1].epoch {
            assert!(pair[0].n < pair[1].n, "in order, each once");
        } else {
            assert!(epochs_done.insert(pair[0].epoch), "one run per epoch");
        }
    }
    if let Some(last) = ids.last() {
        assert!(!epochs_done.contains(&last.epoch), "one run per epoch");
    }
});
