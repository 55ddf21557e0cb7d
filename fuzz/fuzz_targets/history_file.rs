//! Any history file (torn, edited, corrupt): loading never panics; it yields at most
//! `keep` messages, each id once, in id order within an epoch, each epoch in one run;
//! every line is either read or reported, and no message that reads is dropped
//! unless `keep` cut it.
#![no_main]

use std::collections::HashSet;

use lanchat::message::Id;
use lanchat::store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], u8)| {
    let (bytes, keep) = input;
    let keep = keep as usize;
    let loaded = store::load(bytes, keep);
    assert!(loaded.messages.len() <= keep);
    assert_eq!(loaded.messages.len(), loaded.valid.min(keep));
    assert!(loaded.skipped.len() <= loaded.lines);
    let ids: Vec<Id> = loaded
        .messages
        .iter()
        .map(|m| m.parsed_id().expect("an id of the form epoch-n"))
        .collect();
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
