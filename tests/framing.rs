//! What a request's bytes can do: any byte in any header is served or refused, never
//! a crash; bodies are framed one way only (no request hides behind another's
//! body); pipelined requests are all answered, in order; `Expect: 100-continue` is
//! answered in order. Raw bytes over real sockets.

mod common;

use std::io::{BufReader, Read, Write};

use common::*;

/// Sends `bytes` on a new connection; the answer, and whether the server closed the
/// connection after it with nothing more.
fn answer_and_close(addr: std::net::SocketAddr, bytes: &[u8]) -> (Response, bool) {
    let mut stream = connect(addr);
    // The server may close before it has read all: what it answered is what counts.
    let _ = stream.write_all(bytes);
    let mut reader = BufReader::new(stream);
    let res = read_response(&mut reader).expect("an answer");
    let mut rest = Vec::new();
    let closed = reader.read_to_end(&mut rest).is_ok() && rest.is_empty();
    (res, closed)
}

#[test]
fn a_header_with_utf8_is_served_and_the_server_stays_up() {
    let server = TestServer::start();
    for header in [
        "X-A: caf\u{e9}",
        "Cookie: theme=caf\u{e9}",
        "Referer: http://caf\u{e9}.lan/",
        "User-Agent: Jo\u{eb}l's phone \u{1f4f1}",
        "Accept-Language: fran\u{e7}ais",
        "If-None-Match: \"\u{e9}t\u{e9}\"",
    ] {
        let res = request(server.addr, "GET", "/", &[header], b"");
        assert_eq!(res.status, 200, "{header}: {}", res.text());
    }
    // A post carrying someone else's cookie is a post like any other.
    let res = request(
        server.addr,
        "POST",
        "/message",
        &[
            "Content-Type: application/x-www-form-urlencoded",
            "Accept: application/json",
            "Cookie: pihole=\u{fc}ber; theme=caf\u{e9}",
        ],
        b"message=still+here",
    );
    assert_eq!(res.status, 201, "{}", res.text());
    say(server.addr, "and the server chats on");
}

#[test]
fn every_byte_in_a_header_value_is_served_or_refused_with_a_status() {
    let server = TestServer::start();
    for byte in 0..=255u8 {
        let mut head = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Byte: a", server.addr).into_bytes();
        head.push(byte);
        head.extend_from_slice(b"b\r\n\r\n");
        let res = raw(server.addr, &head);
        match byte {
            // A line break ends the field early and the rest is a line without a
            // colon; other control bytes are not field content.
            b'\t' | b' '..=b'~' | 0x80..=0xff => assert_eq!(res.status, 200, "byte {byte:#04x}"),
            _ => assert_eq!(res.status, 400, "byte {byte:#04x}"),
        }
    }
    say(server.addr, "after every byte");
}

#[test]
fn the_key_cookie_is_read_beside_a_cookie_with_utf8() {
    let server = TestServer::with(|c| c.key = Some("tea-time".into()));
    let token = key_token(server.addr, "tea-time");
    let res = request(
        server.addr,
        "GET",
        "/",
        &[&format!(
            "Cookie: theme=caf\u{e9}; lanchat_key={token}; lang=\u{65e5}\u{672c}"
        )],
        b"",
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let res = request(server.addr, "GET", "/", &["Cookie: theme=caf\u{e9}"], b"");
    assert_eq!(res.status, 401);
}

#[test]
fn a_host_that_is_not_ascii_gets_400() {
    let server = TestServer::start();
    let res = raw(
        server.addr,
        "GET / HTTP/1.1\r\nHost: caf\u{e9}.lan\r\n\r\n".as_bytes(),
    );
    assert_eq!(res.status, 400);
    assert!(res.text().contains("Host"), "{}", res.text());
}

#[test]
fn a_transfer_coding_but_chunked_is_refused_and_the_body_is_not_a_request() {
    let server = TestServer::start();
    let hidden = format!("GET /recent HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    for coding in ["gzip", "chunked, gzip", "identity", "gzip, chunked"] {
        let body = format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len());
        let request = format!(
            "POST /message HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: {coding}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\r\n{hidden}{body}",
            server.addr
        );
        let (res, closed) = answer_and_close(server.addr, request.as_bytes());
        let want = if coding == "gzip, chunked" { 501 } else { 400 };
        assert_eq!(res.status, want, "{coding}: {}", res.text());
        assert!(closed, "{coding}: nothing after the refusal");
    }
}

#[test]
fn lengths_that_a_proxy_could_read_otherwise_are_refused() {
    let server = TestServer::start();
    for lengths in [
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: 5, 6",
        "Content-Length: 5, 5",
        "Content-Length: +5",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
    ] {
        let head = format!(
            "POST /message HTTP/1.1\r\nHost: {}\r\n{lengths}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\r\nmessage=x",
            server.addr
        );
        let (res, closed) = answer_and_close(server.addr, head.as_bytes());
        assert_eq!(res.status, 400, "{lengths}: {}", res.text());
        assert!(closed, "{lengths}");
    }
    // The same length twice is one length.
    let res = request(
        server.addr,
        "POST",
        "/message",
        &[
            "Content-Type: application/x-www-form-urlencoded",
            "Accept: application/json",
            "Content-Length: 9",
        ],
        b"message=x",
    );
    assert_eq!(res.status, 201, "{}", res.text());
}

