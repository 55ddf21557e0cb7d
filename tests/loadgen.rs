//! The load generator in `benches/loadgen`, end to end at a small size: it must find
//! nothing lost or duplicated. It reports figures too, but no timing is asserted
//! here: speed is for BENCHMARKS.md, measured on a quiet machine.

use std::process::Command;

fn loadgen(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "lanchat-loadgen",
            "--bin",
            "loadgen",
            "--",
        ])
        .args(args)
        .args(["--server", env!("CARGO_BIN_EXE_lanchat")])
        .output()
        .expect("run the load generator");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "loadgen {args:?} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn figure(report: &str, name: &str) -> u64 {
    report
        .split(&format!("{name} "))
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no '{name}' in {report}"))
}

#[test]
fn fan_out_to_a_hundred_subscribers_loses_nothing() {
    let report = loadgen(&["fanout", "--subscribers", "100", "--messages", "20"]);
    assert_eq!(figure(&report, "lost"), 0, "{report}");
    assert_eq!(figure(&report, "duplicated"), 0, "{report}");
}

#[test]
fn publishers_flat_out_lose_and_double_nothing() {
    let report = loadgen(&[
        "flatout",
        "--subscribers",
        "200",
        "--publishers",
        "4",
        "--seconds",
        "2",
    ]);
    assert_eq!(figure(&report, "lost"), 0, "{report}");
    assert_eq!(figure(&report, "duplicated"), 0, "{report}");
}

#[test]
#[cfg_attr(
    lanchat_no_bench,
    ignore = "needs wrk and nginx (apt install wrk nginx-light)"
)]
fn the_page_beside_nginx_is_answered_every_time() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success() || !o.stdout.is_empty())
    };
    if !(have("wrk") && have("nginx")) {
        let required = std::env::var_os("LANCHAT_REQUIRE_BENCH").is_some_and(|v| v == "1");
        assert!(
            !required,
            "wrk or nginx is missing, and LANCHAT_REQUIRE_BENCH=1"
        );
        eprintln!("skipped: the page benchmark needs wrk and nginx (apt install wrk nginx-light)");
        return;
    }
    // loadgen stops with an error if any answer is not the page (wrk's non-2xx or
    // socket errors), for lanchat and for nginx serving the bytes lanchat served.
    let report = loadgen(&["page", "--seconds", "1"]);
    assert!(figure(&report, "page:") > 0, "{report}");
    assert!(figure(&report, "nginx") > 0, "{report}");
}
