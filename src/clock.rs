//! Message times on a machine whose clock is wrong. A Pi has no clock of its own:
//! with no network to ask, it starts at the time it last saved (or 1970). Phones
//! know the time, and each post may carry the poster's (`sent`, milliseconds). When
//! the phones agree that the server is clearly behind, message times follow them.
//!
//! Invariants:
//! - The correction is the lower median of the latest offset (phone minus server)
//!   of each of the last [`PHONES`] addresses that posted, used only when it is more
//!   than [`BEHIND`] and either two or more addresses posted or the server's clock
//!   reads earlier than the time this binary was built (then it is wrong for sure).
//!   One phone with a wrong clock among three cannot move it; nor can one phone
//!   alone move a clock that reads a plausible time.
//! - Times only move forward: a message is never older than the one before it,
//!   whatever the clock or the correction does. (Ids do not depend on the clock.)
//! - Starting and ending a correction is logged once each, not per message.

use std::collections::VecDeque;
use std::time::Duration;

use crate::client::ClientKey;

/// How many phones' offsets count: the latest of each of this many addresses.
pub const PHONES: usize = 16;

/// How far behind the phones the server must be before their time is taken: more
/// than phones disagree among themselves or a post takes to arrive.
pub const BEHIND: Duration = Duration::from_secs(120);

/// Message times, corrected by the phones' clocks when the server's is behind.
#[derive(Debug)]
pub struct Clock {
    /// The latest offset (phone minus server, milliseconds) of each recent
    /// address, oldest first.
    offsets: VecDeque<(ClientKey, i64)>,
    /// Added to the server's clock; zero while it agrees with the phones.
    correction: u64,
    /// The last time given out.
    last: u64,
    /// When this binary was built, in milliseconds since 1970: a clock before it is
    /// wrong.
    built: u64,
}

impl Clock {
    /// A clock for a binary built at `built` (milliseconds since 1970).
    pub fn new(built: u64) -> Clock {
        Clock {
            offsets: VecDeque::with_capacity(PHONES),
            correction: 0,
            last: 0,
            built,
        }
    }

    /// A post from `client` said its clock read `phone` when the server's read
    /// `server`.
    pub fn observe(&mut self, client: ClientKey, phone: u64, server: u64) {
        let offset =
            (phone as i128 - server as i128).clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        self.offsets.retain(|(ip, _)| *ip != client);
        if self.offsets.len() == PHONES {
            self.offsets.pop_front();
        }
        self.offsets.push_back((client, offset));
        let mut sorted: Vec<i64> = self.offsets.iter().map(|(_, o)| *o).collect();
        sorted.sort_unstable();
        let median = sorted[(sorted.len() - 1) / 2];
        let trusted = sorted.len() >= 2 || server < self.built;
        let behind = u64::try_from(median).unwrap_or(0);
        let correction = if trusted && behind > BEHIND.as_millis() as u64 {
            behind
        } else {
            0
        };
        if correction > 0 && self.correction == 0 {
            crate::warn!(
                "this machine's clock is {} behind the phones that post; message times \
                 follow the phones' until it is set",
                human(correction)
            );
        } else if correction == 0 && self.correction > 0 {
            crate::info!("this machine's clock agrees with the phones again");
        }
        self.correction = correction;
    }

    /// The time for a message accepted when the server's clock reads `server`.
    pub fn time(&mut self, server: u64) -> u64 {
        let time = server.saturating_add(self.correction).max(self.last);
        self.last = time;
        time
    }

    /// What is added to the server's clock now (zero while none).
    pub fn correction(&self) -> Duration {
        Duration::from_millis(self.correction)
    }
}

