//! The chat message: what a client may post ([`Draft`], decoded from a form body and
//! validated here), what everyone receives ([`Message`], stored and sent as JSON),
//! and the changes made to one later ([`record`]: a deletion, a reaction, an edit).
//! Each is a [`Record`]: a line of the history file, an event in the one id sequence.
//!
//! Invariant: a `Draft` that exists is valid. Text is non-blank, at most
//! [`MAX_TEXT_CHARS`] characters and free of control characters other than tab and
//! line breaks; a name is one line of at most [`MAX_NAME_CHARS`]. Line breaks in the
//! text are normalised to LF, so every client sees the same text.

use serde::{Deserialize, Serialize};

// Each limit is written once, as a macro, so that the reasons below can name it in a
// `&'static str`.
macro_rules! max_text_chars {
    () => {
        2000
    };
}
macro_rules! max_name_chars {
    () => {
        40
    };
}

macro_rules! max_cid_chars {
    () => {
        64
    };
}

/// Longest message text, in characters: a chat line, not a document.
pub const MAX_TEXT_CHARS: usize = max_text_chars!();
/// Longest nickname, in characters: it must fit beside a message on a phone.
pub const MAX_NAME_CHARS: usize = max_name_chars!();
/// Longest `cid`: room for a UUID or 32 random bytes in hex, and no more.
pub const MAX_CID_CHARS: usize = max_cid_chars!();
/// The name shown when a poster gives none.
pub const ANONYMOUS: &str = "anonymous";

/// The largest form body a valid message can take: every character of the text and
/// the name at its worst, four bytes of UTF-8 each percent-encoded (`%F0%9F%98%80`,
/// twelve bytes), and room for the field names and a few small fields beside them.
/// Limits are counted in characters (Unicode scalar values), so that a message in
/// any script that is within them is never refused for its bytes.
pub const MAX_FORM_BYTES: usize = (MAX_TEXT_CHARS + MAX_NAME_CHARS) * 12 + 512;

/// The fields of a post; others are read past.
pub const FIELDS: &[&str] = &[
    "message", "name", "cid", "sent", "written", "device", "reply",
];

/// Above this a `sent` time is not taken (the year 2500): no real clock reads it.
const MAX_SENT_MS: u64 = 16_725_225_600_000;

/// A message id, `<epoch>-<n>`: the epoch names the run of the server that began
/// the history, `n` counts its messages from 1. Ordered by epoch, then `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id {
    /// Fixed when a server starts with no history; kept while history goes on.
    pub epoch: u64,
    /// One more for each message.
    pub n: u64,
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.epoch, self.n)
    }
}

impl std::str::FromStr for Id {
    type Err = ();

    /// Digits, a `-`, digits; nothing else (no sign, no space).
    fn from_str(s: &str) -> Result<Id, ()> {
        let (epoch, n) = s.split_once('-').ok_or(())?;
        let digits = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            t.parse::<u64>().map_err(|_| ())
        };
        Ok(Id {
            epoch: digits(epoch)?,
            n: digits(n)?,
        })
    }
}

/// A message as stored in history and sent to every client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `<epoch>-<n>`: the SSE event id; `n` increases by one per message.
    pub id: String,
    /// The poster's nickname.
    pub name: String,
    /// The text, line breaks as LF.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub time: u64,
    /// Posted by a moderator (`"mod": true`, left out otherwise), so that anyone can
    /// tell the host from someone who took the host's name.
    #[serde(rename = "mod", default, skip_serializing_if = "is_false")]
    pub by_mod: bool,
    /// The id the poster's page gave it (`cid`), so that a post sent again after a
    /// lost answer is recognised and a page can match its own message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// Files (photos) the message carries; its text is then their caption.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::media::FileInfo>,
    /// The poster's device tag: derived by the server from a secret only that
    /// browser holds (see `keys::Keys::device_tag`), so that the page can tell two
    /// people of one name apart and no one can post under another's tag. Not an
    /// account: a browser that forgets its secret is a new device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// When it was written, in server time, for a message that reached the server
    /// more than [`LATE`] after it was typed (it waited in the page's outbox); `time`
    /// is then when it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<u64>,
    /// The message it answers, as it read when this one was posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Quote>,
    /// When its sender last changed its text (server time); the text is then the
    /// new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<u64>,
    /// Taken back by its sender: its place stays, with no text and no files.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// Its reactions, each kind with the devices that gave it, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reactions>,
}

