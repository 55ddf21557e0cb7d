//! Which task a thread runs next. The chat's tasks come before the work of
//! moving photos and files, so that fifty phones fetching a photo, or a 16 MiB
//! upload, do not make the next message wait behind them.
//!
//! smol's executors run their tasks first in, first out, with no priorities; here
//! three of them share every thread (see [`Executors`]), and [`Executors::run`]
//! picks from them in order. It also keeps the thread's turns short: after a
//! round that may have left tasks it yields, and `block_on` then asks the reactor
//! for new events without waiting, so that new posts are seen between rounds.

use std::future::Future;

use futures_lite::future::{self, FutureExt as _};
use smol::Executor;

/// Chat tasks a thread runs, at most, before it gives a file's task a turn and
/// looks at the reactor again.
const ROUND: usize = 64;

/// The executors the server's tasks run on.
#[derive(Debug, Default)]
pub struct Executors {
    /// Accepting, requests and the registry.
    pub requests: Executor<'static>,
    /// The `/events` streams. Apart from `requests` so that one publish that wakes
    /// 10,000 writers does not put the next post behind all of them: a round runs
    /// the ready requests first, then the ready writers, at most `ROUND` (64) of each.
    /// Requests first, so that the posts that came in together are all in the
    /// streams' queues before any stream writes: each writes them in one go, one
    /// write per stream for the round, not one per post.
    pub writers: Executor<'static>,
    /// Files moving: uploads, and answers with a large file. A task here runs when
    /// no chat task is ready, and at least once per `ROUND` (64) of them, so a busy
    /// chat slows files down but never stops them.
    pub bulk: Executor<'static>,
}

impl Executors {
    /// Runs tasks on this thread until `main` completes.
    pub async fn run<T: Send + 'static>(
        &self,
        main: impl Future<Output = T> + Send + 'static,
    ) -> T {
        // A task, so that it is polled only when woken: polled at every turn, a
        // future waiting in async-io for a socket tries its syscall again each time
        // (the accept loop did, an `accept4` per turn).
        let main = self.requests.spawn(main);
        main.or(self.turns()).await
    }

    async fn turns<T>(&self) -> T {
        loop {
            let mut more = ticks(&self.requests) == ROUND;
            more |= ticks(&self.writers) == ROUND;
            more |= self.bulk.try_tick();
            if more {
                // Tasks may be left: a look at the reactor before the next round.
                future::yield_now().await;
            } else {
                // None of the chat's left: sleep until one of them has a task, and
                // run it. `block_on` polls the reactor first, so a look at it
                // before this would be a second one, five syscalls in async-io.
                self.requests
                    .tick()
                    .or(self.writers.tick())
                    .or(self.bulk.tick())
                    .await;
            }
        }
    }
}

/// Runs up to [`ROUND`] of `ex`'s tasks; returns how many ran.
fn ticks(ex: &Executor<'static>) -> usize {
    let mut ran = 0;
    while ran < ROUND && ex.try_tick() {
        ran += 1;
    }
    ran
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn ready_requests_run_then_streams_then_a_file() {
        let ex = Executors::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let log = |what: &'static str| {
            let order = order.clone();
            async move { order.lock().unwrap().push(what) }
        };
        for _ in 0..3 {
            ex.bulk.spawn(log("file")).detach();
        }
        for _ in 0..3 {
            ex.requests.spawn(log("request")).detach();
            ex.writers.spawn(log("stream")).detach();
        }
        let seen = order.clone();
        smol::block_on(ex.run(async move {
            while seen.lock().unwrap().len() < 9 {
                future::yield_now().await;
            }
        }));
        let order = order.lock().unwrap();
        assert_eq!(
            &order[..7],
            ["request", "request", "request", "stream", "stream", "stream", "file"]
        );
    }

    #[test]
    fn a_busy_chat_does_not_stop_files() {
        let ex = Arc::new(Executors::default());
        let files = Arc::new(Mutex::new(0));
        // A request task that is always ready again: the chat is never idle.
        let busy = ex.requests.spawn(async {
            loop {
                future::yield_now().await;
            }
        });
        for _ in 0..5 {
            let files = files.clone();
            ex.bulk
                .spawn(async move { *files.lock().unwrap() += 1 })
                .detach();
        }
        let counted = files.clone();
        smol::block_on(ex.run(async move {
            while *counted.lock().unwrap() < 5 {
                future::yield_now().await;
            }
        }));
        drop(busy);
        assert_eq!(*files.lock().unwrap(), 5);
    }

    #[test]
    fn the_main_future_is_polled_only_when_woken() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Poll;
        let ex = Arc::new(Executors::default());
        let polls = Arc::new(AtomicUsize::new(0));
        let turns = Arc::new(AtomicUsize::new(0));
        // Many turns of other work: each would poll `main` again if it were not a
        // task of its own.
        let counting = turns.clone();
        ex.requests
            .spawn(async move {
                for _ in 0..1000 {
                    counting.fetch_add(1, Ordering::Relaxed);
                    future::yield_now().await;
                }
            })
            .detach();
        let counted = polls.clone();
        let done = turns.clone();
        let main = future::poll_fn(move |cx| {
            counted.fetch_add(1, Ordering::Relaxed);
            if done.load(Ordering::Relaxed) >= 1000 {
                return Poll::Ready(());
            }
            // Woken by no one but the check below.
            let waker = cx.waker().clone();
            let done = done.clone();
            std::thread::spawn(move || {
                while done.load(Ordering::Relaxed) < 1000 {
                    std::thread::yield_now();
                }
                waker.wake();
            });
            Poll::Pending
        });
        smol::block_on(ex.run(main));
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }
}
