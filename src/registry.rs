//! The registry: one task that alone owns the subscriber list, the history ring, the
//! next message id, the presence count, the heartbeat timer, and what is kept per
//! client address: the post limiter, the moderator's mutes, the addresses a hotspot
//! let in (`--portal`) and the phones' clocks (message times, [`crate::clock`]). Everything else talks to it through [`Handle`], which sends
//! [`Command`]s over an `async_channel`.
//!
//! Invariants:
//! - Only this task touches the subscriber list; there is no lock around it.
//! - Each event is encoded (SSE and chunk framing) once; every subscriber gets a
//!   clone of the same [`Frame`].
//! - The registry never waits on a subscriber. Each subscriber's queue (its
//!   [`crate::outbox`]) is unbounded, and its length is checked before every
//!   push: a queue already holding `queue` frames means that subscriber is dropped
//!   (its stream ends after what is queued, its browser reconnects with
//!   `Last-Event-ID` and catches up from history). An unbounded queue allocates as
//!   it fills rather than up front, and never makes the sender wait.
//! - While events are sparse (every stream has written all it was given and no
//!   other command waits), the registry writes each event to the sockets of the
//!   streams with nothing queued itself, without blocking; what a socket does not
//!   take is queued for the stream's task. Under load the tasks write, several
//!   frames per `writev` (`Registry::writes_directly`).
//! - A join is handled in one step: the replay is cut from history and the queue is
//!   registered before the next publish is looked at, so no message published while
//!   a client joins is lost or sent twice.
//! - A moderator's deletion is an event in the same id sequence as messages, stored
//!   and sent the same way. The message it removes leaves the ring's replays at
//!   once (its place stays, holding only its sender's address, for a mute); the
//!   deletion itself is replayed to clients that may have seen the message.
//! - Senders' addresses are kept in memory only, with the messages in the ring.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt as _;

use crate::client::ClientKey;
use crate::clock::Clock;
use crate::config::Rate;
use crate::deadline::Deadline;
use crate::limit::PostLimiter;
use crate::message::{Deletion, Draft, Id, Message, Record};
use crate::outbox::{self, Behind, Feed, Outbox};
use crate::sse::{self, Frame};
use crate::store::Store;

/// How long presence changes are gathered before one `presence` event goes out, so a
/// crowd joining at once costs one event, not one per join.
pub const PRESENCE_DELAY: Duration = Duration::from_millis(250);

/// How often a held-back publish looks again whether the streams have caught up.
const CONGESTION_RECHECK: Duration = Duration::from_millis(2);

/// The longest a post is held back, whatever the streams' state: a post is never
/// delayed for long by clients that have stopped reading.
const MAX_HOLD: Duration = Duration::from_millis(250);

/// Streams that must be behind, beyond a tenth of all, before posts are held back:
/// a few sleeping phones on a small chat never hold anyone up.
const CONGESTION_MIN_BEHIND: usize = 16;

/// What the registry is told to do.
#[derive(Debug)]
pub enum Command {
    /// A new `/events` stream; `last_event_id` is what the browser last saw.
    Join {
        /// The `Last-Event-ID` the client sent, if any.
        last_event_id: Option<String>,
        /// Where the [`Subscription`] goes.
        reply: Sender<Subscription>,
    },
    /// A stream ended; sent by [`Subscription`]'s `Drop`.
    Leave {
        /// The subscriber's key.
        key: u64,
    },
    /// A valid message to store and send to everyone.
    Publish {
        /// The message without its id.
        draft: Draft,
        /// Who posted it, for the post rate and a moderator's mute.
        client: ClientKey,
        /// Where the stored message goes, or why it was not stored.
        reply: Sender<Published>,
    },
    /// Before the files of a post are read: whether its client may post now, and
    /// whether a post with its `cid` is already stored (then its files are not kept
    /// again). Takes nothing from the post rate: the post itself does.
    Admit {
        /// Who is posting.
        client: ClientKey,
        /// Posted by the moderator, whom nothing holds back.
        by_mod: bool,
        /// The post's `cid`, if it came before its files.
        cid: Option<String>,
        /// `Ok(true)`: already stored.
        reply: Sender<Result<bool, NotPublished>>,
    },
    /// A moderator removes a message from everyone's view and from history.
    Delete {
        /// The message's id.
        target: Id,
        /// Where the outcome goes.
        reply: Sender<Moderated>,
    },
    /// A moderator stops the sender of a message from posting for a while.
    Mute {
        /// The message whose sender is muted.
        target: Id,
        /// For how long; zero lifts a mute.
        time: Duration,
        /// Where the outcome goes.
        reply: Sender<Moderated>,
    },
    /// Whether a hotspot's client may go online (`--portal`), after letting it in
    /// when `admit` is set.
    Portal {
        /// The client's address.
        client: IpAddr,
        /// Let it in now.
        admit: bool,
        /// Whether it is let in.
        reply: Sender<bool>,
    },
    /// The newest messages before a given one, oldest first: the page readers
    /// without JavaScript see, and the older ones a page loads as it is scrolled up.
    Recent {
        /// Only messages before this one (in history's order); `None`: the newest.
        before: Option<Id>,
        /// How many at most.
        count: usize,
        /// Where the messages go.
        reply: Sender<Vec<Message>>,
    },
    /// End every stream and stop. Sent by [`Handle::shutdown`]; the registry does
    /// not stop when handles are dropped, since every subscription holds one.
    Shutdown,
}

/// What wakes the registry: a command, a write to the history file that returned
/// (the store back, how it went, the posts it held), or a deadline.
enum Wake {
    Command(Command),
    Flushed((Store, std::io::Result<()>), Vec<Assigned>),
    Deadline,
}

/// How long a hotspot's client stays let in: a day, longer than any party.
const LET_IN_FOR: Duration = Duration::from_secs(24 * 3600);
/// Hotspot clients let in at most: an access point serves far fewer.
const LET_IN_MAX: usize = 4096;

/// When this binary was built (milliseconds since 1970), as `build.rs` set it: a clock
/// that reads earlier is wrong.
fn built_ms() -> u64 {
    env!("LANCHAT_BUILT_MS").parse().unwrap_or(0)
}

/// What a publish comes to: the message as stored and sent, with its id and time;
/// or why no one was sent it.
pub type Published = Result<Message, NotPublished>;

/// Why a message was not published (and reached no one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPublished {
    /// The history file could not be written (a full disk, an I/O error).
    NotStored,
    /// The client posted faster than `--post-rate`; one more is allowed after this.
    Limited(Duration),
    /// A moderator muted the client; the mute ends after this.
    Muted(Duration),
}

/// Why [`Handle::publish`] did not publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The registry has stopped (shutting down).
    Stopped,
    /// The history file could not be written.
    NotStored,
    /// Too many posts from this client; one more is allowed after this.
    Limited(Duration),
    /// A moderator muted this client; the mute ends after this.
    Muted(Duration),
}

impl From<NotPublished> for PublishError {
    fn from(why: NotPublished) -> Self {
        match why {
            NotPublished::NotStored => PublishError::NotStored,
            NotPublished::Limited(wait) => PublishError::Limited(wait),
            NotPublished::Muted(wait) => PublishError::Muted(wait),
        }
    }
}

/// What a moderator's deletion or mute comes to.
/// `Ok` holds the ids of the files the deleted message carried, for the caller to
/// remove (none for a mute).
pub type Moderated = Result<Vec<String>, Refused>;

/// Why a moderator's deletion or mute was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The registry has stopped (shutting down).
    Stopped,
    /// No such message in history: never posted, already deleted or too old.
    NotFound,
    /// The message came from an earlier run of the server, whose senders' addresses
    /// were never written down.
    SenderUnknown,
    /// The history file could not be written.
    NotStored,
}

