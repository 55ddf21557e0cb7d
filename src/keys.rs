//! The chat's keys: the access key (`--key`) and the moderator's (`--mod-key`).
//! Presented keys are compared in constant time; wrong ones are counted per client
//! and, past a few a minute, answered `429` without being checked, so a key cannot
//! be guessed at the speed of a connection. A browser keeps not the key but a token
//! derived from it with the server's secret ([`Secret`]): a cookie that is read
//! somewhere does not give the key away, and a changed key ends every token.
//!
//! State that does not order messages, so it lives here and not in the registry: a
//! small table behind a lock that is never held across an await.

use std::collections::HashMap;
use std::hash::Hasher as _;
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use siphasher::sip128::{Hasher128 as _, SipHasher24};

use crate::client::ClientKey;

/// Wrong keys one client may present in [`GUESS_WINDOW`] before it is slowed.
pub const GUESSES: u32 = 5;

/// The window wrong keys are counted in.
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);

/// Clients whose wrong keys are remembered at most; past it the oldest window goes.
const GUESSERS: usize = 4096;

/// The moderator key's least length: short enough to type, too long to guess at
/// five tries a minute.
pub const MOD_KEY_MIN: usize = 8;

/// The server's own secret: 128 random bits, kept in `secret` beside the history
/// with `--data-dir` (so tokens, and later device tags, outlive a restart), or made
/// for the run without one.
#[derive(Clone)]
pub struct Secret([u8; 16]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The file in the data directory that holds the secret.
pub const SECRET_FILE: &str = "secret";

impl Secret {
    /// The secret kept in `dir`, made (and kept, readable by this user only) when
    /// there is none or it cannot be read; made for this run without a `dir`.
    pub fn load(dir: Option<&Path>) -> io::Result<Secret> {
        let Some(dir) = dir else {
            return Secret::random();
        };
        let path = dir.join(SECRET_FILE);
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&path) {
            file.read_to_string(&mut text)?;
            if let Some(secret) = Secret::from_hex(text.trim()) {
                return Ok(secret);
            }
            crate::warn!(
                "{} is not a secret this server made; a new one replaces it",
                path.display()
            );
        }
        let secret = Secret::random()?;
        let kept =
            std::fs::create_dir_all(dir).and_then(|()| write_private(&path, &hex(&secret.0)));
        if let Err(e) = kept {
            // A full disk must not stop the chat: the secret then lasts this run, and
            // browsers open the moderator link (and the key's) again after a restart.
            crate::warn!("cannot keep the server's secret in {}: {e}", path.display());
        }
        Ok(secret)
    }

    fn random() -> io::Result<Secret> {
        let mut bytes = [0u8; 16];
        rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())?;
        Ok(Secret(bytes))
    }

    fn from_hex(text: &str) -> Option<Secret> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Secret(bytes))
    }

    /// A keyed digest of `parts`: 128 bits of SipHash-2-4, a pseudo-random function
    /// of short inputs under this secret, as 32 hex digits.
    pub fn digest(&self, parts: &[&[u8]]) -> String {
        let mut hasher = SipHasher24::new_with_key(&self.0);
        for part in parts {
            // Each part with its length first, so that no two lists read alike.
            hasher.write(&(part.len() as u64).to_le_bytes());
            hasher.write(part);
        }
        hex(&hasher.finish128().as_bytes())
    }
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A moderator key made for `--mod-key auto`: the one kept in `dir/mod-key`, or a new
/// one (kept there with a `dir`). 16 letters and digits, which a URL carries as
/// they are.
pub fn auto_mod_key(dir: Option<&Path>) -> io::Result<String> {
    let path = dir.map(|d| d.join("mod-key"));
    if let Some(path) = &path {
        if let Ok(text) = std::fs::read_to_string(path) {
            let key = text.trim();
            if key.len() >= MOD_KEY_MIN && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Ok(key.to_string());
            }
        }
    }
    const LETTERS: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())?;
    let key: String = bytes
        .iter()
        .map(|b| LETTERS[usize::from(*b) % LETTERS.len()] as char)
        .collect();
    if let (Some(dir), Some(path)) = (dir, &path) {
        let kept = std::fs::create_dir_all(dir).and_then(|()| write_private(path, &key));
        if let Err(e) = kept {
            crate::warn!(
                "cannot keep the moderator key in {}: {e}; it lasts this run",
                path.display()
            );
        }
    }
    Ok(key)
}

