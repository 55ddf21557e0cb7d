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