#[test]
fn a_head_with_bare_line_feeds_is_served_at_once() {
    let server = TestServer::start();
    let head = format!("GET /recent HTTP/1.1\nHost: {}\n\n", server.addr);
    let res = raw(server.addr, head.as_bytes());
    assert_eq!(res.status, 200);
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let server = TestServer::start();
    let addr = server.addr;
    let form = "Content-Type: application/x-www-form-urlencoded";
    let mut burst = Vec::new();
    burst.extend(build(addr, "GET", "/manifest.webmanifest", &[], b""));
    burst.extend(build(
        addr,
        "POST",
        "/message",
        &[form, "Accept: application/json"],
        b"message=one",
    ));
    // A chunked body, its chunks split oddly, with an extension and a trailer.
    burst.extend_from_slice(
        format!(
            "POST /message HTTP/1.1\r\nHost: {addr}\r\n{form}\r\nAccept: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n4;x=y\r\nmess\r\n7\r\nage=two\r\n0\r\nX-T: 1\r\n\r\n"
        )
        .as_bytes(),
    );
    burst.extend(build(
        addr,
        "POST",
        "/message",
        &[form, "Accept: application/json"],
        b"message=three",
    ));
    burst.extend(build(addr, "GET", "/recent", &[], b""));
    let mut stream = connect(addr);
    stream.write_all(&burst).unwrap();
    let mut reader = BufReader::new(stream);
    let statuses: Vec<u16> = (0..5)
        .map(|_| read_response(&mut reader).expect("an answer").status)
        .collect();
    assert_eq!(statuses[..4], [200, 201, 201, 201]);
    assert_eq!(statuses[4], 200);
    let recent = get(addr, "/recent").text();
    let at = |t: &str| recent.find(t).unwrap_or_else(|| panic!("{t} in {recent}"));
    assert!(at(">one<") < at(">two<") && at(">two<") < at(">three<"));
}

#[test]
fn expect_100_continue_is_answered_before_the_body_and_in_order() {
    let server = TestServer::start();
    let mut stream = connect(server.addr);
    let head = format!(
        "POST /message HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Accept: application/json\r\nExpect: 100-continue\r\nContent-Length: 13\r\n\r\n",
        server.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (status, _) = read_head(&mut reader).expect("the interim answer");
    assert_eq!(status, 100);
    stream.write_all(b"message=hi+x").unwrap();
    stream.write_all(b"x").unwrap();
    let res = read_response(&mut reader).expect("the answer");
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(json(&res.body)["text"], "hi xx");
    // And the connection goes on with nothing stray in it.
    stream
        .write_all(&build(server.addr, "GET", "/recent", &[], b""))
        .unwrap();
    assert_eq!(read_response(&mut reader).expect("next").status, 200);
}

#[test]
fn a_body_no_handler_reads_is_skipped_and_the_next_request_answered() {
    // Idle connections kept longer than a test read waits: a close below is the
    // server's answer to the body, not its idle timeout.
    let server = TestServer::with(|c| c.idle_timeout = std::time::Duration::from_secs(60));
    let addr = server.addr;
    let mut burst = Vec::new();
    // Bodies the page's files have no use for: longer than one read of what is
    // thrown away, by length and chunked.
    let long = vec![b'x'; 5000];
    burst.extend(build(addr, "GET", "/manifest.webmanifest", &[], &long));
    burst.extend_from_slice(
        format!(
            "GET /manifest.webmanifest HTTP/1.1\r\nHost: {addr}\r\n\
             Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1000\r\n{}\r\n0\r\n\r\n",
            "y".repeat(0x1000)
        )
        .as_bytes(),
    );
    burst.extend(build(addr, "GET", "/recent", &[], b""));
    let mut stream = connect(addr);
    stream.write_all(&burst).unwrap();
    let mut reader = BufReader::new(stream);
    for what in ["the first", "the chunked", "the last"] {
        let res = read_response(&mut reader).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(res.status, 200, "{what}");
    }

    // More left over than is worth reading: answered, then the connection ends
    // (with a reset, as the kernel does for a socket closed with bytes unread).
    let too_much = vec![b'z'; 70 * 1024];
    let mut stream = connect(addr);
    let _ = stream.write_all(&build(addr, "GET", "/manifest.webmanifest", &[], &too_much));
    let mut reader = BufReader::new(stream);
    assert_eq!(read_response(&mut reader).expect("an answer").status, 200);
    let mut rest = Vec::new();
    let ended = match reader.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(ended, "nothing follows the answer: {} bytes", rest.len());
}
