//! Any history file (torn, edited, corrupt): loading never panics; it yields at most
//! `keep` records, each id once, in id order within an epoch, each epoch in one run;
//! every line is either read or reported, no record that reads is dropped unless
//! `keep` cut it, and no message a deletion names is ever loaded.
#![no_main]

use std::collections::HashSet;

use lanchat::message::{Id, Record};
use lanchat::store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], u8)| {
    let (bytes, keep) = input;
    let keep = keep as usize;
    let loaded = store::load(bytes, keep);
    assert!(loaded.records.len() <= keep);
    assert_eq!(loaded.records.len(), loaded.valid.min(keep));
    assert!(loaded.skipped.len() <= loaded.lines);
    let ids: Vec<Id> = loaded
        .records
        .iter()
        .map(|r| r.id().parse().expect("an id of the form epoch-n"))
        .collect();
    // Every deletion in the whole file, not only in what `keep` left.
    let deleted: HashSet<Id> = store::load(bytes, usize::MAX)
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Deletion(d) => d.delete.parse().ok(),
            Record::Message(_) => None,
        })
        .collect();
    for (r, id) in loaded.records.iter().zip(&ids) {
        if let Record::Message(_) = r {
            assert!(!deleted.contains(id), "a deleted message loaded");
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
