//! HTTP behaviour below the routes: caching, compression, keep-alive, heads that
//! cannot be parsed, slow clients, and posts from other sites.

mod common;

use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn assets_revalidate_with_etag_and_304() {
    let server = TestServer::start();
    let res = get(server.addr, "/");
    let etag = res.header("etag").expect("an ETag").to_string();
    assert_eq!(res.header("cache-control"), Some("no-cache"));
    let again = request(
        server.addr,
        "GET",
        "/",
        &[&format!("If-None-Match: {etag}")],
        b"",
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let stale = request(server.addr, "GET", "/", &["If-None-Match: \"other\""], b"");
    assert_eq!(stale.status, 200);
    // If-None-Match compares weakly (RFC 9110 13.1.2): a proxy may have weakened the
    // tag, and a list names it anywhere.
    for given in [format!("W/{etag}"), format!("\"other\", W/{etag}")] {
        let weak = request(
            server.addr,
            "GET",
            "/",
            &[&format!("If-None-Match: {given}")],
            b"",
        );
        assert_eq!(weak.status, 304, "{given}");
    }
}

#[test]
fn text_assets_are_gzipped_when_accepted() {
    let server = TestServer::start();
    let plain = get(server.addr, "/");
    let gz = request(
        server.addr,
        "GET",
        "/",
        &["Accept-Encoding: gzip, deflate, br"],
        b"",
    );
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("accept-encoding"));
    assert!(gz.body.len() < plain.body.len());
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b]);
    assert_ne!(gz.header("etag"), plain.header("etag"));
    assert!(plain.header("content-encoding").is_none());
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = TestServer::start();
    let mut reader = BufReader::new(connect(server.addr));
    for path in ["/", "/style.css", "/nope", "/"] {
        reader
            .get_mut()
            .write_all(&build(server.addr, "GET", path, &[], b""))
            .unwrap();
        let res = read_response(&mut reader).unwrap();
        assert_eq!(res.status, if path == "/nope" { 404 } else { 200 });
    }
    // A request body the route does not read is skipped, not parsed as a request.
    reader
        .get_mut()
        .write_all(&build(
            server.addr,
            "GET",
            "/",
            &[],
            b"GARBAGE / HTTP/1.1\r\n\r\n",
        ))
        .unwrap();
    assert_eq!(read_response(&mut reader).unwrap().status, 200);
    reader
        .get_mut()
        .write_all(&build(server.addr, "GET", "/style.css", &[], b""))
        .unwrap();
    assert_eq!(read_response(&mut reader).unwrap().status, 200);
}

#[test]
fn answers_from_memory_carry_their_length_and_the_date_and_head_gets_no_body() {
    let server = TestServer::start();
    let mut reader = BufReader::new(connect(server.addr));
    // Pipelined: if HEAD's answer had a body, the next head would not parse.
    let mut requests = build(server.addr, "HEAD", "/nope", &[], b"");
    requests.extend(build(server.addr, "GET", "/nope", &[], b""));
    let form = "name=Ann&message=hello";
    requests.extend(build(
        server.addr,
        "POST",
        "/message",
        FORM_FOR_JSON,
        form.as_bytes(),
    ));
    reader.get_mut().write_all(&requests).unwrap();
    let header = |headers: &[(String, String)], name: &str| -> String {
        let found: Vec<&String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(found.len(), 1, "one {name}: {headers:?}");
        found[0].clone()
    };
    let (status, head_only) = read_head(&mut reader).unwrap();
    assert_eq!(status, 404);
    let got = read_response(&mut reader).unwrap();
    assert_eq!(got.status, 404);
    assert!(!got.body.is_empty());
    let length = header(&head_only, "content-length");
    assert_eq!(
        length,
        got.body.len().to_string(),
        "HEAD tells GET's length"
    );
    assert_eq!(
        header(&head_only, "content-type"),
        header(&got.headers, "content-type")
    );
    let posted = read_response(&mut reader).unwrap();
    assert_eq!(posted.status, 201, "{}", posted.text());
    assert_eq!(json(&posted.body)["text"], "hello");
    assert_eq!(
        header(&posted.headers, "content-length"),
        posted.body.len().to_string()
    );
    for headers in [&head_only, &got.headers, &posted.headers] {
        // An IMF-fixdate: "Tue, 01 Dec 2026 03:04:05 GMT".
        let date = header(headers, "date");
        let shape: String = date
            .chars()
            .map(|c| match c {
                '0'..='9' => '9',
                'A'..='Z' => 'A',
                'a'..='z' => 'a',
                other => other,
            })
            .collect();
        assert_eq!(shape, "Aaa, 99 Aaa 9999 99:99:99 AAA", "{date}");
        assert!(date.ends_with(" GMT"));
    }
}

