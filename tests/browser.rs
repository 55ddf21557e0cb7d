//! Runs the page tests in `tests/browser/` (Node's test runner driving Debian's
//! headless Chromium through `playwright-core`) against the binary cargo built.
//!
//! Without Chromium or Node the test is built as ignored (build.rs), so `cargo test`
//! works on a machine that has only Rust and its summary says so; `.ci/run` installs
//! both and sets `LANCHAT_REQUIRE_BROWSER=1`, which makes it run (and fail without
//! them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(300);

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
#[cfg_attr(
    lanchat_no_browser,
    ignore = "needs chromium, node and npm (.ci/run installs them)"
)]
fn the_page_works_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let required = std::env::var_os("LANCHAT_REQUIRE_BROWSER").is_some_and(|v| v == "1");
    let missing: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some("chromium (apt install chromium)"),
        (!found("node")).then_some("node"),
        (!found("npm")).then_some("npm"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let what = missing.join(", ");
        assert!(!required, "browser tests need {what}");
        eprintln!("SKIPPED: the browser tests need {what}; .ci/run installs them");
        return;
    }

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci in tests/browser failed");
    }

    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let mut child = Command::new("node")
        .args(["--test", "--test-concurrency=1", "."])
        .current_dir(&dir)
        .env("LANCHAT_BIN", env!("CARGO_BIN_EXE_lanchat"))
        .env("CHROMIUM", &chromium)
        .env("LANCHAT_SCREENSHOTS", &screenshots)
        .spawn()
        .expect("start node --test");
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    let status = match rx.recv_timeout(LIMIT) {
        Ok(status) => status.expect("wait for node"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("browser tests still running after {LIMIT:?}");
        }
    };
    eprintln!("screenshots: {}", screenshots.display());
    assert!(status.success(), "browser tests failed: {status}");
}
