//! Message times on a machine whose clock is wrong. A Pi has no clock of its own:
//! with no network to ask, it starts at the time it last saved (or 1970). Phones
//! know the time, and each post may carry the poster's (`sent`, milliseconds). When
//! most of the phones agree that the server is clearly behind, message times follow
//! them.
//!
//! Invariants:
//! - The correction is the median offset (phone minus server) of the largest group
//!   of the last [`PHONES`] addresses (IPv6 by /64) whose offsets agree within
//!   [`AGREE`], counted only when that group is more than half of them, and only
//!   when two or more addresses posted or the server's clock reads earlier than the
//!   build (then it is wrong for sure). It is used only when more than [`BEHIND`].
//!   One phone with a wrong clock among three cannot move it, nor can one phone
//!   alone move a clock that reads a plausible time.
//! - A phone's time past [`CEILING`] after the build is no time at all: its post
//!   counts for nothing, so no vote can date messages centuries ahead.
//! - A correction that honest phones outvote is undone at once: times then follow
//!   the server's clock again. Times never go back by a little (a clock set by NTP,
//!   a correction that moved a few seconds): a message is then dated as the one
//!   before it. They go back only when a correction of more than [`BEHIND`] is undone
//!   (it was wrong; staying ahead would date every later message wrongly too).
//!   Message order is always the ids'.
//! - Starting and ending a correction is logged once each, not per message.

use std::collections::VecDeque;
use std::time::Duration;

use crate::client::ClientKey;

/// How many phones' offsets count: the latest of each of this many addresses.
pub const PHONES: usize = 16;

/// How far behind the phones the server must be before their time is taken: more
/// than phones disagree among themselves or a post takes to arrive.
pub const BEHIND: Duration = Duration::from_secs(120);

/// Phones whose offsets are this close agree: clocks set by the network are within
/// seconds of each other, and a post may take a few to arrive.
pub const AGREE: Duration = Duration::from_secs(60);

/// The latest time a phone's clock may read, after the build: a few years, so that
/// a binary left running for long still takes the phones' time.
pub const CEILING: Duration = Duration::from_secs(5 * 366 * 24 * 3600);

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
        self.offsets.retain(|(c, _)| *c != client);
        if phone > self.built.saturating_add(CEILING.as_millis() as u64) {
            // No clock reads that: this phone's vote, if any, is gone with it.
            self.settle(server);
            return;
        }
        let offset =
            (phone as i128 - server as i128).clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        if self.offsets.len() == PHONES {
            self.offsets.pop_front();
        }
        self.offsets.push_back((client, offset));
        self.settle(server);
    }

    /// Works out the correction from the offsets kept.
    fn settle(&mut self, server: u64) {
        let correction = match self.agreed() {
            Some(median) if self.offsets.len() >= 2 || server < self.built => {
                u64::try_from(median).unwrap_or(0)
            }
            _ => 0,
        };
        let correction = if correction > BEHIND.as_millis() as u64 {
            correction
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
            crate::info!("message times follow this machine's clock again");
        }
        self.correction = correction;
    }

    /// The median offset of the largest group that agrees, when that group is more
    /// than half of the phones.
    fn agreed(&self) -> Option<i64> {
        let mut sorted: Vec<i64> = self.offsets.iter().map(|(_, o)| *o).collect();
        sorted.sort_unstable();
        let agree = AGREE.as_millis() as i64;
        let mut best = (0, 0);
        let mut start = 0;
        for end in 0..sorted.len() {
            while sorted[end].saturating_sub(sorted[start]) > agree {
                start += 1;
            }
            if end + 1 - start > best.1 - best.0 {
                best = (start, end + 1);
            }
        }
        let group = &sorted[best.0..best.1];
        (group.len() * 2 > sorted.len()).then(|| group[(group.len() - 1) / 2])
    }

    /// The time for a message accepted when the server's clock reads `server`.
    pub fn time(&mut self, server: u64) -> u64 {
        let now = server.saturating_add(self.correction);
        let hold = BEHIND.as_millis() as u64;
        let time = if self.last > now && self.last - now <= hold {
            self.last
        } else {
            now
        };
        self.last = time;
        time
    }
}

/// Milliseconds since the Unix epoch; 0 on a clock set before 1970.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When this binary was built (milliseconds since 1970), as `build.rs` set it: a clock
/// that reads earlier is wrong.
pub fn built_ms() -> u64 {
    env!("LANCHAT_BUILT_MS").parse().unwrap_or(0)
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
        // A phone a year ahead among three: the two that agree decide.
        clock.observe(phone(4), SERVER + 8760 * HOUR, SERVER);
        assert_eq!(clock.correction, 3 * HOUR);
        // The same phone again counts once.
        for _ in 0..10 {
            clock.observe(phone(4), SERVER + 8760 * HOUR, SERVER);
        }
        assert_eq!(clock.correction, 3 * HOUR);
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
        assert_eq!(clock.correction, 0);
        clock.observe(phone(4), SERVER - 5 * HOUR, SERVER);
        clock.observe(phone(5), SERVER - 5 * HOUR, SERVER);
        assert_eq!(clock.correction, 0);
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
        assert_eq!(clock.correction, 0);
        assert_eq!(clock.time(set), corrected, "not before the last one");
        assert_eq!(clock.time(set + 20_000), set + 20_000);
    }

    /// 2499-12-31, as a hostile page may send.
    const Y2499: u64 = 16_725_139_200_000;

    #[test]
    fn a_time_centuries_ahead_counts_for_nothing() {
        let mut clock = Clock::new(BUILT);
        clock.observe(phone(2), Y2499, SERVER);
        clock.observe(phone(3), Y2499, SERVER);
        assert_eq!(clock.time(SERVER), SERVER);
        // Even on a server whose clock is before the build, where one phone would do.
        let mut clock = Clock::new(BUILT);
        clock.observe(phone(4), Y2499, 1_000);
        assert_eq!(clock.time(1_000), 1_000);
    }

    #[test]
    fn a_correction_honest_phones_outvote_is_undone_not_latched() {
        let mut clock = Clock::new(BUILT);
        let year = 8760 * HOUR;
        clock.observe(phone(2), SERVER + year, SERVER);
        clock.observe(phone(3), SERVER + year, SERVER);
        assert_eq!(clock.time(SERVER), SERVER + year, "two, and nobody else");
        // Three honest phones post: most agree with the server.
        for n in 10..13 {
            clock.observe(phone(n), SERVER + 1_000, SERVER + 1_000);
        }
        assert_eq!(clock.correction, 0);
        assert_eq!(clock.time(SERVER + 2_000), SERVER + 2_000);
        // Four wrong among three honest are most: they win, within the ceiling.
        clock.observe(phone(4), SERVER + 3 * 24 * HOUR, SERVER);
        clock.observe(phone(5), SERVER + 3 * 24 * HOUR, SERVER);
        clock.observe(phone(2), SERVER + 3 * 24 * HOUR, SERVER);
        clock.observe(phone(3), SERVER + 3 * 24 * HOUR, SERVER);
        assert_eq!(clock.correction, 3 * 24 * HOUR);
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
        assert_eq!(clock.correction, 0);
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
