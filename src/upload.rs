//! A post with files (`multipart/form-data`): its text fields become a [`Draft`],
//! its files are streamed to the [`Media`] store as they arrive, within
//! `--max-upload` each. Whatever goes wrong, no part of a file stays behind.
//!
//! What a post makes the server hold is bounded, not only what it keeps: at most
//! [`MAX_PARTS`] parts, their heads and text fields together at most [`MAX_TEXT`]
//! bytes (unknown fields are read past and counted, never kept), each file at most
//! `--max-upload` (on disk, or in memory without `--data-dir`), and the time: each
//! read within `--body-timeout`, and the body as a whole at least `--body-rate` on
//! average once `--body-timeout` has passed.

use std::time::{Duration, Instant};

use futures_lite::{AsyncWriteExt as _, FutureExt as _};
use http_types::Request;
use smol::Timer;

use crate::client::ClientKey;
use crate::config::Config;
use crate::error::Error;
use crate::media::{self, FileInfo, Media};
use crate::message::{Draft, MAX_FORM_BYTES};
use crate::multipart::{Bad, Multipart};
use crate::registry::{Handle, PostCheck, PublishError};

/// Files one post may carry.
pub const MAX_FILES: usize = 10;

/// Parts one post may have: the few text fields a page sends and [`MAX_FILES`]
/// files, with room to spare.
pub const MAX_PARTS: usize = 32;

/// Bytes of a post's part heads and text fields together: the longest valid
/// message in any script as a form, and a head of 1 KiB for each file (a long file
/// name in UTF-8 is a few hundred).
pub const MAX_TEXT: usize = MAX_FORM_BYTES + MAX_FILES * 1024;

/// The first bytes of a file kept aside, to tell its type and an image's size.
const SNIFF: usize = 64 * 1024;

/// Who is posting, for the check made before any file is read.
pub struct Poster<'a> {
    /// The way to the registry, which knows the post rate, mutes and posts stored.
    pub registry: &'a Handle,
    /// The client's key.
    pub client: ClientKey,
    /// The moderator, whom nothing holds back.
    pub by_mod: bool,
    /// The keys, which turn a device's secret into its tag.
    pub keys: &'a crate::keys::Keys,
}

/// Reads a multipart post: its fields and its files, stored. The files of a post
/// that is refused here are removed again. Before its first file, the registry is
/// asked whether the client may post (a muted client or one over its rate is
/// answered before its files are read) and whether the post's `cid` is stored
/// already (its files are then read past, not kept twice).
pub async fn read(
    req: &mut Request,
    boundary: &str,
    config: &Config,
    media: &Media,
    poster: Poster<'_>,
) -> Result<Draft, Error> {
    let most = config.max_upload * MAX_FILES as u64 + MAX_TEXT as u64;
    if req.len().is_some_and(|len| len as u64 > most) {
        return Err(Error::TooLarge);
    }
    let mut parts = Multipart::new(req.take_body(), boundary);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut files: Vec<FileInfo> = Vec::new();
    let mut pace = Pace::new();
    let result = async {
        let mut text = 0;
        let mut count = 0;
        // Asked once, at the first file: `Some(true)` means the post is stored.
        let mut admitted: Option<bool> = None;
        while let Some(part) = pace.step(parts.next_part(), config).await? {
            count += 1;
            text += part.head_len;
            if count > MAX_PARTS || text > MAX_TEXT {
                return Err(Error::TooLarge);
            }
            if part.filename.is_some() {
                if files.len() == MAX_FILES {
                    return Err(Error::BadRequest(
                        "too_many_files",
                        "at most 10 files in one message",
                    ));
                }
                let stored = match admitted {
                    Some(stored) => stored,
                    None => {
                        let field = |name: &str| {
                            fields
                                .iter()
                                .find(|(k, _)| k == name)
                                .map(|(_, v)| v.clone())
                        };
                        let check = PostCheck {
                            client: poster.client,
                            by_mod: poster.by_mod,
                            device: field("device").map(|d| poster.keys.device_tag(&d)),
                            cid: field("cid"),
                        };
                        let stored = poster.registry.admit(check).await.map_err(refusal)?;
                        admitted = Some(stored);
                        stored
                    }
                };
                if stored {
                    // Read past: the message it came with is stored with its files.
                    continue;
                }
                if let Some(info) =
                    store(&mut parts, &part, config, media, &mut pace, poster.client).await?
                {
                    files.push(info);
                }
                continue;
            }
            let keep = crate::message::FIELDS.contains(&part.name.as_str());
            let mut value = Vec::new();
            loop {
                let before = value.len();
                if pace.step(parts.data(&mut value), config).await? == 0 {
                    break;
                }
                text += value.len() - before;
                if text > MAX_TEXT {
                    return Err(Error::TooLarge);
                }
                if !keep {
                    value.clear();
                }
            }
            if keep {
                let value = String::from_utf8(value)
                    .map_err(|_| Error::Invalid(crate::message::Invalid::NotUtf8))?;
                fields.push((part.name, value));
            }
        }
        Ok(())
    }
    .await;
    let ids: Vec<String> = files.iter().map(|f| f.id.clone()).collect();
    let draft = result.and_then(|()| Draft::from_fields(fields, files).map_err(Error::Invalid));
    if draft.is_err() {
        media.remove(&ids);
    }
    draft
}

