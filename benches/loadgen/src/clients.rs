//! The clients: `/events` subscribers that count what they get, and publishers.

use super::*;

/// What every subscriber and publisher records, on the one loadgen thread.
#[derive(Default)]
pub(crate) struct Board {
    /// Per message number n (index n): when its POST was sent.
    pub(crate) sent: Vec<Option<Instant>>,
    pub(crate) first: Vec<Option<Instant>>,
    pub(crate) last: Vec<Option<Instant>>,
    pub(crate) count: Vec<u32>,
    pub(crate) deliveries: u64,
    pub(crate) duplicates: u64,
    pub(crate) lost: u64,
    pub(crate) reconnects: u64,
    pub(crate) connected: usize,
    /// The largest presence count the server has announced.
    pub(crate) online: usize,
    /// Subscribers whose next expected n is past this are caught up.
    pub(crate) behind: Vec<u64>,
    pub(crate) subscribers: usize,
    /// Told each time a message reaches its last subscriber.
    pub(crate) complete: Option<async_channel::Sender<u64>>,
}

impl Board {
    pub(crate) fn slot(&mut self, n: usize) {
        if self.count.len() <= n {
            let len = n + 1024;
            self.sent.resize(len, None);
            self.first.resize(len, None);
            self.last.resize(len, None);
            self.count.resize(len, 0);
        }
    }

    pub(crate) fn arrived(&mut self, n: u64, at: Instant) {
        let i = n as usize;
        self.slot(i);
        self.deliveries += 1;
        self.first[i].get_or_insert(at);
        self.last[i] = Some(at);
        self.count[i] += 1;
        if self.count[i] as usize == self.subscribers {
            if let Some(tx) = &self.complete {
                let _ = tx.try_send(n);
            }
        }
    }
}

pub(crate) type Shared = Rc<RefCell<Board>>;

/// One `/events` client: reads the chunked stream, counts ids, reconnects with its
/// last id when the server ends the stream.
pub(crate) async fn subscriber(addr: SocketAddr, index: usize, board: Shared) {
    let mut epoch = String::new();
    let mut expected: u64 = 0; // 0: not yet known (the first message sets it)
    let mut first_connect = true;
    loop {
        let mut stream = match Async::<TcpStream>::connect(addr).await {
            Ok(s) => s,
            Err(_) => {
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut head =
            String::from("GET /events HTTP/1.1\r\nHost: loadgen\r\nAccept: text/event-stream\r\n");
        if expected > 0 {
            let _ = write!(head, "Last-Event-ID: {epoch}-{}\r\n", expected - 1);
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        if first_connect {
            board.borrow_mut().connected += 1;
            first_connect = false;
        }
        let mut frames = Frames::default();
        let ended = loop {
            let more = read_ready(&stream, |bytes, now| {
                let mut b = board.borrow_mut();
                frames.feed(bytes, |prefix| {
                    if let Some(online) =
                        prefix.strip_prefix(b"event: presence\ndata: {\"online\":")
                    {
                        let n = digits(online);
                        b.online = b.online.max(n as usize);
                    } else if let Some(id) = prefix.strip_prefix(b"id: ") {
                        let Some(dash) = id.iter().position(|&c| c == b'-') else {
                            return;
                        };
                        if epoch.is_empty() {
                            epoch = String::from_utf8_lossy(&id[..dash]).into_owned();
                        }
                        let n = digits(&id[dash + 1..]);
                        if expected == 0 || n == expected {
                            b.arrived(n, now);
                            expected = n + 1;
                        } else if n < expected {
                            b.duplicates += 1;
                        } else {
                            b.lost += n - expected;
                            b.arrived(n, now);
                            expected = n + 1;
                        }
                        b.behind[index] = expected;
                    }
                })
            })
            .await;
            if !more {
                break true;
            }
        };
        if ended {
            board.borrow_mut().reconnects += 1;
        }
    }
}

pub(crate) fn digits(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0, |n, &c| n * 10 + u64::from(c - b'0'))
}

thread_local! {
    /// The one read buffer of this thread's readers: a read never awaits while it
    /// holds it, and 10,000 readers touching one buffer stay in cache where 10,000
    /// buffers of their own would not.
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; 64 * 1024].into_boxed_slice());
}

