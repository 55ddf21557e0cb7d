//! Load generator for lanchat, on loopback only, bounded in count and time.
//!
//! Modes (see BENCHMARKS.md for the method):
//! - `floor`: the cost of the bare syscall: one `write` of a 120-byte chunked SSE
//!   frame to each of N loopback sockets whose readers wait in epoll on the other
//!   core. Served by a child process (`floor-serve`) that does one round on request.
//! - `fanout`: N raw HTTP/1.1 `/events` subscribers; M messages published one at a
//!   time, each after the previous reached every subscriber, each beside a floor
//!   round measured just before it; the ratios to the floor are medians over these
//!   pairs.
//! - `flatout`: N subscribers; P publishers posting as fast as they can for T seconds.
//!   Subscribers that the server drops for a full queue reconnect with
//!   `Last-Event-ID`, as a browser does, and every gap and duplicate is counted.
//! - `suite`: floor, fanout and flatout at 1,000 and 10,000 subscribers, 3 runs
//!   each, medians, as a Markdown table.
//!
//! The server is started by this program (`--server PATH`), pinned to core 0 with
//! `taskset`; this program pins itself to core 1.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};
use smol::{Async, LocalExecutor, Timer};

/// The pause after each floor round and each fan-out message. Loopback runs the
/// receiving side of a write in the writer's context, so the readers' delayed ACKs
/// are timers on the writer's core that fire tens of milliseconds later: without a
/// pause they would land in the next round or message and be charged to it.
const ROUND_GAP: Duration = Duration::from_millis(100);

const USAGE: &str = "usage: loadgen MODE [options]
modes:  floor | fanout | flatout | suite
  --server CMD         the server to measure (default target/release/lanchat);
                       peers: benches/peers/ (see BENCHMARKS.md)
  --subscribers N      /events clients (default 1000)
  --messages M         fanout: messages, one at a time (default 20)
  --publishers P       flatout: concurrent publishers (default 4)
  --seconds T          flatout: how long publishers post (default 5)
  --threads K          server --threads (default 1)
  --runs R             suite: runs per figure (default 3)
  --out FILE           suite: also write the Markdown table here
  --peer NAME=CMD      suite: another server to measure beside lanchat (repeatable)
";

#[derive(Clone, Debug)]
struct Opts {
    server: String,
    subscribers: usize,
    messages: usize,
    publishers: usize,
    seconds: u64,
    threads: usize,
    runs: usize,
    out: Option<String>,
    /// `NAME=COMMAND` servers the suite measures beside lanchat.
    peers: Vec<String>,
}

