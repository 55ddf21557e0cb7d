//! Files people share in the chat (photos above all): stored as they arrive, kept
//! within limits that leave everyone room, served by an id nobody can guess.
//!
//! Invariants:
//! - With `--data-dir` a file is `media/<id>` with its description beside it in
//!   `media/<id>.json`; it is written to `media/<id>.part` and renamed only when
//!   whole, so a crash or a refused upload leaves no file that looks whole (stale
//!   `.part` files are removed at start). Without one, files are held in memory.
//! - Only files a message names are kept: at start, files no restored message names
//!   are removed; a file whose message is deleted or leaves history goes with it.
//! - What files cost is counted as they take room: on disk, the blocks of the file
//!   and of its description; in memory, their bytes and [`META_COST`]. The cost of all
//!   never exceeds `--media-quota`, nor the cost of one client's files its share
//!   (`--media-share`): a new file pushes out first its own sender's oldest, then
//!   the oldest of all.
//! - The disk keeps `--min-free` bytes free for the history: a file being written
//!   first pushes out the oldest files, and is refused when none is left to go.
//! - Whether a file is shown inline is decided by its first bytes (JPEG, PNG, WebP,
//!   GIF), never by its name or the type its sender claimed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::client::ClientKey;

mod image;
pub use image::{dimensions, sniff_image};

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

/// A file's bytes, wherever they are kept.
#[derive(Debug, Clone)]
pub enum Bytes {
    /// In memory (no `--data-dir`).
    Memory(Arc<Vec<u8>>),
    /// On disk.
    Disk(PathBuf),
}

/// What a file in memory costs beyond its bytes: its description and the index.
pub const META_COST: u64 = 1024;

/// How much room the files may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The cost of all files kept.
    pub quota: u64,
    /// The cost of one client's files.
    pub share: u64,
    /// Bytes the disk keeps free, for the history (with a data directory).
    pub floor: u64,
}

struct Kept {
    info: FileInfo,
    bytes: Bytes,
    /// What it takes: see the module docs.
    cost: u64,
    /// Who sent it, while this run of the server knows.
    owner: Option<ClientKey>,
}

struct Index {
    files: HashMap<String, Kept>,
    /// Ids, oldest first: the order in which the limits let them go.
    order: VecDeque<String>,
    /// The cost of all.
    total: u64,
    /// The cost of each client's.
    owned: HashMap<ClientKey, u64>,
}

impl Index {
    /// Takes a file out of the index; its bytes are the caller's to remove.
    fn take(&mut self, id: &str) -> Option<Kept> {
        let kept = self.files.remove(id)?;
        self.total -= kept.cost;
        if let Some(owner) = kept.owner {
            if let Some(owned) = self.owned.get_mut(&owner) {
                *owned -= kept.cost;
                if *owned == 0 {
                    self.owned.remove(&owner);
                }
            }
        }
        if let Some(at) = self.order.iter().position(|o| o == id) {
            self.order.remove(at);
        }
        Some(kept)
    }

    /// The oldest file, or `owner`'s oldest.
    fn oldest(&self, owner: Option<ClientKey>) -> Option<String> {
        self.order
            .iter()
            .find(|id| owner.is_none() || self.files.get(*id).is_some_and(|k| k.owner == owner))
            .cloned()
    }
}

/// Why a file cannot be kept.
#[derive(Debug)]
pub enum NotKept {
    /// The disk is down to its floor and no file is left to make room.
    NoRoom,
    /// Writing or renaming it failed.
    Io(io::Error),
}

/// The files kept; shared by the connections (a lock held for lookups only, never
/// across a read or write of a file).
pub struct Media {
    dir: Option<PathBuf>,
    limits: Limits,
    index: Mutex<Index>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media").field("dir", &self.dir).finish()
    }
}

