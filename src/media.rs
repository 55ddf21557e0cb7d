//! Files people share in the chat (photos above all): stored as they arrive, kept
//! within a quota (the oldest go first), served by an id nobody can guess.
//!
//! Invariants:
//! - With `--data-dir` a file is `media/<id>` with its description beside it in
//!   `media/<id>.json`; it is written to `media/<id>.part` and renamed only when
//!   whole, so a crash or a refused upload leaves no file that looks whole (stale
//!   `.part` files are removed at start). Without one, files are held in memory.
//! - The bytes kept never exceed the quota: a new file first pushes out the oldest.
//! - Whether a file is shown inline is decided by its first bytes (JPEG, PNG, WebP,
//!   GIF), never by its name or the type its sender claimed.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// What a message says of a file it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// 32 hex digits from the system's random source: the file's address.
    pub id: String,
    /// The name it was sent with (for a download), at most [`MAX_NAME_CHARS`].
    pub name: String,
    /// The type its bytes show (`image/jpeg`, …), or the one it was sent with.
    #[serde(rename = "type")]
    pub kind: String,
    /// Bytes.
    pub size: u64,
    /// For an image: its size in pixels, so a page can reserve the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// See `width`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// The types shown inline, and only when a file's bytes are of that type.
pub const INLINE: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/gif"];

/// The buffer between a file on disk and the connection that reads or writes it.
pub const PIPE: usize = 64 * 1024;

/// The longest file name kept.
pub const MAX_NAME_CHARS: usize = 120;

/// The images served inline, by their first bytes.
pub fn sniff_image(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// An image's width and height from its first bytes, where they say.
pub fn dimensions(head: &[u8]) -> Option<(u32, u32)> {
    let be16 =
        |b: &[u8], i: usize| Some(u32::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])));
    let le16 =
        |b: &[u8], i: usize| Some(u32::from(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?])));
    let be32 = |b: &[u8], i: usize| Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let le24 = |b: &[u8], i: usize| {
        Some(
            u32::from(*b.get(i)?)
                | u32::from(*b.get(i + 1)?) << 8
                | u32::from(*b.get(i + 2)?) << 16,
        )
    };
    match sniff_image(head)? {
        "image/png" => Some((be32(head, 16)?, be32(head, 20)?)),
        "image/gif" => Some((le16(head, 6)?, le16(head, 8)?)),
        "image/webp" => match head.get(12..16)? {
            b"VP8X" => Some((le24(head, 24)? + 1, le24(head, 27)? + 1)),
            b"VP8L" => {
                let b = u32::from_le_bytes(head.get(21..25)?.try_into().ok()?);
                Some(((b & 0x3fff) + 1, ((b >> 14) & 0x3fff) + 1))
            }
            b"VP8 " => Some((le16(head, 26)? & 0x3fff, le16(head, 28)? & 0x3fff)),
            _ => None,
        },
        _ => {
            // JPEG: the first start-of-frame marker holds the size.
            let mut i = 2;
            while i + 9 < head.len() {
                if head[i] != 0xff {
                    return None;
                }
                let marker = head[i + 1];
                let len = be16(head, i + 2)? as usize;
                let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
                if sof {
                    return Some((be16(head, i + 7)?, be16(head, i + 5)?));
                }
                i += 2 + len;
            }
            None
        }
    }
}

/// A file's bytes, wherever they are kept.
#[derive(Debug, Clone)]
pub enum Bytes {
    /// In memory (no `--data-dir`).
    Memory(Arc<Vec<u8>>),
    /// On disk.
    Disk(PathBuf),
}

struct Kept {
    info: FileInfo,
    bytes: Bytes,
}

struct Index {
    files: HashMap<String, Kept>,
    /// Ids, oldest first: the order in which the quota lets them go.
    order: VecDeque<String>,
    total: u64,
}

