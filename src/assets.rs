//! The files of `web/`, compiled into the binary (no file is read at run time), with
//! their gzip forms made at build time by `build.rs`.
//!
//! Each file is served with its content type, a strong `ETag` (a hash of its bytes,
//! so a new binary with a changed page gets a new tag) and `Cache-Control: no-cache`
//! (a phone revalidates each time and gets a `304` when nothing changed).

use std::collections::HashMap;
use std::sync::OnceLock;

use include_dir::{include_dir, Dir};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");
static GZIP: Dir<'static> = include_dir!("$OUT_DIR/gz");

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The bytes as written in `web/`.
    pub body: &'static [u8],
    /// The gzip form, when it is smaller.
    pub gzip: Option<&'static [u8]>,
    /// The `ETag` of `body`.
    pub etag: String,
    /// The `ETag` of the gzip form, a different representation of the same file:
    /// `etag` with `-gz` inside the quotes.
    pub gzip_etag: String,
    /// The header lines of every answer with this file, made once (the same for
    /// every request but the date): see [`Asset::head`].
    heads: [String; 4],
}

impl Asset {
    /// The header lines (after the status line; without `Content-Length` and
    /// `Date`) of an answer with this file: gzipped or not, whole or `304`.
    pub fn head(&self, gzip: bool, not_modified: bool) -> &str {
        &self.heads[usize::from(gzip) * 2 + usize::from(not_modified)]
    }
}

/// The asset for a URL path; `/` is `index.html`.
pub fn lookup(path: &str) -> Option<&'static Asset> {
    let name = path.strip_prefix('/')?;
    let name = if name.is_empty() { "index.html" } else { name };
    table().get(name)
}

fn table() -> &'static HashMap<&'static str, Asset> {
    static TABLE: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        collect(&WEB, &mut table);
        table
    })
}

fn collect(dir: &'static Dir<'static>, table: &mut HashMap<&'static str, Asset>) {
    for file in dir.files() {
        let Some(name) = file.path().to_str() else {
            continue;
        };
        let etag = format!("\"{:016x}\"", fnv1a(file.contents()));
        let gzip_etag = format!("{}-gz\"", etag.trim_end_matches('"'));
        let content_type = content_type(name);
        let lines = |tag: &str, whole: bool, gzip: bool| {
            let mut head =
                format!("etag: {tag}\r\ncache-control: no-cache\r\nvary: accept-encoding\r\n");
            if whole {
                head.push_str(&format!("content-type: {content_type}\r\n"));
                if gzip {
                    head.push_str("content-encoding: gzip\r\n");
                }
            }
            head
        };
        let heads = [
            lines(&etag, true, false),
            lines(&etag, false, false),
            lines(&gzip_etag, true, true),
            lines(&gzip_etag, false, true),
        ];
        let asset = Asset {
            body: file.contents(),
            gzip: GZIP.get_file(file.path()).map(|f| f.contents()),
            etag,
            gzip_etag,
            heads,
        };
        table.insert(name, asset);
    }
    for sub in dir.dirs() {
        collect(sub, table);
    }
}

/// The content type for a file name, by its extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits: enough to tell versions of a file apart, and no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_served_for_root_with_html_type() {
        let asset = lookup("/").expect("web/index.html is embedded");
        assert!(asset
            .head(false, false)
            .contains("content-type: text/html; charset=utf-8\r\n"));
        assert!(std::ptr::eq(asset, lookup("/index.html").unwrap()));
    }

    #[test]
    fn gzip_form_decodes_to_the_original() {
        use std::io::Read as _;
        let asset = lookup("/").unwrap();
        let gz = asset.gzip.expect("index.html compresses");
        assert!(gz.len() < asset.body.len());
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, asset.body);
    }

    #[test]
    fn unknown_and_escaping_paths_are_absent() {
        assert!(lookup("/nope.html").is_none());
        assert!(lookup("/../Cargo.toml").is_none());
        assert!(lookup("index.html").is_none());
    }

    #[test]
    fn etags_differ_by_content_and_representation() {
        let a = lookup("/").unwrap();
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
        assert_ne!(a.etag, a.gzip_etag);
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
