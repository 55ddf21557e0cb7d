//! A streaming reader of `multipart/form-data` bodies (RFC 7578): a post with files,
//! from the page or from the form without JavaScript. Parts are read one at a time
//! and a part's data in pieces, so a file goes to its store as it arrives and the
//! whole body is never in memory.
//!
//! Invariants: a part's head is at most [`MAX_PART_HEAD`] bytes, however the body
//! is cut into reads; data is handed out only once it is known not to be the start
//! of the delimiter; a body that ends before its closing delimiter is an error,
//! never a short file taken for whole. What the reader buffers is at most one read
//! beyond a head or a delimiter: a few tens of KiB, whatever the body.

use futures_lite::{AsyncRead, AsyncReadExt as _};

/// The longest head of one part (its `Content-Disposition` and `Content-Type`).
pub const MAX_PART_HEAD: usize = 4096;

/// How much is read from the body at a time.
const READ: usize = 16 * 1024;

/// Why a body is not a multipart body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// The bytes do not follow the format.
    Malformed,
    /// The body ended (or could not be read) before its closing delimiter.
    Cut,
    /// A part's head is longer than [`MAX_PART_HEAD`].
    HeadTooLarge,
}

/// The head of one part: its field name and, for a file, the file's name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The `name` of `Content-Disposition: form-data`.
    pub name: String,
    /// The `filename`, for a file.
    pub filename: Option<String>,
    /// The `Content-Type`, if given.
    pub content_type: Option<String>,
    /// The bytes of the head as it came: what reading it made the server hold.
    pub head_len: usize,
}

/// Whether a `Content-Type` is `multipart/form-data` (a body with files).
pub fn is_form_data(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("");
    essence.trim().eq_ignore_ascii_case("multipart/form-data")
}

/// The boundary of a `Content-Type: multipart/form-data; boundary=...`.
pub fn boundary(content_type: &str) -> Option<String> {
    if !is_form_data(content_type) {
        return None;
    }
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty() && v.len() <= 70).then(|| v.to_string())
    })
}

/// Reads the parts of a body.
pub struct Multipart<R> {
    reader: R,
    /// `\r\n--<boundary>`.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` begin.
    pos: usize,
    /// Inside a part's data (before its delimiter).
    in_data: bool,
    done: bool,
}

impl<R: AsyncRead + Unpin> Multipart<R> {
    /// A reader of the body `reader`, whose parts are separated by `boundary`.
    pub fn new(reader: R, boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Multipart {
            reader,
            delimiter,
            // The body's first delimiter has no line break before it: one is
            // supposed, so that every delimiter is found the same way.
            buf: b"\r\n".to_vec(),
            pos: 0,
            // The preamble before the first delimiter is read as the data of a part
            // that nobody asked for.
            in_data: true,
            done: false,
        }
    }

    /// Reads more of the body into the buffer; `false` at its end.
    async fn fill(&mut self) -> Result<bool, Bad> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let have = self.buf.len();
        self.buf.resize(have + READ, 0);
        let n = self
            .reader
            .read(&mut self.buf[have..])
            .await
            .map_err(|_| Bad::Cut)?;
        self.buf.truncate(have + n);
        Ok(n > 0)
    }

    /// The next part's head; `None` after the last part.
    pub async fn next_part(&mut self) -> Result<Option<Part>, Bad> {
        // Whatever is left of the current part (or the preamble) is skipped.
        let mut sink = Vec::new();
        while self.in_data {
            sink.clear();
            self.data(&mut sink).await?;
        }
        if self.done {
            return Ok(None);
        }
        // After a delimiter: "--" ends the body, a line break starts a part.
        while self.buf.len() - self.pos < 2 {
            if !self.fill().await? {
                return Err(Bad::Cut);
            }
        }
        if &self.buf[self.pos..self.pos + 2] == b"--" {
            self.done = true;
            return Ok(None);
        }
        // Transport padding (spaces, tabs) may come before the line break.
        let head_end = loop {
            let unread = &self.buf[self.pos..];
            // Checked whether the end is in this read or not: a head that came in
            // one read is held whole as surely as one that came in several.
            let end = find(unread, b"\r\n\r\n");
            if end.unwrap_or(unread.len()) > MAX_PART_HEAD {
                return Err(Bad::HeadTooLarge);
            }
            if let Some(at) = end {
                break at;
            }
            if !self.fill().await? {
                return Err(Bad::Cut);
            }
        };
        let head = &self.buf[self.pos..self.pos + head_end];
        let mut part = parse_head(head)?;
        part.head_len = head_end + 4;
        self.pos += head_end + 4;
        self.in_data = true;
        Ok(Some(part))
    }

    /// Appends the next piece of the current part's data to `out`; `0` at the end
    /// of the part.
    pub async fn data(&mut self, out: &mut Vec<u8>) -> Result<usize, Bad> {
        if !self.in_data {
            return Ok(0);
        }
        loop {
            let unread = &self.buf[self.pos..];
            if let Some(at) = find(unread, &self.delimiter) {
                if at > 0 {
                    out.extend_from_slice(&unread[..at]);
                    self.pos += at;
                    return Ok(at);
                }
                // At the delimiter: the part ends here.
                self.pos += self.delimiter.len();
                self.in_data = false;
                return Ok(0);
            }
            // What may be the start of a delimiter stays until more is read.
            let safe = unread.len().saturating_sub(self.delimiter.len() - 1);
            if safe >= READ / 2 {
                out.extend_from_slice(&unread[..safe]);
                self.pos += safe;
                return Ok(safe);
            }
            if !self.fill().await? {
                return Err(Bad::Cut);
            }
        }
    }
}