/// A new, unguessable id: 128 bits from the system's random source.
pub fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `id` has the form of an id (and so may name a file on disk).
pub fn is_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Bytes free on the file system of `dir` for an unprivileged writer.
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// What a file on disk takes: its blocks and its description's.
fn disk_cost(file: &Path) -> u64 {
    let blocks = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.blocks() * 512);
    blocks(file) + blocks(&file.with_extension("json"))
}

impl Media {
    /// Files in `dir/media` (made if missing), or in memory without a `dir`. Of the
    /// files found there, those `named` does not hold are removed, and the oldest
    /// go while the limits or the disk's floor need the room.
    pub fn open(
        dir: Option<PathBuf>,
        limits: Limits,
        named: &HashSet<String>,
    ) -> io::Result<Media> {
        let mut index = Index {
            files: HashMap::new(),
            order: VecDeque::new(),
            total: 0,
            owned: HashMap::new(),
        };
        let dir = dir.map(|d| d.join("media"));
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
            let mut found = Vec::new();
            let mut unnamed = 0;
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
                    (Some(info), Ok(meta))
                        if meta.len() == info.size && info.id == id && named.contains(id) =>
                    {
                        let modified = meta.modified().ok();
                        found.push((modified, info, file));
                    }
                    (Some(info), Ok(_)) if info.id == id && !named.contains(id) => {
                        unnamed += 1;
                        let _ = std::fs::remove_file(&path);
                        let _ = std::fs::remove_file(&file);
                    }
                    _ => {
                        let _ = std::fs::remove_file(&path);
                        let _ = std::fs::remove_file(&file);
                    }
                }
            }
            if unnamed > 0 {
                crate::info!("removed {unnamed} files that no message in history names");
            }
            found.sort_by_key(|(modified, _, _)| *modified);
            for (_, info, file) in found {
                let cost = disk_cost(&file);
                index.total += cost;
                index.order.push_back(info.id.clone());
                let bytes = Bytes::Disk(file);
                let kept = Kept {
                    info,
                    bytes,
                    cost,
                    owner: None,
                };
                index.files.insert(kept.info.id.clone(), kept);
            }
        }
        let media = Media {
            dir,
            limits,
            index: Mutex::new(index),
        };
        media.fit(None, 0);
        if media.room_for(0).is_err() {
            crate::warn!(
                "the disk has less than {} bytes free and no file is left to remove; \
                 files are refused until there is room (messages are still taken)",
                limits.floor
            );
        }
        Ok(media)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where an upload is written while it arrives (with `--data-dir`).
    pub fn part_path(&self, id: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{id}.part")))
    }

    /// Makes sure the disk can take `more` bytes and keep its floor free, letting the
    /// oldest files go while it cannot. `Err` when there is no file left to let go.
    pub fn room_for(&self, more: u64) -> Result<(), NotKept> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        loop {
            let free = free_bytes(dir).map_err(NotKept::Io)?;
            if free >= self.limits.floor.saturating_add(more) {
                return Ok(());
            }
            let gone = {
                let mut index = self.index();
                let oldest = index.oldest(None);
                oldest.and_then(|id| index.take(&id))
            };
            match gone {
                Some(kept) => self.remove_bytes(&kept.bytes),
                None => return Err(NotKept::NoRoom),
            }
        }
    }

    /// Keeps a whole upload from `owner`: `bytes` in memory, or the `.part` file
    /// written for `id`. Its sender's oldest files go while its share needs the
    /// room, then the oldest of all while the quota does.
    pub fn keep(
        &self,
        info: FileInfo,
        bytes: Option<Vec<u8>>,
        owner: ClientKey,
    ) -> Result<(), NotKept> {
        let (kept, cost) = match (&self.dir, bytes) {
            (Some(dir), _) => {
                let file = dir.join(&info.id);
                let json =
                    serde_json::to_vec(&info).map_err(|e| NotKept::Io(io::Error::other(e)))?;
                let meta = dir.join(format!("{}.json", info.id));
                self.room_for(json.len() as u64)?;
                std::fs::write(&meta, json).map_err(NotKept::Io)?;
                if let Err(e) = std::fs::rename(dir.join(format!("{}.part", info.id)), &file) {
                    let _ = std::fs::remove_file(&meta);
                    return Err(NotKept::Io(e));
                }
                let cost = disk_cost(&file);
                (Bytes::Disk(file), cost)
            }
            (None, Some(bytes)) => {
                let cost = bytes.len() as u64 + META_COST;
                (Bytes::Memory(Arc::new(bytes)), cost)
            }
            (None, None) => return Err(NotKept::Io(io::ErrorKind::InvalidInput.into())),
        };
        self.fit(Some(owner), cost);
        let mut index = self.index();
        index.total += cost;
        *index.owned.entry(owner).or_insert(0) += cost;
        index.order.push_back(info.id.clone());
        index.files.insert(
            info.id.clone(),
            Kept {
                info,
                bytes: kept,
                cost,
                owner: Some(owner),
            },
        );
        Ok(())
    }

    /// Lets files go until `more` fits: `owner`'s oldest within its share, then the
    /// oldest of all within the quota.
    fn fit(&self, owner: Option<ClientKey>, more: u64) {
        let mut gone = Vec::new();
        {
            let mut index = self.index();
            if let Some(owner) = owner {
                while index.owned.get(&owner).copied().unwrap_or(0) + more > self.limits.share {
                    let Some(id) = index.oldest(Some(owner)) else {
                        break;
                    };
                    gone.extend(index.take(&id));
                }
            }
            while index.total + more > self.limits.quota {
                let Some(id) = index.oldest(None) else {
                    break;
                };
                gone.extend(index.take(&id));
            }
        }
        for kept in gone {
            self.remove_bytes(&kept.bytes);
        }
    }

    fn remove_bytes(&self, bytes: &Bytes) {
        if let Bytes::Disk(file) = bytes {
            let _ = std::fs::remove_file(file);
            let _ = std::fs::remove_file(file.with_extension("json"));
        }
    }

    /// Removes files (their message was deleted, or left history).
    pub fn remove(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let gone: Vec<Kept> = {
            let mut index = self.index();
            ids.iter().filter_map(|id| index.take(id)).collect()
        };
        for kept in gone {
            self.remove_bytes(&kept.bytes);
        }
    }

    /// A kept file: its description and where its bytes are.
    pub fn get(&self, id: &str) -> Option<(FileInfo, Bytes)> {
        let index = self.index();
        let kept = index.files.get(id)?;
        Some((kept.info.clone(), kept.bytes.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const A: ClientKey = ClientKey::v4([10, 0, 0, 1]);
    const B: ClientKey = ClientKey::v4([10, 0, 0, 2]);

    fn limits(quota: u64, share: u64) -> Limits {
        Limits {
            quota,
            share,
            floor: 0,
        }
    }

    /// A fresh directory of its own, removed when dropped.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("lanchat-media-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn keep_on_disk(media: &Media, size: usize, owner: ClientKey) -> Result<String, NotKept> {
        let id = new_id().unwrap();
        std::fs::write(media.part_path(&id).unwrap(), vec![7u8; size]).unwrap();
        media.keep(info(&id, size as u64), None, owner)?;
        Ok(id)
    }

    #[test]
    fn the_quota_lets_the_oldest_go() {
        let cost = 40 + META_COST;
        let media = Media::open(None, limits(2 * cost, u64::MAX), &HashSet::new()).unwrap();
        let ids: Vec<String> = (0..4).map(|_| new_id().unwrap()).collect();
        for id in &ids {
            media.keep(info(id, 40), Some(vec![0; 40]), A).unwrap();
        }
        assert!(media.get(&ids[0]).is_none() && media.get(&ids[1]).is_none());
        assert!(media.get(&ids[2]).is_some() && media.get(&ids[3]).is_some());
        media.remove(&ids[3..]);
        assert_eq!(media.index().total, cost);
        assert!(is_id(&ids[0]) && !is_id("../etc/passwd") && !is_id(&ids[0].to_uppercase()));
    }

    #[test]
    fn one_client_pushes_out_its_own_files_not_everyone_elses() {
        let cost = 100 + META_COST;
        let media = Media::open(None, limits(10 * cost, 3 * cost), &HashSet::new()).unwrap();
        let keep = |owner| {
            let id = new_id().unwrap();
            media
                .keep(info(&id, 100), Some(vec![0; 100]), owner)
                .unwrap();
            id
        };
        let others: Vec<String> = (0..3).map(|_| keep(A)).collect();
        let mine: Vec<String> = (0..50).map(|_| keep(B)).collect();
        assert!(
            others.iter().all(|id| media.get(id).is_some()),
            "A's all kept"
        );
        let kept: Vec<&String> = mine.iter().filter(|id| media.get(id).is_some()).collect();
        assert_eq!(
            kept,
            mine[47..].iter().collect::<Vec<_>>(),
            "B's newest three"
        );
    }

    #[test]
    fn a_file_on_disk_costs_its_blocks_so_tiny_files_cannot_crowd_the_disk() {
        let dir = TempDir::new("blocks");
        // Room for 40 KiB: were a byte counted as a byte, 500 files would fit.
        let media = Media::open(
            Some(dir.0.clone()),
            limits(40 << 10, u64::MAX),
            &HashSet::new(),
        )
        .unwrap();
        let ids: Vec<String> = (0..500)
            .map(|_| keep_on_disk(&media, 1, A).unwrap())
            .collect();
        let kept = ids.iter().filter(|id| media.get(id).is_some()).count();
        assert!(
            (1..=10).contains(&kept),
            "{kept} one-byte files kept in 40 KiB"
        );
        let on_disk = std::fs::read_dir(dir.0.join("media")).unwrap().count();
        assert_eq!(
            on_disk,
            2 * kept,
            "each kept file and its description, no more"
        );
    }

    #[test]
    fn the_disk_keeps_its_floor_free_and_files_are_refused_when_none_is_left_to_go() {
        let dir = TempDir::new("floor");
        let media = Media::open(
            Some(dir.0.clone()),
            limits(u64::MAX, u64::MAX),
            &HashSet::new(),
        )
        .unwrap();
        let first = keep_on_disk(&media, 10, A).unwrap();
        assert!(media.room_for(1 << 20).is_ok());
        // A floor no disk has: every file goes, and then there is no room.
        let media = Media {
            limits: Limits {
                floor: u64::MAX / 2,
                ..media.limits
            },
            ..media
        };
        assert!(matches!(media.room_for(0), Err(NotKept::NoRoom)));
        assert!(media.get(&first).is_none());
        assert!(!dir.0.join("media").join(&first).exists());
    }

    #[test]
    fn files_on_disk_come_back_after_a_restart_unless_no_message_names_them() {
        let dir = TempDir::new("restart");
        let open = |named: &[&String]| {
            let named = named.iter().map(|s| s.to_string()).collect();
            Media::open(Some(dir.0.clone()), limits(1 << 20, 1 << 20), &named).unwrap()
        };
        let media = open(&[]);
        let named = keep_on_disk(&media, 5, A).unwrap();
        let unnamed = keep_on_disk(&media, 5, A).unwrap();
        let cut = new_id().unwrap();
        std::fs::write(media.part_path(&cut).unwrap(), b"half").unwrap();
        drop(media);
        let media = open(&[&named]);
        let (kept, bytes) = media.get(&named).unwrap();
        assert_eq!(kept, info(&named, 5));
        assert!(matches!(bytes, Bytes::Disk(p) if std::fs::read(&p).unwrap() == [7; 5]));
        assert!(media.get(&unnamed).is_none());
        assert!(!dir.0.join("media").join(&unnamed).exists());
        assert!(!media.part_path(&cut).unwrap().exists());
    }
}