/// Where a presented key came from; each is counted on its own, so that a stale
/// cookie (the key was changed) never stops the new link from working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presented {
    /// `?key=` or `?mod=` in the address: the QR code's link, or a script.
    Query,
    /// A cookie the page was given.
    Cookie,
}

/// Wrong keys presented lately, per client and source: how many, since when.
#[derive(Debug, Default)]
struct Guesses {
    seen: HashMap<(ClientKey, Presented), (u32, Instant)>,
}

impl Guesses {
    /// How long `who` must wait before it may present a key again; `None`: it may.
    fn wait(&self, who: (ClientKey, Presented), now: Instant) -> Option<Duration> {
        let (count, since) = self.seen.get(&who)?;
        let left = GUESS_WINDOW.checked_sub(now.duration_since(*since))?;
        (*count >= GUESSES).then_some(left)
    }

    fn wrong(&mut self, who: (ClientKey, Presented), now: Instant) {
        if self.seen.len() >= GUESSERS && !self.seen.contains_key(&who) {
            self.seen
                .retain(|_, (_, since)| now.duration_since(*since) < GUESS_WINDOW);
            if self.seen.len() >= GUESSERS {
                let oldest = self
                    .seen
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    self.seen.remove(&oldest);
                }
            }
        }
        let entry = self.seen.entry(who).or_insert((0, now));
        if now.duration_since(entry.1) >= GUESS_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

/// A key check that was not made: the client presented too many wrong keys lately
/// and may again after this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slowed(pub Duration);

/// What the checks need: the keys, the tokens derived from them, and the wrong
/// keys counted.
#[derive(Debug)]
pub struct Keys {
    /// The server's secret, for device tags.
    secret: Secret,
    key: Option<String>,
    mod_key: Option<String>,
    key_token: Option<String>,
    mod_token: Option<String>,
    guesses: Mutex<Guesses>,
}

impl Keys {
    /// The checks for the access key `key` and the moderator key `mod_key`.
    pub fn new(key: Option<&str>, mod_key: Option<&str>, secret: &Secret) -> Keys {
        let token = |purpose: &str, key: &str| secret.digest(&[purpose.as_bytes(), key.as_bytes()]);
        Keys {
            secret: secret.clone(),
            key_token: key.map(|k| token("key", k)),
            mod_token: mod_key.map(|k| token("mod", k)),
            key: key.map(str::to_string),
            mod_key: mod_key.map(str::to_string),
            guesses: Mutex::default(),
        }
    }

    /// The public tag of the device whose page holds `secret`: 12 hex digits of the
    /// server's keyed digest of it. Only a browser that holds the secret can post
    /// under the tag, and the tag does not give the secret away.
    pub fn device_tag(&self, secret: &str) -> String {
        let mut tag = self.secret.digest(&[b"device", secret.as_bytes()]);
        tag.truncate(12);
        tag
    }

    /// Whether an access key is set.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Whether a moderator key is set.
    pub fn has_mod_key(&self) -> bool {
        self.mod_key.is_some()
    }

    /// The cookie value for a browser that presented the right access key.
    pub fn key_token(&self) -> Option<&str> {
        self.key_token.as_deref()
    }

    /// The cookie value for a browser that presented the right moderator key.
    pub fn mod_token(&self) -> Option<&str> {
        self.mod_token.as_deref()
    }

    /// Whether `given` (from `source`) is the access key (its token for a cookie).
    pub fn is_key(
        &self,
        client: ClientKey,
        source: Presented,
        given: &str,
    ) -> Result<bool, Slowed> {
        let real = match source {
            Presented::Query => self.key.as_deref(),
            Presented::Cookie => self.key_token.as_deref(),
        };
        self.check(client, source, given, real)
    }

    /// Whether `given` (from `source`) is the moderator key (its token for a cookie).
    pub fn is_mod_key(
        &self,
        client: ClientKey,
        source: Presented,
        given: &str,
    ) -> Result<bool, Slowed> {
        let real = match source {
            Presented::Query => self.mod_key.as_deref(),
            Presented::Cookie => self.mod_token.as_deref(),
        };
        self.check(client, source, given, real)
    }

