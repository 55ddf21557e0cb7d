//! `fanout`: messages one at a time, each beside a floor round.

use super::*;

#[derive(Clone, Debug)]
pub(crate) struct FanOut {
    /// Each event was a reaction, not a message.
    pub(crate) reactions: bool,
    pub(crate) subscribers: usize,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_per_sub: f64,
    pub(crate) rss_per_sub_after: f64,
    pub(crate) cpu_per_delivery: Duration,
    pub(crate) first_p50: Duration,
    pub(crate) last_p50: Duration,
    pub(crate) last_p99: Duration,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    /// The floor rounds measured between the messages, medians.
    pub(crate) floor: Floor,
    /// Medians over messages of each message's figure over the round just before it.
    pub(crate) cpu_ratio: f64,
    pub(crate) last_ratio: f64,
}

impl std::fmt::Display for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fanout{}: {} subscribers, idle RSS {} KiB, {:.2} KiB/subscriber ({:.2} after traffic), \
             {:.2} µs CPU/delivery, publish→first p50 {:.1} ms, →last p50 {:.1} / p99 {:.1} ms, \
             lost {}, duplicated {}; beside each message a {}: CPU {:.2} × floor, →last p50 {:.2} × round",
            if self.reactions { " (reactions)" } else { "" },
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
pub(crate) struct Session {
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    pub(crate) rss_idle: u64,
    pub(crate) board: Shared,
}

/// Starts a fresh server, joins `o.subscribers` to it, runs `body`, then stops both.
pub(crate) fn session<T>(
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
pub(crate) fn fanout(o: &Opts) -> Result<FanOut, String> {
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
        // Reactions go to one message, posted first (and waited for like the rest).
        let target = if o.reactions {
            let sent = Instant::now();
            let m = p.post("react+to+this").await?;
            {
                let mut b = board.borrow_mut();
                b.slot(m as usize);
                b.sent[m as usize] = Some(sent);
            }
            wait_complete(&rx, m, Duration::from_secs(60)).await?;
            Timer::after(ROUND_GAP).await;
            Some(p.last_id.clone())
        } else {
            None
        };
        let mut ns = Vec::new();
        let mut rounds = Vec::new();
        let mut cpus = Vec::new();
        for i in 0..o.messages {
            // The server is idle meanwhile: the round has core 0 to itself.
            rounds.push(floor.round(n)?);
            Timer::after(ROUND_GAP).await;
            let cpu0 = process_cpu(pid);
            let sent = Instant::now();
            let m = match &target {
                Some(id) => p.react(id, i % 2 == 0).await?,
                None => p.post(&format!("fan-out+{i}")).await?,
            };
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
        let cpu_ratio = median(
            cpus.iter()
                .zip(&rounds)
                .map(|(c, r)| ratio(*c, r.per_write))
                .collect(),
        );
        let last_ratio = median(
            lasts
                .iter()
                .zip(&rounds)
                .filter_map(|(l, r)| Some(ratio((*l)?, r.wall)))
                .collect(),
        );
        let lasts: Vec<Duration> = lasts.into_iter().flatten().collect();
        Ok::<_, String>(FanOut {
            reactions: o.reactions,
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
