//! Shared by the integration tests: a real server on `127.0.0.1:0` that stops when
//! dropped, a plain HTTP/1.1 client, and an event-stream client that decodes the
//! chunked body and parses it as a browser would. Blocking sockets with read
//! timeouts: every wait is for a condition, bounded.

#![allow(dead_code)]

pub mod bin;

use std::io::{BufRead, BufReader, Write};

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lanchat::sse::parse::{Event, Parser};
use lanchat::Config;

/// Longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server running on its own threads; stops and is joined on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        // The per-client limits are off unless a test turns them on: tests post
        // and connect from one address far faster than a person would.
        let mut config = Config {
            threads: 2,
            post_rate: None,
            max_per_client: usize::MAX,
            ..Config::default()
        };
        adjust(&mut config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            lanchat::run(listener, config, async move {
                let _ = stopped.recv().await;
            })
        });
        TestServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Asks the server to stop and waits for `run` to return; returns how long it took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("server thread")
                .expect("run returned Ok");
        }
        started.elapsed()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A response as a client sees it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    ready(TcpStream::connect(addr).expect("connect"))
}

/// A test's socket: every read bounded, small writes sent at once.
fn ready(stream: TcpStream) -> TcpStream {
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// A connection from another loopback address (such as 127.0.0.2): another client,
/// as far as the server can tell.
pub fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .expect("bind to the other address");
    socket.connect(&addr.into()).expect("connect");
    ready(socket.into())
}

/// A request sent from another client address; its response.
pub fn request_from(
    from: IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[&str],
    body: &[u8],
) -> Response {
    exchange(
        connect_from(from, addr),
        &build(addr, method, path, extra, body),
    )
}

pub const BOUNDARY: &str = "----lanchatTestBoundary7";

/// A JPEG's first bytes (start of image, a frame of 1600 × 1200), then filler.
pub fn jpeg(len: usize) -> Vec<u8> {
    let mut bytes = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x11\x08\x04\xb0\x06\x40\x03".to_vec();
    bytes.resize(len, 0x5a);
    bytes
}

/// A multipart body: text fields, then files as (name, type, bytes).
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes());
    }
    for (name, kind, bytes) in files {
        body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {kind}\r\n\r\n").bytes());
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    body
}

pub fn upload(addr: SocketAddr, body: &[u8], extra: &[&str]) -> Response {
    let kind = format!("Content-Type: multipart/form-data; boundary={BOUNDARY}");
    let mut headers = vec![kind.as_str(), "Accept: application/json"];
    headers.extend_from_slice(extra);
    request(addr, "POST", "/message", &headers, body)
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Response {
    exchange(connect(addr), request)
}

/// Sends `request` on `stream` and reads one response.
fn exchange(mut stream: TcpStream, request: &[u8]) -> Response {
    stream.write_all(request).expect("write");
    read_response(&mut BufReader::new(stream)).expect("a response")
}

/// A request with the usual headers; `extra` are more header lines.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[&str],
    body: &[u8],
) -> Response {
    raw(addr, &build(addr, method, path, extra, body))
}