/// A refusal from the registry as the answer to the post.
pub fn refusal(e: PublishError) -> Error {
    match e {
        PublishError::Stopped => Error::Unavailable,
        PublishError::NotStored => Error::NotStored,
        // Rounded up: a client that waits what it is told is let through.
        PublishError::Limited(wait) => Error::TooManyRequests(wait.as_secs() + 1),
        PublishError::Muted(wait) => Error::Muted(wait.as_secs().div_ceil(60).max(1)),
    }
}

/// The time a body may take: each step within `--body-timeout`, and once that has
/// passed, the body as a whole at least `--body-rate` on average. A photo on a slow
/// network keeps coming and is taken; a body trickled to hold a connection is cut.
struct Pace {
    start: Instant,
    /// Bytes of the body read so far (heads and data).
    read: u64,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            start: Instant::now(),
            read: 0,
        }
    }

    /// When the body must have reached the bytes read so far plus what the next
    /// step brings: the grace of `--body-timeout`, then the time `--body-rate` takes.
    fn deadline(&self, config: &Config) -> Instant {
        let rate = config.body_rate.max(1);
        let owed = Duration::from_secs_f64(self.read as f64 / rate as f64);
        let overall = self.start + config.body_timeout + owed;
        overall.min(Instant::now() + config.body_timeout)
    }

    /// Waits for one step of the body, within the deadlines above.
    async fn step<T: Counted>(
        &mut self,
        step: impl std::future::Future<Output = Result<T, Bad>>,
        config: &Config,
    ) -> Result<T, Error> {
        let deadline = self.deadline(config);
        let step = async {
            step.await.map_err(|bad| match bad {
                Bad::Malformed => {
                    Error::BadRequest("bad_form", "the multipart form data is malformed")
                }
                Bad::Cut => Error::BadRequest("body_cut", "the request body ended too soon"),
                Bad::HeadTooLarge => Error::TooLarge,
            })
        };
        let late = async {
            Timer::at(deadline).await;
            Err(Error::Timeout)
        };
        let done = step.or(late).await?;
        self.read += done.bytes();
        Ok(done)
    }
}

/// What a step of the body read, for [`Pace`].
trait Counted {
    fn bytes(&self) -> u64;
}

impl Counted for usize {
    fn bytes(&self) -> u64 {
        *self as u64
    }
}

impl Counted for Option<crate::multipart::Part> {
    fn bytes(&self) -> u64 {
        self.as_ref().map_or(0, |p| p.head_len as u64)
    }
}

