//! How fast one client address may post: a token bucket per address, kept as the one
//! instant at which its bucket is full again (the generic cell rate algorithm, which
//! is a token bucket without a token count to update).
//!
//! Owned by the registry, which sees every post one at a time: no lock. Memory is
//! bounded by the addresses that posted within the last burst's worth of time: a
//! bucket that has filled up again is the same as none, and [`PostLimiter::forget_full`]
//! drops it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::client::ClientKey;
use crate::config::Rate;

/// The buckets of the addresses that posted lately.
#[derive(Debug)]
pub struct PostLimiter {
    rate: Rate,
    /// When each address's bucket is full again; past it, the address may post a
    /// whole burst.
    full_at: HashMap<ClientKey, Instant>,
}

impl PostLimiter {
    /// No address has posted yet.
    pub fn new(rate: Rate) -> Self {
        PostLimiter {
            rate,
            full_at: HashMap::new(),
        }
    }

    /// Takes one post from `client`'s bucket at `now`; `Err` with how long until one
    /// more is allowed when the bucket is empty (then nothing is taken).
    pub fn take(&mut self, client: ClientKey, now: Instant) -> Result<(), Duration> {
        self.check(client, now)?;
        let full_at = self.full_at.get(&client).copied().unwrap_or(now).max(now);
        self.full_at.insert(client, full_at + self.rate.every);
        Ok(())
    }

    /// Whether `client` may post at `now`, taking nothing: `Err` with how long until
    /// it may. For a post whose body is large and not yet read.
    pub fn check(&self, client: ClientKey, now: Instant) -> Result<(), Duration> {
        let every = self.rate.every;
        // The bucket holds `burst` posts: it may be full up to this far ahead of now.
        let depth = every.saturating_mul(self.rate.burst);
        let full_at = self.full_at.get(&client).copied().unwrap_or(now).max(now);
        let next = full_at + every;
        if next > now + depth {
            return Err(next - (now + depth));
        }
        Ok(())
    }

    /// Forgets the buckets that are full again by `now`.
    pub fn forget_full(&mut self, now: Instant) {
        self.full_at.retain(|_, full_at| *full_at > now);
    }

    /// Addresses remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.full_at.len()
    }

    /// Whether no address is remembered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.full_at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, every_ms: u64) -> PostLimiter {
        PostLimiter::new(Rate {
            burst,
            every: Duration::from_millis(every_ms),
        })
    }

    const A: ClientKey = client([192, 168, 1, 20]);
    const B: ClientKey = client([192, 168, 1, 21]);

    const fn client(ip: [u8; 4]) -> ClientKey {
        ClientKey::v4(ip)
    }

    #[test]
    fn a_burst_then_one_per_interval_and_each_address_its_own() {
        let mut l = limiter(3, 1000);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take(A, t), Ok(()));
        }
        assert_eq!(l.take(A, t), Err(Duration::from_millis(1000)));
        assert_eq!(l.take(B, t), Ok(()), "another address has its own bucket");
        // A refused post takes nothing: after the interval, exactly one more.
        let later = t + Duration::from_millis(1000);
        assert_eq!(l.take(A, later), Ok(()));
        assert_eq!(l.take(A, later), Err(Duration::from_millis(1000)));
        // Idle for a while, the whole burst again.
        let much_later = t + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.take(A, much_later), Ok(()));
        }
    }

    #[test]
    fn a_check_takes_nothing() {
        let mut l = limiter(1, 1000);
        let t = Instant::now();
        assert_eq!(l.check(A, t), Ok(()));
        assert_eq!(l.check(A, t), Ok(()));
        assert_eq!(l.take(A, t), Ok(()));
        assert_eq!(l.check(A, t), Err(Duration::from_millis(1000)));
    }

    #[test]
    fn the_wait_is_what_is_left_of_the_interval() {
        let mut l = limiter(1, 1000);
        let t = Instant::now();
        assert_eq!(l.take(A, t), Ok(()));
        assert_eq!(
            l.take(A, t + Duration::from_millis(400)),
            Err(Duration::from_millis(600))
        );
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let mut l = limiter(2, 100);
        let t = Instant::now();
        l.take(A, t).unwrap();
        l.take(B, t + Duration::from_millis(150)).unwrap();
        l.forget_full(t + Duration::from_millis(120));
        assert_eq!(l.len(), 1, "A is full again; B is not");
        l.forget_full(t + Duration::from_secs(1));
        assert!(l.is_empty());
    }
}
