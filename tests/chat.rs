//! The chat core: the page, posting, streaming, bad input, shutdown.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

#[test]
fn page_is_served_from_the_binary_with_its_type() {
    let server = TestServer::start();
    let res = get(server.addr, "/");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    let page = res.text();
    assert!(page.contains("<form"), "{page}");
    assert!(page.contains("action=\"/message\"") && page.contains("method=\"post\""));
    let css = get(server.addr, "/style.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
}

#[test]
fn stream_opens_at_once_with_its_headers() {
    let server = TestServer::start();
    // Nobody posts: the head and the opening must still arrive.
    let mut stream = Stream::open(server.addr, None);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    assert_eq!(stream.header("x-accel-buffering"), Some("no"));
    assert!(stream.header("content-encoding").is_none());
    stream.wait_comments(1);
    assert_eq!(stream.retry(), Some(2000));
}

#[test]
fn every_subscriber_receives_a_posted_message() {
    let server = TestServer::start();
    let mut streams: Vec<Stream> = (0..5).map(|_| Stream::open(server.addr, None)).collect();
    streams[4].wait_online(5);
    let id = say(server.addr, "hello everyone");
    for stream in &mut streams {
        let msg = stream.next_message().expect("a message");
        assert_eq!(msg["text"], "hello everyone");
        assert_eq!(msg["name"], "t");
        assert_eq!(msg["id"], id.as_str());
        assert!(msg["time"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(stream.last_event_id(), id);
    }
}

#[test]
fn form_text_is_url_decoded() {
    let server = TestServer::start();
    let mut stream = Stream::open(server.addr, None);
    let res = post_json(server.addr, "message=hello+world+%26+caf%C3%A9");
    assert_eq!(res.status, 201);
    assert_eq!(json(&res.body)["text"], "hello world & café");
    assert_eq!(json(&res.body)["name"], "anonymous");
    assert_eq!(stream.next_message().unwrap()["text"], "hello world & café");
}

#[test]
fn multi_line_text_arrives_as_one_event_with_its_newlines() {
    let server = TestServer::start();
    let mut stream = Stream::open(server.addr, None);
    say(
        server.addr,
        "one\r\ntwo\rthree\n\nevent: reset\ndata: forged",
    );
    say(server.addr, "after");
    let first = stream.next_message().unwrap();
    assert_eq!(
        first["text"],
        "one\ntwo\nthree\n\nevent: reset\ndata: forged"
    );
    assert_eq!(stream.next_message().unwrap()["text"], "after");
}

#[test]
fn plain_form_post_is_redirected_to_the_page_and_json_post_gets_201() {
    let server = TestServer::start();
    let res = request(
        server.addr,
        "POST",
        "/message",
        &["Content-Type: application/x-www-form-urlencoded"],
        b"name=Ada&message=no+script",
    );
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/"));
    // The page the browser then loads still has the form, and the stream replays
    // the message to the new page.
    assert!(get(server.addr, "/").text().contains("<form"));
    let mut stream = Stream::open(server.addr, None);
    let msg = stream.next_message().unwrap();
    assert_eq!(
        (msg["name"].as_str(), msg["text"].as_str()),
        (Some("Ada"), Some("no script"))
    );

    let res = post_json(server.addr, "message=x");
    assert_eq!(res.status, 201);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = json(&res.body);
    for field in ["id", "name", "text", "time"] {
        assert!(body.get(field).is_some(), "{field} missing in {body}");
    }
}

#[test]
fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let server = TestServer::start();
    assert_eq!(get(server.addr, "/nope").status, 404);
    let res = request(server.addr, "GET", "/message", &[], b"");
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("POST"));
    let res = request(server.addr, "POST", "/events", &[], b"");
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET"));
    let res = request(server.addr, "DELETE", "/", &[], b"");
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
}

#[test]
fn bad_input_is_refused_with_a_reason_and_never_broadcast() {
    let server = TestServer::start();
    let mut stream = Stream::open(server.addr, None);
    let form = "Content-Type: application/x-www-form-urlencoded";
    let long = format!("message={}", "a".repeat(2001));
    let form: &[&str] = &[form];
    let plain: &[&str] = &["Content-Type: text/plain"];
    let cases: Vec<(Vec<u8>, &[&str], u16, &str)> = vec![
        (b"message=".to_vec(), form, 400, "empty"),
        (b"message=+%20%0A".to_vec(), form, 400, "empty"),
        (b"name=x".to_vec(), form, 400, "empty"),
        (long.into_bytes(), form, 400, "2000"),
        (b"message=%FF%FE".to_vec(), form, 400, "UTF-8"),
        (b"message=a%00b".to_vec(), form, 400, "control"),
        (b"message=hi".to_vec(), plain, 415, "urlencoded"),
        (b"message=hi".to_vec(), &[], 415, "urlencoded"),
        (
            vec![b'a'; lanchat::message::MAX_FORM_BYTES + 1],
            form,
            413,
            "too large",
        ),
    ];
    for (body, headers, status, reason) in cases {
        let res = request(server.addr, "POST", "/message", headers, &body);
        assert_eq!(res.status, status, "{}", res.text());
        assert!(
            res.text().contains(reason),
            "{:?} lacks {reason:?}",
            res.text()
        );
    }
    // A chunked body over the limit is cut off too.
    let mut chunked = b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..30 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[b'a'; 0x400]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(server.addr, &chunked).status, 413);

    // None of that reached anyone; the server still serves, and the next event the
    // subscriber sees is the next good message.
    say(server.addr, "still here");
    assert_eq!(stream.next_message().unwrap()["text"], "still here");
}

