//! The built binary, run as a user runs it: flags, start-up lines, a chat round
//! trip, and a clean stop on SIGTERM. `LANCHAT_TEST_BIN` names another build of it
//! (the cross-built aarch64 one) and `LANCHAT_TEST_RUNNER` a program to run it with
//! (`qemu-aarch64-static`).

mod common;

use std::process::{Command, Stdio};

use common::bin::*;
use common::*;

#[test]
fn help_lists_flags_and_version_prints() {
    let out = command(&["--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--history",
        "--heartbeat",
        "--quiet",
        "LANCHAT_LISTEN",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let out = command(&["--version"]).output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("lanchat {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_packaged_settings_file_names_every_flag() {
    // /etc/default/lanchat in the .deb: every flag, commented out with its value.
    let file = include_str!("../scripts/deb/default");
    let help = String::from_utf8(command(&["--help"]).output().unwrap().stdout).unwrap();
    let vars: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split(']').next().unwrap())
        .collect();
    assert!(vars.len() > 10, "{help}");
    for var in vars {
        assert!(
            file.lines().any(|l| l.starts_with(&format!("#{var}="))),
            "{var} is not in scripts/deb/default"
        );
    }
    let unit = include_str!("../scripts/lanchat.service");
    assert!(unit.contains("EnvironmentFile=-/etc/default/lanchat"));
    assert!(unit.contains("ExecStart=/usr/bin/lanchat"));
}

#[test]
fn a_bad_flag_is_one_line_and_exit_code_2() {
    let out = command(&["--listen", "nowhere"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--listen") && err.contains("nowhere"), "{err}");
    let out = command(&[])
        .env("LANCHAT_HEARTBEAT", "often")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("LANCHAT_HEARTBEAT"));
    // An empty key is a mistake, never an open chat.
    let out = command(&["--key", ""]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--key: the key is empty"), "{err}");
    let out = command(&[]).env("LANCHAT_KEY", "").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_binary_chats_and_stops_cleanly_on_sigterm() {
    let running = Running::start(&["--listen", "127.0.0.1:0", "--quiet"]);
    let addr = running.addr;
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<form"));
    let mut stream = Stream::open(addr, None);
    let id = say(addr, "from the binary");
    let msg = stream.next_message().unwrap();
    assert_eq!(
        (msg["id"].as_str(), msg["text"].as_str()),
        (Some(id.as_str()), Some("from the binary"))
    );

    let (out, rest) = running.terminate();
    assert!(out.status.success(), "exit status {:?}", out.status);
    while stream.next().is_some() {}
    assert!(stream.ended, "the open stream was ended properly");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    // One line per start and stop, none per message: a journal stays readable.
    assert!(
        rest.iter().all(|l| !l.contains("from the binary")),
        "{rest:?}"
    );
    assert!(rest.len() <= 2, "{rest:?}");
}

#[test]
fn history_survives_a_restart_with_a_data_dir() {
    let dir = std::env::temp_dir().join(format!("lanchat-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    let args = ["--listen", "127.0.0.1:0", "--quiet", "--data-dir", dir_arg];

    let first = Running::start(&args);
    let ids: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|t| say(first.addr, t))
        .collect();
    let (out, _) = first.terminate();
    assert!(out.status.success());

    let second = Running::start(&args);
    // A phone that had seen "one" reconnects after the reboot: it gets the rest.
    let mut stream = Stream::open(second.addr, Some(&ids[0]));
    assert_eq!(stream.next_message().unwrap()["id"], ids[1].as_str());
    assert_eq!(stream.next_message().unwrap()["id"], ids[2].as_str());
    // And ids go on from the last one, in the same epoch.
    let next = say(second.addr, "four");
    let (epoch, n) = ids[2].split_once('-').unwrap();
    assert_eq!(next, format!("{epoch}-{}", n.parse::<u64>().unwrap() + 1));
    assert_eq!(stream.next_message().unwrap()["id"], next.as_str());
    let (out, _) = second.terminate();
    assert!(out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unusable_data_dir_is_a_clear_error() {
    let out = command(&[
        "--listen",
        "127.0.0.1:0",
        "--quiet",
        "--data-dir",
        "/proc/lanchat",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot use the data directory /proc/lanchat"),
        "{err}"
    );
}

/// `command` run under a lowered open-file limit, as a fresh login on many systems
/// has (soft 1,024 or less).
fn with_file_limits(soft: u32, hard: u32, command: Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$@\""
        ))
        .arg("sh")
        .arg(command.get_program())
        .args(command.get_args())
        .env_remove("LANCHAT_LISTEN")
        .stdin(Stdio::null());
    sh
}

#[test]
fn the_open_file_limit_is_raised_and_a_cap_above_it_is_reported() {
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--quiet",
        "--max-connections",
        "1000",
        // All 200 streams come from one address.
        "--max-per-client",
        "1000",
    ];
    let running = Running::spawn(with_file_limits(128, 512, command(&args)));
    let before = &running.before;
    assert!(
        before
            .iter()
            .any(|l| l.contains("--max-connections 1000") && l.contains("limit of 512")),
        "{before:?}"
    );
    // More streams than the soft limit the process started with.
    let mut streams: Vec<Stream> = (0..200).map(|_| Stream::open(running.addr, None)).collect();
    let last = streams.last_mut().unwrap();
    last.wait_online(200);
    let id = say(running.addr, "to everyone");
    for stream in &mut streams {
        assert_eq!(stream.next_message().unwrap()["id"], id.as_str());
    }
    let (out, _) = running.terminate();
    assert!(out.status.success());
}

#[test]
fn the_moderator_link_is_printed_to_a_terminal_and_never_to_a_log() {
    // Output to a pipe (a log, the journal): how to open it, without the key.
    let running = Running::start(&["--listen", "127.0.0.1:0", "--mod-key", "host-only"]);
    let (out, _) = running.terminate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Moderator: open the chat with ?mod="),
        "{stdout}"
    );
    assert!(!stdout.contains("host-only"), "{stdout}");

    // A terminal (a pseudo-terminal by `script`): the whole link, on its own line.
    let bin = env!("CARGO_BIN_EXE_lanchat");
    let line = format!("{bin} --listen 0.0.0.0:0 --key family --mod-key host-only");
    let mut child = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1), from util-linux");
    let mut seen = Vec::new();
    let reader = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in std::io::BufRead::lines(reader).map_while(Result::ok) {
        let done = line.contains("listening on");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    let with_key: Vec<&String> = seen.iter().filter(|l| l.contains("host-only")).collect();
    assert_eq!(with_key.len(), 1, "{text}");
    assert!(
        with_key[0].contains("Moderator (keep to yourself): http://")
            && with_key[0]
                .trim_end()
                .ends_with("?key=family&mod=host-only"),
        "{text}"
    );
}

#[test]
fn mod_key_auto_makes_a_key_keeps_it_beside_the_history_and_says_where() {
    let dir = std::env::temp_dir().join(format!("lanchat-auto-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--mod-key",
        "auto",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    let running = Running::start(&args);
    let key = std::fs::read_to_string(dir.join("mod-key")).expect("the key kept");
    assert!(key.len() >= 8, "{key}");
    let opened = get(running.addr, &format!("/?mod={key}"));
    assert_eq!(opened.status, 303, "{}", opened.text());
    let (out, _) = running.terminate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the key in") && stdout.contains("mod-key"),
        "{stdout}"
    );
    assert!(!stdout.contains(&key), "{stdout}");
    // The same key after a restart.
    let again = Running::start(&args);
    assert_eq!(get(again.addr, &format!("/?mod={key}")).status, 303);
    again.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