/// Waits until `stream` is readable, then reads what it holds, calling `got` with
/// each read and its time until `got` returns `true` (stop) or the socket is empty.
/// Returns `false` when the stream has ended: end of file, an error, or `got` said
/// stop.
///
/// Waiting first and reading once costs one `recv` per wake-up; `AsyncRead` would
/// read again after every read to find the socket empty. The reader must cost less
/// than the server's write, or the publish -> last figures would time the reader.
pub(crate) async fn read_ready(
    stream: &Async<TcpStream>,
    mut got: impl FnMut(&[u8], Instant) -> bool,
) -> bool {
    use std::io::Read as _;
    loop {
        if stream.readable().await.is_err() {
            return false;
        }
        let read = READ_BUF.with_borrow_mut(|buf| loop {
            match stream.get_ref().read(buf) {
                Ok(0) => return Some(false),
                Ok(k) => {
                    if got(&buf[..k], Instant::now()) {
                        return Some(false);
                    }
                    if k < buf.len() {
                        return Some(true);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Some(false),
            }
        });
        // `None`: woken with nothing to read; wait again.
        if let Some(more) = read {
            return more;
        }
    }
}

/// Walks a chunked `text/event-stream` response frame by frame. The server writes
/// each event as one chunk, so only the first bytes of each chunk are looked at and
/// the rest is skipped without scanning: the reader must keep up with a server
/// delivering millions of events a second on one core.
#[derive(Default)]
pub(crate) struct Frames {
    state: FrameState,
    /// Progress through the `\r\n\r\n` that ends the response head.
    head_matched: u8,
    size: usize,
    remaining: usize,
    prefix: Vec<u8>,
}

#[derive(Default, PartialEq)]
pub(crate) enum FrameState {
    #[default]
    Head,
    Size,
    Data,
    /// The CRLF after a chunk's data; the number of bytes still to skip.
    Trailer(u8),
}

pub(crate) const PREFIX: usize = 64;

impl Frames {
    /// Feeds bytes; calls `frame` with the first bytes of each complete chunk.
    /// Returns `true` at the last chunk (the server ended the stream).
    fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(&[u8])) -> bool {
        while !bytes.is_empty() {
            match self.state {
                FrameState::Head => {
                    let want = b"\r\n\r\n";
                    let c = bytes[0];
                    bytes = &bytes[1..];
                    if c == want[self.head_matched as usize] {
                        self.head_matched += 1;
                    } else {
                        self.head_matched = u8::from(c == b'\r');
                    }
                    if self.head_matched == 4 {
                        self.state = FrameState::Size;
                        self.size = 0;
                    }
                }
                FrameState::Size => {
                    let c = bytes[0];
                    bytes = &bytes[1..];
                    match c {
                        b'0'..=b'9' => self.size = self.size * 16 + usize::from(c - b'0'),
                        b'a'..=b'f' => self.size = self.size * 16 + usize::from(c - b'a' + 10),
                        b'A'..=b'F' => self.size = self.size * 16 + usize::from(c - b'A' + 10),
                        b'\n' if self.size == 0 => return true,
                        b'\n' => {
                            self.remaining = self.size;
                            self.prefix.clear();
                            self.state = FrameState::Data;
                        }
                        _ => {}
                    }
                }
                FrameState::Data => {
                    let take = self.remaining.min(bytes.len());
                    let keep = take.min(PREFIX.saturating_sub(self.prefix.len()));
                    self.prefix.extend_from_slice(&bytes[..keep]);
                    self.remaining -= take;
                    bytes = &bytes[take..];
                    if self.remaining == 0 {
                        frame(&self.prefix);
                        self.state = FrameState::Trailer(2);
                    }
                }
                FrameState::Trailer(left) => {
                    bytes = &bytes[1..];
                    if left == 1 {
                        self.state = FrameState::Size;
                        self.size = 0;
                    } else {
                        self.state = FrameState::Trailer(left - 1);
                    }
                }
            }
        }
        false
    }
}

/// A keep-alive publisher connection.
pub(crate) struct Publisher {
    stream: Async<TcpStream>,
    buf: Vec<u8>,
    /// The whole id of the last message posted.
    pub(crate) last_id: String,
}

impl Publisher {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Publisher, String> {
        let stream = Async::<TcpStream>::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Publisher {
            stream,
            buf: Vec::with_capacity(4096),
            last_id: String::new(),
        })
    }

    /// Posts one message; returns its n.
    pub(crate) async fn post(&mut self, text: &str) -> Result<u64, String> {
        let body = format!("name=loadgen&message={text}");
        self.send("/message", &body, "201", "\"id\":\"").await
    }

    /// Gives (`on`) or takes back a reaction to the message `id`; returns the n of
    /// the reaction's event.
    pub(crate) async fn react(&mut self, id: &str, on: bool) -> Result<u64, String> {
        let on = if on { 1 } else { 0 };
        let body = format!("emoji=%F0%9F%91%8D&on={on}&name=loadgen&device=loadgen-device-0001");
        self.send(
            &format!("/message/{id}/react"),
            &body,
            "200",
            "\"event\":\"",
        )
        .await
    }

    /// One request; the n of the id after `key` in an answer of `status`.
    async fn send(
        &mut self,
        path: &str,
        body: &str,
        status: &str,
        key: &str,
    ) -> Result<u64, String> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: loadgen\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // Read one response: head, then Content-Length bytes.
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let body =
                        String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).to_string();
                    self.buf.drain(..end + 4 + len);
                    if !head.starts_with(&format!("HTTP/1.1 {status}")) {
                        return Err(format!(
                            "post answered {}",
                            head.lines().next().unwrap_or("")
                        ));
                    }
                    let id = body
                        .split(key)
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .ok_or("no id in the answer")?;
                    if status == "201" {
                        self.last_id = id.to_string();
                    }
                    return id
                        .rsplit('-')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| format!("bad id {id}"));
                }
            }
            let mut chunk = [0u8; 2048];
            let k = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| e.to_string())?;
            if k == 0 {
                return Err("the server closed a publisher connection".into());
            }
            self.buf.extend_from_slice(&chunk[..k]);
        }
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Starts N subscribers and waits until the server counts them all (its RSS settles).
pub(crate) async fn subscribe_all(
    ex: &LocalExecutor<'_>,
    addr: SocketAddr,
    n: usize,
    board: &Shared,
) -> Result<(), String> {
    board.borrow_mut().behind = vec![0; n];
    board.borrow_mut().subscribers = n;
    for i in 0..n {
        // Ended with the executor, when the session ends.
        ex.spawn(subscriber(addr, i, board.clone())).detach();
        if i % 100 == 99 {
            // Let connects proceed in batches, as phones arrive, without overrunning
            // the listen backlog.
            Timer::after(Duration::from_millis(2)).await;
        }
    }
    // Joined means the server counts them: it announces the count in presence events.
    let deadline = Instant::now() + Duration::from_secs(60);
    while board.borrow().online < n {
        if Instant::now() > deadline {
            let b = board.borrow();
            return Err(format!(
                "only {} of {n} subscribers joined ({} connected)",
                b.online, b.connected
            ));
        }
        Timer::after(Duration::from_millis(20)).await;
    }
    // A probe message proves every stream is open and being written.
    let mut p = Publisher::connect(addr).await?;
    let (tx, rx) = async_channel::unbounded();
    board.borrow_mut().complete = Some(tx);
    let n0 = p.post("probe").await?;
    wait_complete(&rx, n0, Duration::from_secs(60)).await?;
    Ok(())
}

pub(crate) async fn wait_complete(
    rx: &async_channel::Receiver<u64>,
    n: u64,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let got = async { rx.recv().await.ok() }
            .or(async {
                Timer::at(deadline).await;
                None
            })
            .await;
        match got {
            Some(m) if m == n => return Ok(()),
            Some(_) => continue,
            None => {
                return Err(format!(
                    "message {n} did not reach every subscriber in {limit:?}"
                ))
            }
        }
    }
}
