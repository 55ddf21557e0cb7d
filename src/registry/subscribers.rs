//! The open streams: each one's feed (the registry's end of its queue), joining and
//! leaving, the broadcast of a frame to all, and whether they are keeping up.
//!
//! Invariants:
//! - Only the registry task holds this, so there is no lock around the list.
//! - A broadcast never waits on a stream: a stream with `queue` frames queued is
//!   dropped (its queue closes; its page reconnects and catches up from history).

use std::collections::BTreeMap;

use crate::outbox::{self, Behind, Feed, Outbox};
use crate::sse::Frame;

/// Streams that must be behind, beyond a tenth of all, before posts are held back:
/// a few sleeping phones on a small chat never hold anyone up.
pub const CONGESTION_MIN_BEHIND: usize = 16;

/// The open streams.
#[derive(Debug)]
pub struct Subscribers {
    /// In the order they joined, which is about the order the kernel allocated
    /// their sockets: a broadcast walks the kernel's memory in order, not at random
    /// as a hash map's order would (docs/perf-journal.md, "What moved the figures").
    feeds: BTreeMap<u64, Feed>,
    next_key: u64,
    /// Frames a stream may have queued before it is dropped.
    queue: usize,
    /// Streams with frames queued, which their tasks have yet to write.
    behind: Behind,
    /// Whether, at the last broadcast or check, more than a tenth of the streams
    /// had more than [`Subscribers::congestion_depth`] frames queued.
    congested: bool,
}

impl Subscribers {
    /// No stream yet; each may queue `queue` frames.
    pub fn new(queue: usize) -> Subscribers {
        Subscribers {
            feeds: BTreeMap::new(),
            next_key: 0,
            queue,
            behind: Behind::default(),
            congested: false,
        }
    }

    /// A new stream: its key (for leaving) and the stream's end of its queue.
    pub fn join(&mut self) -> (u64, Outbox) {
        let (feed, outbox) = outbox::pair(&self.behind);
        let key = self.next_key;
        self.next_key += 1;
        self.feeds.insert(key, feed);
        (key, outbox)
    }

    /// A stream ended; `true` if it was still here.
    pub fn leave(&mut self, key: u64) -> bool {
        self.feeds.remove(&key).is_some()
    }

    /// Streams open.
    pub fn len(&self) -> usize {
        self.feeds.len()
    }

    /// Whether every stream has written all it was given.
    pub fn caught_up(&self) -> bool {
        self.behind.count() == 0
    }

    /// Sends `frame` to every stream, written at once by the registry when `direct`
    /// (see [`Feed::push`]); drops those too far behind. `true` when that changed
    /// the count.
    pub fn broadcast(&mut self, frame: &Frame, direct: bool) -> bool {
        let cap = self.queue;
        let depth = self.congestion_depth();
        let before = self.feeds.len();
        let mut behind = 0;
        self.feeds
            .retain(|_, feed| match feed.push(frame, cap, direct) {
                Ok(queued) => {
                    // Counted as `still_congested` counts: with this frame in the queue.
                    behind += usize::from(queued > depth);
                    true
                }
                Err(_) => false,
            });
        self.congested = congested(behind, self.feeds.len());
        self.feeds.len() != before
    }

    /// Whether most streams are still behind, as the last broadcast found them;
    /// looked at again (one lock per stream) only while they were.
    pub fn still_congested(&mut self) -> bool {
        if self.congested {
            let depth = self.congestion_depth();
            let behind = self.feeds.values().filter(|f| f.len() > depth).count();
            self.congested = congested(behind, self.feeds.len());
        }
        self.congested
    }

    /// Frames queued for a stream beyond which it counts as behind.
    fn congestion_depth(&self) -> usize {
        (self.queue / 8).clamp(1, 32)
    }

    /// Ends every stream once it has written what is queued.
    pub fn clear(&mut self) {
        self.feeds.clear();
    }
}

fn congested(behind: usize, streams: usize) -> bool {
    behind > CONGESTION_MIN_BEHIND && behind * 10 > streams
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::from(text.as_bytes())
    }

    #[test]
    fn a_full_queue_drops_only_that_stream() {
        let mut s = Subscribers::new(4);
        let (_, slow) = s.join();
        let (_, fast) = s.join();
        for _ in 0..4 {
            assert!(!s.broadcast(&frame("x"), false));
            fast.write_to(std::io::sink()).unwrap();
        }
        assert!(s.broadcast(&frame("x"), false), "one dropped");
        assert_eq!(s.len(), 1);
        assert_eq!(fast.len(), 1);
        // The slow one keeps what was queued, then sees its queue closed.
        assert_eq!(slow.len(), 4);
        assert!(slow.is_closed());
    }

    #[test]
    fn congested_while_most_are_behind_and_never_for_a_few() {
        let mut s = Subscribers::new(64); // behind means more than 8 queued
        let few: Vec<Outbox> = (0..CONGESTION_MIN_BEHIND).map(|_| s.join().1).collect();
        for _ in 0..20 {
            s.broadcast(&frame("x"), false);
        }
        assert!(!s.still_congested(), "a small chat of sleeping phones");
        let many: Vec<Outbox> = (0..40).map(|_| s.join().1).collect();
        for _ in 0..9 {
            s.broadcast(&frame("x"), false);
        }
        assert!(s.still_congested());
        assert!(!s.caught_up());
        for outbox in few.iter().chain(&many) {
            outbox.write_to(std::io::sink()).unwrap();
        }
        assert!(!s.still_congested(), "they caught up");
        assert!(s.caught_up());
        assert!(s.leave(0) && !s.leave(0));
    }
}