pub fn build(addr: SocketAddr, method: &str, path: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

/// The headers of a page's post: a form in, the stored message back as JSON.
pub const FORM_FOR_JSON: &[&str] = &[
    "Content-Type: application/x-www-form-urlencoded",
    "Accept: application/json",
];

/// Posts a form as a page's `fetch` would (asking for JSON).
pub fn post_json(addr: SocketAddr, form: &str) -> Response {
    request(addr, "POST", "/message", FORM_FOR_JSON, form.as_bytes())
}

/// The value of the access key's cookie a browser gets for opening the chat with
/// `?key=KEY`: a token the server derives from the key, not the key.
pub fn key_token(addr: SocketAddr, key: &str) -> String {
    let res = get(addr, &format!("/?key={key}"));
    assert_eq!(res.status, 303, "{}", res.text());
    res.headers
        .iter()
        .find_map(|(n, v)| {
            let v = v.strip_prefix("lanchat_key=")?;
            n.eq_ignore_ascii_case("set-cookie")
                .then(|| v.split(';').next().unwrap_or_default().to_string())
        })
        .expect("the key's cookie")
}

/// Posts a message and returns its id; panics unless it is stored.
pub fn say(addr: SocketAddr, text: &str) -> String {
    let res = post_json(addr, &format!("name=t&message={}", encode(text)));
    assert_eq!(res.status, 201, "{}", res.text());
    json(&res.body)["id"].as_str().expect("id").to_string()
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// Percent-encodes a form value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads one response: head, then a body by `Content-Length`, chunked (to the end),
/// or to end-of-file.
pub fn read_response(reader: &mut impl BufRead) -> std::io::Result<Response> {
    let (status, headers) = read_head(reader)?;
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = find("content-length") {
        let len: usize = len.parse().expect("length");
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        while let Some(chunk) = read_chunk(reader)? {
            body.extend_from_slice(&chunk);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

pub fn read_head(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("header line");
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok((status, headers))
}

/// One chunk of a chunked body; `None` at the last chunk.
pub fn read_chunk(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
    let mut data = vec![0; size + 2];
    reader.read_exact(&mut data)?;
    assert_eq!(&data[size..], b"\r\n", "chunk ends with CRLF");
    data.truncate(size);
    if size == 0 {
        Ok(None)
    } else {
        Ok(Some(data))
    }
}

/// An `/events` stream read as a browser's EventSource would.
pub struct Stream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    parser: Parser,
    pending: std::collections::VecDeque<Event>,
    /// Set when the server ended the response (last chunk).
    pub ended: bool,
    /// The count of the last presence event read, as the page would show it.
    pub online: Option<u64>,
}

impl Stream {
    pub fn open(addr: SocketAddr, last_event_id: Option<&str>) -> Stream {
        Stream::open_path(addr, "/events", last_event_id)
    }

    pub fn open_path(addr: SocketAddr, path: &str, last_event_id: Option<&str>) -> Stream {
        Stream::on(connect(addr), addr, path, last_event_id)
    }

    /// A stream opened from another client address (see [`connect_from`]).
    pub fn open_from(from: IpAddr, addr: SocketAddr) -> Stream {
        Stream::on(connect_from(from, addr), addr, "/events", None)
    }

    fn on(
        mut stream: TcpStream,
        addr: SocketAddr,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Stream {
        let id_header = last_event_id.map(|id| format!("Last-Event-ID: {id}"));
        let mut extra = vec!["Accept: text/event-stream"];
        if let Some(h) = &id_header {
            extra.push(h);
        }
        stream
            .write_all(&build(addr, "GET", path, &extra, b""))
            .expect("write");
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).expect("stream head");
        Stream {
            status,
            headers,
            reader,
            parser: Parser::default(),
            pending: Default::default(),
            ended: false,
            online: None,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads one more chunk into the parser; `false` at the end of the stream.
    fn pump(&mut self) -> bool {
        if self.ended {
            return false;
        }
        match read_chunk(&mut self.reader) {
            Ok(Some(bytes)) => {
                let text = String::from_utf8(bytes).expect("UTF-8 stream");
                let events = self.parser.feed(&text);
                self.pending.extend(events);
                true
            }
            Ok(None) => {
                self.ended = true;
                false
            }
            Err(e) => panic!("stream read failed: {e}"),
        }
    }

    /// The next event other than a heartbeat `ping`, which can come at any point
    /// (the opening chunk carries one); `None` if the stream ends first.
    pub fn next(&mut self) -> Option<Event> {
        loop {
            let event = self.next_any()?;
            if event.event != "ping" {
                return Some(event);
            }
        }
    }

    /// The next event of any kind, pings included.
    pub fn next_any(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.event == "presence" {
                    let data: serde_json::Value = serde_json::from_str(&event.data).expect("JSON");
                    self.online = data["online"].as_u64();
                }
                return Some(event);
            }
            if !self.pump() {
                return None;
            }
        }
    }

    /// The next chat message (skipping presence and others).
    pub fn next_message(&mut self) -> Option<serde_json::Value> {
        loop {
            let event = self.next()?;
            if event.event == "message" {
                return Some(serde_json::from_str(&event.data).expect("message JSON"));
            }
        }
    }

    /// The next event named `name`.
    pub fn next_named(&mut self, name: &str) -> Option<Event> {
        loop {
            let event = self.next_any()?;
            if event.event == name {
                return Some(event);
            }
        }
    }

    /// Reads until the last presence event read says `online`.
    pub fn wait_online(&mut self, online: u64) {
        while self.online != Some(online) {
            self.next().expect("a presence event");
        }
    }

    /// Reads until at least `n` comments (heartbeats) were seen.
    pub fn wait_comments(&mut self, n: usize) {
        while self.parser.comments < n {
            assert!(self.pump(), "stream ended before {n} comments");
        }
    }

    pub fn retry(&self) -> Option<u64> {
        self.parser.retry
    }

    pub fn last_event_id(&self) -> String {
        self.parser.last_event_id().to_string()
    }

    pub fn socket(&self) -> &TcpStream {
        self.reader.get_ref()
    }
}
