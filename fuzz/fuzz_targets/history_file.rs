//! Any history file (torn, edited, corrupt): loading never panics and yields at most
//! `keep` messages with consecutive ids of one epoch, oldest first.
#![no_main]

use lanchat::store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], u8)| {
    let (bytes, keep) = input;
    let keep = keep as usize;
    let loaded = store::load(bytes, keep);
    assert!(loaded.len() <= keep);
    let ids: Vec<(u64, u64)> = loaded
        .iter()
        .map(|m| {
            let (e, n) = m.id.split_once('-').expect("an id of the form epoch-n");
            (e.parse().expect("epoch"), n.parse().expect("n"))
        })
        .collect();
    for pair in ids.windows(2) {
        assert_eq!(pair[0].0, pair[1].0, "one epoch");
        assert_eq!(pair[0].1 + 1, pair[1].1, "consecutive");
    }
});
