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
//!   With `--kind react`, each is a reaction (given and taken back by turns) to one
//!   message instead: the same figures for the other kind of event.
//! - `flatout`: N subscribers; P publishers posting as fast as they can for T seconds.
//!   Subscribers that the server drops for a full queue reconnect with
//!   `Last-Event-ID`, as a browser does, and every gap and duplicate is counted.
//! - `page`: `GET /` with gzip on 100 keep-alive connections (`wrk`), beside nginx
//!   serving the same bytes precompressed, when nginx is installed.
//! - `pairs`: `flatout` for lanchat and each `--peer`, by turns, `--runs` times;
//!   the medians of each run's ratio to lanchat's run beside it.
//! - `suite`: floor, fanout and flatout for a small room (10 subscribers) and at
//!   1,000 and 10,000, and the page, 3 runs each, medians, as a Markdown table.
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
modes:  floor | fanout | flatout | pairs | page | suite
  --server CMD         the server to measure (default target/release/lanchat);
                       peers: benches/peers/ (see BENCHMARKS.md)
  --subscribers N      /events clients (default 1000)
  --messages M         fanout: messages, one at a time (default 20)
  --kind K             fanout: message (default) or react: each event a reaction
  --publishers P       flatout: concurrent publishers (default 4)
  --seconds T          flatout, page: how long the load lasts (default 5)
  --threads K          server --threads (default 1)
  --runs R             suite, pairs: runs per figure (default 3)
  --out FILE           suite, pairs: also write the Markdown table here
  --peer NAME=CMD      suite, pairs: another server to measure beside lanchat
                       (repeatable)
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
    /// fanout: reactions instead of messages.
    reactions: bool,
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
        reactions: false,
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
            "--runs" => o.runs = num()?.clamp(1, 50),
            "--out" => o.out = Some(value.clone()),
            "--peer" => o.peers.push(value.clone()),
            "--kind" => {
                o.reactions = match value.as_str() {
                    "message" => false,
                    "react" => true,
                    _ => return Err(format!("--kind: '{value}' is not message or react")),
                }
            }
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
        "pairs" => pairs(&opts),
        "page" => page(&opts).map(|r| println!("{r}")),
        "suite" => suite(&opts),
        _ => Err(format!("unknown mode {mode}\n{USAGE}")),
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

mod clients;
mod fanout;
mod flatout;
mod floor;
mod machine;
mod page;
mod pairs;
mod server;
mod stats;
mod suite;

use clients::*;
use fanout::*;
use flatout::*;
use floor::*;
use machine::*;
use page::*;
use pairs::*;
use server::*;
use stats::*;
use suite::*;
