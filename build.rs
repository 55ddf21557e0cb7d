//! Prepares the files of `web/` at build time, as they are served (scripts and style
//! sheets without their comments and indentation, which are for their readers):
//! `$OUT_DIR/gz` holds the gzip form of each text file, `$OUT_DIR/web` the files
//! that do not shrink (the icons); `src/assets.rs` embeds both. Phones get
//! compressed pages, the binary carries no compressor and each text once (a client
//! that takes no gzip gets it inflated, see `src/assets.rs`), and no time is spent
//! compressing.

use std::fs;
use std::path::{Path, PathBuf};

const COMPRESSIBLE: &[&str] = &["html", "js", "css", "svg", "json", "webmanifest", "txt"];

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out = out_dir.join("gz");
    let served = out_dir.join("web");
    for dir in [&out, &served] {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).expect("create a folder in $OUT_DIR");
    }
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
    walk(Path::new("web"), Path::new(""), &out, &served);
    tools_for_tests();
}

/// Tests that need a tool this machine lacks are built as ignored, with the reason,
/// so that `cargo test`'s summary line counts them ("1 ignored") rather than a pass
/// that tested nothing; `LANCHAT_REQUIRE_<NAME>=1` builds them as tests that run
/// (and fail without the tool), as CI does.
fn tools_for_tests() {
    println!(
        "cargo::rustc-check-cfg=cfg(lanchat_no_browser, lanchat_no_mount, lanchat_no_netfilter, lanchat_no_bench)"
    );
    let runs = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
    };
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    println!("cargo:rerun-if-env-changed=CHROMIUM");
    let present = [
        (
            "BROWSER",
            "lanchat_no_browser",
            Path::new(&chromium).exists() && runs("node", "--version") && runs("npm", "--version"),
        ),
        (
            "MOUNT",
            "lanchat_no_mount",
            root && runs("mount", "--version"),
        ),
        (
            "NETFILTER",
            "lanchat_no_netfilter",
            root && runs("iptables", "--version"),
        ),
        (
            "BENCH",
            "lanchat_no_bench",
            runs("wrk", "-v") && runs("nginx", "-v"),
        ),
    ];
    for (name, cfg, present) in present {
        let var = format!("LANCHAT_REQUIRE_{name}");
        println!("cargo:rerun-if-env-changed={var}");
        let required = std::env::var(&var).is_ok_and(|v| v == "1");
        if !present && !required {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}

/// A script without its lines of comment (`// ...` lines and `/* ... */` blocks that
/// begin a line) and without the indentation of its lines: they explain and lay out
/// the code for its readers and would be a third of what every phone downloads. A
/// comment after code on its line stays, and so does every line of code: nothing
/// else changes, so the page that runs is the one that was written (and tested:
/// browsers ask for the gzipped file). The scripts have no template literal that
/// spans lines, where such a line could be text.
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
        if t.starts_with("//") || t.is_empty() {
            continue;
        }
        out.push_str(line.trim_start());
    }
    out.into_bytes()
}

/// A style sheet without its comments and the indentation of its lines (it has no
/// string with `/*` in it).
fn without_css_comments(src: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(src);
    let mut out = String::with_capacity(text.len());
    let mut rest = &text[..];
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (lines.join("\n") + "\n").into_bytes()
}

fn walk(dir: &Path, rel: &Path, out: &Path, served: &Path) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("read web/").flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        if path.is_dir() {
            walk(&path, &rel, out, served);
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let mut raw = fs::read(&path).expect("read a web/ file");
        if ext == "js" {
            raw = without_comment_lines(&raw);
        } else if ext == "css" {
            raw = without_css_comments(&raw);
        }
        let plain = |raw: &[u8]| {
            let target = served.join(&rel);
            fs::create_dir_all(target.parent().expect("a file has a parent")).expect("mkdir");
            fs::write(&target, raw).expect("write a served file");
        };
        if !COMPRESSIBLE.contains(&ext) {
            plain(&raw);
            continue;
        }
        let mut gz = Vec::new();
        zopfli::compress(
            zopfli::Options::default(),
            zopfli::Format::Gzip,
            &raw[..],
            &mut gz,
        )
        .expect("gzip in memory");
        // Only worth it when it saves something.
        if gz.len() < raw.len() {
            let target = out.join(&rel);
            fs::create_dir_all(target.parent().expect("a file has a parent")).expect("mkdir");
            fs::write(target, gz).expect("write gz");
        } else {
            plain(&raw);
        }
    }
}
