//! History on disk (`--data-dir`) as a Pi meets it, with the real binary: damaged
//! lines, a disk that fills up while people chat, a start on a full disk. The full
//! disk is a small tmpfs, which only root can mount: elsewhere those tests are built
//! as ignored (build.rs), and `LANCHAT_REQUIRE_MOUNT=1` makes them run.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::bin::*;
use common::*;

/// A directory for one test, removed when it ends.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("lanchat-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A tmpfs of a few KiB, unmounted when dropped: a disk that fills up.
struct Tmpfs(Dir);

impl Tmpfs {
    fn mount(name: &str, kib: u32) -> Option<Tmpfs> {
        let dir = Dir::new(name);
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k"),
                "tmpfs",
                dir.arg(),
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if mounted {
            return Some(Tmpfs(dir));
        }
        if std::env::var("LANCHAT_REQUIRE_MOUNT").is_ok_and(|v| v == "1") {
            panic!("cannot mount a tmpfs (needs root), and LANCHAT_REQUIRE_MOUNT=1");
        }
        eprintln!("notice: skipped, cannot mount a tmpfs here (needs root)");
        None
    }

    fn path(&self) -> &Path {
        &self.0 .0
    }

    /// Writes a file until the disk is full, then gives back `room` bytes of it.
    fn fill(&self, name: &str, room: u64) {
        let mut f = fs::File::create(self.path().join(name)).unwrap();
        let block = [b'x'; 4096];
        while f.write_all(&block).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(room)).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a server a failed test left behind may still hold a file open.
        let _ = Command::new("umount").args(["-l", self.0.arg()]).status();
    }
}

fn message_line(epoch: u64, n: u64, text: &str) -> String {
    format!("{{\"id\":\"{epoch}-{n}\",\"name\":\"t\",\"text\":\"{text}\",\"time\":{n}}}")
}

/// The messages a new page is sent first, by text.
fn backlog(addr: std::net::SocketAddr) -> Vec<String> {
    let page = get(addr, "/recent").text();
    page.split("<div class=\"text\">")
        .skip(1)
        .map(|rest| rest.split("</div>").next().unwrap().to_string())
        .collect()
}

/// The ids of the next `n` messages on a stream.
fn next_ids(stream: &mut Stream, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            stream.next_message().expect("a message")["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Each line of the history file reads as a message: no torn line anywhere.
fn every_line_is_whole(file: &Path) -> usize {
    let text = fs::read_to_string(file).unwrap();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["id"].is_string(), "{line}");
    }
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines().count()
}

#[test]
fn a_damaged_line_costs_that_message_only_and_the_file_is_kept() {
    let dir = Dir::new("damaged");
    let file = dir.0.join("history.jsonl");
    let mut lines: Vec<String> = (1..=100)
        .map(|n| message_line(42, n, &format!("m{n}")))
        .collect();
    // A flipped bit on an SD card.
    lines[50] = lines[50]
        .replace("\"text\"", "\"te\u{1}t\"")
        .replace('{', "[");
    fs::write(&file, lines.join("\n") + "\n").unwrap();
    let before = fs::read(&file).unwrap();

    let args = [
        "--listen",
        "127.0.0.1:0",
        "--quiet",
        "--data-dir",
        dir.arg(),
        "--backlog",
        "1000",
    ];
    let running = Running::start(&args);
    running.line_with(&["1 lines could not be read", ": 51"]);
    let mut stream = Stream::open(running.addr, None);
    let mut got = Vec::new();
    while got.len() < 99 {
        got.push(
            stream.next_message().expect("a message")["text"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let want: Vec<String> = (1..=100)
        .filter(|&n| n != 51)
        .map(|n| format!("m{n}"))
        .collect();
    assert_eq!(got, want);
    // The next id follows the newest, in the file's epoch.
    assert_eq!(say(running.addr, "after"), "42-101");
    let (out, _) = running.terminate();
    assert!(out.status.success());
    let after = fs::read(&file).unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the file was not rewritten"
    );
}

#[test]
fn a_file_that_is_not_history_is_moved_aside_and_the_chat_starts() {
    let dir = Dir::new("aside");
    fs::write(dir.0.join("history.jsonl"), "not, in any way, json\n").unwrap();
    let running = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--quiet",
        "--data-dir",
        dir.arg(),
    ]);
    running.line_with(&["moved to", "unreadable-"]);
    say(running.addr, "fresh start");
    running.terminate();
    let aside: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("history.jsonl.unreadable-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        fs::read_to_string(aside[0].path()).unwrap(),
        "not, in any way, json\n"
    );
}