/// "3 h 12 min", "5 min", "2 days".
fn human(ms: u64) -> String {
    let minutes = (ms + 30_000) / 60_000;
    match minutes {
        0..=59 => format!("{minutes} min"),
        60..=2879 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} days", minutes / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;
    /// A server clock that reads 2030, built in 2029: plausible.
    const SERVER: u64 = 1_900_000_000_000;
    const BUILT: u64 = SERVER - 365 * 24 * HOUR;

    fn phone(n: u8) -> ClientKey {
        ClientKey::from(std::net::IpAddr::from([10, 42, 0, n]))
    }

    #[test]
    fn phones_that_agree_set_the_time_and_one_wrong_phone_cannot() {
        let mut clock = Clock::new(BUILT);
        clock.observe(phone(2), SERVER + 3 * HOUR, SERVER);
        assert_eq!(
            clock.time(SERVER),
            SERVER,
            "one phone, a plausible clock: not yet"
        );
        clock.observe(phone(3), SERVER + 3 * HOUR + 500, SERVER);
        assert_eq!(clock.time(SERVER + 1), SERVER + 1 + 3 * HOUR);
        // A phone a year ahead among three: the median stays with the two.
        clock.observe(phone(4), SERVER + 8760 * HOUR, SERVER);
        assert_eq!(clock.correction(), Duration::from_millis(3 * HOUR + 500));
        // The same phone again counts once.
        for _ in 0..10 {
            clock.observe(phone(4), SERVER + 8760 * HOUR, SERVER);
        }
        assert_eq!(clock.correction(), Duration::from_millis(3 * HOUR + 500));
    }

    #[test]
    fn a_clock_before_the_build_follows_even_one_phone() {
        let mut clock = Clock::new(BUILT);
        let boot = 1_000; // 1970, as a Pi with no saved time starts
        clock.observe(phone(2), SERVER, boot);
        assert_eq!(clock.time(boot), SERVER);
    }

    #[test]
    fn small_differences_and_phones_behind_the_server_change_nothing() {
        let mut clock = Clock::new(BUILT);
        clock.observe(phone(2), SERVER + 60_000, SERVER);
        clock.observe(phone(3), SERVER + 90_000, SERVER);
        assert_eq!(clock.correction(), Duration::ZERO);
        clock.observe(phone(4), SERVER - 5 * HOUR, SERVER);
        clock.observe(phone(5), SERVER - 5 * HOUR, SERVER);
        assert_eq!(clock.correction(), Duration::ZERO);
        assert_eq!(clock.time(SERVER), SERVER);
    }

    #[test]
    fn times_never_go_back_when_the_clock_is_set_or_the_phones_change_their_mind() {
        let mut clock = Clock::new(BUILT);
        clock.observe(phone(2), SERVER + 3 * HOUR, SERVER);
        clock.observe(phone(3), SERVER + 3 * HOUR, SERVER);
        let corrected = clock.time(SERVER);
        // The clock is set (NTP came back): the phones now agree with it.
        let set = SERVER + 3 * HOUR - 10_000;
        clock.observe(phone(2), set, set);
        clock.observe(phone(3), set, set);
        assert_eq!(clock.correction(), Duration::ZERO);
        assert_eq!(clock.time(set), corrected, "not before the last one");
        assert_eq!(clock.time(set + 20_000), set + 20_000);
    }

    #[test]
    fn only_the_latest_phones_count() {
        let mut clock = Clock::new(BUILT);
        for n in 0..PHONES as u8 {
            clock.observe(phone(n), SERVER + 3 * HOUR, SERVER);
        }
        for n in 100..100 + PHONES as u8 {
            clock.observe(phone(n), SERVER, SERVER);
        }
        assert_eq!(clock.correction(), Duration::ZERO);
        assert_eq!(clock.offsets.len(), PHONES);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let mut clock = Clock::new(BUILT);
        clock.observe(phone(2), u64::MAX, 0);
        clock.observe(phone(3), u64::MAX, 0);
        assert_eq!(clock.time(u64::MAX), u64::MAX);
        assert_eq!(human(3 * HOUR + 12 * 60_000), "3 h 12 min");
    }
}
