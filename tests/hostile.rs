//! What a shared LAN throws at the server: many half-finished requests, more
//! connections than the cap, broken bodies, over-long lines, and people without the
//! access key. Raw sockets throughout; each case ends by checking that chatting
//! still works for everyone else.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;

use common::*;

#[test]
fn a_thousand_half_finished_requests_do_not_stop_the_chat() {
    // The clients live in this process too: 1,000 of them and the server's ends.
    let (_, soft) = lanchat::raise_open_file_limit().expect("raise the open-file limit");
    assert!(
        soft.is_none_or(|n| n >= 2_100),
        "open-file limit {soft:?} too low for the test"
    );
    let server = TestServer::start();
    let mut reader = Stream::open(server.addr, None);
    let stuck: Vec<TcpStream> = (0..1000)
        .map(|i| {
            let mut s = connect(server.addr);
            // A head that never ends, a body that never comes, or nothing at all.
            let part: &[u8] = match i % 3 {
                0 => b"GET / HTTP/1.1\r\nHost: x\r\n",
                1 => b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 50\r\n\r\nmess",
                _ => b"",
            };
            s.write_all(part).expect("write part of a request");
            s
        })
        .collect();
    let id = say(server.addr, "still here");
    assert_eq!(reader.next_message().unwrap()["id"], id.as_str());
    assert_eq!(get(server.addr, "/").status, 200);
    drop(stuck);
}

#[test]
fn past_the_connection_cap_requests_get_503_and_streams_a_long_retry() {
    let server = TestServer::with(|c| c.max_connections = 3);
    let mut open = Stream::open(server.addr, None);
    open.wait_online(1);
    let idle = connect(server.addr);
    let mut idle2 = connect(server.addr);
    // Both idle connections are counted once the server has accepted them: a
    // request on one of them is answered, so it was.
    idle2
        .write_all(&build(server.addr, "GET", "/style.css", &[], b""))
        .unwrap();
    let mut idle2 = BufReader::new(idle2);
    assert_eq!(read_response(&mut idle2).unwrap().status, 200);

    let busy = get(server.addr, "/");
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("connection"), Some("close"));
    assert!(busy.text().contains("busy"), "{}", busy.text());

    // A browser gives up on any status but 200: it gets 200, a long retry and an end.
    let mut later = Stream::open(server.addr, None);
    assert_eq!(later.status, 200);
    assert_eq!(later.header("content-type"), Some("text/event-stream"));
    while later.next_any().is_some() {}
    assert!(later.ended, "the refused stream ends");
    assert!(later.retry().unwrap() >= 10_000, "{:?}", later.retry());

    // The open stream is unaffected: free a slot, post, and it arrives.
    drop(idle);
    let freed = std::time::Instant::now();
    let id = loop {
        assert!(
            freed.elapsed() < WAIT,
            "the closed connection's slot never freed"
        );
        let res = post_json(server.addr, "message=after+the+rush");
        if res.status == 201 {
            break json(&res.body)["id"].as_str().unwrap().to_string();
        }
        assert_eq!(res.status, 503);
    };
    assert_eq!(open.next_message().unwrap()["id"], id.as_str());
}

#[test]
fn a_bad_chunked_body_and_an_over_long_line_are_refused() {
    let server = TestServer::start();
    let mut reader = Stream::open(server.addr, None);
    let bad_chunks = b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nmessage=evil\r\n0\r\n\r\n";
    let mut s = connect(server.addr);
    s.write_all(bad_chunks).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert!(answer.contains("connection: close"), "{answer:?}");

    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(20 * 1024));
    let status = raw(server.addr, long.as_bytes()).status;
    assert!((400..500).contains(&status), "{status}");

    // Nothing was broadcast; the next message is the first anyone sees.
    let id = say(server.addr, "clean");
    let first = reader.next_message().unwrap();
    assert_eq!(first["id"], id.as_str());
}

#[test]
fn with_a_key_only_those_who_have_it_get_in() {
    let server = TestServer::with(|c| c.key = Some("tea-time_42".into()));
    let form = "Content-Type: application/x-www-form-urlencoded";

    // Without it: 401, and a page that says what to do.
    let page = get(server.addr, "/");
    assert_eq!(page.status, 401);
    assert!(page.text().contains("Scan the QR code"), "{}", page.text());
    assert_eq!(get(server.addr, "/events").status, 401);
    assert_eq!(get(server.addr, "/recent").status, 401);
    assert_eq!(get(server.addr, "/?key=tea-time_43").status, 401);
    let post = request(server.addr, "POST", "/message", &[form], b"message=x");
    assert_eq!(post.status, 401);
    let wrong_cookie = ["Cookie: lanchat_key=tea-time_4"];
    assert_eq!(
        request(server.addr, "GET", "/", &wrong_cookie, b"").status,
        401
    );
    // The files that hold nothing private still load (browsers fetch the manifest
    // without cookies).
    assert_eq!(get(server.addr, "/style.css").status, 200);
    assert_eq!(get(server.addr, "/manifest.webmanifest").status, 200);

    // The URL from the QR code: a cookie, and the key out of the address bar.
    let open = get(server.addr, "/?key=tea-time_42");
    assert_eq!(open.status, 303);
    assert_eq!(open.header("location"), Some("/"));
    let cookie = open.header("set-cookie").expect("a cookie");
    for part in ["lanchat_key=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    // The cookie holds a token derived from the key: read somewhere, it does not give
    // the key away; the key itself is no cookie.
    assert!(!cookie.contains("tea-time_42"), "{cookie}");
    let itself = ["Cookie: lanchat_key=tea-time_42"];
    assert_eq!(request(server.addr, "GET", "/", &itself, b"").status, 401);
    let token = key_token(server.addr, "tea-time_42");
    let with = [format!("Cookie: theme=dark; lanchat_key={token}")];
    let with = [with[0].as_str()];
    assert_eq!(request(server.addr, "GET", "/", &with, b"").status, 200);
    let mut stream = Stream::open_path(server.addr, "/events?key=tea-time_42", None);
    assert_eq!(stream.status, 200);
    let posted = request(
        server.addr,
        "POST",
        "/message",
        &[form, with[0], "Accept: application/json"],
        b"message=let+in",
    );
    assert_eq!(posted.status, 201, "{}", posted.text());
    assert_eq!(stream.next_message().unwrap()["text"], "let in");
}