/// Limits the registry works within; see `Config` for why each has its default.
#[derive(Debug)]
pub struct Options {
    /// Messages kept for replay.
    pub history: usize,
    /// Messages a new client (no `Last-Event-ID`) is sent first.
    pub backlog: usize,
    /// Frames a subscriber may have queued before it is dropped.
    pub queue: usize,
    /// Interval between heartbeat comments.
    pub heartbeat: Duration,
    /// The epoch that prefixes every id, so ids from an earlier run never match.
    /// Ignored when `restored` has messages: their epoch goes on.
    pub epoch: u64,
    /// Where each message is written before anyone is sent it, with `--data-dir`.
    pub store: Option<Store>,
    /// Posts per client address; `None`: no limit.
    pub post_rate: Option<Rate>,
    /// Records from the store, oldest first, in id order; the last one's epoch
    /// goes on. Ids may have gaps (lines lost to damage, deleted messages).
    pub restored: Vec<Record>,
    /// Where the ids of the files of a message that leaves history go, to be
    /// removed: no page can be sent that message again.
    pub released: Option<Sender<Vec<String>>>,
}

/// One open `/events` stream, as the connection that writes it sees it.
#[derive(Debug)]
pub struct Subscription {
    key: u64,
    /// Frames to write before anything from `frames`: the replay and the presence.
    pub replay: Vec<Frame>,
    /// Live frames, in order. Closed by the registry when this subscriber is dropped
    /// (too slow) or at shutdown: write what is queued, then end the response.
    pub frames: Outbox,
    leave_tx: Sender<Command>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Unbounded, so this never waits; it fails only when the registry has stopped.
        let _ = self.leave_tx.try_send(Command::Leave { key: self.key });
    }
}

/// A cloneable way to reach the registry.
#[derive(Debug, Clone)]
pub struct Handle {
    /// Unbounded: a `Leave` is sent from `Drop`, where nothing can wait.
    tx: Sender<Command>,
}

impl Handle {
    /// Opens a stream. `None` when the registry has stopped (shutting down).
    pub async fn join(&self, last_event_id: Option<String>) -> Option<Subscription> {
        let (reply, rx) = async_channel::bounded(1);
        let cmd = Command::Join {
            last_event_id,
            reply,
        };
        self.tx.send(cmd).await.ok()?;
        rx.recv().await.ok()
    }

    /// The newest `count` messages, oldest first; empty when the registry has
    /// stopped.
    pub async fn recent(&self, before: Option<Id>, count: usize) -> Vec<Message> {
        let (reply, rx) = async_channel::bounded(1);
        if self
            .tx
            .send(Command::Recent {
                before,
                count,
                reply,
            })
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.recv().await.unwrap_or_default()
    }

    /// Stores and sends a message; returns it with its id and time once it is
    /// stored (with `--data-dir`: on the device) and on its way to everyone.
    pub async fn publish(&self, draft: Draft, client: ClientKey) -> Result<Message, PublishError> {
        let (reply, rx) = async_channel::bounded(1);
        let cmd = Command::Publish {
            draft,
            client,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| PublishError::Stopped)?;
        match rx.recv().await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(why)) => Err(why.into()),
            Err(_) => Err(PublishError::Stopped),
        }
    }

    /// Whether `client` may post now (`Ok(true)` when a post with `cid` is already
    /// stored), asked before a post's files are read so that a refused or repeated
    /// upload costs no disk.
    pub async fn admit(
        &self,
        client: ClientKey,
        by_mod: bool,
        cid: Option<String>,
    ) -> Result<bool, PublishError> {
        let (reply, rx) = async_channel::bounded(1);
        let cmd = Command::Admit {
            client,
            by_mod,
            cid,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| PublishError::Stopped)?;
        match rx.recv().await {
            Ok(Ok(known)) => Ok(known),
            Ok(Err(why)) => Err(why.into()),
            Err(_) => Err(PublishError::Stopped),
        }
    }

    /// Deletes a message for everyone; returns once the deletion is stored and on
    /// its way.
    pub async fn delete(&self, target: Id) -> Moderated {
        let (reply, rx) = async_channel::bounded(1);
        let cmd = Command::Delete { target, reply };
        self.tx.send(cmd).await.map_err(|_| Refused::Stopped)?;
        rx.recv().await.unwrap_or(Err(Refused::Stopped))
    }

    /// Whether a hotspot's client was let in; lets it in first when `admit` is set.
    pub async fn portal(&self, client: IpAddr, admit: bool) -> bool {
        let (reply, rx) = async_channel::bounded(1);
        let cmd = Command::Portal {
            client,
            admit,
            reply,
        };
        if self.tx.send(cmd).await.is_err() {
            return false;
        }
        rx.recv().await.unwrap_or(false)
    }

    /// Mutes the sender of a message for `time` (zero: lifts the mute).
    pub async fn mute(&self, target: Id, time: Duration) -> Moderated {
        let (reply, rx) = async_channel::bounded(1);
        let cmd = Command::Mute {
            target,
            time,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| Refused::Stopped)?;
        rx.recv().await.unwrap_or(Err(Refused::Stopped))
    }

    /// Ends every stream and stops the registry task.
    pub fn shutdown(&self) {
        let _ = self.tx.try_send(Command::Shutdown);
    }
}

/// Starts nothing by itself: returns the handle and the task to spawn.
pub fn new(options: Options) -> (Handle, impl std::future::Future<Output = ()>) {
    let (tx, rx) = async_channel::unbounded();
    let registry = Registry::new(options, tx.clone());
    (Handle { tx }, registry.run(rx))
}

/// A place in the history ring, one per id.
struct Stored {
    id: Id,
    kept: Kept,
}

/// What a place in the ring holds.
enum Kept {
    /// A message with its frame: the frame for replays, the message for those who
    /// read it as a page, the sender (not known for one restored from disk) for a
    /// moderator's mute.
    Message {
        message: Message,
        frame: Frame,
        sender: Option<ClientKey>,
    },
    /// A message a moderator deleted: nothing of it is sent again.
    Removed { sender: Option<ClientKey> },
    /// A deletion, replayed so that pages that showed the message remove it.
    Deletion { frame: Frame },
}

impl Stored {
    /// What a replay sends for this place.
    fn frame(&self) -> Option<&Frame> {
        match &self.kept {
            Kept::Message { frame, .. } | Kept::Deletion { frame } => Some(frame),
            Kept::Removed { .. } => None,
        }
    }
}

/// A post or a deletion waiting for its turn (both are events in one id sequence):
/// when it came, and what it is.
struct Waiting {
    since: Instant,
    job: Job,
}

enum Job {
    Post {
        draft: Draft,
        sender: ClientKey,
        reply: Sender<Published>,
    },
    Delete {
        target: Id,
        reply: Sender<Moderated>,
    },
}

/// A record that has its id, with where its outcome goes.
struct Assigned {
    record: Record,
    sender: Option<ClientKey>,
    reply: Reply,
}

enum Reply {
    Post(Sender<Published>),
    Delete(Sender<Moderated>),
}

impl Reply {
    fn not_stored(&self) {
        match self {
            Reply::Post(reply) => {
                let _ = reply.try_send(Err(NotPublished::NotStored));
            }
            Reply::Delete(reply) => {
                let _ = reply.try_send(Err(Refused::NotStored));
            }
        }
    }
}

/// Records being written to the history file, on a blocking thread; they are
/// answered and broadcast when the write returns.
struct Flush {
    task: smol::Task<(Store, std::io::Result<()>)>,
    batch: Vec<Assigned>,
}