/// What a reply shows of the message it answers: enough to recognise it, not all
/// of it. Emptied (`gone`) when that message is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The id of the message answered.
    pub id: String,
    /// Its sender's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The start of its text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// The id of its first photo, for a thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
    /// The message answered was deleted: nothing of it is shown.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gone: bool,
    /// The message answered was not in history when the reply was posted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub missing: bool,
}

/// One kind of reaction on a message, with who gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reactions {
    /// One of [`REACTIONS`].
    pub emoji: String,
    /// The devices that gave it, first first.
    pub by: Vec<Reactor>,
}

/// A device that reacted, with the name it used then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reactor {
    /// Its device tag.
    pub device: String,
    /// Its name.
    pub name: String,
}

/// The reactions a message can get: a small fixed set, as the chat apps people know
/// have.
pub const REACTIONS: &[&str] = &[
    "\u{1f44d}",
    "\u{2764}\u{fe0f}",
    "\u{1f602}",
    "\u{1f62e}",
    "\u{1f622}",
    "\u{1f64f}",
];

/// Devices per reaction per message: a room's worth. It bounds what one message's
/// event weighs (every new page is sent it), whatever a script mints in devices.
pub const MAX_REACTORS: usize = 100;

/// How long after it was sent a message may be edited by its sender.
pub const EDIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Records (messages and the changes to them) kept per message kept: changes do not
/// push messages out of history, and a flood of them cannot grow it without end.
pub const RECORDS_PER_MESSAGE: usize = 4;

/// Characters of the message answered that a reply carries.
pub const QUOTE_CHARS: usize = 120;

/// A message delivered later than this after it was written shows both times.
pub const LATE: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest a message may have waited in a page's outbox, as far as its written
/// time goes: older claims are taken as this.
pub const MAX_WAITED: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

mod record;

pub use record::{Deletion, Edit, Reaction, Record};

fn is_false(b: &bool) -> bool {
    !*b
}

impl Message {
    /// Taken back by its sender: nothing of what it said stays.
    pub fn take_back(&mut self) {
        self.deleted = true;
        self.text.clear();
        self.files.clear();
        self.reactions.clear();
        self.reply = None;
        self.edited = None;
    }

    /// A reply to a deleted message quotes nothing of it.
    pub fn unquote(&mut self) {
        if let Some(q) = &mut self.reply {
            *q = Quote {
                id: std::mem::take(&mut q.id),
                name: String::new(),
                text: String::new(),
                photo: None,
                gone: true,
                missing: false,
            };
        }
    }

    /// The id, parsed; `None` for one that is not of the form `<epoch>-<n>` (only a
    /// history file from elsewhere could hold such a message).
    pub fn parsed_id(&self) -> Option<Id> {
        self.id.parse().ok()
    }

    /// The message as JSON, the `data:` of its event and the body of a `201`.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A valid message that has not been given an id yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The nickname, or [`ANONYMOUS`].
    pub name: String,
    /// The text, with LF line breaks.
    pub text: String,
    /// Posted by a moderator: set by the route that checked the key, never by a form.
    pub by_mod: bool,
    /// What the poster's clock read when it sent the message (milliseconds since
    /// 1970; the `sent` field), for a server whose clock is wrong.
    pub sent: Option<u64>,
    /// The poster's own id for the message (the `cid` field).
    pub cid: Option<String>,
    /// Files stored with it; with any, the text may be empty (no caption).
    pub files: Vec<crate::media::FileInfo>,
    /// The device tag, set by the route from [`Draft::device_secret`]; never the
    /// secret.
    pub device: Option<String>,
    /// The `device` field as posted: the browser's own secret, which the route turns
    /// into the tag and which goes no further.
    pub device_secret: Option<String>,
    /// What the poster's clock read when the message was typed (the `written`
    /// field): with `sent`, how long it waited before it was sent.
    pub written: Option<u64>,
    /// The message it answers (the `reply` field).
    pub reply: Option<Id>,
}

