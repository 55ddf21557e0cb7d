//! A post with files (`multipart/form-data`): its text fields become a [`Draft`],
//! its files are streamed to the [`Media`] store as they arrive, within
//! `--max-upload` each. Whatever goes wrong, no part of a file stays behind.

use futures_lite::{AsyncWriteExt as _, FutureExt as _};
use http_types::Request;
use smol::Timer;

use crate::config::Config;
use crate::error::Error;
use crate::media::{self, FileInfo, Media};
use crate::message::{Draft, MAX_FORM_BYTES};
use crate::multipart::{Bad, Multipart};

/// Files one post may carry.
pub const MAX_FILES: usize = 10;

/// The first bytes of a file kept aside, to tell its type and an image's size.
const SNIFF: usize = 64 * 1024;

/// Reads a multipart post: its fields and its files, stored. The files of a post
/// that is refused here are removed again.
pub async fn read(
    req: &mut Request,
    boundary: &str,
    config: &Config,
    media: &Media,
) -> Result<Draft, Error> {
    let most = config.max_upload * MAX_FILES as u64 + MAX_FORM_BYTES as u64;
    if req.len().is_some_and(|len| len as u64 > most) {
        return Err(Error::TooLarge);
    }
    let mut parts = Multipart::new(req.take_body(), boundary);
    let mut fields = Vec::new();
    let mut files: Vec<FileInfo> = Vec::new();
    let result = async {
        let mut text_bytes = 0;
        while let Some(part) = idle(parts.next_part(), config).await? {
            if part.filename.is_some() {
                if files.len() == MAX_FILES {
                    return Err(Error::BadRequest("at most 10 files in one message"));
                }
                if let Some(info) = store(&mut parts, &part, config, media).await? {
                    files.push(info);
                }
                continue;
            }
            let mut value = Vec::new();
            while idle(parts.data(&mut value), config).await? > 0 {
                text_bytes += value.len();
                if text_bytes > MAX_FORM_BYTES {
                    return Err(Error::TooLarge);
                }
            }
            let value = String::from_utf8(value)
                .map_err(|_| Error::BadRequest("the form data is not valid UTF-8"))?;
            fields.push((part.name, value));
        }
        Ok(())
    }
    .await;
    let ids: Vec<String> = files.iter().map(|f| f.id.clone()).collect();
    let draft = result.and_then(|()| {
        Draft::from_fields(fields, files).map_err(|e| Error::BadRequest(e.reason()))
    });
    if draft.is_err() {
        media.remove(&ids);
    }
    draft
}

/// Waits for one step of the body, for at most `--body-timeout` without progress:
/// a large file may take long on a slow network, as long as it keeps coming.
async fn idle<T>(
    step: impl std::future::Future<Output = Result<T, Bad>>,
    config: &Config,
) -> Result<T, Error> {
    let step = async {
        step.await.map_err(|bad| match bad {
            Bad::Malformed => Error::BadRequest("the multipart form data is malformed"),
            Bad::Cut => Error::BadRequest("the request body ended too soon"),
        })
    };
    let late = async {
        Timer::after(config.body_timeout).await;
        Err(Error::Timeout)
    };
    step.or(late).await
}

/// Streams one file part into the store; `None` for the empty part a form sends
/// when no file was chosen.
async fn store(
    parts: &mut Multipart<http_types::Body>,
    part: &crate::multipart::Part,
    config: &Config,
    media: &Media,
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
            if idle(parts.data(&mut chunk), config).await? == 0 {
                break;
            }
            size += chunk.len() as u64;
            if size > config.max_upload {
                return Err(Error::FileTooLarge(config.max_upload));
            }
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
    if media.keep(info.clone(), memory).is_err() {
        if let Some(path) = &part_path {
            let _ = smol::fs::remove_file(path).await;
        }
        return Err(Error::NotStored);
    }
    Ok(Some(info))
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