struct Registry {
    options: Options,
    /// Handed to each subscription so that its `Drop` can say it left.
    leave_tx: Sender<Command>,
    /// In the order they joined, which is about the order the kernel allocated
    /// their sockets: a broadcast walks the kernel's memory in order, not at random
    /// as a hash map's order would (BENCHMARKS.md, "What moved the figures").
    subscribers: BTreeMap<u64, Feed>,
    next_key: u64,
    /// The `n` of the next message; ids start at 1.
    next_n: u64,
    /// Messages oldest first, at most `options.history`: those of this epoch in id
    /// order (with gaps where lines were lost on disk), after any of older epochs
    /// that were restored.
    history: VecDeque<Stored>,
    /// The history file while no write is under way (`options.store` is moved here).
    store: Option<Store>,
    /// The write under way, if any.
    flush: Option<Flush>,
    /// How fast each client may post, with `--post-rate`.
    limiter: Option<PostLimiter>,
    /// The `cid` of each message in the ring that has one, with its id.
    cids: HashMap<String, Id>,
    /// Client addresses a moderator muted, with when each mute ends. Expired ones
    /// are forgotten at the heartbeat.
    muted: HashMap<ClientKey, Instant>,
    /// Hotspot clients that chose to continue, with when; forgotten after
    /// [`LET_IN_FOR`], and at most [`LET_IN_MAX`] of them.
    let_in: HashMap<IpAddr, Instant>,
    /// Message times, set by the phones when this machine's clock is behind.
    clock: Clock,
    heartbeat: Frame,
    next_heartbeat: Instant,
    /// Set after a failed write, so a full disk is logged once, not per message.
    store_failing: bool,
    /// When the pending presence event is due, if a change is waiting.
    presence_due: Option<Instant>,
    /// The count every stream was last told, or `None` while they were told
    /// different ones: a stream that joins is told the count at its join, which the
    /// others may never hear (two tabs trading the stream count two for a moment).
    presence_told: Option<usize>,
    /// Posts held back while the streams are congested or the disk is busy, oldest
    /// first.
    waiting: VecDeque<Waiting>,
    /// Whether, at the last broadcast or check, more than a tenth of the streams
    /// had more than [`Registry::congestion_depth`] frames queued.
    congested: bool,
    /// Streams with frames queued, which their tasks have yet to write.
    behind: Behind,
    /// Commands still in the channel behind the one being handled.
    commands_waiting: usize,
}

impl Registry {
    fn new(mut options: Options, leave_tx: Sender<Command>) -> Self {
        let restored = std::mem::take(&mut options.restored);
        let store = options.store.take();
        let mut next_n = 1;
        let mut history = VecDeque::with_capacity(options.history.min(1024));
        let mut cids = HashMap::new();
        for record in restored.into_iter().rev().take(options.history).rev() {
            let Ok(id) = record.id().parse::<Id>() else {
                continue;
            };
            options.epoch = id.epoch;
            next_n = id.n + 1;
            let kept = match record {
                Record::Message(message) => Kept::Message {
                    frame: message_frame(&message),
                    message,
                    sender: None,
                },
                Record::Deletion(d) => Kept::Deletion {
                    frame: deletion_frame(&d),
                },
            };
            index_cid(&mut cids, &kept, true);
            history.push_back(Stored { id, kept });
        }
        Registry {
            heartbeat: sse::chunk(&ping(options.heartbeat)),
            next_heartbeat: Instant::now() + options.heartbeat,
            history,
            store,
            flush: None,
            limiter: options.post_rate.map(PostLimiter::new),
            muted: HashMap::new(),
            cids,
            let_in: HashMap::new(),
            clock: Clock::new(built_ms()),
            options,
            leave_tx,
            subscribers: BTreeMap::new(),
            next_key: 0,
            next_n,
            presence_due: None,
            presence_told: Some(0),
            store_failing: false,
            waiting: VecDeque::new(),
            congested: false,
            behind: Behind::default(),
            commands_waiting: 0,
        }
    }

    async fn run(mut self, rx: Receiver<Command>) {
        // One timer for every wait: most waits end with a command before it fires.
        let mut timer = Deadline::default();
        loop {
            // Deadlines are checked on every turn as well as by the timer, because a
            // steady stream of commands would otherwise keep the timer from firing.
            self.on_time(Instant::now());
            self.release_waiting();
            let mut due = self.next_deadline();
            if !self.waiting.is_empty() {
                due = due.min(Instant::now() + CONGESTION_RECHECK);
            }
            let flushing = &mut self.flush;
            let wake = async {
                match rx.recv().await {
                    Ok(cmd) => Wake::Command(cmd),
                    // Cannot happen while the registry holds `leave_tx`; stopping
                    // is the one safe answer if it ever did.
                    Err(_) => Wake::Command(Command::Shutdown),
                }
            }
            .or(async {
                match flushing {
                    Some(flush) => {
                        let done = (&mut flush.task).await;
                        Wake::Flushed(done, std::mem::take(&mut flush.batch))
                    }
                    None => std::future::pending().await,
                }
            })
            .or(async {
                timer.until(due).await;
                Wake::Deadline
            })
            .await;
            self.commands_waiting = rx.len();
            let cmd = match wake {
                Wake::Command(cmd) => Some(cmd),
                Wake::Flushed((store, result), batch) => {
                    self.flush = None;
                    self.flushed(store, result, batch);
                    None
                }
                Wake::Deadline => None,
            };
            match cmd {
                Some(Command::Join {
                    last_event_id,
                    reply,
                }) => {
                    let sub = self.join(last_event_id.as_deref());
                    // The client may have gone while it waited; its Drop says Leave.
                    let _ = reply.try_send(sub);
                }
                Some(Command::Leave { key }) => self.leave(key),
                Some(Command::Publish {
                    draft,
                    client,
                    reply,
                }) => {
                    let now = Instant::now();
                    if let Some(sent) = draft.sent {
                        self.clock.observe(client, sent, now_millis());
                    }
                    match self.may_post(draft.by_mod, client, now, true) {
                        Err(why) => {
                            let _ = reply.try_send(Err(why));
                        }
                        Ok(()) => {
                            let job = Job::Post {
                                draft,
                                sender: client,
                                reply,
                            };
                            self.waiting.push_back(Waiting { since: now, job });
                            self.release_waiting();
                        }
                    }
                }
                Some(Command::Admit {
                    client,
                    by_mod,
                    cid,
                    reply,
                }) => {
                    let admitted = self.may_post(by_mod, client, Instant::now(), false);
                    let known = cid.is_some_and(|cid| self.posted(&cid).is_some());
                    let _ = reply.try_send(admitted.map(|()| known));
                }
                Some(Command::Delete { target, reply }) => {
                    let job = Job::Delete { target, reply };
                    let since = Instant::now();
                    self.waiting.push_back(Waiting { since, job });
                    self.release_waiting();
                }
                Some(Command::Mute {
                    target,
                    time,
                    reply,
                }) => {
                    let _ = reply.try_send(self.mute(target, time));
                }
                Some(Command::Portal {
                    client,
                    admit,
                    reply,
                }) => {
                    let _ = reply.try_send(self.portal(client, admit));
                }
                Some(Command::Recent {
                    before,
                    count,
                    reply,
                }) => {
                    let _ = reply.try_send(self.recent(before, count));
                }
                Some(Command::Shutdown) => break,
                None => {}
            }
        }
        // What came after the shutdown is answered "stopped" by dropping it (a join's
        // stream is told to come back later, a post gets 503): a command left in the
        // channel would keep its reply open, and its connection waiting, for as long as
        // any handle lives.
        rx.close();
        while let Ok(late) = rx.try_recv() {
            drop(late);
        }
        // Posts being written are answered as the write turns out.
        if let Some(flush) = self.flush.take() {
            let done = flush.task.await;
            self.flushed(done.0, done.1, flush.batch);
        }
        // Dropping the senders closes every queue: each stream writes what it has and
        // ends its response.
        self.subscribers.clear();
    }

    fn next_deadline(&self) -> Instant {
        match self.presence_due {
            Some(at) => at.min(self.next_heartbeat),
            None => self.next_heartbeat,
        }
    }