#[test]
fn the_longest_message_is_taken_in_every_script() {
    let server = TestServer::start();
    let mut stream = Stream::open(server.addr, None);
    // Latin, accented, Chinese, emoji (four bytes of UTF-8 each, twelve once
    // percent-encoded), and a name of emoji at its own limit.
    let name: String = "\u{1f98a}".repeat(lanchat::message::MAX_NAME_CHARS);
    for c in ["a", "\u{e9}", "\u{4e2d}", "\u{1f600}"] {
        let text = c.repeat(lanchat::message::MAX_TEXT_CHARS);
        let form = format!("name={}&message={}", encode(&name), encode(&text));
        let res = post_json(server.addr, &form);
        assert_eq!(res.status, 201, "{c}: {}", res.text());
        let got = stream.next_message().expect("the message");
        assert_eq!(got["text"].as_str().unwrap().chars().count(), 2000, "{c}");
    }
}

#[test]
fn a_subscriber_that_never_reads_does_not_delay_the_others() {
    let server = TestServer::with(|c| {
        c.queue = 16;
        c.history = 2000;
    });
    // Opens a stream and never reads from it again.
    let mut stuck = connect(server.addr);
    stuck
        .write_all(&build(server.addr, "GET", "/events", &[], b""))
        .unwrap();
    let mut fast = Stream::open(server.addr, None);
    fast.wait_online(2);

    // Enough bytes to fill the stuck client's socket buffers many times over.
    let text = "é".repeat(2000);
    // Past the 4 MiB a loopback send buffer grows to, plus what the reader holds.
    let total = 1500;
    let expected = text.len();
    let reader = std::thread::spawn(move || {
        for i in 0..total {
            let msg = fast.next_message().unwrap_or_else(|| panic!("message {i}"));
            assert_eq!(msg["text"].as_str().map(str::len), Some(expected));
        }
        // The stuck one was dropped, so presence goes back to one.
        fast.wait_online(1);
    });
    let form = format!("message={}", encode(&text));
    let mut poster = std::io::BufReader::new(connect(server.addr));
    for _ in 0..total {
        let req = build(
            server.addr,
            "POST",
            "/message",
            FORM_FOR_JSON,
            form.as_bytes(),
        );
        poster.get_mut().write_all(&req).unwrap();
        assert_eq!(read_response(&mut poster).unwrap().status, 201);
    }
    reader
        .join()
        .expect("the reading subscriber got every message");
    drop(stuck);
}

#[test]
fn shutdown_ends_open_streams_and_returns_promptly() {
    let mut server = TestServer::start();
    let mut streams: Vec<Stream> = (0..3).map(|_| Stream::open(server.addr, None)).collect();
    streams[2].wait_online(3);
    // An idle keep-alive connection must not hold shutdown either.
    let _idle = connect(server.addr);
    let took = server.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    for mut stream in streams {
        while stream.next().is_some() {}
        assert!(stream.ended, "the stream ended with the last chunk");
    }
    assert!(std::net::TcpStream::connect(server.addr).is_err());
}

#[test]
fn readers_without_javascript_get_the_recent_messages_as_html() {
    let server = TestServer::start();
    let evil = "<script>alert(1)</script> & \"quotes\"\nsecond line";
    say(server.addr, "first");
    say(server.addr, evil);
    let page = get(server.addr, "/recent");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    let first = html.find(">first<").expect("the first message");
    let second = html
        .find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;\nsecond line")
        .expect("the second message, escaped");
    assert!(first < second, "oldest first");
    assert!(!html.contains("<script>"));
    assert!(html.contains("http-equiv=\"refresh\""));
    // The chat page shows it when JavaScript is off.
    assert!(get(server.addr, "/").text().contains("<noscript>"));
    assert!(get(server.addr, "/").text().contains("src=\"/recent#end\""));
}
