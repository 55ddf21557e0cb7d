//! Deadlines that a task waits for again and again, on one reactor timer.
//!
//! A new `async_io::Timer` for each wait is a registration with the reactor, and a
//! wake-up of the thread waiting in it so that it sees the new timer: per request
//! on a keep-alive connection, or each time the registry falls idle, that was a
//! write and a read on an eventfd and one more turn of `epoll` per request.

use std::time::Instant;

use async_io::Timer;

/// One timer for the deadlines a task waits for in turn. Armed for an instant
/// before the one wanted, it fires early, is moved on and waits again; so a
/// connection whose requests keep coming moves it about once per idle timeout, not
/// once per request.
#[derive(Debug)]
pub struct Deadline {
    timer: Timer,
    at: Option<Instant>,
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline {
            timer: Timer::never(),
            at: None,
        }
    }
}

impl Deadline {
    /// Completes at `want`.
    pub async fn until(&mut self, want: Instant) {
        loop {
            let now = Instant::now();
            if now >= want {
                return;
            }
            match self.at {
                // Still to fire, and not after `want`: it will do.
                Some(at) if at > now && at <= want => {}
                _ => {
                    self.timer.set_at(want);
                    self.at = Some(want);
                }
            }
            (&mut self.timer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::FutureExt as _;

    #[test]
    fn one_timer_serves_deadlines_later_and_earlier_than_the_last() {
        use std::time::Duration;
        let ms = Duration::from_millis;
        smol::block_on(async {
            let mut deadline = Deadline::default();
            // Armed, then left before it fired (the request came).
            let start = Instant::now();
            let first = start + ms(40);
            let left = futures_lite::future::poll_once(deadline.until(first)).await;
            assert!(left.is_none());
            // A later deadline: the timer fires at the first one and moves on.
            let later = start + ms(80);
            deadline.until(later).await;
            assert!(Instant::now() >= later);
            // An earlier one than the timer is armed for: not kept waiting.
            let long = Instant::now() + Duration::from_secs(60);
            let left = futures_lite::future::poll_once(deadline.until(long)).await;
            assert!(left.is_none());
            let soon = Instant::now() + ms(20);
            let waited = deadline.until(soon).or(async {
                Timer::after(Duration::from_secs(10)).await;
            });
            waited.await;
            let now = Instant::now();
            assert!(now >= soon && now < soon + Duration::from_secs(5));
            // One already past completes at once.
            deadline.until(start).await;
        });
    }
}