    fn on_time(&mut self, now: Instant) {
        if now >= self.next_heartbeat {
            let frame = self.heartbeat.clone();
            self.broadcast(&frame);
            self.next_heartbeat = now + self.options.heartbeat;
            if let Some(limiter) = &mut self.limiter {
                limiter.forget_full(now);
            }
            self.muted.retain(|_, until| *until > now);
            self.let_in
                .retain(|_, since| now.duration_since(*since) < LET_IN_FOR);
        }
        if self.presence_due.is_some_and(|at| now >= at) {
            self.presence_due = None;
            let online = self.subscribers.len();
            if self.presence_told != Some(online) {
                self.presence_told = Some(online);
                let frame = presence_frame(online);
                self.broadcast(&frame);
            }
        }
    }

    fn presence_changed(&mut self) {
        if self.presence_due.is_none() {
            self.presence_due = Some(Instant::now() + PRESENCE_DELAY);
        }
    }

    fn leave(&mut self, key: u64) {
        if self.subscribers.remove(&key).is_some() {
            self.presence_changed();
        }
    }

    fn join(&mut self, last_event_id: Option<&str>) -> Subscription {
        let mut replay = self.replay_after(last_event_id);
        let (feed, frames) = outbox::pair(&self.behind);
        let key = self.next_key;
        self.next_key += 1;
        self.subscribers.insert(key, feed);
        self.presence_changed();
        let online = self.subscribers.len();
        if self.presence_told != Some(online) {
            self.presence_told = None;
        }
        replay.push(presence_frame(online));
        Subscription {
            key,
            replay,
            frames,
            leave_tx: self.leave_tx.clone(),
        }
    }

    /// What a client must be sent before live messages, given the last id it saw.
    fn replay_after(&self, last_event_id: Option<&str>) -> Vec<Frame> {
        let epoch = self.options.epoch;
        // Where this epoch's messages begin, and whether any of them have been let
        // go: the front being of an older epoch means none have.
        let first = self.history.partition_point(|s| s.id.epoch != epoch);
        let oldest = match self.history.front() {
            Some(s) if s.id.epoch != epoch => 1,
            _ => self.history.get(first).map_or(self.next_n, |s| s.id.n),
        };
        match last_event_id.filter(|id| !id.is_empty()) {
            // A new page needs the newest messages only: no deletion of a message it
            // never had.
            None => {
                let mut frames: Vec<Frame> = self
                    .history
                    .iter()
                    .rev()
                    .filter_map(|s| match &s.kept {
                        Kept::Message { frame, .. } => Some(frame.clone()),
                        _ => None,
                    })
                    .take(self.options.backlog)
                    .collect();
                frames.reverse();
                frames
            }
            Some(id) => match id.trim().parse::<Id>() {
                // Everything after `n` is still here: send exactly that.
                Ok(Id { epoch: e, n }) if e == epoch && n < self.next_n && n + 1 >= oldest => {
                    let after = self
                        .history
                        .partition_point(|s| s.id.epoch != epoch || s.id.n <= n);
                    self.history
                        .iter()
                        .skip(after)
                        .filter_map(|s| s.frame().cloned())
                        .collect()
                }
                // Unknown, from another run, or older than history: the client cannot
                // be brought up to date piecemeal, so it starts over.
                _ => std::iter::once(reset_frame())
                    .chain(self.history.iter().filter_map(|s| s.frame().cloned()))
                    .collect(),
            },
        }
    }

    #[cfg(test)]
    fn publish(&mut self, draft: Draft) -> Message {
        let message = self.message(draft);
        let reply = async_channel::bounded(1).0;
        let record = Record::Message(message.clone());
        let sender = Some(ClientKey::from(IpAddr::from([127, 0, 0, 1])));
        self.apply(Assigned {
            record,
            sender,
            reply: Reply::Post(reply),
        });
        message
    }

    /// Whether a client may post now: not muted, and within the post rate (a post
    /// taken from it when `take`). The moderator is never held back.
    fn may_post(
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

    /// The next id of the sequence.
    fn next_id(&mut self) -> Id {
        let n = self.next_n;
        self.next_n += 1;
        Id {
            epoch: self.options.epoch,
            n,
        }
    }

    /// Gives a draft its id and time.
    fn message(&mut self, draft: Draft) -> Message {
        Message {
            id: self.next_id().to_string(),
            name: draft.name,
            text: draft.text,
            time: self.clock.time(now_millis()),
            by_mod: draft.by_mod,
            cid: draft.cid,
            files: draft.files,
        }
    }

    /// The message in history that a page posted with this `cid`.
    fn posted(&self, cid: &str) -> Option<Message> {
        let id = self.cids.get(cid)?;
        let at = self.find_message(*id)?;
        match &self.history[at].kept {
            Kept::Message { message, .. } => Some(message.clone()),
            _ => None,
        }
    }

    /// Where a message that can still be deleted is in the ring.
    fn find_message(&self, target: Id) -> Option<usize> {
        self.history
            .iter()
            .position(|s| s.id == target && matches!(s.kept, Kept::Message { .. }))
    }

    /// Gives a waiting post or deletion its id; `None` for a deletion of a message
    /// that is not there (answered here) or that `batch` already deletes.
    fn assign(&mut self, job: Job, batch: &[Assigned]) -> Option<Assigned> {
        match job {
            Job::Post {
                draft,
                sender,
                reply,
            } => {
                // Sent again (its answer was lost): the message it already is, and
                // nothing sent twice.
                if let Some(message) = draft.cid.as_deref().and_then(|c| self.posted(c)) {
                    let _ = reply.try_send(Ok(message));
                    return None;
                }
                Some(Assigned {
                    record: Record::Message(self.message(draft)),
                    sender: Some(sender),
                    reply: Reply::Post(reply),
                })
            }
            Job::Delete { target, reply } => {
                let text = target.to_string();
                let deleting = batch.iter().any(|a| match &a.record {
                    Record::Deletion(d) => d.delete == text,
                    Record::Message(_) => false,
                });
                if deleting || self.find_message(target).is_none() {
                    let _ = reply.try_send(Err(Refused::NotFound));
                    return None;
                }
                Some(Assigned {
                    record: Record::Deletion(Deletion {
                        id: self.next_id().to_string(),
                        delete: text,
                    }),
                    sender: None,
                    reply: Reply::Delete(reply),
                })
            }
        }
    }

    /// Puts a stored record in the ring, answers it and sends it to everyone.
    fn apply(&mut self, assigned: Assigned) {
        let Assigned {
            record,
            sender,
            reply,
        } = assigned;
        let Ok(id) = record.id().parse::<Id>() else {
            return;
        };
        let mut files = Vec::new();
        let (kept, frame) = match &record {
            Record::Message(message) => {
                let frame = message_frame(message);
                let kept = Kept::Message {
                    message: message.clone(),
                    frame: frame.clone(),
                    sender,
                };
                (kept, frame)
            }
            Record::Deletion(d) => {
                if let Some(at) = d.delete.parse().ok().and_then(|t| self.find_message(t)) {
                    // The text goes from memory with the frame that held it.
                    if let Kept::Message { sender, .. } = self.history[at].kept {
                        let removed =
                            std::mem::replace(&mut self.history[at].kept, Kept::Removed { sender });
                        index_cid(&mut self.cids, &removed, false);
                        if let Kept::Message { message, .. } = removed {
                            files = message.files.into_iter().map(|f| f.id).collect();
                        }
                    }
                }
                let frame = deletion_frame(d);
                (
                    Kept::Deletion {
                        frame: frame.clone(),
                    },
                    frame,
                )
            }
        };
        if self.options.history > 0 {
            if self.history.len() == self.options.history {
                if let Some(gone) = self.history.pop_front() {
                    index_cid(&mut self.cids, &gone.kept, false);
                    self.release_files(gone.kept);
                }
            }
            index_cid(&mut self.cids, &kept, true);
            self.history.push_back(Stored { id, kept });
        }
        // Answer first: the poster's task is then queued ahead of the thousands of
        // stream writers the broadcast wakes.
        match (reply, record) {
            (Reply::Post(reply), Record::Message(message)) => {
                let _ = reply.try_send(Ok(message));
            }
            (Reply::Delete(reply), _) => {
                let _ = reply.try_send(Ok(files));
            }
            // Not made: a post's record is its message.
            (Reply::Post(_), Record::Deletion(_)) => {}
        }
        self.broadcast(&frame);
    }

    /// Hands the files of a message that left history to be removed.
    fn release_files(&self, gone: Kept) {
        if let (Kept::Message { message, .. }, Some(released)) = (gone, &self.options.released) {
            if !message.files.is_empty() {
                let ids = message.files.into_iter().map(|f| f.id).collect();
                // Unbounded: never waits. Fails only when the server is stopping.
                let _ = released.try_send(ids);
            }
        }
    }

    /// Mutes the sender of `target` until `time` from now, or lifts the mute.
    fn mute(&mut self, target: Id, time: Duration) -> Moderated {
        let stored = self.history.iter().find(|s| s.id == target);
        let sender = match stored.map(|s| &s.kept) {
            Some(Kept::Message { sender, .. } | Kept::Removed { sender }) => *sender,
            Some(Kept::Deletion { .. }) | None => return Err(Refused::NotFound),
        };
        let sender = sender.ok_or(Refused::SenderUnknown)?;
        if time.is_zero() {
            self.muted.remove(&sender);
        } else {
            self.muted.insert(sender, Instant::now() + time);
        }
        Ok(Vec::new())
    }

    /// Whether `client` is let in, letting it in first when `admit` is set.
    fn portal(&mut self, client: IpAddr, admit: bool) -> bool {
        if admit {
            if self.let_in.len() >= LET_IN_MAX && !self.let_in.contains_key(&client) {
                // Full: the one let in longest ago sees the sign-in sheet again.
                let oldest = self
                    .let_in
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(ip, _)| *ip);
                if let Some(ip) = oldest {
                    self.let_in.remove(&ip);
                }
            }
            self.let_in.insert(client, Instant::now());
        }
        self.let_in.contains_key(&client)
    }

