//! The lossless event stream: ids, history, Last-Event-ID replay, heartbeats, presence.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

fn n_of(id: &str) -> u64 {
    id.rsplit('-').next().unwrap().parse().unwrap()
}

#[test]
fn ids_carry_the_epoch_and_increase() {
    let server = TestServer::start();
    let a = say(server.addr, "a");
    let b = say(server.addr, "b");
    let (epoch_a, na) = a.split_once('-').unwrap();
    let (epoch_b, nb) = b.split_once('-').unwrap();
    assert_eq!(epoch_a, epoch_b);
    assert!(epoch_a.parse::<u64>().unwrap() > 1_600_000_000_000);
    assert_eq!(nb.parse::<u64>().unwrap(), na.parse::<u64>().unwrap() + 1);
}

#[test]
fn reconnect_with_last_event_id_replays_exactly_what_was_missed() {
    let server = TestServer::start();
    let mut stream = Stream::open(server.addr, None);
    say(server.addr, "seen");
    assert_eq!(stream.next_message().unwrap()["text"], "seen");
    let last = stream.last_event_id();
    drop(stream);

    let missed: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|t| say(server.addr, t))
        .collect();
    let mut stream = Stream::open(server.addr, Some(&last));
    for (id, text) in missed.iter().zip(["one", "two", "three"]) {
        let msg = stream.next_message().unwrap();
        assert_eq!(
            (msg["id"].as_str(), msg["text"].as_str()),
            (Some(id.as_str()), Some(text))
        );
    }
    let live = say(server.addr, "live");
    assert_eq!(stream.next_message().unwrap()["id"], live.as_str());
}

#[test]
fn the_query_parameter_resumes_like_the_header() {
    let server = TestServer::start();
    let first = say(server.addr, "one");
    let second = say(server.addr, "two");
    let mut stream =
        Stream::open_path(server.addr, &format!("/events?last_event_id={first}"), None);
    assert_eq!(stream.next_message().unwrap()["id"], second.as_str());
}

#[test]
fn exactly_once_at_the_join_boundary_while_messages_are_published() {
    let server = TestServer::with(|c| c.history = 5000);
    // Carried from round to round: a client that starts a round with no id gets the
    // newest 100 (the backlog), and a slow one would miss the first messages of the
    // round once more than 100 of them were out.
    let mut last: Option<String> = None;
    for round in 0..3 {
        let total = 300;
        let addr = server.addr;
        let done = Arc::new(AtomicBool::new(false));
        let publisher = {
            let done = done.clone();
            std::thread::spawn(move || {
                let ids: Vec<String> = (0..total)
                    .map(|i| say(addr, &format!("r{round} m{i}")))
                    .collect();
                done.store(true, Ordering::SeqCst);
                ids
            })
        };
        // Reconnect again and again while the publisher runs, each time with the
        // last id seen, reading a few messages between reconnects.
        let mut seen: Vec<String> = Vec::new();
        let mut reconnects = 0;
        // Joins made while messages were still being published: the boundary tested.
        let mut during = 0;
        while seen.len() < total {
            let publishing = !done.load(Ordering::SeqCst);
            let mut stream = Stream::open(server.addr, last.as_deref());
            reconnects += 1;
            during += usize::from(publishing);
            for _ in 0..(1 + reconnects % 7) {
                let Some(msg) = stream.next_message() else {
                    break;
                };
                let text = msg["text"].as_str().unwrap().to_string();
                if !text.starts_with(&format!("r{round} ")) {
                    continue; // the backlog of an earlier round
                }
                seen.push(msg["id"].as_str().unwrap().to_string());
                last = Some(stream.last_event_id());
                if seen.len() == total {
                    break;
                }
            }
        }
        let published = publisher.join().unwrap();
        assert_eq!(
            seen, published,
            "round {round}: every message once, in order"
        );
        assert!(
            during >= 10,
            "round {round}: only {during} of {reconnects} joins while messages were published"
        );
    }
}

#[test]
fn a_new_client_gets_the_recent_history_then_live_messages() {
    let server = TestServer::with(|c| c.backlog = 5);
    let ids: Vec<String> = (0..8).map(|i| say(server.addr, &format!("m{i}"))).collect();
    let mut stream = Stream::open(server.addr, None);
    for id in &ids[3..] {
        assert_eq!(stream.next_message().unwrap()["id"], id.as_str());
    }
    let live = say(server.addr, "live");
    assert_eq!(stream.next_message().unwrap()["id"], live.as_str());
}

#[test]
fn an_unknown_foreign_or_too_old_id_gets_a_reset_and_the_whole_history() {
    let server = TestServer::with(|c| {
        c.history = 4;
        c.backlog = 2;
    });
    let ids: Vec<String> = (0..6).map(|i| say(server.addr, &format!("m{i}"))).collect();
    let epoch = ids[0].split_once('-').unwrap().0.to_string();
    let foreign = format!("{}-3", epoch.parse::<u64>().unwrap() - 1);
    let evicted = format!("{epoch}-1"); // 2 is gone from history, so it cannot resume
    for bad in [
        "garbage",
        foreign.as_str(),
        evicted.as_str(),
        "99999999999-1",
    ] {
        let mut stream = Stream::open(server.addr, Some(bad));
        let first = stream.next().unwrap();
        assert_eq!(first.event, "reset", "for {bad}");
        for id in &ids[2..] {
            assert_eq!(
                stream.next_message().unwrap()["id"],
                id.as_str(),
                "for {bad}"
            );
        }
    }
}