fn parse_args() -> Result<(String, Opts), String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("no mode given")?;
    let mut o = Opts {
        server: "target/release/lanchat".into(),
        subscribers: 1000,
        messages: 20,
        publishers: 4,
        seconds: 5,
        threads: 1,
        runs: 3,
        out: None,
        peers: Vec::new(),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: '{value}' is not a number"))
        };
        match flag.as_str() {
            "--server" => o.server = value.clone(),
            "--subscribers" => o.subscribers = num()?.clamp(1, 20_000),
            "--messages" => o.messages = num()?.clamp(1, 100_000),
            "--publishers" => o.publishers = num()?.clamp(1, 256),
            "--seconds" => o.seconds = num()?.clamp(1, 120) as u64,
            "--threads" => o.threads = num()?.clamp(1, 64),
            "--runs" => o.runs = num()?.clamp(1, 20),
            "--out" => o.out = Some(value.clone()),
            "--peer" => o.peers.push(value.clone()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((mode, o))
}

fn main() {
    let (mode, opts) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    raise_open_files();
    pin_to_core(1);
    let result = match mode.as_str() {
        "floor" => floor(opts.subscribers).map(|f| println!("{f}")),
        "floor-serve" => floor_serve(opts.subscribers),
        "fanout" => fanout(&opts).map(|r| println!("{r}")),
        "flatout" => flatout(&opts).map(|r| println!("{r}")),
        "suite" => suite(&opts),
        _ => Err(format!("unknown mode {mode}\n{USAGE}")),
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

// ---- the machine ----------------------------------------------------------------

fn raise_open_files() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
}

fn pin_to_core(core: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time of every thread of a process, in nanoseconds (schedstat: exact, unlike
/// the 10 ms ticks of /proc/pid/stat).
fn process_cpu(pid: u32) -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(total)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

// ---- the server -------------------------------------------------------------------

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(o: &Opts, queue: Option<usize>) -> Result<Server, String> {
        use std::io::{BufRead, BufReader};
        // `--server` may carry arguments: `node benches/peers/node-tutorial.mjs`.
        // One thread: core 0, the load generator has core 1. More threads share
        // both cores with the load generator.
        let cores = if o.threads > 1 { "0,1" } else { "0" };
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", cores])
            .args(o.server.split_whitespace())
            .args(["--listen", "127.0.0.1:0", "--quiet", "--log-level", "info"])
            .args(["--threads", &o.threads.to_string()])
            .args(["--max-connections", &(o.subscribers + 1000).to_string()])
            .args([
                "--heartbeat",
                "60s",
                "--backlog",
                "0",
                "--history",
                "100000",
            ]);
        if let Some(q) = queue {
            cmd.args(["--queue", &q.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", o.server))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or("the server exited before listening")?
                .map_err(|e| e.to_string())?;
            if let Some(rest) = line.split(" listening on ").nth(1) {
                let addr = rest.split(' ').next().unwrap_or("");
                break addr.parse().map_err(|_| format!("bad address {addr}"))?;
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(Server { child, addr })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Asked to stop first, so that a server run under a profiler (valgrind's
        // DHAT, see scripts/alloc-profile) writes its report; killed if it has not
        // stopped within 10 s. No exit notification to wait on: look every 20 ms.
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    _ => return,
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the floor --------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Floor {
    sockets: usize,
    /// CPU per write, median over rounds.
    per_write: Duration,
    /// Wall time of one round, median, scaled to `over` sockets.
    round: Duration,
    over: usize,
}

impl std::fmt::Display for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "floor: {} sockets, {:.2} µs CPU per write, {:.1} ms per round over {}",
            self.sockets,
            self.per_write.as_secs_f64() * 1e6,
            self.round.as_secs_f64() * 1e3,
            self.over
        )
    }
}

/// The floor's own process (`loadgen floor-serve N`), which does one round on
/// request: one write of one frame to each of its N loopback sockets from its main
/// thread on core 0, while its readers wait in epoll on core 1.
///
/// A process of its own, so that both ends of its N socket pairs count against its
/// own descriptor limit and not against the subscribers'; on request, so that its
/// rounds can alternate with a server's messages. The machines these run on are
/// shared, and their speed drifts by a third within seconds: only a round and a
/// message measured a moment apart make a ratio that means something.
struct FloorProc {
    child: Child,
    requests: Option<std::process::ChildStdin>,
    replies: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    sockets: usize,
}

/// One floor round.
#[derive(Clone, Copy, Debug)]
struct Round {
    /// CPU per write.
    per_write: Duration,
    /// Wall time of the round, scaled to the number of sockets asked for when the
    /// descriptor limit gave the floor fewer.
    wall: Duration,
}

impl FloorProc {
    fn start(wanted: usize) -> Result<FloorProc, String> {
        use std::io::BufRead as _;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(["floor-serve", "--subscribers", &wanted.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the floor: {e}"))?;
        let requests = child.stdin.take();
        let mut replies = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let ready = replies
            .next()
            .ok_or("the floor exited before it was ready")?
            .map_err(|e| e.to_string())?;
        let sockets = ready
            .strip_prefix("ready ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the floor said {ready:?}"))?;
        Ok(FloorProc {
            child,
            requests,
            replies,
            sockets,
        })
    }

    /// One round, `wanted` sockets' worth.
    fn round(&mut self, wanted: usize) -> Result<Round, String> {
        use std::io::Write as _;
        let requests = self.requests.as_mut().ok_or("the floor is closed")?;
        writeln!(requests, "round").map_err(|e| format!("the floor: {e}"))?;
        let line = self
            .replies
            .next()
            .ok_or("the floor exited")?
            .map_err(|e| e.to_string())?;
        let mut nanos = line.split(' ').map(|v| v.parse::<u64>().ok());
        let (Some(Some(cpu)), Some(Some(wall))) = (nanos.next(), nanos.next()) else {
            return Err(format!("the floor said {line:?}"));
        };
        let n = self.sockets as u64;
        Ok(Round {
            per_write: Duration::from_nanos(cpu / n),
            wall: Duration::from_nanos(wall * wanted as u64 / n),
        })
    }
}

impl Drop for FloorProc {
    fn drop(&mut self) {
        // End of input ends it.
        drop(self.requests.take());
        let _ = self.child.wait();
    }
}

/// `floor`: seven rounds, a pause after each, medians.
fn floor(wanted: usize) -> Result<Floor, String> {
    let mut proc = FloorProc::start(wanted)?;
    let mut rounds = Vec::new();
    for _ in 0..7 {
        rounds.push(proc.round(wanted)?);
        std::thread::sleep(ROUND_GAP);
    }
    Ok(Floor {
        sockets: proc.sockets,
        per_write: median(rounds.iter().map(|r| r.per_write).collect()),
        round: median(rounds.iter().map(|r| r.wall).collect()),
        over: wanted,
    })
}

/// `floor-serve`: the floor's process (see [`FloorProc`]). Says `ready N`, then
/// answers each line on its input with one round's CPU and wall time in
/// nanoseconds, until its input ends.
fn floor_serve(wanted: usize) -> Result<(), String> {
    use std::io::{BufRead as _, Write as _};
    // Both ends live in this process.
    let n = wanted.min((open_file_limit() as usize).saturating_sub(200) / 2);
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(TcpStream::connect(addr).map_err(|e| e.to_string())?);
        servers.push(listener.accept().map_err(|e| e.to_string())?.0);
    }
    let frame = {
        let payload = format!(
            "id: 1795560292000417-41\ndata: {{\"id\":\"1795560292000417-41\",\"name\":\"Ada\",\"text\":\"{}\"}}\n\n",
            "x".repeat(40)
        );
        let mut f = format!("{:x}\r\n", payload.len()).into_bytes();
        f.extend_from_slice(payload.as_bytes());
        f.extend_from_slice(b"\r\n");
        f
    };
    let readers = std::thread::spawn(move || {
        pin_to_core(1);
        let ex = LocalExecutor::new();
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|c| {
                ex.spawn(async move {
                    // Read as the fan-out's subscribers read, so that the writes
                    // meet readers that behave alike; until the writer closes.
                    let c = Async::new(c).map_err(|e| e.to_string())?;
                    while read_ready(&c, |_, _| false).await {}
                    Ok::<_, String>(())
                })
            })
            .collect();
        smol::block_on(ex.run(async {
            for t in tasks {
                t.await?;
            }
            Ok::<_, String>(())
        }))
    });
    // Let every reader park in epoll first.
    std::thread::sleep(Duration::from_millis(300));
    pin_to_core(0);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {n}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        line.map_err(|e| e.to_string())?;
        let cpu = thread_cpu();
        let wall = Instant::now();
        for s in &mut servers {
            std::io::Write::write_all(s, &frame).map_err(|e| e.to_string())?;
        }
        let (cpu, wall) = (thread_cpu() - cpu, wall.elapsed());
        writeln!(out, "{} {}", cpu.as_nanos(), wall.as_nanos()).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    drop(servers);
    readers.join().map_err(|_| "readers panicked")?
}

// ---- subscribers and publishers ----------------------------------------------------

/// What every subscriber and publisher records, on the one loadgen thread.
#[derive(Default)]
struct Board {
    /// Per message number n (index n): when its POST was sent.
    sent: Vec<Option<Instant>>,
    first: Vec<Option<Instant>>,
    last: Vec<Option<Instant>>,
    count: Vec<u32>,
    deliveries: u64,
    duplicates: u64,
    lost: u64,
    reconnects: u64,
    connected: usize,
    /// The largest presence count the server has announced.
    online: usize,
    /// Subscribers whose next expected n is past this are caught up.
    behind: Vec<u64>,
    subscribers: usize,
    /// Told each time a message reaches its last subscriber.
    complete: Option<async_channel::Sender<u64>>,
}

impl Board {
    fn slot(&mut self, n: usize) {
        if self.count.len() <= n {
            let len = n + 1024;
            self.sent.resize(len, None);
            self.first.resize(len, None);
            self.last.resize(len, None);
            self.count.resize(len, 0);
        }
    }

    fn arrived(&mut self, n: u64, at: Instant) {
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

type Shared = Rc<RefCell<Board>>;

/// One `/events` client: reads the chunked stream, counts ids, reconnects with its
/// last id when the server ends the stream.
async fn subscriber(addr: SocketAddr, index: usize, board: Shared) {
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

fn digits(bytes: &[u8]) -> u64 {
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
async fn read_ready(
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
struct Frames {
    state: FrameState,
    /// Progress through the `\r\n\r\n` that ends the response head.
    head_matched: u8,
    size: usize,
    remaining: usize,
    prefix: Vec<u8>,
}

#[derive(Default, PartialEq)]
enum FrameState {
    #[default]
    Head,
    Size,
    Data,
    /// The CRLF after a chunk's data; the number of bytes still to skip.
    Trailer(u8),
}

const PREFIX: usize = 64;

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
struct Publisher {
    stream: Async<TcpStream>,
    buf: Vec<u8>,
}

impl Publisher {
    async fn connect(addr: SocketAddr) -> Result<Publisher, String> {
        let stream = Async::<TcpStream>::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Publisher {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Posts one message; returns its n.
    async fn post(&mut self, text: &str) -> Result<u64, String> {
        let body = format!("name=loadgen&message={text}");
        let req = format!(
            "POST /message HTTP/1.1\r\nHost: loadgen\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
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
                    if !head.starts_with("HTTP/1.1 201") {
                        return Err(format!(
                            "post answered {}",
                            head.lines().next().unwrap_or("")
                        ));
                    }
                    let id = body
                        .split("\"id\":\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .ok_or("no id in the answer")?;
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Starts N subscribers and waits until the server counts them all (its RSS settles).
async fn subscribe_all(
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

async fn wait_complete(
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

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn median(v: Vec<Duration>) -> Duration {
    percentile(v, 0.5)
}

// ---- fan-out ----------------------------------------------------------------------

#[derive(Clone, Debug)]
struct FanOut {
    subscribers: usize,
    rss_idle_kib: u64,
    rss_per_sub: f64,
    rss_per_sub_after: f64,
    cpu_per_delivery: Duration,
    first_p50: Duration,
    last_p50: Duration,
    last_p99: Duration,
    lost: u64,
    duplicated: u64,
    /// The floor rounds measured between the messages, medians.
    floor: Floor,
    /// Medians over messages of each message's figure over the round just before it.
    cpu_ratio: f64,
    last_ratio: f64,
}

impl std::fmt::Display for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fanout: {} subscribers, idle RSS {} KiB, {:.2} KiB/subscriber ({:.2} after traffic), \
             {:.2} µs CPU/delivery, publish→first p50 {:.1} ms, →last p50 {:.1} / p99 {:.1} ms, \
             lost {}, duplicated {}; beside each message a {}: CPU {:.2} × floor, →last p50 {:.2} × round",
            self.subscribers,
            self.rss_idle_kib,
            self.rss_per_sub,
            self.rss_per_sub_after,
            self.cpu_per_delivery.as_secs_f64() * 1e6,
            self.first_p50.as_secs_f64() * 1e3,
            self.last_p50.as_secs_f64() * 1e3,
            self.last_p99.as_secs_f64() * 1e3,
            self.lost,
            self.duplicated,
            self.floor,
            self.cpu_ratio,
            self.last_ratio,
        )
    }
}

/// A fresh server with its idle RSS, and what its subscribers record.
struct Session {
    pid: u32,
    addr: SocketAddr,
    rss_idle: u64,
    board: Shared,
}

/// Starts a fresh server, joins `o.subscribers` to it, runs `body`, then stops both.
fn session<T>(
    o: &Opts,
    body: impl AsyncFnOnce(&Session, &LocalExecutor<'static>) -> Result<T, String>,
) -> Result<T, String> {
    let server = Server::start(o, None)?;
    let pid = server.pid();
    // Let it settle before the idle reading.
    std::thread::sleep(Duration::from_millis(200));
    let s = Session {
        pid,
        addr: server.addr,
        rss_idle: rss_kib(pid),
        board: Rc::default(),
    };
    let ex = LocalExecutor::new();
    smol::block_on(ex.run(async {
        subscribe_all(&ex, s.addr, o.subscribers, &s.board).await?;
        body(&s, &ex).await
    }))
}

/// `fanout`: messages one at a time, each after the previous reached every
/// subscriber, each beside a floor round measured just before it.
fn fanout(o: &Opts) -> Result<FanOut, String> {
    let n = o.subscribers;
    // Started before the server, so that the server's idle RSS is read at rest.
    let mut floor = FloorProc::start(n)?;
    session(o, async |s: &Session, _: &LocalExecutor<'static>| {
        let (pid, addr, rss_idle, board) = (s.pid, s.addr, s.rss_idle, &s.board);
        Timer::after(Duration::from_millis(300)).await;
        let rss_subs = rss_kib(pid);
        let (tx, rx) = async_channel::unbounded();
        board.borrow_mut().complete = Some(tx);
        let mut p = Publisher::connect(addr).await?;
        let mut ns = Vec::new();
        let mut rounds = Vec::new();
        let mut cpus = Vec::new();
        for i in 0..o.messages {
            // The server is idle meanwhile: the round has core 0 to itself.
            rounds.push(floor.round(n)?);
            Timer::after(ROUND_GAP).await;
            let cpu0 = process_cpu(pid);
            let sent = Instant::now();
            let m = p.post(&format!("fan-out+{i}")).await?;
            {
                let mut b = board.borrow_mut();
                b.slot(m as usize);
                b.sent[m as usize] = Some(sent);
            }
            wait_complete(&rx, m, Duration::from_secs(60)).await?;
            // The POST is in there too: a slight overestimate.
            cpus.push((process_cpu(pid) - cpu0) / n as u32);
            ns.push(m);
            Timer::after(ROUND_GAP).await;
        }
        let rss_after = rss_kib(pid);
        let b = board.borrow();
        let lat = |at: &Vec<Option<Instant>>| -> Vec<Option<Duration>> {
            ns.iter()
                .map(|&m| Some(at[m as usize]? - b.sent[m as usize]?))
                .collect()
        };
        let lasts = lat(&b.last);
        // Each message against the round just before it.
        let ratio = |x: Duration, floor: Duration| x.as_secs_f64() / floor.as_secs_f64();
        let cpu_ratio = med(cpus
            .iter()
            .zip(&rounds)
            .map(|(c, r)| ratio(*c, r.per_write))
            .collect());
        let last_ratio = med(lasts
            .iter()
            .zip(&rounds)
            .filter_map(|(l, r)| Some(ratio((*l)?, r.wall)))
            .collect());
        let lasts: Vec<Duration> = lasts.into_iter().flatten().collect();
        Ok::<_, String>(FanOut {
            subscribers: n,
            rss_idle_kib: rss_idle,
            rss_per_sub: rss_subs.saturating_sub(rss_idle) as f64 / n as f64,
            rss_per_sub_after: rss_after.saturating_sub(rss_idle) as f64 / n as f64,
            cpu_per_delivery: median(cpus),
            first_p50: median(lat(&b.first).into_iter().flatten().collect()),
            last_p50: median(lasts.clone()),
            last_p99: percentile(lasts, 0.99),
            lost: b.lost,
            duplicated: b.duplicates,
            floor: Floor {
                sockets: floor.sockets,
                per_write: median(rounds.iter().map(|r| r.per_write).collect()),
                round: median(rounds.iter().map(|r| r.wall).collect()),
                over: n,
            },
            cpu_ratio,
            last_ratio,
        })
    })
}

// ---- flat-out ---------------------------------------------------------------------

#[derive(Clone, Debug)]
struct FlatOut {
    subscribers: usize,
    publishers: usize,
    posts_per_s: f64,
    deliveries_per_s: f64,
    last_p50: Duration,
    last_p99: Duration,
    lost: u64,
    duplicated: u64,
    reconnects: u64,
    rss_peak_per_sub: f64,
}

impl std::fmt::Display for FlatOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "flatout: {} subscribers, {} publishers: {:.0} posts/s, {:.0} deliveries/s, \
             publish→last p50 {:.0} / p99 {:.0} ms, lost {}, duplicated {}, reconnects {}, \
             RSS {:.2} KiB/subscriber at the end",
            self.subscribers,
            self.publishers,
            self.posts_per_s,
            self.deliveries_per_s,
            self.last_p50.as_secs_f64() * 1e3,
            self.last_p99.as_secs_f64() * 1e3,
            self.lost,
            self.duplicated,
            self.reconnects,
            self.rss_peak_per_sub
        )
    }
}

fn flatout(o: &Opts) -> Result<FlatOut, String> {
    let n = o.subscribers;
    session(o, async |s: &Session, ex: &LocalExecutor<'static>| {
        let (pid, addr, rss_idle, board) = (s.pid, s.addr, s.rss_idle, &s.board);
        board.borrow_mut().complete = None;
        let d0 = board.borrow().deliveries;
        let until = Instant::now() + Duration::from_secs(o.seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..o.publishers {
            let board = board.clone();
            tasks.push(ex.spawn(async move {
                let mut publisher = Publisher::connect(addr).await?;
                let mut posted = 0u64;
                let mut i = 0;
                while Instant::now() < until {
                    let sent = Instant::now();
                    let m = publisher.post(&format!("flat-out+{p}+{i}")).await?;
                    i += 1;
                    posted += 1;
                    let mut b = board.borrow_mut();
                    b.slot(m as usize);
                    b.sent[m as usize] = Some(sent);
                }
                Ok::<_, String>(posted)
            }));
        }
        let mut posts = 0;
        for t in tasks {
            posts += t.await?;
        }
        let elapsed = started.elapsed();
        let delivered = board.borrow().deliveries - d0;
        let rss_end = rss_kib(pid);
        // Then every subscriber must catch up, reconnecting if it was dropped.
        let last_n = board
            .borrow()
            .sent
            .iter()
            .rposition(Option::is_some)
            .unwrap_or(0) as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while board.borrow().behind.iter().any(|&e| e <= last_n) {
            if Instant::now() > deadline {
                break;
            }
            Timer::after(Duration::from_millis(20)).await;
        }
        let b = board.borrow();
        let missing: u64 = b
            .behind
            .iter()
            .map(|&e| (last_n + 1).saturating_sub(e))
            .sum();
        let lasts: Vec<Duration> = (0..=last_n as usize)
            .filter_map(|m| Some(b.last[m]? - b.sent[m]?))
            .collect();
        Ok::<_, String>(FlatOut {
            subscribers: n,
            publishers: o.publishers,
            posts_per_s: posts as f64 / elapsed.as_secs_f64(),
            deliveries_per_s: delivered as f64 / elapsed.as_secs_f64(),
            last_p50: median(lasts.clone()),
            last_p99: percentile(lasts, 0.99),
            lost: b.lost + missing,
            duplicated: b.duplicates,
            reconnects: b.reconnects,
            rss_peak_per_sub: rss_end.saturating_sub(rss_idle) as f64 / n as f64,
        })
    })
}

// ---- the suite --------------------------------------------------------------------

fn suite(o: &Opts) -> Result<(), String> {
    let mut servers = vec![
        ("lanchat, 1 thread".to_string(), o.server.clone(), 1),
        ("lanchat, 2 threads".to_string(), o.server.clone(), 2),
    ];
    for peer in &o.peers {
        let (name, cmd) = peer.split_once('=').ok_or("--peer wants NAME=COMMAND")?;
        servers.push((name.to_string(), cmd.to_string(), 1));
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| subscribers | server | KiB/subscriber idle (after traffic) | idle RSS KiB | CPU µs/delivery (× floor) | publish→last p50 / p99 ms (p50 × floor round) | flat-out deliveries/s | flat-out posts/s | flat-out p50 ms | lost | dup | reconnects |"
    );
    let _ = writeln!(
        table,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut floor_lines = String::new();
    for subscribers in [1_000, 10_000] {
        let mut results: Vec<(Vec<FanOut>, Vec<FlatOut>)> =
            vec![(Vec::new(), Vec::new()); servers.len()];
        let mut failed: Vec<Option<String>> = vec![None; servers.len()];
        for run in 0..o.runs {
            for (i, (name, cmd, threads)) in servers.iter().enumerate() {
                if failed[i].is_some() {
                    continue;
                }
                let o = Opts {
                    subscribers,
                    server: cmd.clone(),
                    threads: *threads,
                    ..o.clone()
                };
                // A server that fails is reported as such; the others go on.
                match fanout(&o).and_then(|fan| Ok((fan, flatout(&o)?))) {
                    Ok((fan, flat)) => {
                        eprintln!("run {run}: {name}: {fan}");
                        eprintln!("run {run}: {name}: {flat}");
                        results[i].0.push(fan);
                        results[i].1.push(flat);
                    }
                    Err(e) => {
                        eprintln!("run {run}: {name}: failed: {e}");
                        failed[i] = Some(e);
                    }
                }
            }
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // Every fan-out measured its own floor rounds, between its messages.
        let floors: Vec<&Floor> = results
            .iter()
            .flat_map(|(fans, _)| &fans[..])
            .map(|f| &f.floor)
            .collect();
        if let Some(first) = floors.first() {
            let _ = writeln!(
                floor_lines,
                "- {subscribers} subscribers: floor {:.2} µs of CPU per write, {:.1} ms per round over {subscribers} sockets (medians of the rounds beside every server's runs; measured over {} sockets)",
                med(floors.iter().map(|f| us(f.per_write)).collect()),
                med(floors.iter().map(|f| ms(f.round)).collect()),
                first.sockets
            );
        }
        for (((name, _, _), (fans, flats)), failure) in servers.iter().zip(&results).zip(&failed) {
            if let Some(e) = failure {
                let _ = writeln!(table, "| {subscribers} | {name} | failed: {e} |||||||||");
                continue;
            }
            let cpu = med(fans.iter().map(|f| us(f.cpu_per_delivery)).collect());
            let p50 = med(fans.iter().map(|f| ms(f.last_p50)).collect());
            let cpu_ratio = med(fans.iter().map(|f| f.cpu_ratio).collect());
            let last_ratio = med(fans.iter().map(|f| f.last_ratio).collect());
            let _ = writeln!(
                table,
                "| {subscribers} | {name} | {:.2} ({:.2}) | {:.0} | {cpu:.2} ({cpu_ratio:.2}×) | {p50:.1} / {:.1} ({last_ratio:.2}×) | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
                med(fans.iter().map(|f| f.rss_per_sub).collect()),
                med(fans.iter().map(|f| f.rss_per_sub_after).collect()),
                med(fans.iter().map(|f| f.rss_idle_kib as f64).collect()),
                med(fans.iter().map(|f| ms(f.last_p99)).collect()),
                med(flats.iter().map(|f| f.deliveries_per_s).collect()),
                med(flats.iter().map(|f| f.posts_per_s).collect()),
                med(flats.iter().map(|f| ms(f.last_p50)).collect()),
                fans.iter().map(|f| f.lost).sum::<u64>() + flats.iter().map(|f| f.lost).sum::<u64>(),
                fans.iter().map(|f| f.duplicated).sum::<u64>()
                    + flats.iter().map(|f| f.duplicated).sum::<u64>(),
                flats.iter().map(|f| f.reconnects).sum::<u64>(),
            );
        }
    }
    let report = format!("{table}\n{floor_lines}");
    print!("{report}");
    if let Some(path) = &o.out {
        std::fs::write(path, &report).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