/// `Content-Disposition: form-data; name="x"; filename="y"` and `Content-Type`.
fn parse_head(head: &[u8]) -> Result<Part, Bad> {
    let text = std::str::from_utf8(head).map_err(|_| Bad::Malformed)?;
    let mut part = Part {
        name: String::new(),
        filename: None,
        content_type: None,
        head_len: head.len(),
    };
    let mut disposition = false;
    // Leading transport padding and the line break after the delimiter.
    let text = text.trim_start_matches([' ', '\t']);
    let text = text.strip_prefix("\r\n").ok_or(Bad::Malformed)?;
    for line in text.split("\r\n") {
        let (name, value) = line.split_once(':').ok_or(Bad::Malformed)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-disposition") {
            disposition = true;
            let mut params = value.split(';');
            if !params
                .next()
                .is_some_and(|d| d.trim().eq_ignore_ascii_case("form-data"))
            {
                return Err(Bad::Malformed);
            }
            for p in params {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let v = unquote(v.trim());
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => part.name = v,
                    "filename" => part.filename = Some(v),
                    _ => {}
                }
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            part.content_type = Some(value.to_string());
        }
    }
    if !disposition || part.name.is_empty() {
        return Err(Bad::Malformed);
    }
    Ok(part)
}

/// A quoted string's content (browsers escape `"` as `%22` and send UTF-8 as is).
fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .replace("\\\"", "\"")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part of `body`, as (head, data), reading it `piece` bytes at a time.
    fn parts(body: &[u8], piece: usize) -> Result<Vec<(Part, Vec<u8>)>, Bad> {
        struct Trickle<'a>(&'a [u8], usize);
        impl AsyncRead for Trickle<'_> {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                out: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                std::task::Poll::Ready(Ok(n))
            }
        }
        smol::block_on(async {
            let mut m = Multipart::new(Trickle(body, piece), "XyZ");
            let mut all = Vec::new();
            while let Some(part) = m.next_part().await? {
                let mut data = Vec::new();
                while m.data(&mut data).await? > 0 {}
                all.push((part, data));
            }
            Ok(all)
        })
    }

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhi there\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--Xy\r\n--XyX-\xff\xd9\r\n--XyZ--\r\n";

    #[test]
    fn parts_and_their_data_come_out_whole_however_the_body_is_cut() {
        for piece in [1, 2, 3, 7, 64, 100_000] {
            let all = parts(BODY, piece).unwrap();
            assert_eq!(all.len(), 2, "{piece}");
            assert_eq!(all[0].0.name, "message");
            assert_eq!(all[0].1, b"hi there");
            assert_eq!(all[1].0.filename.as_deref(), Some("a \"b\".jpg"));
            assert_eq!(all[1].0.content_type.as_deref(), Some("image/jpeg"));
            assert_eq!(all[1].1, b"\xff\xd8\r\n--Xy\r\n--XyX-\xff\xd9", "{piece}");
        }
    }

    #[test]
    fn a_body_cut_short_or_malformed_is_an_error() {
        for end in [10, 60, BODY.len() - 8, BODY.len() - 3] {
            assert!(parts(&BODY[..end], 5).is_err(), "{end}");
        }
        let no_disposition = b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--\r\n";
        assert_eq!(parts(no_disposition, 4), Err(Bad::Malformed));
    }

    #[test]
    fn a_long_part_head_is_refused_whether_it_came_in_one_read_or_many() {
        let name = "n".repeat(MAX_PART_HEAD);
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nx\r\n--XyZ--\r\n"
        );
        for piece in [body.len(), READ, 1000, 7] {
            assert_eq!(
                parts(body.as_bytes(), piece),
                Err(Bad::HeadTooLarge),
                "{piece}"
            );
        }
        // Just within the limit, it reads.
        let name = "n".repeat(MAX_PART_HEAD - 60);
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nx\r\n--XyZ--\r\n"
        );
        assert_eq!(parts(body.as_bytes(), body.len()).unwrap()[0].0.name, name);
    }

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----WebKitFormBoundaryA1").as_deref(),
            Some("----WebKitFormBoundaryA1")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"q\"").as_deref(),
            Some("q")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("text/plain; boundary=x"), None);
    }

    #[test]
    fn only_form_data_is_an_upload_however_it_is_written() {
        for yes in [
            "multipart/form-data",
            " MULTIPART/Form-Data ; boundary=x",
            "multipart/form-data;",
        ] {
            assert!(is_form_data(yes), "{yes:?}");
        }
        for no in [
            "",
            ";multipart/form-data",
            "multipart/mixed; boundary=x",
            "application/x-www-form-urlencoded",
            "multipart/form-data2",
            "text/plain; x=multipart/form-data",
        ] {
            assert!(!is_form_data(no), "{no:?}");
        }
    }
}