/// Streams one file part into the store; `None` for the empty part a form sends
/// when no file was chosen.
async fn store(
    parts: &mut Multipart<http_types::Body>,
    part: &crate::multipart::Part,
    config: &Config,
    media: &Media,
    pace: &mut Pace,
    owner: ClientKey,
) -> Result<Option<FileInfo>, Error> {
    let id = media::new_id().map_err(|_| Error::Internal)?;
    let part_path = media.part_path(&id);
    let mut file = match &part_path {
        // smol's own file type would buffer up to 8 MiB on its way to the disk: per
        // upload, that is the Pi's memory gone. This one holds 64 KiB.
        Some(path) => Some(smol::Unblock::with_capacity(
            media::PIPE,
            std::fs::File::create(path).map_err(|_| Error::NotStored)?,
        )),
        None => None,
    };
    let mut memory = Vec::new();
    let mut head = Vec::new();
    let mut size = 0u64;
    let mut chunk = Vec::with_capacity(32 * 1024);
    let result: Result<(), Error> = async {
        loop {
            chunk.clear();
            if pace.step(parts.data(&mut chunk), config).await? == 0 {
                break;
            }
            size += chunk.len() as u64;
            if size > config.max_upload {
                return Err(Error::FileTooLarge(config.max_upload));
            }
            // The disk keeps its floor: older files go first, and when none is left
            // this one is refused (a statvfs per piece, nothing next to the write).
            media.room_for(chunk.len() as u64).map_err(not_kept)?;
            if head.len() < SNIFF {
                let take = (SNIFF - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            match &mut file {
                Some(f) => f.write_all(&chunk).await.map_err(|_| Error::NotStored)?,
                None => memory.extend_from_slice(&chunk),
            }
            // While the client sends faster than this loop reads, nothing here
            // waits: without this, one upload would hold the thread until its
            // socket ran dry, and messages would wait (see `sched`).
            futures_lite::future::yield_now().await;
        }
        if let Some(f) = &mut file {
            f.flush().await.map_err(|_| Error::NotStored)?;
            f.with_mut(|f| f.sync_data())
                .await
                .map_err(|_| Error::NotStored)?;
        }
        Ok(())
    }
    .await;
    drop(file);
    let name = clean_name(part.filename.as_deref().unwrap_or(""));
    if result.is_err() || (size == 0 && name.is_empty()) {
        if let Some(path) = &part_path {
            let _ = smol::fs::remove_file(path).await;
        }
        return result.map(|()| None);
    }
    let sniffed = media::sniff_image(&head);
    let (width, height) = match media::dimensions(&head) {
        Some((w, h)) => (Some(w), Some(h)),
        None => (None, None),
    };
    // The type it was sent with is kept for the page's label, but never one of the
    // images shown inline unless its bytes are that image.
    let claimed = part
        .content_type
        .as_deref()
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| t.len() <= 100 && t.bytes().all(|b| b.is_ascii_graphic()) && t.contains('/'))
        .filter(|t| !media::INLINE.contains(&t.as_str()));
    let info = FileInfo {
        id,
        name: if name.is_empty() { "file".into() } else { name },
        kind: sniffed
            .map(str::to_string)
            .or(claimed)
            .unwrap_or_else(|| "application/octet-stream".into()),
        size,
        width,
        height,
    };
    let memory = part_path.is_none().then_some(memory);
    // A rename and a small description: short enough to do here.
    if let Err(e) = media.keep(info.clone(), memory, owner) {
        if let Some(path) = &part_path {
            let _ = smol::fs::remove_file(path).await;
        }
        return Err(not_kept(e));
    }
    Ok(Some(info))
}

fn not_kept(e: media::NotKept) -> Error {
    match e {
        media::NotKept::NoRoom => Error::NoRoomForFiles,
        media::NotKept::Io(e) => {
            crate::warn!("cannot keep a file: {e}");
            Error::NotStored
        }
    }
}

/// A file name as it is shown and offered for download: no path, no control
/// characters, at most [`media::MAX_NAME_CHARS`].
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    base.chars()
        .filter(|c| !c.is_control() && !crate::message::is_bidi_control(*c))
        .take(media::MAX_NAME_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};

    /// A body made as it is read, `parts` parts each with a field name of
    /// `name_len` bytes and an empty value, counting what the server reads of it.
    struct Endless {
        part: Vec<u8>,
        parts: usize,
        at: usize,
        read: Arc<AtomicU64>,
    }

    impl futures_lite::AsyncRead for Endless {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            let total = self.part.len() * self.parts;
            let n = out.len().min(total - self.at);
            for (i, byte) in out[..n].iter_mut().enumerate() {
                *byte = self.part[(self.at + i) % self.part.len()];
            }
            self.at += n;
            self.read.fetch_add(n as u64, Ordering::Relaxed);
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn a_body_of_endless_long_named_parts_is_refused_having_held_little() {
        let name = "n".repeat(4000);
        let part = format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\r\n");
        let taken = Arc::new(AtomicU64::new(0));
        // 40,000 parts: 160 MB, as a client may send.
        let body = Endless {
            part: part.into_bytes(),
            parts: 40_000,
            at: 0,
            read: taken.clone(),
        };
        let mut req = Request::new(
            http_types::Method::Post,
            http_types::Url::parse("http://lanchat/message").unwrap(),
        );
        req.set_body(http_types::Body::from_reader(
            futures_lite::io::BufReader::new(body),
            None,
        ));
        let (registry, _task) = crate::registry::new(crate::registry::Options {
            history: 1,
            backlog: 1,
            queue: 1,
            heartbeat: Duration::from_secs(60),
            epoch: 1,
            store: None,
            post_rate: None,
            restored: Vec::new(),
            released: None,
        });
        let media =
            Media::open(None, Config::default().media_limits(), &Default::default()).unwrap();
        let secret = crate::keys::Secret::load(None).unwrap();
        let keys = crate::keys::Keys::new(None, None, &secret);
        let poster = Poster {
            registry: &registry,
            client: ClientKey::v4([127, 0, 0, 1]),
            by_mod: false,
            keys: &keys,
        };
        let config = Config::default();
        let result = smol::block_on(read(&mut req, "XyZ", &config, &media, poster));
        assert_eq!(result, Err(Error::TooLarge));
        // What it read is the most it can have held: the bound and one read more.
        let taken = taken.load(Ordering::Relaxed);
        assert!(taken < (MAX_TEXT + 64 * 1024) as u64, "read {taken} bytes");
    }

    #[test]
    fn names_lose_their_path_and_control_characters() {
        assert_eq!(clean_name("C:\\Users\\me\\IMG_0001.JPG"), "IMG_0001.JPG");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\u{0}b\nc.pdf"), "abc.pdf");
        // Shown as "photoexe.png" with its override; as what it is without.
        assert_eq!(clean_name("photo\u{202e}gnp.exe"), "photognp.exe");
        assert_eq!(
            clean_name(&"é".repeat(500)).chars().count(),
            media::MAX_NAME_CHARS
        );
    }
}
