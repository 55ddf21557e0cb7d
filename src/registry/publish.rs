//! Posts and changes on their way into the one id sequence: the ids, the queue of
//! those waiting for their turn, and what a record that has its id carries with it
//! (where its answer goes). The registry takes jobs from the queue while the streams
//! keep up, gives them ids, writes them to the history file in batches and applies
//! them when the write returns.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_channel::Sender;

use crate::client::ClientKey;
use crate::message::{Draft, Id, Message, Record};
use crate::store::Store;

use super::{Act, ActRefused, Acted, Done, Moderated, ModerationRefused, NotPublished, Published};

/// The longest a post is held back, whatever the streams' state: a post is never
/// delayed for long by clients that have stopped reading.
pub const MAX_HOLD: Duration = Duration::from_millis(250);

/// The ids of the sequence: `<epoch>-<n>`.
#[derive(Debug)]
pub struct Ids {
    epoch: u64,
    next_n: u64,
}

impl Ids {
    /// Ids of `epoch` from 1, or after `last` (restored from disk), whose epoch
    /// goes on.
    pub fn new(epoch: u64, last: Option<Id>) -> Ids {
        match last {
            Some(last) => Ids {
                epoch: last.epoch,
                next_n: last.n + 1,
            },
            None => Ids { epoch, next_n: 1 },
        }
    }

    /// The next id; taken.
    pub fn take(&mut self) -> Id {
        let n = self.next_n;
        self.next_n += 1;
        Id {
            epoch: self.epoch,
            n,
        }
    }

    /// Gives back every id from `first` on: nobody saw them (their write failed).
    pub fn give_back(&mut self, first: Id) {
        if first.epoch == self.epoch && first.n < self.next_n {
            self.next_n = first.n;
        }
    }

    /// The epoch ids are given in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The `n` the next id will have.
    pub fn next_n(&self) -> u64 {
        self.next_n
    }
}

/// A post or a deletion waiting for its turn.
#[derive(Debug)]
pub struct Waiting {
    /// When it came.
    pub since: Instant,
    /// What it is.
    pub job: Job,
}

/// What waits.
#[derive(Debug)]
pub enum Job {
    /// A post.
    Post {
        /// The message without its id.
        draft: Draft,
        /// Who posted it.
        sender: ClientKey,
        /// Where the stored message goes.
        reply: Sender<Published>,
    },
    /// A moderator's deletion.
    Delete {
        /// The message to delete.
        target: Id,
        /// Where the outcome goes.
        reply: Sender<Moderated>,
    },
    /// A device's change to a message.
    Act {
        /// The message.
        target: Id,
        /// The device tag asking.
        device: String,
        /// What it asks.
        act: Act,
        /// Where the outcome goes.
        reply: Sender<Acted>,
    },
}

/// A record that has its id, with where its outcome goes.
#[derive(Debug)]
pub struct Assigned {
    /// The record as stored and sent.
    pub record: Record,
    /// Who posted it, for a message.
    pub sender: Option<ClientKey>,
    /// Where its outcome goes.
    pub answer: Answer,
}

/// Where a record's outcome goes.
#[derive(Debug)]
pub enum Answer {
    /// To a poster.
    Post(Sender<Published>),
    /// To a moderator, with the ids of the files to remove.
    Delete(Sender<Moderated>),
    /// To a device that changed a message.
    Act(Sender<Acted>),
}

impl Answer {
    /// The history file could not be written: nothing was done.
    pub fn not_stored(&self) {
        match self {
            Answer::Post(reply) => {
                let _ = reply.try_send(Err(NotPublished::NotStored));
            }
            Answer::Delete(reply) => {
                let _ = reply.try_send(Err(ModerationRefused::NotStored));
            }
            Answer::Act(reply) => {
                let _ = reply.try_send(Err(ActRefused::NotStored));
            }
        }
    }

    /// A change was stored but changed nothing: the message as it stands (`None`:
    /// gone).
    pub fn unchanged(self, now: Option<Message>) {
        match self {
            Answer::Act(reply) => {
                let done = now
                    .map(|message| Done {
                        message,
                        files: Vec::new(),
                        event: None,
                    })
                    .ok_or(ActRefused::Refused(super::Refused::NotFound));
                let _ = reply.try_send(done);
            }
            Answer::Delete(reply) => {
                let _ = reply.try_send(Err(ModerationRefused::NotFound));
            }
            Answer::Post(_) => {}
        }
    }
}