    /// The newest `count` messages before `before` (all of history for `None`, none
    /// for an id history does not hold), oldest first.
    fn recent(&self, before: Option<Id>, count: usize) -> Vec<Message> {
        let end = match before {
            None => self.history.len(),
            Some(id) => match self.history.iter().position(|s| s.id == id) {
                Some(at) => at,
                None => return Vec::new(),
            },
        };
        let mut messages: Vec<Message> = self
            .history
            .range(..end)
            .rev()
            .filter_map(|s| match &s.kept {
                Kept::Message { message, .. } => Some(message.clone()),
                _ => None,
            })
            .take(count)
            .collect();
        messages.reverse();
        messages
    }

    /// Publishes held-back posts while the streams keep up.
    ///
    /// Posters flat out can publish faster than thousands of streams can be written.
    /// Accepting every post at once would only fill the queues until subscribers are
    /// dropped and must replay, and every message would wait seconds in a queue.
    /// Holding posts back while most streams are behind makes the posters wait
    /// instead: throughput is what the streams can take, queues stay short, and
    /// nothing is dropped. A few stuck clients do not count; the queue cap is theirs.
    ///
    /// With a history file, the posts that may go are written first, all in one
    /// write and one flush on a blocking thread, and sent when it returns (see
    /// [`Registry::flushed`]); posts that come meanwhile wait for the next write.
    fn release_waiting(&mut self) {
        if self.waiting.is_empty() || self.flush.is_some() {
            return;
        }
        if self.congested {
            self.congested = self.is_congested();
        }
        let mut batch: Vec<Assigned> = Vec::new();
        loop {
            let overdue = self
                .waiting
                .front()
                .is_some_and(|w| w.since.elapsed() >= MAX_HOLD);
            if self.congested && !overdue {
                break;
            }
            let Some(waiting) = self.waiting.pop_front() else {
                break;
            };
            if let Job::Post { draft, .. } = &waiting.job {
                let again = draft.cid.as_ref().is_some_and(|cid| {
                    batch.iter().any(|a| match &a.record {
                        Record::Message(m) => m.cid.as_ref() == Some(cid),
                        Record::Deletion(_) => false,
                    })
                });
                if again {
                    // Sent again while its first copy is being written: answered
                    // once that write is done, as the message it is.
                    self.waiting.push_front(waiting);
                    break;
                }
            }
            let Some(assigned) = self.assign(waiting.job, &batch) else {
                continue;
            };
            if self.store.is_some() {
                batch.push(assigned);
            } else {
                self.apply(assigned);
            }
        }
        if batch.is_empty() {
            return;
        }
        let Some(mut store) = self.store.take() else {
            return;
        };
        let records: Vec<Record> = batch.iter().map(|a| a.record.clone()).collect();
        let task = smol::unblock(move || {
            let result = store.append(&records);
            (store, result)
        });
        self.flush = Some(Flush { task, batch });
    }

    /// A write to the history file returned. Written: every record in it is
    /// answered and sent, in order. Not written: none is sent, each poster is told,
    /// and the ids are given out again (no one has seen them).
    fn flushed(&mut self, store: Store, result: std::io::Result<()>, batch: Vec<Assigned>) {
        self.store = Some(store);
        match result {
            Ok(()) => {
                if self.store_failing {
                    crate::info!("history file writable again; posts are taken again");
                    self.store_failing = false;
                }
                for assigned in batch {
                    self.apply(assigned);
                }
            }
            Err(e) => {
                if !self.store_failing {
                    crate::error!(
                        "cannot write the history file: {e}; posts are refused (507) until it can"
                    );
                    self.store_failing = true;
                }
                if let Some(first) = batch.first() {
                    if let Ok(id) = first.record.id().parse::<Id>() {
                        self.next_n = id.n;
                    }
                }
                for assigned in batch {
                    assigned.reply.not_stored();
                }
            }
        }
        self.release_waiting();
    }

    /// Frames queued for a stream beyond which it counts as behind.
    fn congestion_depth(&self) -> usize {
        (self.options.queue / 8).clamp(1, 32)
    }

    fn is_congested(&self) -> bool {
        let depth = self.congestion_depth();
        let behind = self
            .subscribers
            .values()
            .filter(|feed| feed.len() > depth)
            .count();
        congested(behind, self.subscribers.len())
    }

    /// Whether this broadcast is written by the registry itself, to every stream
    /// with nothing queued (see [`Feed::push`]), or left to the streams' tasks.
    ///
    /// Written here, an event costs each stream one `send` and nothing more: no
    /// task to wake and poll. But the registry then writes to every socket alone,
    /// one event per system call, while nothing else runs; under a flood of posts
    /// that is far slower than waking the tasks, which fall behind, find several
    /// frames queued and send them in one `writev`. So the registry writes only
    /// while events are sparse: every stream has written all it was given, and no
    /// other command is waiting (posts that arrived during a broadcast wait here).
    fn writes_directly(&self) -> bool {
        self.behind.count() == 0 && self.waiting.is_empty() && self.commands_waiting == 0
    }

    fn broadcast(&mut self, frame: &Frame) {
        let cap = self.options.queue;
        let depth = self.congestion_depth();
        let before = self.subscribers.len();
        let mut behind = 0;
        let direct = self.writes_directly();
        self.subscribers
            .retain(|_, feed| match feed.push(frame, cap, direct) {
                Ok(queued) => {
                    // Counted as `is_congested` counts: with this frame in the queue.
                    behind += usize::from(queued > depth);
                    true
                }
                Err(_) => false,
            });
        self.congested = congested(behind, self.subscribers.len());
        if self.subscribers.len() != before {
            self.presence_changed();
        }
    }
}

