//! The files of `web/`, compiled into the binary (no file is read at run time) as
//! `build.rs` prepares them (scripts and style sheets without their comments): a
//! text file as its gzip form only, inflated once for the rare client that takes no
//! gzip (curl without `--compressed`); the binary carries each text once, not twice.
//!
//! Each file is served with its content type, a strong `ETag` (a hash of its bytes,
//! so a new binary with a changed page gets a new tag) and `Cache-Control: no-cache`
//! (a phone revalidates each time and gets a `304` when nothing changed).

use std::collections::HashMap;
use std::sync::OnceLock;

use include_dir::File;

use include_dir::{include_dir, Dir};

static WEB: Dir<'static> = include_dir!("$OUT_DIR/web");
static GZIP: Dir<'static> = include_dir!("$OUT_DIR/gz");

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The bytes as served (a script or style sheet without its comments): embedded
    /// for a file that does not shrink, else inflated from `gzip` at first use.
    body: OnceLock<&'static [u8]>,
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
    /// The bytes as served without gzip.
    pub fn body(&'static self) -> &'static [u8] {
        self.body.get_or_init(|| {
            // Made by build.rs, so it inflates; a client that takes no gzip is rare,
            // and each file is inflated once and kept.
            let inflated = self.gzip.and_then(inflate).unwrap_or_default();
            Box::leak(inflated.into_boxed_slice())
        })
    }

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
        collect(&GZIP, &mut table);
        table
    })
}

fn collect(dir: &'static Dir<'static>, table: &mut HashMap<&'static str, Asset>) {
    for file in dir.files() {
        add(file, table);
    }
    for sub in dir.dirs() {
        collect(sub, table);
    }
}

/// Adds an embedded file: from `GZIP` a text file's gzip form, from `WEB` a file
/// served as it is.
fn add(file: &'static File<'static>, table: &mut HashMap<&'static str, Asset>) {
    let Some(name) = file.path().to_str() else {
        return;
    };
    let zipped = GZIP
        .get_file(file.path())
        .is_some_and(|f| std::ptr::eq(f, file));
    // The tag follows the bytes embedded: a changed file changes both forms.
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
    let body = OnceLock::new();
    if !zipped {
        let _ = body.set(file.contents());
    }
    let asset = Asset {
        body,
        gzip: zipped.then(|| file.contents()),
        etag,
        gzip_etag,
        heads,
    };
    table.insert(name, asset);
}

/// The bytes of a gzip member as build.rs writes it (zopfli: a 10-byte header
/// with no optional fields, the deflate stream, an 8-byte trailer).
fn inflate(gz: &[u8]) -> Option<Vec<u8>> {
    let deflated = gz
        .strip_prefix(&[0x1f, 0x8b, 8, 0][..])?
        .get(6..)?
        .get(..gz.len().checked_sub(18)?)?;
    miniz_oxide::inflate::decompress_to_vec(deflated).ok()
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
        assert!(gz.len() < asset.body().len());
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, asset.body());
        assert!(decoded.starts_with(b"<!doctype html>"));
        // Every text file inflates to what gzip decodes.
        for asset in table().values() {
            if let Some(gz) = asset.gzip {
                let mut decoded = Vec::new();
                flate2::read::GzDecoder::new(gz)
                    .read_to_end(&mut decoded)
                    .unwrap();
                assert_eq!(inflate(gz).as_deref(), Some(&decoded[..]));
            }
        }
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