/// Longest device secret: room for 32 random bytes in hex, and no more.
pub const MAX_DEVICE_CHARS: usize = 64;
/// Shortest device secret: 96 random bits in hex, as the page makes.
pub const MIN_DEVICE_CHARS: usize = 16;

/// Why a posted body is not a message; each reads as the reason in a `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// The body is not valid `application/x-www-form-urlencoded` UTF-8.
    NotUtf8,
    /// No `message` field, or only white space.
    Empty,
    /// More than [`MAX_TEXT_CHARS`].
    TooLong,
    /// More than [`MAX_NAME_CHARS`].
    NameTooLong,
    /// A control character (other than tab or a line break in the text).
    ControlCharacter,
    /// A `cid` that is not 1 to [`MAX_CID_CHARS`] letters, digits, `-` or `_`.
    BadCid,
    /// A `device` secret that is not 16 to 64 letters, digits, `-` or `_`.
    BadDevice,
    /// A `reply` that is not a message id.
    BadReply,
}

impl Invalid {
    /// The stable code a program reads (docs/http.md).
    pub fn code(self) -> &'static str {
        match self {
            Invalid::NotUtf8 => "not_utf8",
            Invalid::Empty => "message_empty",
            Invalid::TooLong => "message_too_long",
            Invalid::NameTooLong => "name_too_long",
            Invalid::ControlCharacter => "control_character",
            Invalid::BadCid => "bad_cid",
            Invalid::BadDevice => "bad_device",
            Invalid::BadReply => "bad_reply",
        }
    }

    /// A short reason for the person who sent it.
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::NotUtf8 => "the form data is not valid UTF-8",
            Invalid::Empty => "the message is empty",
            Invalid::TooLong => {
                concat!(
                    "the message is longer than ",
                    max_text_chars!(),
                    " characters"
                )
            }
            Invalid::NameTooLong => {
                concat!("the name is longer than ", max_name_chars!(), " characters")
            }
            Invalid::ControlCharacter => "the message contains a control character",
            Invalid::BadCid => concat!(
                "the cid must be 1 to ",
                max_cid_chars!(),
                " letters, digits, '-' or '_'"
            ),
            Invalid::BadDevice => "the device must be 16 to 64 letters, digits, '-' or '_'",
            Invalid::BadReply => "reply must be the id of a message, such as 1795560292000417-41",
        }
    }
}

impl Draft {
    /// Decodes and validates an `application/x-www-form-urlencoded` body with a
    /// `message` field and an optional `name` field. Unknown fields are ignored;
    /// of repeated fields the first counts.
    pub fn from_form(body: &[u8]) -> Result<Draft, Invalid> {
        Draft::from_fields(form(body, FIELDS)?, Vec::new())
    }

