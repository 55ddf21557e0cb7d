//! How many streams are open, told to every stream, and the heartbeat's schedule.
//!
//! A change is gathered for [`PRESENCE_DELAY`] before one `presence` event goes out,
//! so a crowd joining at once costs one event; a stream that joins is told the
//! count at its join in its replay; and after a change settles every stream has
//! been told the same count (a newcomer told "2" while another was leaving hears
//! "1" too).

use std::time::{Duration, Instant};

use crate::sse::{self, Frame};

use super::frames;

/// How long presence changes are gathered before one `presence` event goes out.
pub const PRESENCE_DELAY: Duration = Duration::from_millis(250);

/// The count streams were told, and the event that is due.
#[derive(Debug)]
pub struct Presence {
    /// When the pending presence event is due, if a change is waiting.
    due: Option<Instant>,
    /// The count every stream was last told, or `None` while they were told
    /// different ones: a stream that joins is told the count at its join, which the
    /// others may never hear (two tabs trading the stream count two for a moment).
    told: Option<usize>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            due: None,
            told: Some(0),
        }
    }
}

impl Presence {
    /// The count changed at `now`: an event is due a little later.
    pub fn changed(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(now + PRESENCE_DELAY);
        }
    }

    /// A stream joined and is told `online` in its replay.
    pub fn joined(&mut self, online: usize, now: Instant) -> Frame {
        self.changed(now);
        if self.told != Some(online) {
            self.told = None;
        }
        frames::presence(online)
    }

    /// When the next event is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// At `now`, with `online` streams: the event to send everyone, when one is due
    /// and not every stream was told that count already.
    pub fn take_due(&mut self, now: Instant, online: usize) -> Option<Frame> {
        if !self.due.is_some_and(|at| now >= at) {
            return None;
        }
        self.due = None;
        if self.told == Some(online) {
            return None;
        }
        self.told = Some(online);
        Some(frames::presence(online))
    }
}

/// The heartbeat every stream gets at an interval.
#[derive(Debug)]
pub struct Heartbeat {
    frame: Frame,
    every: Duration,
    next: Instant,
}

impl Heartbeat {
    /// One every `every`, the first that long from now.
    pub fn new(every: Duration) -> Heartbeat {
        Heartbeat {
            frame: sse::chunk(&frames::ping(every)),
            every,
            next: Instant::now() + every,
        }
    }

    /// When the next one is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// The heartbeat to send at `now`, when due (and the next one scheduled).
    pub fn take_due(&mut self, now: Instant) -> Option<Frame> {
        if now < self.next {
            return None;
        }
        self.next = now + self.every;
        Some(self.frame.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(frame: &Frame) -> String {
        let text = std::str::from_utf8(frame).unwrap();
        text.split("data: ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_stream_told_two_at_its_join_hears_one_when_the_other_leaves_at_once() {
        let mut p = Presence::default();
        let t = Instant::now();
        assert_eq!(count(&p.joined(1, t)), r#"{"online":1}"#);
        let settled = t + PRESENCE_DELAY;
        assert_eq!(count(&p.take_due(settled, 1).unwrap()), r#"{"online":1}"#);
        // A tab takes the stream over from one just closed: it is told 2 ...
        assert_eq!(count(&p.joined(2, settled)), r#"{"online":2}"#);
        // ... and the old one's leave lands within the delay: back to 1, and the
        // newcomer must hear it although the last broadcast said 1 as well.
        p.changed(settled);
        let frame = p.take_due(settled + PRESENCE_DELAY, 1);
        assert_eq!(frame.map(|f| count(&f)).as_deref(), Some(r#"{"online":1}"#));
    }

    #[test]
    fn changes_are_gathered_and_an_unchanged_count_is_not_sent_again() {
        let mut p = Presence::default();
        let t = Instant::now();
        p.changed(t);
        p.changed(t + Duration::from_millis(100));
        assert_eq!(
            p.due(),
            Some(t + PRESENCE_DELAY),
            "the first change sets it"
        );
        assert!(p.take_due(t, 0).is_none(), "not yet");
        assert!(
            p.take_due(t + PRESENCE_DELAY, 0).is_none(),
            "everyone was told 0"
        );
        assert!(p.due().is_none());
    }

    #[test]
    fn the_heartbeat_comes_at_its_interval() {
        let mut h = Heartbeat::new(Duration::from_secs(15));
        let first = h.next();
        assert!(h.take_due(first - Duration::from_secs(1)).is_none());
        assert!(h.take_due(first).is_some());
        assert_eq!(h.next(), first + Duration::from_secs(15));
    }
}
