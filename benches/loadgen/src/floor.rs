//! The floor: what bare writes to as many sockets cost, in a process of its own.

use super::*;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Floor {
    pub(crate) sockets: usize,
    /// CPU per write, median over rounds.
    pub(crate) per_write: Duration,
    /// Wall time of one round, median, scaled to `over` sockets.
    pub(crate) round: Duration,
    pub(crate) over: usize,
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
pub(crate) struct FloorProc {
    pub(crate) child: Child,
    pub(crate) requests: Option<std::process::ChildStdin>,
    pub(crate) replies: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    pub(crate) sockets: usize,
}

/// One floor round.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Round {
    /// CPU per write.
    pub(crate) per_write: Duration,
    /// Wall time of the round, scaled to the number of sockets asked for when the
    /// descriptor limit gave the floor fewer.
    pub(crate) wall: Duration,
}

impl FloorProc {
    pub(crate) fn start(wanted: usize) -> Result<FloorProc, String> {
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
    pub(crate) fn round(&mut self, wanted: usize) -> Result<Round, String> {
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
pub(crate) fn floor(wanted: usize) -> Result<Floor, String> {
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
pub(crate) fn floor_serve(wanted: usize) -> Result<(), String> {
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