/// Keeps the `cid` of a message entering (`add`) or leaving the ring in `cids`, for
/// [`Registry::posted`].
fn index_cid(cids: &mut HashMap<String, Id>, kept: &Kept, add: bool) {
    if let Kept::Message { message, .. } = kept {
        if let (Some(cid), Some(id)) = (&message.cid, message.parsed_id()) {
            if add {
                cids.insert(cid.clone(), id);
            } else if cids.get(cid) == Some(&id) {
                cids.remove(cid);
            }
        }
    }
}

fn congested(behind: usize, streams: usize) -> bool {
    behind > CONGESTION_MIN_BEHIND && behind * 10 > streams
}

fn message_frame(message: &Message) -> Frame {
    sse::chunk(&sse::event(Some(&message.id), None, &message.to_json()))
}

fn deletion_frame(deletion: &Deletion) -> Frame {
    sse::chunk(&sse::event(
        Some(&deletion.id),
        Some("delete"),
        &deletion.event_json(),
    ))
}

/// The heartbeat: a comment for proxies and curl, and an `event: ping` carrying the
/// interval in milliseconds, because a page cannot see comments and must know when
/// silence means a dead connection.
pub fn ping(interval: Duration) -> Vec<u8> {
    let mut bytes = sse::comment("ping");
    bytes.extend(sse::event(
        None,
        Some("ping"),
        &interval.as_millis().to_string(),
    ));
    bytes
}

fn presence_frame(online: usize) -> Frame {
    sse::chunk(&sse::event(
        None,
        Some("presence"),
        &format!("{{\"online\":{online}}}"),
    ))
}

fn reset_frame() -> Frame {
    sse::chunk(&sse::event(None, Some("reset"), "{}"))
}

