//! Whatever text goes into an event comes out of a spec parser as exactly that one
//! event, with line breaks (CR, LF, CRLF) as LF, however the bytes are split.
#![no_main]

use lanchat::sse::{self, parse::Parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, u8)| {
    let (text, split) = input;
    let bytes = sse::event(Some("1-1"), None, &text);
    let wire = String::from_utf8(bytes).expect("the encoder writes UTF-8");
    // Feed it in two pieces at an arbitrary char boundary, as TCP may deliver it.
    let mut at = (split as usize * wire.len()) / 256;
    while !wire.is_char_boundary(at) {
        at -= 1;
    }
    let mut parser = Parser::default();
    let mut events = parser.feed(&wire[..at]);
    events.extend(parser.feed(&wire[at..]));
    assert_eq!(events.len(), 1, "one event for {text:?}: {wire:?}");
    let want = text.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(events[0].data, want);
    assert_eq!(events[0].event, "message");
    assert_eq!(events[0].id, "1-1");
});
