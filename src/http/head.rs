//! The heads of the server's answers, written by the server itself: the status
//! line, `Content-Length`, `Date` and the headers a handler set, in one buffer with
//! room for a small body behind it, so that an answer from memory is one `send`.
//! (async-h1's `Encoder`, which builds a header value for the length and the date
//! and sorts the headers per answer, is left for a streamed or chunked body.)

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http_types::headers::{CONTENT_LENGTH, DATE};
use http_types::{Response, StatusCode};

/// Bodies up to this size are copied behind their head, for a single `send`
/// (files here, other answers in `conn`).
pub const ONE_WRITE: usize = 64 * 1024;

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
pub fn status_lines(status: StatusCode, len: u64, capacity: usize) -> Vec<u8> {
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

pub fn end_head(mut head: Vec<u8>, closes: bool) -> Vec<u8> {
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
    use std::time::Duration;

    #[test]
    fn dates_are_imf_fixdates() {
        let at = |secs| http_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_795_996_351), "Sun, 29 Nov 2026 23:52:31 GMT");
    }
}