/// Milliseconds since the Unix epoch; 0 on a clock set before 1970.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(history: usize, backlog: usize) -> Options {
        Options {
            history,
            backlog,
            queue: 4,
            heartbeat: Duration::from_secs(60),
            epoch: 77,
            store: None,
            post_rate: None,
            restored: Vec::new(),
            released: None,
        }
    }

    fn registry(history: usize, backlog: usize) -> Registry {
        let (tx, _rx) = async_channel::unbounded();
        Registry::new(options(history, backlog), tx)
    }

    /// The ids (or event names) of what a stream was sent, as its socket would
    /// have been written.
    fn written(sub: &Subscription) -> Vec<String> {
        ids(&queued(sub))
    }

    /// The frames queued for a stream, split as its socket would have been written.
    fn queued(sub: &Subscription) -> Vec<Frame> {
        let mut out = Vec::new();
        sub.frames.write_to(&mut out).unwrap();
        let mut frames = Vec::new();
        let mut rest = &out[..];
        while let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
            let len = std::str::from_utf8(&rest[..at]).unwrap();
            let end = at + 2 + usize::from_str_radix(len, 16).unwrap() + 2;
            frames.push(Frame::from(&rest[..end]));
            rest = &rest[end..];
        }
        frames
    }

    fn events(frames: &[Frame]) -> Vec<sse::parse::Event> {
        let mut parser = sse::parse::Parser::default();
        frames
            .iter()
            .flat_map(|f| {
                // Strip the chunk framing: "<len>\r\n" … "\r\n".
                let text = std::str::from_utf8(f).unwrap();
                let body = &text[text.find("\r\n").unwrap() + 2..text.len() - 2];
                parser.feed(body)
            })
            .collect()
    }

    fn ids(frames: &[Frame]) -> Vec<String> {
        events(frames)
            .into_iter()
            .map(|e| if e.event == "message" { e.id } else { e.event })
            .collect()
    }

    /// The presence counts in `frames`, in order.
    fn counts(frames: &[Frame]) -> Vec<String> {
        events(frames)
            .into_iter()
            .filter(|e| e.event == "presence")
            .map(|e| e.data)
            .collect()
    }

    fn post(r: &mut Registry, n: usize) {
        for i in 0..n {
            r.publish(Draft::new("a", &format!("m{i}")).unwrap());
        }
    }

    fn poster() -> ClientKey {
        ClientKey::from(IpAddr::from([127, 0, 0, 2]))
    }

    fn waiting(since: Instant, text: &str, reply: Sender<Published>) -> Waiting {
        let draft = Draft::new("a", text).unwrap();
        let job = Job::Post {
            draft,
            sender: poster(),
            reply,
        };
        Waiting { since, job }
    }

    /// Queues a post as the run loop does; returns what the poster is answered.
    fn offer(r: &mut Registry, text: &str) -> Receiver<Published> {
        let (reply, answer) = async_channel::bounded(1);
        r.waiting.push_back(waiting(Instant::now(), text, reply));
        r.release_waiting();
        answer
    }

    /// Queues a deletion as the run loop does; returns its outcome.
    fn delete(r: &mut Registry, target: &str) -> Receiver<Moderated> {
        let (reply, answer) = async_channel::bounded(1);
        let job = Job::Delete {
            target: target.parse().unwrap(),
            reply,
        };
        let since = Instant::now();
        r.waiting.push_back(Waiting { since, job });
        r.release_waiting();
        answer
    }

    #[test]
    fn what_comes_during_shutdown_is_answered_at_once() {
        let (handle, task) = new(options(10, 10));
        let ex = smol::LocalExecutor::new();
        handle.shutdown();
        // Sent behind the shutdown, before the registry has run at all.
        let late = ex.spawn({
            let handle = handle.clone();
            async move { handle.join(None).await.is_none() }
        });
        let registry = ex.spawn(task);
        let answered = smol::block_on(ex.run(async {
            registry.await;
            late.or(async {
                smol::Timer::after(Duration::from_secs(5)).await;
                false
            })
            .await
        }));
        assert!(answered, "a join sent during shutdown waited for ever");
    }

    #[test]
    fn a_stream_told_two_at_its_join_hears_one_when_the_other_leaves_at_once() {
        // A tab takes the stream over from one just closed, whose end the server
        // sees a moment after the new stream's join: the newcomer was told 2.
        let mut r = registry(10, 10);
        let old = r.join(None);
        r.on_time(Instant::now() + PRESENCE_DELAY);
        assert_eq!(counts(&old.replay), [r#"{"online":1}"#]);
        assert_eq!(counts(&queued(&old)), [r#"{"online":1}"#]);
        let new = r.join(None);
        assert_eq!(counts(&new.replay), [r#"{"online":2}"#]);
        r.leave(old.key);
        r.on_time(Instant::now() + PRESENCE_DELAY);
        assert_eq!(counts(&queued(&new)), [r#"{"online":1}"#]);
    }

    #[test]
    fn posts_wait_while_most_streams_are_behind_and_go_out_when_they_catch_up() {
        let mut r = registry(100, 0);
        r.options.queue = 64; // behind means more than 8 queued
        let subs: Vec<Subscription> = (0..40).map(|_| r.join(None)).collect();
        post(&mut r, 9);
        assert!(r.congested, "40 of 40 streams hold 9 frames");
        let held = offer(&mut r, "held");
        assert!(held.try_recv().is_err(), "held back while congested");
        // The streams are written: the post goes out on the next check.
        for sub in &subs {
            sub.frames.write_to(std::io::sink()).unwrap();
        }
        r.release_waiting();
        assert_eq!(held.try_recv().unwrap().unwrap().text, "held");
        for sub in &subs {
            assert_eq!(sub.frames.len(), 1);
        }
    }

    #[test]
    fn a_few_stuck_streams_never_hold_posts_back_and_none_is_held_for_long() {
        let mut r = registry(100, 0);
        r.options.queue = 64;
        // A small chat where everyone's phone is asleep: never congested.
        let few: Vec<Subscription> = (0..CONGESTION_MIN_BEHIND).map(|_| r.join(None)).collect();
        post(&mut r, 20);
        assert!(!r.congested);
        assert_eq!(
            offer(&mut r, "goes").try_recv().unwrap().unwrap().text,
            "goes"
        );
        // Many stuck streams: held, but never past MAX_HOLD.
        let many: Vec<Subscription> = (0..40).map(|_| r.join(None)).collect();
        post(&mut r, 9);
        assert!(r.congested);
        let (reply, answer) = async_channel::bounded(1);
        let long_ago = Instant::now() - MAX_HOLD;
        r.waiting.push_back(waiting(long_ago, "overdue", reply));
        r.release_waiting();
        assert_eq!(answer.try_recv().unwrap().unwrap().text, "overdue");
        drop((few, many));
    }

    #[test]
    fn the_registry_writes_only_while_every_stream_has_caught_up_and_nothing_waits() {
        let mut r = registry(100, 0);
        r.options.queue = 64;
        assert!(r.writes_directly(), "idle");
        let sub = r.join(None);
        post(&mut r, 1); // no socket attached yet: queued, so the stream is behind
        assert!(!r.writes_directly(), "a stream has frames to write");
        sub.frames.write_to(std::io::sink()).unwrap();
        assert!(r.writes_directly());
        r.commands_waiting = 3;
        assert!(!r.writes_directly(), "more posts are already waiting");
        r.commands_waiting = 0;
        r.waiting
            .push_back(waiting(Instant::now(), "b", offer_reply()));
        assert!(!r.writes_directly(), "posts are held back");
    }

    fn offer_reply() -> Sender<Published> {
        async_channel::bounded(1).0
    }

    /// Waits for the history file writes under way, as the run loop does.
    fn settle(r: &mut Registry) {
        while let Some(flush) = r.flush.take() {
            let (store, result) = smol::block_on(flush.task);
            r.flushed(store, result, flush.batch);
        }
    }

    fn message(id: &str) -> Record {
        Record::Message(Message {
            id: id.into(),
            name: "a".into(),
            text: id.into(),
            time: 1,
            by_mod: false,
            cid: None,
            files: Vec::new(),
        })
    }

    #[test]
    fn restored_history_with_gaps_and_an_older_epoch_replays_exactly() {
        let (tx, _rx) = async_channel::unbounded();
        let restored = ["5-8", "5-9", "9-1", "9-2", "9-4", "9-5"]
            .map(message)
            .to_vec();
        let r = Registry::new(
            Options {
                history: 100,
                backlog: 100,
                queue: 4,
                heartbeat: Duration::from_secs(60),
                epoch: 1,
                store: None,
                post_rate: None,
                restored,
                released: None,
            },
            tx,
        );
        assert_eq!(r.options.epoch, 9);
        assert_eq!(r.next_n, 6);
        assert_eq!(ids(&r.replay_after(Some("9-2"))), ["9-4", "9-5"]);
        // 9-3 was lost on disk: after it comes what is left.
        assert_eq!(ids(&r.replay_after(Some("9-3"))), ["9-4", "9-5"]);
        assert_eq!(ids(&r.replay_after(Some("9-5"))), Vec::<String>::new());
        let all = ["reset", "5-8", "5-9", "9-1", "9-2", "9-4", "9-5"];
        assert_eq!(ids(&r.replay_after(Some("5-9"))), all);
        assert_eq!(ids(&r.replay_after(Some("9-6"))), all);
        assert_eq!(ids(&r.replay_after(None)), all[1..]);
    }

    /// A registry with a history file in a fresh directory of its own.
    fn with_store(name: &str) -> (Registry, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("lanchat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (store, _) = Store::open(&dir, 100).unwrap();
        let mut r = registry(100, 100);
        r.store = Some(store);
        (r, dir)
    }

    #[test]
    fn a_post_the_disk_refused_reaches_no_one_and_its_id_is_given_again() {
        let (mut r, dir) = with_store("registry");
        let sub = r.join(None);
        let first = offer(&mut r, "one");
        settle(&mut r);
        assert_eq!(first.try_recv().unwrap().unwrap().id, "77-1");

        r.store.as_mut().unwrap().fail_writes = true;
        let refused = offer(&mut r, "two");
        let also = offer(&mut r, "three"); // waits for the write under way
        settle(&mut r);
        assert_eq!(refused.try_recv().unwrap(), Err(NotPublished::NotStored));
        assert_eq!(also.try_recv().unwrap(), Err(NotPublished::NotStored));
        assert_eq!(ids(&r.replay_after(None)), ["77-1"]);

        r.store.as_mut().unwrap().fail_writes = false;
        let again = offer(&mut r, "four");
        settle(&mut r);
        assert_eq!(again.try_recv().unwrap().unwrap().id, "77-2");
        sub.frames.write_to(std::io::sink()).unwrap();
        let (_, on_disk) = Store::open(&dir, 100).unwrap();
        let texts: Vec<&str> = on_disk
            .iter()
            .filter_map(|r| match r {
                Record::Message(m) => Some(m.text.as_str()),
                Record::Deletion(_) => None,
            })
            .collect();
        assert_eq!(texts, ["one", "four"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn posts_that_come_during_a_flush_share_the_next_one() {
        let (mut r, dir) = with_store("batch");
        let answers: Vec<_> = (0..6).map(|i| offer(&mut r, &format!("m{i}"))).collect();
        settle(&mut r);
        // The first went alone; the five that came while it was written, together.
        assert_eq!(r.store.as_ref().unwrap().appends, 2);
        let ids: Vec<String> = answers
            .iter()
            .map(|a| a.try_recv().unwrap().unwrap().id)
            .collect();
        assert_eq!(ids, ["77-1", "77-2", "77-3", "77-4", "77-5", "77-6"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_deletion_takes_the_next_id_and_the_message_leaves_every_replay() {
        let mut r = registry(10, 10);
        let sub = r.join(None);
        post(&mut r, 3);
        assert_eq!(delete(&mut r, "77-2").try_recv().unwrap(), Ok(Vec::new()));
        // Live: the deletion, in the sequence, after the three messages.
        assert_eq!(written(&sub), ["77-1", "77-2", "77-3", "delete"]);
        assert_eq!(ids(&r.replay_after(Some("77-1"))), ["77-3", "delete"]);
        assert_eq!(ids(&r.replay_after(Some("77-3"))), ["delete"]);
        assert_eq!(ids(&r.replay_after(Some("77-4"))), Vec::<String>::new());
        assert_eq!(ids(&r.replay_after(None)), ["77-1", "77-3"], "a new page");
        let texts: Vec<String> = r.recent(None, 10).into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["m0", "m2"]);
        let before = |id: &str, n| -> Vec<String> {
            let id = id.parse().ok();
            r.recent(id, n).into_iter().map(|m| m.id).collect()
        };
        assert_eq!(before("77-3", 10), ["77-1"], "the deleted one left out");
        assert_eq!(before("77-4", 1), ["77-3"]);
        assert_eq!(before("77-1", 10), Vec::<String>::new());
        assert_eq!(before("70-1", 10), Vec::<String>::new(), "not in history");
        post(&mut r, 1);
        assert_eq!(ids(&r.replay_after(Some("77-4"))), ["77-5"]);
        // Twice, unknown, or a deletion itself: nothing to delete.
        for target in ["77-2", "77-9", "77-4", "76-1"] {
            let refused = delete(&mut r, target).try_recv().unwrap();
            assert_eq!(refused, Err(Refused::NotFound), "{target}");
        }
        assert_eq!(r.next_n, 6, "a refused deletion takes no id");
    }

    #[test]
    fn the_backlog_of_a_new_page_counts_messages_only() {
        let mut r = registry(10, 2);
        post(&mut r, 3);
        delete(&mut r, "77-3").try_recv().unwrap().unwrap();
        assert_eq!(ids(&r.replay_after(None)), ["77-1", "77-2"]);
    }

    #[test]
    fn a_muted_sender_cannot_post_until_the_mute_ends_and_the_host_always_can() {
        let mut r = registry(10, 10);
        r.limiter = Some(PostLimiter::new(Rate {
            burst: 1,
            every: Duration::from_secs(3600),
        }));
        let first = offer(&mut r, "spam").try_recv().unwrap().unwrap();
        let id: Id = first.id.parse().unwrap();
        assert_eq!(r.mute(id, Duration::from_secs(600)), Ok(Vec::new()));
        let now = Instant::now();
        let draft = Draft::new("a", "more").unwrap();
        match r.may_post(draft.by_mod, poster(), now, true) {
            Err(NotPublished::Muted(wait)) => assert!(wait > Duration::from_secs(590)),
            other => panic!("{other:?}"),
        }
        let other = ClientKey::from(IpAddr::from([127, 0, 0, 3]));
        assert_eq!(r.may_post(draft.by_mod, other, now, true), Ok(()));
        let host = Draft {
            by_mod: true,
            ..draft.clone()
        };
        // Muted and over the rate: the host's own posts still go.
        assert_eq!(r.may_post(host.by_mod, poster(), now, true), Ok(()));
        // A deleted message's sender can still be muted; zero lifts the mute.
        delete(&mut r, &first.id).try_recv().unwrap().unwrap();
        assert_eq!(r.mute(id, Duration::ZERO), Ok(Vec::new()));
        assert_eq!(
            r.may_post(draft.by_mod, poster(), now, true),
            Ok(()),
            "unmuted"
        );
        assert!(
            matches!(
                r.may_post(draft.by_mod, poster(), now, true),
                Err(NotPublished::Limited(_))
            ),
            "the rate still counts"
        );
        // Mutes are forgotten once over.
        r.mute(id, Duration::from_millis(1)).unwrap();
        r.next_heartbeat = now;
        r.on_time(now + Duration::from_secs(1));
        assert!(r.muted.is_empty());
        // Restored from disk: the sender is not known.
        let (tx, _rx) = async_channel::unbounded();
        let mut restored = Registry::new(
            Options {
                restored: vec![message("3-1")],
                ..options(10, 10)
            },
            tx,
        );
        let id = "3-1".parse().unwrap();
        assert_eq!(restored.mute(id, MINUTE), Err(Refused::SenderUnknown));
        assert_eq!(
            restored.mute("3-2".parse().unwrap(), MINUTE),
            Err(Refused::NotFound)
        );
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_deletion_waits_for_the_disk_and_after_a_failed_write_nothing_is_deleted() {
        let (mut r, dir) = with_store("deletion");
        let sub = r.join(None);
        offer(&mut r, "one");
        settle(&mut r);
        r.store.as_mut().unwrap().fail_writes = true;
        let refused = delete(&mut r, "77-1");
        settle(&mut r);
        assert_eq!(refused.try_recv().unwrap(), Err(Refused::NotStored));
        assert_eq!(ids(&r.replay_after(None)), ["77-1"], "still there");
        r.store.as_mut().unwrap().fail_writes = false;
        let done = delete(&mut r, "77-1");
        let twice = delete(&mut r, "77-1"); // waits for the write under way
        settle(&mut r);
        assert_eq!(done.try_recv().unwrap(), Ok(Vec::new()));
        assert_eq!(twice.try_recv().unwrap(), Err(Refused::NotFound));
        assert_eq!(written(&sub), ["77-1", "delete"]);
        let (_, on_disk) = Store::open(&dir, 100).unwrap();
        let on_disk: Vec<&str> = on_disk.iter().map(Record::id).collect();
        assert_eq!(
            on_disk,
            ["77-2"],
            "the deletion, the same id it was sent with"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Queues a post with a `cid`, as the run loop does.
    fn offer_cid(r: &mut Registry, text: &str, cid: &str) -> Receiver<Published> {
        let (reply, answer) = async_channel::bounded(1);
        let mut w = waiting(Instant::now(), text, reply);
        if let Job::Post { draft, .. } = &mut w.job {
            draft.cid = Some(cid.into());
        }
        r.waiting.push_back(w);
        r.release_waiting();
        answer
    }

    #[test]
    fn a_post_sent_again_is_answered_with_the_message_it_already_is() {
        let mut r = registry(3, 3);
        let sub = r.join(None);
        let first = offer_cid(&mut r, "hi", "c1").try_recv().unwrap().unwrap();
        let again = offer_cid(&mut r, "hi", "c1").try_recv().unwrap().unwrap();
        assert_eq!(again, first);
        assert_eq!(written(&sub), [first.id.as_str()], "sent once");
        // Once it has left history, the cid is forgotten with it.
        post(&mut r, 3);
        assert!(r.cids.is_empty());
        let later = offer_cid(&mut r, "hi", "c1").try_recv().unwrap().unwrap();
        assert_ne!(later.id, first.id);
    }

    #[test]
    fn a_post_sent_again_while_the_first_is_written_waits_for_that_write() {
        let (mut r, dir) = with_store("cid");
        let sub = r.join(None);
        let first = offer_cid(&mut r, "hi", "c1");
        let other = offer(&mut r, "other");
        let again = offer_cid(&mut r, "hi", "c1");
        settle(&mut r);
        let first = first.try_recv().unwrap().unwrap();
        assert_eq!(again.try_recv().unwrap().unwrap(), first);
        assert_eq!(other.try_recv().unwrap().unwrap().id, "77-2");
        assert_eq!(written(&sub), ["77-1", "77-2"]);
        // After a restart, from the file.
        drop(r);
        let (store, restored) = Store::open(&dir, 100).unwrap();
        let (tx, _rx) = async_channel::unbounded();
        let mut r = Registry::new(
            Options {
                restored,
                ..options(100, 100)
            },
            tx,
        );
        r.store = Some(store);
        let after = offer_cid(&mut r, "hi", "c1");
        settle(&mut r);
        assert_eq!(after.try_recv().unwrap().unwrap(), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replay_after_known_id_is_exact() {
        let mut r = registry(10, 3);
        post(&mut r, 5);
        assert_eq!(ids(&r.replay_after(Some("77-2"))), ["77-3", "77-4", "77-5"]);
        assert!(ids(&r.replay_after(Some("77-5"))).is_empty());
    }

    #[test]
    fn new_client_gets_the_backlog() {
        let mut r = registry(10, 3);
        post(&mut r, 5);
        assert_eq!(ids(&r.replay_after(None)), ["77-3", "77-4", "77-5"]);
        assert_eq!(ids(&r.replay_after(Some(""))), ["77-3", "77-4", "77-5"]);
    }

    #[test]
    fn unknown_foreign_future_or_evicted_ids_reset() {
        let mut r = registry(3, 3);
        post(&mut r, 6); // history holds 4, 5, 6
        let all = ["reset", "77-4", "77-5", "77-6"];
        assert_eq!(ids(&r.replay_after(Some("garbage"))), all);
        assert_eq!(ids(&r.replay_after(Some("76-5"))), all);
        assert_eq!(ids(&r.replay_after(Some("77-9"))), all);
        assert_eq!(ids(&r.replay_after(Some("77-2"))), all);
        // 3 is gone, but everything after it is still here.
        assert_eq!(ids(&r.replay_after(Some("77-3"))), ["77-4", "77-5", "77-6"]);
    }

    #[test]
    fn full_queue_drops_only_that_subscriber() {
        let mut r = registry(10, 0);
        let slow = r.join(None);
        let fast = r.join(None);
        for _ in 0..4 {
            post(&mut r, 1);
            fast.frames.write_to(std::io::sink()).unwrap();
        }
        post(&mut r, 1);
        assert_eq!(r.subscribers.len(), 1);
        assert_eq!(fast.frames.len(), 1);
        // The slow one keeps what was queued, then sees its queue closed.
        assert_eq!(slow.frames.len(), 4);
        assert!(slow.frames.is_closed());
    }
}
