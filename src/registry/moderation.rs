//! Who may post now: the moderator's mutes (of a client and of a device tag) and
//! the post rate per client. Expired mutes and full buckets are forgotten at each
//! heartbeat, so memory is bounded by the clients that posted or were muted lately.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::limit::PostLimiter;
use crate::client::ClientKey;
use crate::config::Rate;

use super::NotPublished;

/// Who sent a message, as far as the server knows: its client (this run only) and
/// its device tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The client, while this run of the server knows it.
    pub client: Option<ClientKey>,
    /// The device tag, kept with the message.
    pub device: Option<String>,
}

/// What a mute holds back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Muted {
    Client(ClientKey),
    Device(String),
}

/// Mutes and the post limiter.
#[derive(Debug)]
pub struct Moderation {
    /// Clients and devices a moderator muted, with when each mute ends.
    muted: HashMap<Muted, Instant>,
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
        device: Option<&str>,
        now: Instant,
        take: bool,
    ) -> Result<(), NotPublished> {
        if by_mod {
            return Ok(());
        }
        let by_device = device.and_then(|d| self.muted.get(&Muted::Device(d.to_string())));
        let until = [self.muted.get(&Muted::Client(client)), by_device]
            .into_iter()
            .flatten()
            .filter(|until| **until > now)
            .max();
        if let Some(until) = until {
            return Err(NotPublished::Muted(*until - now));
        }
        let within = match &mut self.limiter {
            Some(limiter) if take => limiter.take(client, now),
            Some(limiter) => limiter.check(client, now),
            None => Ok(()),
        };
        within.map_err(NotPublished::Limited)
    }

    /// Mutes whoever `who` is, by client and by device tag, for `time` from `now`;
    /// zero lifts the mute.
    pub fn mute(&mut self, who: &Who, time: Duration, now: Instant) {
        let keys = who
            .client
            .map(Muted::Client)
            .into_iter()
            .chain(who.device.clone().map(Muted::Device));
        for key in keys {
            if time.is_zero() {
                self.muted.remove(&key);
            } else {
                self.muted.insert(key, now + time);
            }
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

    fn spammer() -> Who {
        Who {
            client: Some(SPAMMER),
            device: Some("d1".into()),
        }
    }

    #[test]
    fn a_muted_device_is_held_back_from_any_address_and_one_known_by_its_tag_alone() {
        let mut m = Moderation::new(None);
        let now = Instant::now();
        m.mute(&spammer(), Duration::from_secs(60), now);
        // The same phone from another address (another Wi-Fi, a new lease).
        let moved = m.may_post(false, OTHER, Some("d1"), now, true);
        assert!(matches!(moved, Err(NotPublished::Muted(_))));
        assert_eq!(m.may_post(false, OTHER, Some("d2"), now, true), Ok(()));
        // A message from before a restart: only its tag is known.
        let restored = Who {
            client: None,
            device: Some("d3".into()),
        };
        m.mute(&restored, Duration::from_secs(60), now);
        assert!(m.may_post(false, OTHER, Some("d3"), now, true).is_err());
    }

    #[test]
    fn a_muted_client_cannot_post_until_the_mute_ends_and_the_host_always_can() {
        let mut m = Moderation::new(Some(Rate {
            burst: 1,
            every: Duration::from_secs(3600),
        }));
        let now = Instant::now();
        assert_eq!(m.may_post(false, SPAMMER, None, now, true), Ok(()));
        m.mute(&spammer(), Duration::from_secs(600), now);
        match m.may_post(false, SPAMMER, None, now, true) {
            Err(NotPublished::Muted(wait)) => assert_eq!(wait, Duration::from_secs(600)),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.may_post(false, OTHER, None, now, true), Ok(()));
        // Muted and over the rate: the host's own posts still go.
        assert_eq!(m.may_post(true, SPAMMER, None, now, true), Ok(()));
        m.mute(&spammer(), Duration::ZERO, now);
        assert!(
            matches!(
                m.may_post(false, SPAMMER, None, now, true),
                Err(NotPublished::Limited(_))
            ),
            "unmuted, and the rate still counts"
        );
        // A check takes nothing from the rate.
        assert!(
            m.may_post(false, OTHER, None, now, false).is_err(),
            "OTHER used its one"
        );
        let later = now + Duration::from_secs(3600);
        assert_eq!(m.may_post(false, OTHER, None, later, false), Ok(()));
        assert_eq!(m.may_post(false, OTHER, None, later, false), Ok(()));
        // Mutes are forgotten once over.
        m.mute(&spammer(), Duration::from_millis(1), now);
        m.forget(now + Duration::from_secs(1));
        assert_eq!(m.mutes(), 0);
    }
}
