//! Any body a client can post: never a panic, and what is accepted is a valid message.
#![no_main]

use lanchat::message::{Draft, MAX_NAME_CHARS, MAX_TEXT_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(draft) = Draft::from_form(body) {
        assert!(!draft.text.trim().is_empty());
        assert!(draft.text.chars().count() <= MAX_TEXT_CHARS);
        assert!(!draft.text.contains('\r'));
        assert!(draft
            .text
            .chars()
            .all(|c| c == '\n' || c == '\t' || !c.is_control()));
        assert!(!draft.name.is_empty());
        assert!(draft.name.chars().count() <= MAX_NAME_CHARS);
        assert!(!draft.name.chars().any(char::is_control));
    }
});
