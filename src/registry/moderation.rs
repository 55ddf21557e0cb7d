//! Who may post now: the moderator's mutes and the post rate, both per client.
//! Expired mutes and full buckets are forgotten at each heartbeat, so memory is
//! bounded by the clients that posted or were muted lately.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::limit::PostLimiter;
use crate::client::ClientKey;
use crate::config::Rate;

use super::NotPublished;

/// Mutes and the post limiter.
#[derive(Debug)]
pub struct Moderation {
    /// Clients a moderator muted, with when each mute ends.
    muted: HashMap<ClientKey, Instant>,
    /// How fast each client may post, with `--post-rate`.
    limiter: Option<PostLimiter>,
}

impl Moderation {
    /// No mutes; posts limited to `rate`, if any.
    pub fn new(rate: Option<Rate>) -> Moderation {
        Moderation {
            muted: HashMap::new(),
            limiter: rate.map(PostLimiter::new),
        }
    }

    /// Whether `client` may post at `now`: not muted, and within the post rate (a
    /// post taken from it when `take`). The moderator is never held back.
    pub fn may_post(
        &mut self,
        by_mod: bool,
        client: ClientKey,
        now: Instant,
        take: bool,
    ) -> Result<(), NotPublished> {
        if by_mod {
            return Ok(());
        }
        if let Some(until) = self.muted.get(&client).filter(|until| **until > now) {
            return Err(NotPublished::Muted(*until - now));
        }
        let within = match &mut self.limiter {
            Some(limiter) if take => limiter.take(client, now),
            Some(limiter) => limiter.check(client, now),
            None => Ok(()),
        };
        within.map_err(NotPublished::Limited)
    }

    /// Mutes `client` for `time` from `now`; zero lifts the mute.
    pub fn mute(&mut self, client: ClientKey, time: Duration, now: Instant) {
        if time.is_zero() {
            self.muted.remove(&client);
        } else {
            self.muted.insert(client, now + time);
        }
    }

    /// Forgets what no longer holds anyone back at `now`.
    pub fn forget(&mut self, now: Instant) {
        self.muted.retain(|_, until| *until > now);
        if let Some(limiter) = &mut self.limiter {
            limiter.forget_full(now);
        }
    }

    /// Mutes remembered, for tests.
    #[cfg(test)]
    pub fn mutes(&self) -> usize {
        self.muted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAMMER: ClientKey = ClientKey::v4([10, 0, 0, 2]);
    const OTHER: ClientKey = ClientKey::v4([10, 0, 0, 3]);

    #[test]
    fn a_muted_client_cannot_post_until_the_mute_ends_and_the_host_always_can() {
        let mut m = Moderation::new(Some(Rate {
            burst: 1,
            every: Duration::from_secs(3600),
        }));
        let now = Instant::now();
        assert_eq!(m.may_post(false, SPAMMER, now, true), Ok(()));
        m.mute(SPAMMER, Duration::from_secs(600), now);
        match m.may_post(false, SPAMMER, now, true) {
            Err(NotPublished::Muted(wait)) => assert_eq!(wait, Duration::from_secs(600)),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.may_post(false, OTHER, now, true), Ok(()));
        // Muted and over the rate: the host's own posts still go.
        assert_eq!(m.may_post(true, SPAMMER, now, true), Ok(()));
        m.mute(SPAMMER, Duration::ZERO, now);
        assert!(
            matches!(
                m.may_post(false, SPAMMER, now, true),
                Err(NotPublished::Limited(_))
            ),
            "unmuted, and the rate still counts"
        );
        // A check takes nothing from the rate.
        assert!(
            m.may_post(false, OTHER, now, false).is_err(),
            "OTHER used its one"
        );
        let later = now + Duration::from_secs(3600);
        assert_eq!(m.may_post(false, OTHER, later, false), Ok(()));
        assert_eq!(m.may_post(false, OTHER, later, false), Ok(()));
        // Mutes are forgotten once over.
        m.mute(SPAMMER, Duration::from_millis(1), now);
        m.forget(now + Duration::from_secs(1));
        assert_eq!(m.mutes(), 0);
    }
}
