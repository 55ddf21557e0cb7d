//! Finding messages by words: a query and a text are compared folded, so that case
//! and accents do not count ("WiFi" finds "wifi", "cafe" finds "Café"). Pure.
//!
//! Folding lowercases (Unicode's full mapping, in `std`) and takes the accents off
//! the Latin letters of Western and Central European languages, precomposed or
//! followed by combining marks. A full Unicode decomposition table would weigh more
//! than the rest of the binary's text handling; what it adds (Vietnamese stacked
//! accents, Greek tonos and the like) is written down in docs/http.md.

use crate::message::Message;

/// Words in a query at most: more narrow nothing a person types.
pub const MAX_WORDS: usize = 8;

/// The words of a query, folded; empty when it has none.
pub fn words(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .map(fold)
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .collect()
}

/// Whether the message's text (or a file's name) holds every one of `words`.
pub fn matches(words: &[String], message: &Message) -> bool {
    if words.is_empty() || message.deleted {
        return false;
    }
    let mut text = fold(&message.text);
    for f in &message.files {
        text.push('\n');
        text.push_str(&fold(&f.name));
    }
    words.iter().all(|w| text.contains(w.as_str()))
}

/// `text` lowercased, without accents.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        // Combining marks (U+0300 to U+036F): the accents of a decomposed letter.
        if ('\u{300}'..='\u{36f}').contains(&c) {
            continue;
        }
        match base(c) {
            Some(b) => out.push_str(b),
            None => out.push(c),
        }
    }
    out
}

/// The letter without its accents, for lowercase Latin-1 (from U+00DF) and Latin
/// Extended-A; `None` for any other character, which stays as it is.
fn base(c: char) -> Option<&'static str> {
    const LATIN1: [&str; 33] = [
        "ss", "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", "d",
        "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y",
    ];
    // U+0100 to U+017F; only lower case reaches here, but the upper case of each
    // pair is listed too, so that a place is its code point.
    const EXTENDED_A: [&str; 128] = [
        "a", "a", "a", "a", "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d", "d", "d",
        "e", "e", "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g", "g", "g", "g", "g",
        "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i", "i", "i", "ij", "ij", "j", "j",
        "k", "k", "k", "l", "l", "l", "l", "l", "l", "l", "l", "l", "l", "n", "n", "n", "n", "n",
        "n", "n", "n", "n", "o", "o", "o", "o", "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r",
        "s", "s", "s", "s", "s", "s", "s", "s", "t", "t", "t", "t", "t", "t", "u", "u", "u", "u",
        "u", "u", "u", "u", "u", "u", "u", "u", "w", "w", "y", "y", "y", "z", "z", "z", "z", "z",
        "z", "s",
    ];
    let code = c as u32;
    match code {
        0xdf..=0xff if code != 0xf7 => {
            let b = LATIN1[(code - 0xdf) as usize];
            (!b.is_empty()).then_some(b)
        }
        0x100..=0x17f => Some(EXTENDED_A[(code - 0x100) as usize]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_accents_do_not_count() {
        assert_eq!(fold("Wi-Fi CAFÉ Ünïcödé"), "wi-fi cafe unicode");
        assert_eq!(
            fold("Straße Łódź Čeština Œuvre"),
            "strasse lodz cestina oeuvre"
        );
        // Decomposed: the letter and its combining accent.
        assert_eq!(fold("Cafe\u{301}"), "cafe");
        assert_eq!(fold("日本語 ×÷"), "日本語 ×÷");
    }

    #[test]
    fn every_latin_letter_folds_to_plain_ascii_letters() {
        for code in (0xc0..=0x17f_u32).filter(|c| *c != 0xd7 && *c != 0xf7) {
            let c = char::from_u32(code).unwrap();
            let folded = fold(&c.to_string());
            assert!(
                !folded.is_empty() && folded.chars().all(|f| f.is_ascii_lowercase()),
                "{c} U+{code:04X} -> {folded}"
            );
        }
    }

    #[test]
    fn every_word_must_be_in_the_text() {
        let m = Message {
            text: "The Wi-Fi password is «Tür-7»".into(),
            ..Message::default()
        };
        assert!(matches(&words("wi-fi PASSWORD"), &m));
        assert!(matches(&words("tur"), &m));
        assert!(!matches(&words("wifi password"), &m));
        assert!(!matches(&words("   "), &m), "no words find nothing");
    }
}