#[test]
#[cfg_attr(lanchat_no_mount, ignore = "mounts a tmpfs: needs root")]
fn a_full_disk_refuses_posts_with_507_and_loses_none_that_were_taken() {
    let Some(disk) = Tmpfs::mount("full", 256) else {
        return;
    };
    let data = disk.path().join("data");
    let data_arg = data.to_str().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--quiet",
        "--data-dir",
        data_arg,
        "--history",
        "5000",
        "--backlog",
        "5000",
        // It posts until the disk is full, far faster than a person would.
        "--post-rate",
        "off",
    ];
    let running = Running::start(&args);
    let addr = running.addr;
    disk.fill("filler", 16 * 1024);
    let mut stream = Stream::open(addr, None);

    // Chat until the disk is full: every 201 is a message on the disk.
    let text = "x".repeat(900);
    let mut taken = Vec::new();
    let refused = loop {
        let res = post_json(addr, &format!("message={}+{}", taken.len(), text));
        if res.status != 201 {
            break res;
        }
        taken.push(json(&res.body)["id"].as_str().unwrap().to_string());
        assert!(taken.len() < 1000, "the disk never filled");
    };
    assert_eq!(refused.status, 507, "{}", refused.text());
    assert!(refused.text().contains("disk"), "{}", refused.text());
    // Posting stays refused while the disk is full, and those posts reach no one.
    for _ in 0..5 {
        let res = post_json(addr, &format!("message=lost+{text}"));
        assert_eq!(res.status, 507);
    }
    // Space comes back: posting works by itself, with the next id.
    fs::remove_file(disk.path().join("filler")).unwrap();
    let next = say(addr, "space again");
    let last: u64 = taken
        .last()
        .unwrap()
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(next.rsplit('-').next().unwrap(), (last + 1).to_string());
    taken.push(next);

    // Subscribers saw exactly what was taken.
    let seen = next_ids(&mut stream, taken.len());
    assert_eq!(seen, taken);
    let (out, _) = running.terminate();
    assert!(out.status.success());

    // And after a restart every acknowledged message is there, no torn line.
    assert_eq!(
        every_line_is_whole(&data.join("history.jsonl")),
        taken.len()
    );
    let again = Running::start(&args);
    let mut stream = Stream::open(again.addr, None);
    let replayed = next_ids(&mut stream, taken.len());
    assert_eq!(replayed, taken);
    again.terminate();
}

#[test]
#[cfg_attr(lanchat_no_mount, ignore = "mounts a tmpfs: needs root")]
fn the_server_starts_on_a_full_disk_and_compacts_once_it_can() {
    let Some(disk) = Tmpfs::mount("start-full", 256) else {
        return;
    };
    let data = disk.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let file = data.join("history.jsonl");
    // Due for compaction (40 lines, --history 10), which needs space to write.
    let lines: Vec<String> = (1..=40)
        .map(|n| message_line(7, n, &format!("m{n}")))
        .collect();
    fs::write(&file, lines.join("\n") + "\n").unwrap();
    disk.fill("filler", 0);

    let data_arg = data.to_str().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--quiet",
        "--data-dir",
        data_arg,
        "--history",
        "10",
    ];
    let running = Running::start(&args);
    running.line_with(&["cannot compact"]);
    let want: Vec<String> = (31..=40).map(|n| format!("m{n}")).collect();
    assert_eq!(backlog(running.addr), want);
    assert_eq!(
        every_line_is_whole(&file),
        40,
        "nothing dropped while it cannot write"
    );
    assert!(!data.join("history.jsonl.tmp").exists());

    // Space comes back: posts are taken, and the file is compacted by the time it
    // has grown another --history.
    fs::remove_file(disk.path().join("filler")).unwrap();
    for n in 41..=50 {
        say(running.addr, &format!("m{n}"));
    }
    running.terminate();
    assert!(every_line_is_whole(&file) <= 20);
    let again = Running::start(&args);
    let want: Vec<String> = (41..=50).map(|n| format!("m{n}")).collect();
    assert_eq!(backlog(again.addr), want);
    again.terminate();
}

#[test]
#[cfg_attr(lanchat_no_mount, ignore = "mounts a tmpfs: needs root")]
fn photos_never_take_the_room_the_history_needs_also_after_a_restart() {
    let Some(disk) = Tmpfs::mount("photos", 4096) else {
        return;
    };
    let data = disk.path().join("data");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--quiet",
        "--data-dir",
        data.to_str().unwrap(),
        "--min-free",
        "1MiB",
        "--max-upload",
        "512KiB",
        "--post-rate",
        "off",
    ];
    let running = Running::start(&args);
    // Photos far past the disk's 4 MiB (the quota is 1 GiB): each is kept, pushing
    // out the oldest, or refused; never one that takes the history's room.
    let photo = multipart(
        &[("message", "p")],
        &[("p.jpg", "image/jpeg", &jpeg(400 << 10))],
    );
    let mut kept = 0;
    for _ in 0..20 {
        let res = upload(running.addr, &photo, &[]);
        match res.status {
            201 => kept += 1,
            507 => assert!(
                res.text().contains("no room for more files"),
                "{}",
                res.text()
            ),
            other => panic!("{other}: {}", res.text()),
        }
    }
    assert!(kept > 0);
    let mut said = Vec::new();
    for i in 0..20 {
        said.push(say(running.addr, &format!("text {i} {}", "x".repeat(500))));
    }
    running.terminate();
    // After a restart the history is all there and text posts still go.
    let again = Running::start(&args);
    let mut stream = Stream::open(again.addr, None);
    let replayed = next_ids(&mut stream, kept + said.len());
    assert!(replayed.ends_with(&said), "{replayed:?}");
    say(again.addr, "after the restart");
    again.terminate();
}
