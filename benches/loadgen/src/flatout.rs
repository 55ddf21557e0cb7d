//! `flatout`: publishers posting as fast as they can.

use super::*;

#[derive(Clone, Debug)]
pub(crate) struct FlatOut {
    pub(crate) subscribers: usize,
    pub(crate) publishers: usize,
    pub(crate) posts_per_s: f64,
    /// The server's CPU time (every thread, user and kernel) over the posting, per
    /// post: with the server on one core, flat out, about the inverse of posts/s.
    pub(crate) cpu_per_post: Duration,
    pub(crate) deliveries_per_s: f64,
    pub(crate) last_p50: Duration,
    pub(crate) last_p99: Duration,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) reconnects: u64,
    pub(crate) rss_peak_per_sub: f64,
}

impl std::fmt::Display for FlatOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "flatout: {} subscribers, {} publishers: {:.0} posts/s, {:.1} µs CPU/post, \
             {:.0} deliveries/s, \
             publish→last p50 {:.0} / p99 {:.0} ms, lost {}, duplicated {}, reconnects {}, \
             RSS {:.2} KiB/subscriber at the end",
            self.subscribers,
            self.publishers,
            self.posts_per_s,
            self.cpu_per_post.as_secs_f64() * 1e6,
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

pub(crate) fn flatout(o: &Opts) -> Result<FlatOut, String> {
    let n = o.subscribers;
    session(o, async |s: &Session, ex: &LocalExecutor<'static>| {
        let (pid, addr, rss_idle, board) = (s.pid, s.addr, s.rss_idle, &s.board);
        board.borrow_mut().complete = None;
        let d0 = board.borrow().deliveries;
        let until = Instant::now() + Duration::from_secs(o.seconds);
        let started = Instant::now();
        let cpu0 = process_cpu(pid);
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
        let cpu = process_cpu(pid) - cpu0;
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
            cpu_per_post: cpu / posts.max(1) as u32,
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