/// The files kept; shared by the connections (a lock held for lookups only, never
/// across a read or write of a file).
pub struct Media {
    dir: Option<PathBuf>,
    quota: u64,
    index: Mutex<Index>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media").field("dir", &self.dir).finish()
    }
}

/// A new, unguessable id.
pub fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `id` has the form of an id (and so may name a file on disk).
pub fn is_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Media {
    /// Files in `dir/media` (made if missing), or in memory without a `dir`.
    pub fn open(dir: Option<PathBuf>, quota: u64) -> io::Result<Media> {
        let mut index = Index {
            files: HashMap::new(),
            order: VecDeque::new(),
            total: 0,
        };
        let dir = dir.map(|d| d.join("media"));
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
            let mut found = Vec::new();
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(".part") {
                    // An upload cut short by a crash.
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                let Some(id) = name.strip_suffix(".json").filter(|id| is_id(id)) else {
                    continue;
                };
                let info: Option<FileInfo> = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                let file = dir.join(id);
                match (info, std::fs::metadata(&file)) {
                    (Some(info), Ok(meta)) if meta.len() == info.size && info.id == id => {
                        let modified = meta.modified().ok();
                        found.push((modified, info, file));
                    }
                    _ => {
                        let _ = std::fs::remove_file(&path);
                        let _ = std::fs::remove_file(&file);
                    }
                }
            }
            found.sort_by_key(|(modified, _, _)| *modified);
            for (_, info, file) in found {
                index.total += info.size;
                index.order.push_back(info.id.clone());
                index.files.insert(
                    info.id.clone(),
                    Kept {
                        info,
                        bytes: Bytes::Disk(file),
                    },
                );
            }
        }
        let media = Media {
            dir,
            quota,
            index: Mutex::new(index),
        };
        media.make_room(0);
        Ok(media)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where an upload is written while it arrives (with `--data-dir`).
    pub fn part_path(&self, id: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{id}.part")))
    }

    /// Keeps a whole upload: `bytes` in memory, or the `.part` file written for `id`.
    /// Older files go first while the quota needs the room.
    pub fn keep(&self, info: FileInfo, bytes: Option<Vec<u8>>) -> io::Result<()> {
        let kept = match (&self.dir, bytes) {
            (Some(dir), _) => {
                let file = dir.join(&info.id);
                let json = serde_json::to_vec(&info).map_err(io::Error::other)?;
                std::fs::write(dir.join(format!("{}.json", info.id)), json)?;
                std::fs::rename(dir.join(format!("{}.part", info.id)), &file)?;
                Bytes::Disk(file)
            }
            (None, Some(bytes)) => Bytes::Memory(Arc::new(bytes)),
            (None, None) => return Err(io::ErrorKind::InvalidInput.into()),
        };
        self.make_room(info.size);
        let mut index = self.index();
        index.total += info.size;
        index.order.push_back(info.id.clone());
        index
            .files
            .insert(info.id.clone(), Kept { info, bytes: kept });
        Ok(())
    }

    /// Lets the oldest files go until `more` bytes fit within the quota.
    fn make_room(&self, more: u64) {
        let mut gone = Vec::new();
        {
            let mut index = self.index();
            while index.total + more > self.quota {
                let Some(id) = index.order.pop_front() else {
                    break;
                };
                if let Some(kept) = index.files.remove(&id) {
                    index.total -= kept.info.size;
                    gone.push(kept.bytes);
                }
            }
        }
        for bytes in gone {
            self.remove_bytes(&bytes);
        }
    }

    fn remove_bytes(&self, bytes: &Bytes) {
        if let Bytes::Disk(file) = bytes {
            let _ = std::fs::remove_file(file);
            let _ = std::fs::remove_file(file.with_extension("json"));
        }
    }

    /// Removes files (their message was deleted).
    pub fn remove(&self, ids: &[String]) {
        let mut gone = Vec::new();
        {
            let mut index = self.index();
            for id in ids {
                if let Some(kept) = index.files.remove(id) {
                    index.total -= kept.info.size;
                    index.order.retain(|o| o != id);
                    gone.push(kept.bytes);
                }
            }
        }
        for bytes in gone {
            self.remove_bytes(&bytes);
        }
    }

    /// A kept file: its description and where its bytes are.
    pub fn get(&self, id: &str) -> Option<(FileInfo, Bytes)> {
        let index = self.index();
        let kept = index.files.get(id)?;
        Some((kept.info.clone(), kept.bytes.clone()))
    }

    /// The bytes kept, for tests and the log.
    pub fn total(&self) -> u64 {
        self.index().total
    }

    /// The quota, in bytes.
    pub fn quota(&self) -> u64 {
        self.quota
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes_with_their_size() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x06\x40\0\0\x04\xb0rest";
        assert_eq!(sniff_image(png), Some("image/png"));
        assert_eq!(dimensions(png), Some((1600, 1200)));
        let gif = b"GIF89a\x40\x06\xb0\x04";
        assert_eq!(dimensions(gif), Some((1600, 1200)));
        // A JPEG with an APP0 segment before its frame.
        let jpeg = b"\xff\xd8\xff\xe0\0\x04ab\xff\xc0\0\x11\x08\x04\xb0\x06\x40\x03";
        assert_eq!(sniff_image(jpeg), Some("image/jpeg"));
        assert_eq!(dimensions(jpeg), Some((1600, 1200)));
        let webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\x3f\x06\0\xaf\x04\0";
        assert_eq!(dimensions(webp), Some((1600, 1200)));
        for other in [
            &b"<svg xmlns"[..],
            b"<!doctype html>",
            b"%PDF-1.7",
            b"\xff\xd8",
            b"",
        ] {
            assert_eq!(sniff_image(other), None, "{other:?}");
        }
        // Cut anywhere, never a panic.
        for cut in 0..jpeg.len() {
            let _ = dimensions(&jpeg[..cut]);
            let _ = dimensions(&webp[..cut.min(webp.len())]);
        }
    }

    fn info(id: &str, size: u64) -> FileInfo {
        FileInfo {
            id: id.into(),
            name: "a.bin".into(),
            kind: "application/octet-stream".into(),
            size,
            width: None,
            height: None,
        }
    }

    #[test]
    fn the_quota_lets_the_oldest_go() {
        let media = Media::open(None, 100).unwrap();
        let ids: Vec<String> = (0..4).map(|_| new_id().unwrap()).collect();
        for id in &ids {
            media.keep(info(id, 40), Some(vec![0; 40])).unwrap();
        }
        assert!(media.get(&ids[0]).is_none() && media.get(&ids[1]).is_none());
        assert!(media.get(&ids[2]).is_some() && media.get(&ids[3]).is_some());
        assert_eq!(media.total(), 80);
        media.remove(&ids[3..]);
        assert_eq!(media.total(), 40);
        assert!(is_id(&ids[0]) && !is_id("../etc/passwd") && !is_id(&ids[0].to_uppercase()));
    }

    #[test]
    fn files_on_disk_come_back_after_a_restart_and_parts_do_not() {
        let dir = std::env::temp_dir().join(format!("lanchat-media-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let media = Media::open(Some(dir.clone()), 1000).unwrap();
        let id = new_id().unwrap();
        std::fs::write(media.part_path(&id).unwrap(), b"hello").unwrap();
        media.keep(info(&id, 5), None).unwrap();
        let cut = new_id().unwrap();
        std::fs::write(media.part_path(&cut).unwrap(), b"half").unwrap();
        drop(media);
        let media = Media::open(Some(dir.clone()), 1000).unwrap();
        let (kept, bytes) = media.get(&id).unwrap();
        assert_eq!(kept, info(&id, 5));
        assert!(matches!(bytes, Bytes::Disk(p) if std::fs::read(&p).unwrap() == b"hello"));
        assert!(!media.part_path(&cut).unwrap().exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
