//! Abuse controls per client address: a flooder is slowed (`--post-rate`), a hog is
//! capped (`--max-per-client`), and everyone else goes on. Two loopback addresses,
//! 127.0.0.1 and 127.0.0.2, are two clients.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use lanchat::config::Rate;

const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const FORM: &str = "Content-Type: application/x-www-form-urlencoded";
const JSON: &str = "Accept: application/json";

fn post_from(from: IpAddr, addr: std::net::SocketAddr, text: &str) -> Response {
    let body = format!("message={}", encode(text));
    request_from(
        from,
        addr,
        "POST",
        "/message",
        &[FORM, JSON],
        body.as_bytes(),
    )
}

#[test]
fn a_flood_gets_429_with_the_wait_and_reaches_no_one_while_others_post() {
    let server = TestServer::with(|c| {
        c.post_rate = Some(Rate {
            burst: 5,
            every: Duration::from_secs(30),
        })
    });
    let mut stream = Stream::open(server.addr, None);
    let me: IpAddr = [127, 0, 0, 1].into();
    for i in 0..5 {
        assert_eq!(
            post_from(me, server.addr, &format!("burst {i}")).status,
            201
        );
    }
    let refused = post_from(me, server.addr, "one too many");
    assert_eq!(refused.status, 429, "{}", refused.text());
    let wait: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((29..=30).contains(&wait), "{wait}");
    assert!(refused.text().contains("slow down"), "{}", refused.text());
    // Another client is not held back by this one.
    assert_eq!(post_from(OTHER, server.addr, "someone else").status, 201);
    let texts: Vec<String> = (0..6)
        .map(|_| {
            stream.next_message().unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        texts[..5],
        ["burst 0", "burst 1", "burst 2", "burst 3", "burst 4"]
    );
    assert_eq!(texts[5], "someone else", "the refused post reached no one");
}

#[test]
fn a_client_told_to_wait_is_let_through_after_the_wait() {
    let server = TestServer::with(|c| {
        c.post_rate = Some(Rate {
            burst: 1,
            every: Duration::from_millis(400),
        })
    });
    let me: IpAddr = [127, 0, 0, 1].into();
    assert_eq!(post_from(me, server.addr, "first").status, 201);
    let refused = post_from(me, server.addr, "second");
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.header("retry-after"),
        Some("1"),
        "rounded up to whole seconds"
    );
    let told = Instant::now();
    // Waiting for the interval to pass is the condition itself.
    let res = loop {
        let res = post_from(me, server.addr, "second");
        if res.status == 201 || told.elapsed() > Duration::from_secs(2) {
            break res;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(res.status, 201);
    assert!(
        told.elapsed() < Duration::from_secs(1),
        "{:?}",
        told.elapsed()
    );
}

#[test]
fn one_address_cannot_take_every_connection() {
    let server = TestServer::with(|c| c.max_per_client = 3);
    let hog: Vec<Stream> = (0..3)
        .map(|_| Stream::open_from(OTHER, server.addr))
        .collect();
    for s in &hog {
        assert_eq!(s.status, 200);
    }
    // The fourth from that address: 503 for a request, a long retry for a stream.
    let res = request_from(OTHER, server.addr, "GET", "/", &[], b"");
    assert_eq!(res.status, 503, "{}", res.text());
    let mut refused = Stream::open_from(OTHER, server.addr);
    assert_eq!(refused.status, 200);
    assert_eq!(refused.retry(), None);
    while refused.next_any().is_some() {}
    assert!(refused.ended);
    assert!(
        refused.retry().is_some_and(|r| r >= 10_000),
        "{:?}",
        refused.retry()
    );
    // Everyone else connects as before.
    assert_eq!(get(server.addr, "/").status, 200);
    let mut mine = Stream::open(server.addr, None);
    say(server.addr, "still open to others");
    assert_eq!(mine.next_message().unwrap()["text"], "still open to others");
    // When the hog lets one go, that address may connect again.
    drop(hog);
    let started = Instant::now();
    while request_from(OTHER, server.addr, "GET", "/", &[], b"").status != 200 {
        assert!(started.elapsed() < WAIT, "the slot was never given back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn silent_sockets_over_one_address_cap_hold_no_slot_from_anyone_else() {
    let server = TestServer::with(|c| {
        c.max_connections = 20;
        c.max_per_client = 5;
    });
    // Far more than the whole cap from one address, each sending nothing.
    let silent: Vec<std::net::TcpStream> =
        (0..200).map(|_| connect_from(OTHER, server.addr)).collect();
    // Everyone else is served as before.
    let mut mine = Stream::open(server.addr, None);
    assert_eq!(mine.status, 200);
    assert_eq!(get(server.addr, "/").status, 200);
    say(server.addr, "still open to others");
    assert_eq!(mine.next_message().unwrap()["text"], "still open to others");
    // And the sockets past that address's cap are closed, not held.
    for s in &silent {
        s.set_nonblocking(true).unwrap();
    }
    let is_closed = |s: &std::net::TcpStream| {
        let mut byte = [0u8; 1];
        match std::io::Read::read(&mut &*s, &mut byte) {
            Ok(0) => true,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    };
    let started = Instant::now();
    loop {
        let closed = silent.iter().filter(|s| is_closed(s)).count();
        if closed >= 195 {
            break;
        }
        assert!(started.elapsed() < WAIT, "{closed} of 200 closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
