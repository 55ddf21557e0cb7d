//! Writing a shared file to a connection: the head written here, the bytes by the
//! kernel (`sendfile`) from the file on disk, or in one write from memory. No copy
//! of a photo passes through the process on its way to fifty phones. The head of
//! every other answer from memory is written here too ([`response_head`]).

use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::AsyncWriteExt as _;
use http_types::headers::{CONTENT_LENGTH, DATE};
use http_types::{Response, StatusCode};
use rustix::io::Errno;

use crate::outbox::Socket;
use crate::stream::with_deadline;

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
pub enum Head {
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
    pub head: Head,
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

/// Bodies up to this size are copied behind their head, for a single `send`
/// (files here, other answers in `conn`).
pub const ONE_WRITE: usize = 64 * 1024;

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
fn head(given: &Head, len: u64, closes: bool, room: usize) -> Vec<u8> {
    match given {
        Head::Response(res) => response_head(res, len, closes, room),
        Head::Lines(status, lines) => {
            let mut head = status_lines(*status, len, HEAD_ROOM + room);
            head.extend_from_slice(lines.as_bytes());
            end_head(head, closes)
        }
    }
}

/// Room for a head in a buffer, so that it is not grown as it is written.
pub const HEAD_ROOM: usize = 512;

/// The head of `res`: its status and headers, with `Content-Length: len` and
/// `Date`, in a buffer with room for `body` more bytes. For every answer written
/// from memory, files or not: building a header value for the length and another
/// for the date in `res` (as async-h1's `Encoder` does) cost six allocations and
/// two hashed inserts per answer.
pub fn response_head(res: &Response, len: u64, closes: bool, body: usize) -> Vec<u8> {
    let mut head = status_lines(res.status(), len, HEAD_ROOM + body);
    for (name, values) in res.iter() {
        // Written above; a handler's own would be a second.
        if *name == CONTENT_LENGTH || *name == DATE {
            continue;
        }
        for value in values.iter() {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_str().as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    end_head(head, closes)
}

/// The status line, `Content-Length` and `Date`.
fn status_lines(status: StatusCode, len: u64, capacity: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut head = Vec::with_capacity(capacity);
    // Writing to a `Vec` cannot fail.
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\ncontent-length: {len}\r\ndate: ",
        u16::from(status),
        status.canonical_reason(),
    );
    push_date(&mut head, SystemTime::now());
    head.extend_from_slice(b"\r\n");
    head
}

fn end_head(mut head: Vec<u8>, closes: bool) -> Vec<u8> {
    if closes {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Appends the date of `now`, formatted once per second per thread.
fn push_date(out: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        static LAST: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    LAST.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *text = http_date(now);
            *at = secs;
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// `Sun, 29 Nov 2026 23:52:31 GMT` (RFC 9110's IMF-fixdate).
fn http_date(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        let at = |secs| http_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_795_996_351), "Sun, 29 Nov 2026 23:52:31 GMT");
    }
}