#[test]
fn a_slow_subscriber_is_dropped_and_recovers_everything_on_reconnect() {
    let server = TestServer::with(|c| {
        c.queue = 16;
        c.history = 2000;
        c.backlog = 0;
    });
    let mut slow = Stream::open(server.addr, None);
    slow.wait_online(1);
    // Past what the socket buffers hold (4 MiB on loopback), while `slow` reads
    // nothing.
    let text = "é".repeat(2000);
    let ids: Vec<String> = (0..1500).map(|_| say(server.addr, &text)).collect();

    let mut seen = Vec::new();
    while let Some(msg) = slow.next_message() {
        seen.push(msg["id"].as_str().unwrap().to_string());
    }
    assert!(slow.ended, "the server ended the stream of the slow client");
    assert!(seen.len() < ids.len(), "it was dropped before the end");
    let mut again = Stream::open(server.addr, Some(&slow.last_event_id()));
    while seen.len() < ids.len() {
        seen.push(
            again.next_message().unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, ids, "nothing lost, nothing doubled");
}

#[test]
fn every_stream_gets_heartbeats() {
    let server = TestServer::with(|c| c.heartbeat = Duration::from_millis(100));
    let mut streams = [
        Stream::open(server.addr, None),
        Stream::open(server.addr, None),
    ];
    for stream in &mut streams {
        // The opening, then at least two heartbeats: each a comment and a ping event
        // that tells a page the interval.
        stream.wait_comments(3);
        for _ in 0..3 {
            assert_eq!(stream.next_named("ping").unwrap().data, "100");
        }
    }
}

#[test]
fn presence_counts_up_and_down_including_an_aborted_client() {
    let server = TestServer::start();
    let mut watcher = Stream::open(server.addr, None);
    watcher.wait_online(1);

    let closed = Stream::open(server.addr, None);
    watcher.wait_online(2);
    drop(closed); // an orderly close (FIN)
    watcher.wait_online(1);

    let aborted = Stream::open(server.addr, None);
    watcher.wait_online(2);
    let socket = socket2::SockRef::from(aborted.socket());
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(aborted); // closes with a RST, no FIN
    watcher.wait_online(1);
}

#[test]
fn a_stream_opened_as_another_closes_ends_up_told_the_right_count() {
    // A phone's tabs hand the stream over: the new one opens while the server still
    // counts the old, so its first presence says 2; the old one's end follows.
    let server = TestServer::start();
    let mut old = Stream::open(server.addr, None);
    old.wait_online(1);
    // Told once at the join and once more after the presence delay, to everyone.
    old.next_named("presence").expect("the broadcast count");
    let mut new = Stream::open(server.addr, None);
    new.wait_online(2);
    drop(old);
    new.wait_online(1);
}

/// Drops every packet from the server to one client port while it lives: the
/// client is gone without a FIN or RST, as a phone that left the Wi-Fi.
struct Blackhole(Vec<String>);

impl Blackhole {
    fn new(server: std::net::SocketAddr, client: std::net::SocketAddr) -> Option<Blackhole> {
        let rule: Vec<String> = [
            "OUTPUT",
            "-o",
            "lo",
            "-p",
            "tcp",
            "--sport",
            &server.port().to_string(),
            "--dport",
            &client.port().to_string(),
            "-j",
            "DROP",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let added = std::process::Command::new("iptables")
            .arg("-I")
            .args(&rule)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        added.then_some(Blackhole(rule))
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = std::process::Command::new("iptables")
            .arg("-D")
            .args(&self.0)
            .status();
    }
}

#[test]
#[cfg_attr(
    lanchat_no_netfilter,
    ignore = "drops packets with iptables: needs root"
)]
fn a_client_that_vanishes_without_a_word_leaves_the_count_within_two_heartbeats_or_a_second() {
    let heartbeat = Duration::from_millis(300);
    let server = TestServer::with(|c| c.heartbeat = heartbeat);
    let mut watcher = Stream::open(server.addr, None);
    let vanishing = Stream::open(server.addr, None);
    watcher.wait_online(2);
    let client = vanishing.socket().local_addr().unwrap();
    let Some(_hole) = Blackhole::new(server.addr, client) else {
        let required = std::env::var_os("LANCHAT_REQUIRE_NETFILTER").is_some_and(|v| v == "1");
        assert!(!required, "this test needs iptables and root");
        eprintln!("SKIPPED: dropping packets needs iptables and root");
        return;
    };
    let gone = std::time::Instant::now();
    while watcher.online != Some(1) {
        assert!(
            gone.elapsed() < WAIT,
            "still counted after {:?}",
            gone.elapsed()
        );
        watcher.next_any().expect("the watcher's stream");
    }
    // The next heartbeat, then unacknowledged for the timeout (a heartbeat, at least
    // a second), then the presence delay: about 1.6 s. Without the timeout the kernel
    // retransmits for minutes, past the test's wait above.
    drop(vanishing);
}

#[test]
fn ids_from_before_a_restart_are_never_taken_for_new_ones() {
    let first = TestServer::start();
    let old = say(first.addr, "before");
    drop(first);
    let server = TestServer::start();
    let new = say(server.addr, "after");
    assert_ne!(
        old.split_once('-').unwrap().0,
        new.split_once('-').unwrap().0
    );
    assert_eq!(n_of(&old), n_of(&new));
    let mut stream = Stream::open(server.addr, Some(&old));
    assert_eq!(stream.next().unwrap().event, "reset");
    assert_eq!(stream.next_message().unwrap()["id"], new.as_str());
}