/// Records being written to the history file, on a blocking thread; they are
/// answered and broadcast when the write returns.
pub struct Flush {
    /// The write, which hands the store back.
    pub task: smol::Task<(Store, std::io::Result<()>)>,
    /// What it writes, in order.
    pub batch: Vec<Assigned>,
}

/// Jobs waiting, oldest first.
#[derive(Debug, Default)]
pub struct Queue {
    waiting: VecDeque<Waiting>,
}

impl Queue {
    /// Adds a job that came at `since`.
    pub fn push(&mut self, since: Instant, job: Job) {
        self.waiting.push_back(Waiting { since, job });
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The next job that may go at `now`: none while the streams are `congested`
    /// (unless the oldest has waited [`MAX_HOLD`]), and none while the oldest is a
    /// post sent again whose first copy is in `batch`, being written: it is then
    /// answered once that write is done, as the message it is.
    pub fn next(&mut self, congested: bool, batch: &[Assigned], now: Instant) -> Option<Job> {
        let front = self.waiting.front()?;
        if congested && now.duration_since(front.since) < MAX_HOLD {
            return None;
        }
        if let Job::Post { draft, .. } = &front.job {
            let again = draft.cid.as_ref().is_some_and(|cid| {
                batch.iter().any(|a| match &a.record {
                    Record::Message(m) => m.cid.as_ref() == Some(cid),
                    _ => false,
                })
            });
            if again {
                return None;
            }
        }
        self.waiting.pop_front().map(|w| w.job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn post(text: &str, cid: Option<&str>) -> Job {
        let mut draft = Draft::new("a", text).unwrap();
        draft.cid = cid.map(str::to_string);
        Job::Post {
            draft,
            sender: ClientKey::v4([10, 0, 0, 1]),
            reply: async_channel::bounded(1).0,
        }
    }

    fn text(job: Option<Job>) -> Option<String> {
        match job? {
            Job::Post { draft, .. } => Some(draft.text),
            Job::Delete { target, .. } | Job::Act { target, .. } => Some(target.to_string()),
        }
    }

    #[test]
    fn ids_go_on_from_the_last_restored_and_failed_ones_are_given_again() {
        let mut ids = Ids::new(7, Some(Id { epoch: 5, n: 9 }));
        assert_eq!((ids.epoch(), ids.take().to_string()), (5, "5-10".into()));
        let mut ids = Ids::new(7, None);
        assert_eq!(ids.take().to_string(), "7-1");
        let second = ids.take();
        ids.take();
        ids.give_back(second);
        assert_eq!(ids.next_n(), 2);
    }

    #[test]
    fn posts_wait_while_congested_but_never_past_the_longest_hold() {
        let mut q = Queue::default();
        let now = Instant::now();
        q.push(now, post("held", None));
        assert_eq!(text(q.next(true, &[], now)), None);
        assert_eq!(
            text(q.next(true, &[], now + MAX_HOLD)).as_deref(),
            Some("held")
        );
        q.push(now, post("free", None));
        assert_eq!(text(q.next(false, &[], now)).as_deref(), Some("free"));
        assert!(q.is_empty());
    }

    #[test]
    fn a_post_sent_again_waits_for_the_write_of_its_first_copy() {
        let mut q = Queue::default();
        let now = Instant::now();
        q.push(now, post("hi", Some("c1")));
        let first = Record::Message(Message {
            id: "7-1".into(),
            name: "a".into(),
            text: "hi".into(),
            time: 1,
            by_mod: false,
            cid: Some("c1".into()),
            files: Vec::new(),
            device: None,
            written: None,
            reply: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        });
        let batch = [Assigned {
            record: first,
            sender: None,
            answer: Answer::Post(async_channel::bounded(1).0),
        }];
        assert_eq!(text(q.next(false, &batch, now)), None);
        assert_eq!(text(q.next(false, &[], now)).as_deref(), Some("hi"));
    }
}
