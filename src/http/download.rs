//! Writing a shared file to a connection: the head written here, the bytes by the
//! kernel (`sendfile`) from the file on disk, or in one write from memory. No copy
//! of a photo passes through the process on its way to fifty phones. The head of
//! every other answer from memory is written here too ([`response_head`]).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::AsyncWriteExt as _;
use http_types::{Response, StatusCode};
use rustix::io::Errno;

use crate::io::{with_deadline, Socket};

use super::head::{end_head, response_head, status_lines, HEAD_ROOM, ONE_WRITE};

/// Where a file's bytes come from.
#[derive(Debug)]
pub enum Source {
    /// No body: `304`, or the answer to `HEAD`.
    None,
    /// Held in memory.
    Memory(Arc<Vec<u8>>),
    /// Built into the binary (the page's files).
    Static(&'static [u8]),
    /// A file on disk.
    Disk(std::fs::File),
}

/// The status and headers of an answer with a file.
#[derive(Debug)]
pub enum FileHead {
    /// Made for this request; its body is not used.
    Response(Box<Response>),
    /// Made once for the file: the status, and the header lines that follow it
    /// (without `Content-Length` and `Date`, which are added).
    Lines(StatusCode, &'static str),
}

/// A file to send: the answer's status and headers, and `len` bytes of `source`
/// from `start`.
#[derive(Debug)]
pub struct Download {
    /// Status and headers.
    pub head: FileHead,
    /// Where the bytes are.
    pub source: Source,
    /// The first byte sent.
    pub start: u64,
    /// How many are sent (the `Content-Length`).
    pub len: u64,
}

impl Download {
    /// Whether the body is more than one write: a photo, not one of the page's files.
    pub fn is_large(&self) -> bool {
        self.len > ONE_WRITE as u64
    }
}

/// The most one `sendfile` call is asked to move, so that one large file does not
/// hold a thread for long.
const STEP: usize = 1 << 20;

/// Writes the head and the bytes, each step within `timeout`.
pub async fn write(
    stream: &Socket,
    download: Download,
    send_body: bool,
    closes: bool,
    timeout: Duration,
) -> io::Result<()> {
    let mut writer = &**stream;
    let start = download.start as usize;
    let end = start + download.len as usize;
    let in_memory = match &download.source {
        Source::Memory(bytes) => Some(bytes.get(start..end)),
        Source::Static(bytes) => Some(bytes.get(start..end)),
        _ => None,
    };
    // Room behind the head only for a body that goes in the same write.
    let room = match in_memory {
        Some(Some(body)) if send_body && body.len() <= ONE_WRITE => body.len(),
        _ => 0,
    };
    let head = head(&download.head, download.len, closes, room);
    match (in_memory, send_body) {
        (Some(body), true) => {
            let body = body.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            // A small answer (a page's file) goes in one write, head and body together.
            if body.len() <= ONE_WRITE {
                let mut all = head;
                all.extend_from_slice(body);
                return with_deadline(writer.write_all(&all), timeout).await;
            }
            with_deadline(writer.write_all(&head), timeout).await?;
            for piece in body.chunks(STEP) {
                with_deadline(writer.write_all(piece), timeout).await?;
            }
            Ok(())
        }
        (None, true) => match download.source {
            Source::Disk(file) => {
                send_file(stream, &head, &file, download.start, download.len, timeout).await
            }
            _ => with_deadline(writer.write_all(&head), timeout).await,
        },
        (_, false) => with_deadline(writer.write_all(&head), timeout).await,
    }
}

/// The head, then `len` bytes of `file` from `start`, copied by the kernel.
async fn send_file(
    stream: &Socket,
    head: &[u8],
    file: &std::fs::File,
    start: u64,
    len: u64,
    timeout: Duration,
) -> io::Result<()> {
    let mut writer = &**stream;
    with_deadline(writer.write_all(head), timeout).await?;
    let mut offset = start;
    let end = start + len;
    while offset < end {
        let want = (end - offset).min(STEP as u64) as usize;
        match rustix::fs::sendfile(stream.get_ref(), file, Some(&mut offset), want) {
            // The file is shorter than its description said.
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            // A turn for the chat's tasks between steps (see `sched`).
            Ok(_) if offset < end => futures_lite::future::yield_now().await,
            Ok(_) => {}
            Err(Errno::AGAIN) => with_deadline(stream.writable(), timeout).await?,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The status line and headers, with `Content-Length` and `Date`, in a buffer with
/// room for `room` more bytes.
fn head(given: &FileHead, len: u64, closes: bool, room: usize) -> Vec<u8> {
    match given {
        FileHead::Response(res) => response_head(res, len, closes, room),
        FileHead::Lines(status, lines) => {
            let mut head = status_lines(*status, len, HEAD_ROOM + room);
            head.extend_from_slice(lines.as_bytes());
            end_head(head, closes)
        }
    }
}