#[test]
fn heads_that_cannot_be_parsed_get_a_status_not_silence() {
    let server = TestServer::start();
    assert_eq!(raw(server.addr, b"\x16\x03\x01garbage\r\n\r\n").status, 400);
    assert_eq!(
        raw(server.addr, b"GET / HTTP/1.1\r\n\r\n").status,
        400,
        "no Host"
    );
    assert_eq!(
        raw(server.addr, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").status,
        505
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    assert_eq!(raw(server.addr, big.as_bytes()).status, 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(raw(server.addr, many.as_bytes()).status, 431);
    let smuggle = b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(raw(server.addr, smuggle).status, 400);
    // And the server still chats.
    say(server.addr, "fine");
}

#[test]
fn a_head_that_trickles_in_is_cut_off_at_the_deadline() {
    let server = TestServer::with(|c| c.head_timeout = Duration::from_millis(300));
    let mut slow = connect(server.addr);
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    // Keep sending header lines, never finishing the head.
    let mut buf = [0; 256];
    slow.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let closed = loop {
        assert!(started.elapsed() < WAIT, "never cut off");
        if slow.write_all(b"X-Slow: 1\r\n").is_err() {
            break true;
        }
        match slow.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => break true, // a response before the close is fine too
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break true,
        }
    };
    assert!(closed);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Others were served all along.
    assert_eq!(get(server.addr, "/").status, 200);
}

#[test]
fn a_body_that_trickles_past_its_deadline_gets_408() {
    let server = TestServer::with(|c| c.body_timeout = Duration::from_millis(300));
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nmessage=")
        .unwrap();
    let res = read_response(&mut BufReader::new(stream)).unwrap();
    assert_eq!(res.status, 408);
    assert_eq!(res.header("connection"), Some("close"));
}

#[test]
fn posts_from_another_site_are_refused() {
    let server = TestServer::start();
    let form = "Content-Type: application/x-www-form-urlencoded";
    let evil = request(
        server.addr,
        "POST",
        "/message",
        &[form, "Origin: http://evil.example"],
        b"message=x",
    );
    assert_eq!(evil.status, 403);
    let evil = request(
        server.addr,
        "POST",
        "/message",
        &[form, "Referer: http://evil.example/page"],
        b"message=x",
    );
    assert_eq!(evil.status, 403);
    let null = request(
        server.addr,
        "POST",
        "/message",
        &[form, "Origin: null"],
        b"message=x",
    );
    assert_eq!(null.status, 403);
    // The chat's host and port over https is another origin: the chat is http only.
    let tls = format!("Origin: https://{}", server.addr);
    let other_scheme = request(server.addr, "POST", "/message", &[form, &tls], b"message=x");
    assert_eq!(other_scheme.status, 403, "{}", other_scheme.text());
    let own = format!("Origin: http://{}", server.addr);
    let ok = request(server.addr, "POST", "/message", &[form, &own], b"message=x");
    assert_eq!(ok.status, 303);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let server = TestServer::with(|c| c.idle_timeout = Duration::from_millis(200));
    let mut reader = BufReader::new(connect(server.addr));
    // Taken before the request: the server's idle time starts after it answers.
    let idle = Instant::now();
    reader
        .get_mut()
        .write_all(&build(server.addr, "GET", "/", &[], b""))
        .unwrap();
    assert_eq!(read_response(&mut reader).unwrap().status, 200);
    assert_closed_after(&mut reader, idle, Duration::from_millis(200));
}

/// The server closes `reader`'s connection with nothing more sent, and not before
/// `at_least` has passed since `since`.
fn assert_closed_after(reader: &mut impl Read, since: Instant, at_least: Duration) {
    let mut rest = Vec::new();
    let n = reader
        .read_to_end(&mut rest)
        .expect("closed, not timed out");
    assert_eq!(n, 0, "nothing more is sent");
    assert!(
        since.elapsed() >= at_least,
        "closed after {:?}",
        since.elapsed()
    );
}

#[test]
fn a_connection_used_more_often_than_the_idle_timeout_stays_open() {
    let server = TestServer::with(|c| c.idle_timeout = Duration::from_millis(300));
    let mut reader = BufReader::new(connect(server.addr));
    let started = Instant::now();
    let mut answered = 0;
    // A request every 100 ms for four idle timeouts: each pause is shorter than the
    // timeout, so the connection must outlive all of them.
    while started.elapsed() < Duration::from_millis(1200) {
        let sent = reader
            .get_mut()
            .write_all(&build(server.addr, "GET", "/", &[], b""));
        assert!(sent.is_ok(), "closed after {answered} answers");
        let res = read_response(&mut reader).expect("closed while in use");
        assert_eq!(res.status, 200);
        answered += 1;
        // The pause between two requests is what is tested.
        std::thread::sleep(Duration::from_millis(100));
    }
    // Then a pause longer than the timeout ends it.
    assert_closed_after(&mut reader, Instant::now(), Duration::from_millis(150));
}

#[test]
fn the_page_is_installable_with_a_manifest_and_icons() {
    let server = TestServer::start();
    let page = get(server.addr, "/").text();
    assert!(page.contains(r#"<link rel="manifest" href="/manifest.webmanifest">"#));
    assert!(page.contains(r#"<meta name="theme-color""#));
    let manifest = get(server.addr, "/manifest.webmanifest");
    assert_eq!(manifest.status, 200);
    assert_eq!(
        manifest.header("content-type"),
        Some("application/manifest+json")
    );
    let manifest = json(&manifest.body);
    assert_eq!(manifest["display"], "standalone");
    assert_eq!(manifest["start_url"], "/");
    let icons = manifest["icons"].as_array().expect("icons");
    let mut types = Vec::new();
    for icon in icons {
        let res = get(server.addr, icon["src"].as_str().unwrap());
        assert_eq!(res.status, 200, "{icon}");
        assert_eq!(res.header("content-type"), icon["type"].as_str(), "{icon}");
        types.push(icon["type"].as_str().unwrap().to_string());
    }
    assert!(types.iter().any(|t| t == "image/svg+xml"));
    assert!(types.iter().any(|t| t == "image/png"));
}