    /// Validates decoded fields (see [`FIELDS`]; others are ignored, of repeated ones
    /// the first counts), with the files stored for them. A `device` field is checked
    /// here and kept in [`Draft::device_secret`] until the route turns it into a tag.
    pub fn from_fields(
        fields: Vec<(String, String)>,
        files: Vec<crate::media::FileInfo>,
    ) -> Result<Draft, Invalid> {
        let mut text = None;
        let mut name = None;
        let mut sent = None;
        let mut written = None;
        let mut cid = None;
        let mut device = None;
        let mut reply = None;
        for (key, value) in fields {
            let slot = match key.as_str() {
                "message" => &mut text,
                "name" => &mut name,
                "sent" => &mut sent,
                "written" => &mut written,
                "cid" => &mut cid,
                "device" => &mut device,
                "reply" => &mut reply,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        let text = text.unwrap_or_default();
        // A photo needs no caption.
        let mut draft = Draft::validate(name.as_deref().unwrap_or(""), &text, !files.is_empty())?;
        draft.files = files;
        // Only helps (a wrong server clock, a late message's written time): a value
        // that is not a time is left out.
        let time = |v: Option<String>| {
            v.and_then(|s| s.parse::<u64>().ok())
                .filter(|ms| *ms < MAX_SENT_MS)
        };
        draft.sent = time(sent);
        draft.written = time(written);
        if let Some(reply) = reply {
            draft.reply = Some(reply.parse().map_err(|_| Invalid::BadReply)?);
        }
        if let Some(device) = device {
            device_secret(&device)?;
            draft.device_secret = Some(device);
        }
        if let Some(cid) = cid {
            let fine = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            if cid.is_empty() || cid.len() > MAX_CID_CHARS || !cid.bytes().all(fine) {
                return Err(Invalid::BadCid);
            }
            draft.cid = Some(cid);
        }
        Ok(draft)
    }

    /// Validates a name and a text.
    pub fn new(name: &str, text: &str) -> Result<Draft, Invalid> {
        Draft::validate(name, text, false)
    }

    /// Validates a name and a text; with `caption`, the text may be empty (it is the
    /// caption of files), and a text of white space becomes none.
    fn validate(name: &str, text: &str, caption: bool) -> Result<Draft, Invalid> {
        let mut text = text.replace("\r\n", "\n").replace('\r', "\n");
        if text.trim().is_empty() {
            if !caption {
                return Err(Invalid::Empty);
            }
            text.clear();
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(Invalid::TooLong);
        }
        if text
            .chars()
            .any(|c| c != '\n' && c != '\t' && c.is_control())
        {
            return Err(Invalid::ControlCharacter);
        }
        // Direction controls make a name read as another ("Ana\u{202e}xe." shows as
        // "Ana.exe"): a name is one run of text, shown as its letters say.
        let name: String = name.chars().filter(|c| !is_bidi_control(*c)).collect();
        let name = name.trim();
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::NameTooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(Invalid::ControlCharacter);
        }
        let name = if name.is_empty() { ANONYMOUS } else { name };
        Ok(Draft {
            name: name.to_string(),
            text,
            by_mod: false,
            sent: None,
            cid: None,
            files: Vec::new(),
            device: None,
            device_secret: None,
            written: None,
            reply: None,
        })
    }
}

/// The characters that change the direction text is shown in (Unicode's explicit
/// directional formatting characters and marks): in a name they can make it show as
/// something else, so names drop them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The fields named in `wanted` of an `application/x-www-form-urlencoded` body,
/// decoded, in order; the others are not even decoded: whatever they hold is fine.
pub fn form(body: &[u8], wanted: &[&str]) -> Result<Vec<(String, String)>, Invalid> {
    let mut fields = Vec::new();
    for pair in body.split(|&b| b == b'&') {
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let key = decode_component(parts.next().unwrap_or_default())?;
        if !wanted.contains(&key.as_str()) {
            continue;
        }
        let value = decode_component(parts.next().unwrap_or_default())?;
        fields.push((key, value));
    }
    Ok(fields)
}

/// A `device` field: the browser's secret, 16 to 64 letters, digits, `-` or `_`.
pub fn device_secret(value: &str) -> Result<&str, Invalid> {
    let fine = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if !(MIN_DEVICE_CHARS..=MAX_DEVICE_CHARS).contains(&value.len()) || !value.bytes().all(fine) {
        return Err(Invalid::BadDevice);
    }
    Ok(value)
}

/// A text as a message may hold it (see [`Draft`]): line breaks as LF, not blank,
/// within [`MAX_TEXT_CHARS`], no control characters.
pub fn valid_text(text: &str) -> Result<String, Invalid> {
    Draft::validate("", text, false).map(|d| d.text)
}

/// The start of a text, for a quote: at most [`QUOTE_CHARS`], cut at a character.
pub fn quote_of(text: &str) -> String {
    text.chars().take(QUOTE_CHARS).collect()
}

/// Decodes one form component: `+` is a space, `%XX` a byte (a `%` not followed by
/// two hex digits stays as it is); the bytes must be UTF-8. Not
/// `form_urlencoded::parse`, which replaces invalid UTF-8 silently where a `400` is
/// owed.
fn decode_component(raw: &[u8]) -> Result<String, Invalid> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Invalid::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let d = Draft::from_form(b"message=hello+world+%26+caf%C3%A9").unwrap();
        assert_eq!(d.text, "hello world & café");
        assert_eq!(d.name, ANONYMOUS);
    }

    #[test]
    fn name_is_trimmed_and_optional() {
        let d = Draft::from_form(b"name=+Ada+&message=hi").unwrap();
        assert_eq!(d.name, "Ada");
        let d = Draft::from_form(b"name=&message=hi").unwrap();
        assert_eq!(d.name, ANONYMOUS);
    }

    #[test]
    fn stray_percent_is_kept_literally() {
        assert_eq!(Draft::from_form(b"message=100%").unwrap().text, "100%");
        assert_eq!(Draft::from_form(b"message=%zz%4").unwrap().text, "%zz%4");
    }

    #[test]
    fn first_of_repeated_fields_counts_and_unknown_are_ignored() {
        let d = Draft::from_form(b"x=1&message=a&message=b&name=n").unwrap();
        assert_eq!((d.name.as_str(), d.text.as_str()), ("n", "a"));
    }

    #[test]
    fn line_breaks_are_normalised() {
        let d = Draft::from_form(b"message=a%0D%0Ab%0Dc%0Ad").unwrap();
        assert_eq!(d.text, "a\nb\nc\nd");
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        assert_eq!(Draft::from_form(b""), Err(Invalid::Empty));
        assert_eq!(Draft::from_form(b"name=x"), Err(Invalid::Empty));
        assert_eq!(Draft::from_form(b"message=+%20%0A%09"), Err(Invalid::Empty));
        assert_eq!(Draft::from_form(b"message=%FF%FE"), Err(Invalid::NotUtf8));
        assert_eq!(
            Draft::from_form(b"message=a%00b"),
            Err(Invalid::ControlCharacter)
        );
        assert_eq!(
            Draft::from_form(b"message=a%1Bb"),
            Err(Invalid::ControlCharacter)
        );
        assert_eq!(
            Draft::from_form(b"name=a%0Ab&message=x"),
            Err(Invalid::ControlCharacter)
        );
        let long = format!("message={}", "é".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(Draft::from_form(long.as_bytes()), Err(Invalid::TooLong));
        let name = format!("name={}&message=x", "n".repeat(MAX_NAME_CHARS + 1));
        assert_eq!(Draft::from_form(name.as_bytes()), Err(Invalid::NameTooLong));
    }

    #[test]
    fn names_lose_the_characters_that_turn_text_around() {
        let d = Draft::from_form(b"name=Ana%E2%80%AEexe.&message=hi").unwrap();
        assert_eq!(d.name, "Anaexe.");
        let d = Draft::from_form(b"name=%E2%80%8F%E2%81%A6&message=hi").unwrap();
        assert_eq!(d.name, ANONYMOUS, "nothing but controls is no name");
        // The text keeps them: a line of Arabic or Hebrew may need a mark.
        let d = Draft::from_form(b"message=a%E2%80%8Fb").unwrap();
        assert_eq!(d.text, "a\u{200f}b");
    }

    #[test]
    fn limits_are_in_characters_not_bytes() {
        let text = "é".repeat(MAX_TEXT_CHARS);
        assert_eq!(
            Draft::new("", &text).unwrap().text.chars().count(),
            MAX_TEXT_CHARS
        );
    }

    #[test]
    fn ids_read_back_as_written_and_nothing_else_reads_as_one() {
        let id = Id { epoch: 17, n: 4 };
        assert_eq!(id.to_string().parse::<Id>(), Ok(id));
        for bad in [
            "", "17", "17-", "-4", "+17-4", "17-+4", "17 -4", "a-4", "17-4-1",
        ] {
            assert!(bad.parse::<Id>().is_err(), "{bad}");
        }
        assert!(Id { epoch: 1, n: 9 } < Id { epoch: 2, n: 1 });
    }

    #[test]
    fn the_longest_message_in_any_script_fits_the_body_limit() {
        // A line break typed in a form travels as CR LF and counts as one.
        let breaks = format!("x{}", "\r\n".repeat(MAX_TEXT_CHARS - 1));
        for c in ['a', '\u{e9}', '\u{4e2d}', '\u{1f600}', '\n'] {
            let text: String = match c {
                '\n' => breaks.clone(),
                c => std::iter::repeat_n(c, MAX_TEXT_CHARS).collect(),
            };
            let name: String = std::iter::repeat_n('\u{1f600}', MAX_NAME_CHARS).collect();
            let form = format!("name={}&message={}", percent(&name), percent(&text));
            assert!(form.len() <= MAX_FORM_BYTES, "{c:?}: {}", form.len());
            assert!(Draft::from_form(form.as_bytes()).is_ok(), "{c:?}");
        }
    }

    fn percent(text: &str) -> String {
        text.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn json_has_the_four_fields() {
        let m = Message {
            id: "5-1".into(),
            name: "a\"b".into(),
            text: "x\ny".into(),
            time: 12,
            by_mod: false,
            cid: None,
            files: Vec::new(),
            device: None,
            written: None,
            reply: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        };
        assert_eq!(
            m.to_json(),
            r#"{"id":"5-1","name":"a\"b","text":"x\ny","time":12}"#
        );
        let host = Message { by_mod: true, ..m };
        assert!(host.to_json().ends_with(r#","time":12,"mod":true}"#));
    }

    #[test]
    fn the_senders_time_is_read_when_it_is_one_and_ignored_when_not() {
        let d = Draft::from_form(b"message=hi&sent=1795560293518").unwrap();
        assert_eq!(d.sent, Some(1_795_560_293_518));
        for bad in ["", "-5", "1e12", "99999999999999999999", "16725225600000"] {
            let form = format!("message=hi&sent={bad}");
            assert_eq!(
                Draft::from_form(form.as_bytes()).unwrap().sent,
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cid_is_a_short_token_or_a_clear_400() {
        let d = Draft::from_form(b"message=hi&cid=k3x-9_Q").unwrap();
        assert_eq!(d.cid.as_deref(), Some("k3x-9_Q"));
        assert_eq!(Draft::from_form(b"message=hi").unwrap().cid, None);
        let long = format!("message=hi&cid={}", "a".repeat(MAX_CID_CHARS + 1));
        for bad in [
            "message=hi&cid=",
            "message=hi&cid=a+b",
            "message=hi&cid=%C3%A9",
            &long,
        ] {
            assert_eq!(
                Draft::from_form(bad.as_bytes()),
                Err(Invalid::BadCid),
                "{bad}"
            );
        }
        assert!(Invalid::BadCid.reason().contains("64"));
    }

    #[test]
    fn a_device_secret_is_a_long_token_or_a_clear_400_and_written_a_time() {
        let d = Draft::from_form(b"message=hi&device=0123456789abcdefXYZ_-&written=1795560293518")
            .unwrap();
        assert_eq!(d.device_secret.as_deref(), Some("0123456789abcdefXYZ_-"));
        assert_eq!(d.device, None, "the tag is the route's to make");
        assert_eq!(d.written, Some(1_795_560_293_518));
        for bad in [
            "short",
            "0123456789abcdef%20",
            &"a".repeat(MAX_DEVICE_CHARS + 1),
        ] {
            let form = format!("message=hi&device={bad}");
            assert_eq!(
                Draft::from_form(form.as_bytes()),
                Err(Invalid::BadDevice),
                "{bad}"
            );
        }
        assert_eq!(
            Draft::from_form(b"message=hi&written=soon")
                .unwrap()
                .written,
            None
        );
    }

    #[test]
    fn a_form_cannot_make_a_message_the_hosts() {
        assert!(
            !Draft::from_form(b"message=hi&mod=true&by_mod=1")
                .unwrap()
                .by_mod
        );
    }
}
