//! Files: those people shared (`/media/<id>`, from the store, with `Range` and an
//! immutable `ETag`) and the page's own (built into the binary, gzipped when
//! accepted). Both are written as a head and then the bytes, by the kernel where
//! it can (see [`crate::download`]).

use http_types::headers::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use http_types::{Request, Response, StatusCode};

use crate::assets;
use crate::error::Error;
use crate::http::download::{Download, FileHead, Source};
use crate::media::Media;

use super::Reply;

/// `GET /media/<id>`, as the connection writes it.
pub fn media(req: &Request, id: &str, media: &Media, json: bool) -> Reply {
    match serve_file(req, id, media) {
        Ok(download) => Reply::File(Box::new(download)),
        Err(e) => Reply::response(e.into_response(json)),
    }
}

/// `GET /` or `GET /<file>`, as the connection writes it.
pub fn asset(req: &Request, path: &str, json: bool) -> Reply {
    match page_file(req, path) {
        Ok(download) => Reply::File(Box::new(download)),
        Err(e) => Reply::response(e.into_response(json)),
    }
}

/// `GET /media/<id>`: a shared file. Immutable (the id names its bytes forever),
/// with `ETag` and one `Range`. Images whose bytes are JPEG, PNG, WebP or GIF are
/// shown inline; anything else is a download in a sandbox, so that no upload can
/// run script in the chat's origin.
fn serve_file(req: &Request, id: &str, media: &Media) -> Result<Download, Error> {
    if !crate::media::is_id(id) {
        return Err(Error::NotFound);
    }
    let (info, bytes) = media.get(id).ok_or(Error::Gone)?;
    let etag = format!("\"{id}\"");
    let fresh = not_modified(req, &etag);
    let range = match req.header("range") {
        Some(v) if !fresh => byte_range(v.as_str(), info.size)?,
        _ => None,
    };
    let status = match (fresh, range) {
        (true, _) => StatusCode::NotModified,
        (false, Some(_)) => StatusCode::PartialContent,
        (false, None) => StatusCode::Ok,
    };
    let mut res = Response::new(status);
    res.insert_header(ETAG, etag.as_str());
    res.insert_header(CACHE_CONTROL, "private, max-age=31536000, immutable");
    res.insert_header("x-content-type-options", "nosniff");
    res.insert_header(ACCEPT_RANGES, "bytes");
    if fresh {
        return Ok(Download {
            head: FileHead::Response(Box::new(res)),
            source: Source::None,
            start: 0,
            len: 0,
        });
    }
    let inline = crate::media::INLINE.contains(&info.kind.as_str());
    if inline {
        res.insert_header(CONTENT_TYPE, info.kind.as_str());
        res.insert_header(
            "content-security-policy",
            "sandbox; default-src 'none'; img-src 'self'",
        );
    } else {
        res.insert_header(CONTENT_TYPE, "application/octet-stream");
        res.insert_header("content-security-policy", "sandbox");
        res.insert_header("content-disposition", attachment(&info.name));
    }
    let (start, end) = range.unwrap_or((0, info.size.saturating_sub(1)));
    let len = if info.size == 0 { 0 } else { end - start + 1 };
    if range.is_some() {
        res.insert_header(
            "content-range",
            format!("bytes {start}-{end}/{}", info.size),
        );
    }
    let source = match bytes {
        crate::media::Bytes::Memory(all) => Source::Memory(all),
        // Opened here (an open does not wait long, even on an SD card); the kernel
        // then copies from it to the socket.
        crate::media::Bytes::Disk(path) => {
            Source::Disk(std::fs::File::open(&path).map_err(|_| Error::Gone)?)
        }
    };
    Ok(Download {
        head: FileHead::Response(Box::new(res)),
        source,
        start,
        len,
    })
}

/// One range of `Range: bytes=...` within a file of `size` bytes, as first and
/// last byte; `None` for a header this server does not take (several ranges, other
/// units), which is answered with the whole file.
fn byte_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, Error> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = |t: &str| t.parse::<u64>().ok();
    let range = match (a.is_empty(), b.is_empty()) {
        // The last b bytes.
        (true, false) => {
            let Some(n) = parsed(b) else { return Ok(None) };
            if n == 0 {
                return Err(Error::RangeNotSatisfiable(size));
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (false, _) => {
            let Some(first) = parsed(a) else {
                return Ok(None);
            };
            let last = if b.is_empty() {
                Some(u64::MAX)
            } else {
                parsed(b)
            };
            let Some(last) = last else { return Ok(None) };
            if last < first {
                return Ok(None);
            }
            (first, last.min(size.saturating_sub(1)))
        }
        (true, true) => return Ok(None),
    };
    if size == 0 || range.0 >= size {
        return Err(Error::RangeNotSatisfiable(size));
    }
    Ok(Some(range))
}

/// `Content-Disposition` for a download under its own name, in any script
/// (RFC 6266: an ASCII fallback and the UTF-8 name percent-encoded).
fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// One of the page's files, built into the binary: the same bytes for every request,
/// written with their head in one `send`.
fn page_file(req: &Request, path: &str) -> Result<Download, Error> {
    let asset = assets::lookup(path).ok_or(Error::NotFound)?;
    let accepts_gzip = req
        .header(ACCEPT_ENCODING)
        .is_some_and(|v| v.as_str().split(',').any(|e| e.trim().starts_with("gzip")));
    let gzip = asset.gzip.filter(|_| accepts_gzip);
    let etag = match gzip {
        Some(_) => &asset.gzip_etag,
        None => &asset.etag,
    };
    let fresh = not_modified(req, etag);
    let (status, bytes) = match fresh {
        true => (StatusCode::NotModified, None),
        false => (StatusCode::Ok, Some(gzip.unwrap_or_else(|| asset.body()))),
    };
    // The headers are the same for every request: made once, with the table.
    Ok(Download {
        head: FileHead::Lines(status, asset.head(gzip.is_some(), fresh)),
        source: bytes.map_or(Source::None, Source::Static),
        start: 0,
        len: bytes.map_or(0, |b| b.len() as u64),
    })
}

/// Whether `If-None-Match` names `etag`, by the weak comparison RFC 9110 (13.1.2)
/// asks of it: `W/"x"` and `"x"` are the same tag there (a proxy may have weakened
/// it), and `*` matches any.
fn not_modified(req: &Request, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let own = opaque(etag);
    req.header(IF_NONE_MATCH).is_some_and(|values| {
        values.iter().any(|v| {
            v.as_str()
                .split(',')
                .any(|t| t.trim() == "*" || opaque(t) == own)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_one_span_within_the_file() {
        assert_eq!(byte_range("bytes=0-99", 1000).unwrap(), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000).unwrap(), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000).unwrap(), Some((900, 999)));
        assert_eq!(
            byte_range("bytes=990-5000", 1000).unwrap(),
            Some((990, 999))
        );
        assert_eq!(byte_range("bytes=-5000", 1000).unwrap(), Some((0, 999)));
        for whole in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(byte_range(whole, 1000).unwrap(), None, "{whole}");
        }
        for beyond in ["bytes=1000-", "bytes=-0", "bytes=2000-3000"] {
            assert_eq!(
                byte_range(beyond, 1000),
                Err(Error::RangeNotSatisfiable(1000))
            );
        }
    }

    #[test]
    fn downloads_keep_their_name_in_any_script() {
        assert_eq!(
            attachment("menü \"x\".pdf"),
            "attachment; filename=\"men_ _x_.pdf\"; filename*=UTF-8''men%C3%BC%20%22x%22.pdf"
        );
    }
}