    fn check(
        &self,
        client: ClientKey,
        source: Presented,
        given: &str,
        real: Option<&str>,
    ) -> Result<bool, Slowed> {
        let Some(real) = real else {
            return Ok(false);
        };
        let now = Instant::now();
        let mut guesses = self.guesses.lock().unwrap_or_else(PoisonError::into_inner);
        // Not checked at all while slowed: a right answer must not show then either.
        if let Some(wait) = guesses.wait((client, source), now) {
            return Err(Slowed(wait));
        }
        let right = same_secret(given.as_bytes(), real.as_bytes());
        if !right {
            guesses.wrong((client, source), now);
        }
        Ok(right)
    }
}

/// Compares a presented key with the real one in time that does not depend on
/// where they differ, so the key cannot be guessed a byte at a time.
fn same_secret(given: &[u8], key: &[u8]) -> bool {
    if given.len() != key.len() {
        return false;
    }
    let diff = given
        .iter()
        .zip(key)
        .fold(0u8, |acc, (a, b)| acc | std::hint::black_box(a ^ b));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ClientKey = ClientKey::v4([10, 0, 0, 1]);
    const B: ClientKey = ClientKey::v4([10, 0, 0, 2]);

    fn keys() -> Keys {
        Keys::new(Some("tea-time"), Some("host-only-42"), &Secret([7; 16]))
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"tea-time", b"tea-time"));
        assert!(!same_secret(b"tea-timf", b"tea-time"));
        assert!(!same_secret(b"tea", b"tea-time"));
        assert!(!same_secret(b"", b"tea-time"));
    }

    #[test]
    fn a_few_wrong_keys_a_minute_then_no_check_at_all_and_others_are_not_held() {
        let keys = keys();
        for _ in 0..GUESSES {
            assert_eq!(keys.is_mod_key(A, Presented::Query, "guess"), Ok(false));
        }
        // Slowed: even the right key is not checked from there.
        let slowed = keys.is_mod_key(A, Presented::Query, "host-only-42");
        assert!(matches!(slowed, Err(Slowed(wait)) if wait > Duration::from_secs(50)));
        // Another device, and the same device's cookie, are not held back.
        assert_eq!(
            keys.is_mod_key(B, Presented::Query, "host-only-42"),
            Ok(true)
        );
        let token = keys.mod_token().unwrap().to_string();
        assert_eq!(keys.is_mod_key(A, Presented::Cookie, &token), Ok(true));
        // The window passes: A may try again.
        let later = Instant::now() + GUESS_WINDOW;
        assert_eq!(
            keys.guesses
                .lock()
                .unwrap()
                .wait((A, Presented::Query), later),
            None
        );
    }

    #[test]
    fn a_cookie_holds_a_token_not_the_key_and_the_key_is_no_cookie() {
        let keys = keys();
        let token = keys.mod_token().unwrap();
        assert!(!token.contains("host-only-42"));
        assert_eq!(token.len(), 32);
        assert_eq!(
            keys.is_mod_key(A, Presented::Cookie, "host-only-42"),
            Ok(false)
        );
        assert_eq!(
            keys.is_key(A, Presented::Cookie, keys.key_token().unwrap()),
            Ok(true)
        );
        assert_ne!(keys.key_token(), keys.mod_token(), "one token per key");
        // Another secret, another token; another key, another token.
        let other = Keys::new(Some("tea-time"), Some("host-only-42"), &Secret([8; 16]));
        assert_ne!(other.mod_token(), keys.mod_token());
        let changed = Keys::new(Some("tea-time"), Some("host-only-43"), &Secret([7; 16]));
        assert_ne!(changed.mod_token(), keys.mod_token());
    }

    #[test]
    fn a_device_tag_is_the_same_for_one_secret_and_says_nothing_of_it() {
        let keys = keys();
        let tag = keys.device_tag("0123456789abcdef0123");
        assert_eq!(tag, keys.device_tag("0123456789abcdef0123"));
        assert_eq!(tag.len(), 12);
        assert_ne!(tag, keys.device_tag("0123456789abcdef0124"));
        // Another server's secret, another tag: a tag is not made without it.
        let other = Keys::new(None, None, &Secret([8; 16]));
        assert_ne!(tag, other.device_tag("0123456789abcdef0123"));
    }

    #[test]
    fn the_secret_is_kept_and_read_back_and_only_its_owner_may_read_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("lanchat-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Secret::load(Some(&dir)).unwrap();
        let again = Secret::load(Some(&dir)).unwrap();
        assert_eq!(first.0, again.0);
        let mode = std::fs::metadata(dir.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let key = auto_mod_key(Some(&dir)).unwrap();
        assert_eq!(
            auto_mod_key(Some(&dir)).unwrap(),
            key,
            "kept across restarts"
        );
        assert!(key.len() >= MOD_KEY_MIN && key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(auto_mod_key(None).unwrap(), auto_mod_key(None).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
