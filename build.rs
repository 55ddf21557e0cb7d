//! Gzips the text files of `web/` at build time into `$OUT_DIR/gz`, which
//! `src/assets.rs` embeds beside the originals: phones get compressed pages, and the
//! binary carries no compressor and spends no time compressing.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::{write::GzEncoder, Compression};

const COMPRESSIBLE: &[&str] = &["html", "js", "css", "svg", "json", "webmanifest", "txt"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("gz");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).expect("create $OUT_DIR/gz");
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A lower bound for the time: a clock that reads earlier than the build is wrong
    // (src/clock.rs). SOURCE_DATE_EPOCH keeps a reproducible build reproducible.
    let built_ms = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| s * 1000)
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        });
    println!("cargo:rustc-env=LANCHAT_BUILT_MS={built_ms}");
    walk(Path::new("web"), Path::new(""), &out);
}

/// The script without its lines of comment (`// ...` lines and `/* ... */` blocks
/// that begin a line): they explain the code to its readers and would be a third of
/// what every phone downloads. A comment after code on its line stays, and so does
/// every line of code: nothing else changes, so the page that runs is the one that
/// was written (and tested: browsers ask for the gzipped file). The script has no
/// template literal that spans lines, where such a line could be text.
fn without_comment_lines(src: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(src);
    let mut out = String::with_capacity(text.len());
    let mut in_block = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if in_block {
            in_block = !t.ends_with("*/");
            continue;
        }
        if t.starts_with("/*") {
            in_block = !t.ends_with("*/");
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
    }
    out.into_bytes()
}

fn walk(dir: &Path, rel: &Path, out: &Path) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("read web/").flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        if path.is_dir() {
            walk(&path, &rel, out);
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !COMPRESSIBLE.contains(&ext) {
            continue;
        }
        let mut raw = fs::read(&path).expect("read a web/ file");
        if ext == "js" {
            raw = without_comment_lines(&raw);
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&raw).expect("gzip in memory");
        let gz = gz.finish().expect("gzip in memory");
        // Only worth sending when it saves something.
        if gz.len() < raw.len() {
            let target = out.join(&rel);
            fs::create_dir_all(target.parent().expect("a file has a parent")).expect("mkdir");
            fs::write(target, gz).expect("write gz");
        }
    }
}
