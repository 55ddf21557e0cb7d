//! The registry: one task that alone owns everything that orders messages. Everything
//! else talks to it through [`Handle`], which sends [`Command`]s over a channel.
//!
//! Its state is a struct of parts, each a plain type in its own file:
//!
//! | part | owns |
//! | --- | --- |
//! | [`history`] | the ring of records, replay after an id, pages of older messages, the `cid` index, search |
//! | [`changes`] | what a device may do to a message after it is sent, and how each change folds in |
//! | [`subscribers`] | each stream's feed, joining and leaving, the broadcast, congestion |
//! | [`presence`] | the count streams are told, and the heartbeat's schedule |
//! | [`publish`] | ids, the queue of posts and changes waiting for their turn |
//! | [`moderation`] | the moderator's mutes and the post rate |
//! | [`frames`] | the events, each encoded once |
//! | [`handle`] | the commands, the handle that sends them, a stream's subscription |
//!
//! with the history file ([`crate::store`]) and the phones' clock ([`Clock`]).
//!
//! Invariants:
//! - Only this task touches the subscriber list; there is no lock around it.
//! - Each event is encoded (SSE and chunk framing) once; every subscriber gets a
//!   clone of the same frame.
//! - The registry never waits on a subscriber (see [`subscribers`]).
//! - While events are sparse (every stream has written all it was given and no
//!   other command waits), the registry writes each event to the sockets of the
//!   streams itself, without blocking; under load the streams' tasks write, several
//!   frames per `writev` ([`Registry::writes_directly`]).
//! - A join is handled in one step: the replay is cut from history and the queue is
//!   registered before the next publish is looked at, so no message published while
//!   a client joins is lost or sent twice.
//! - Messages and the changes to them (deletions, reactions, edits) are records of
//!   one id sequence, written to the history file (with `--data-dir`) before they
//!   are answered or sent; a write that fails reaches no one and its ids are given
//!   again. A change counts against its device's client's post rate, as a post does.
//! - Senders' addresses are kept in memory only, with the messages in the ring.

mod changes;
mod frames;
mod handle;
mod history;
mod limit;
mod moderation;
mod presence;
mod publish;
mod subscribers;

use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures_lite::FutureExt as _;

use crate::client::ClientKey;
use crate::clock::{self, Clock};
use crate::deadline::Deadline;
use crate::message::{
    Deletion, Draft, Edit, Id, Message, Quote, Reaction, Record, LATE, MAX_WAITED,
};
use crate::sse::Frame;
use crate::store::Store;

pub use changes::{is_reaction, Act, Refused};
pub use frames::ping;
pub use handle::{
    ActRefused, Acted, Command, Done, Handle, Moderated, ModerationRefused, NotPublished, Options,
    PostCheck, PublishError, Published, Subscription,
};
pub use history::Found;

use history::{History, Kept, Missing};
use moderation::Moderation;
#[cfg(test)]
use presence::PRESENCE_DELAY;
use presence::{Heartbeat, Presence};
use publish::{Answer, Assigned, Flush, Ids, Job, Queue};
use subscribers::Subscribers;

/// How often a held-back publish looks again whether the streams have caught up.
const CONGESTION_RECHECK: Duration = Duration::from_millis(2);

/// What wakes the registry: a command, a write to the history file that returned
/// (the store back, how it went, the records it held), or a deadline.
enum Wake {
    Command(Command),
    Flushed((Store, std::io::Result<()>), Vec<Assigned>),
    Deadline,
}

/// Starts nothing by itself: returns the handle and the task to spawn.
pub fn new(options: Options) -> (Handle, impl std::future::Future<Output = ()>) {
    let (tx, rx) = async_channel::unbounded();
    let registry = Registry::new(options, tx.clone());
    (Handle { tx }, registry.run(rx))
}

struct Registry {
    /// Handed to each subscription so that its `Drop` can say it left.
    leave_tx: Sender<Command>,
    /// Messages a new page is sent first.
    backlog: usize,
    history: History,
    subscribers: Subscribers,
    presence: Presence,
    heartbeat: Heartbeat,
    moderation: Moderation,
    ids: Ids,
    /// Posts and deletions waiting for their turn (the streams are behind, or the
    /// history file is being written).
    queue: Queue,
    /// The history file while no write is under way (moved into the write).
    store: Option<Store>,
    /// The write under way, if any.
    flush: Option<Flush>,
    /// Set after a failed write, so a full disk is logged once, not per message.
    store_failing: bool,
    /// Message times, set by the phones when this machine's clock is behind.
    clock: Clock,
    /// Where the files of messages that leave history go.
    released: Option<Sender<Vec<String>>>,
    /// Commands still in the channel behind the one being handled.
    commands_waiting: usize,
}

impl Registry {
    fn new(mut options: Options, leave_tx: Sender<Command>) -> Self {
        let restored = std::mem::take(&mut options.restored);
        let (history, last) = History::restore(options.history, restored);
        Registry {
            leave_tx,
            backlog: options.backlog,
            history,
            subscribers: Subscribers::new(options.queue),
            presence: Presence::default(),
            heartbeat: Heartbeat::new(options.heartbeat),
            moderation: Moderation::new(options.post_rate),
            ids: Ids::new(options.epoch, last),
            queue: Queue::default(),
            store: options.store.take(),
            flush: None,
            store_failing: false,
            clock: Clock::new(clock::built_ms()),
            released: options.released,
            commands_waiting: 0,
        }
    }

    async fn run(mut self, rx: Receiver<Command>) {
        // One timer for every wait: most waits end with a command before it fires.
        let mut timer = Deadline::default();
        loop {
            // Deadlines are checked on every turn as well as by the timer, because a
            // steady stream of commands would otherwise keep the timer from firing.
            let now = Instant::now();
            self.on_time(now);
            self.release_waiting();
            let due = self.next_deadline();
            let flushing = &mut self.flush;
            let wake = async {
                // Cannot fail while the registry holds `leave_tx`; stopping is the
                // one safe answer if it ever did.
                Wake::Command(rx.recv().await.unwrap_or(Command::Shutdown))
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
            let command = match wake {
                Wake::Command(command) => command,
                Wake::Flushed((store, result), batch) => {
                    self.flush = None;
                    self.flushed(store, result, batch);
                    continue;
                }
                Wake::Deadline => continue,
            };
            match command {
                Command::Join {
                    last_event_id,
                    reply,
                } => {
                    // The client may have gone while it waited; its Drop says Leave.
                    let _ = reply.try_send(self.join(last_event_id.as_deref()));
                }
                Command::Leave { key } => self.leave(key),
                Command::Publish {
                    draft,
                    client,
                    reply,
                } => self.publish(draft, client, reply),
                Command::Admit { asked, reply } => {
                    let _ = reply.try_send(self.admit(asked));
                }
                Command::Delete { target, reply } => self.delete(target, reply),
                Command::Act {
                    target,
                    device,
                    act,
                    client,
                    reply,
                } => self.act(target, device, act, client, reply),
                Command::Search {
                    words,
                    before,
                    scan,
                    limit,
                    reply,
                } => {
                    let _ = reply.try_send(self.history.search(&words, before, scan, limit));
                }
                Command::Mute {
                    target,
                    time,
                    reply,
                } => {
                    let _ = reply.try_send(self.mute(target, time));
                }
                Command::Recent {
                    before,
                    count,
                    reply,
                } => {
                    let _ = reply.try_send(self.history.recent(before, count));
                }
                Command::Shutdown => break,
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
        // Records being written are answered as the write turns out.
        if let Some(flush) = self.flush.take() {
            let (store, result) = flush.task.await;
            self.flushed(store, result, flush.batch);
        }
        // Closing every queue: each stream writes what it has and ends its response.
        self.subscribers.clear();
    }

    fn next_deadline(&self) -> Instant {
        let mut due = self.heartbeat.next();
        if let Some(presence) = self.presence.due() {
            due = due.min(presence);
        }
        if !self.queue.is_empty() {
            due = due.min(Instant::now() + CONGESTION_RECHECK);
        }
        due
    }

    fn on_time(&mut self, now: Instant) {
        if let Some(beat) = self.heartbeat.take_due(now) {
            self.broadcast(&beat);
            self.moderation.forget(now);
        }
        if let Some(frame) = self.presence.take_due(now, self.subscribers.len()) {
            self.broadcast(&frame);
        }
    }

    fn join(&mut self, last_event_id: Option<&str>) -> Subscription {
        let (epoch, next_n) = (self.ids.epoch(), self.ids.next_n());
        let mut replay = self
            .history
            .replay_after(last_event_id, epoch, next_n, self.backlog);
        let (key, frames) = self.subscribers.join();
        replay.push(self.presence.joined(self.subscribers.len(), Instant::now()));
        Subscription {
            key,
            replay,
            frames,
            leave_tx: self.leave_tx.clone(),
        }
    }

    fn leave(&mut self, key: u64) {
        if self.subscribers.leave(key) {
            self.presence.changed(Instant::now());
        }
    }

    fn publish(&mut self, draft: Draft, client: ClientKey, reply: Sender<Published>) {
        let now = Instant::now();
        if let Some(sent) = draft.sent {
            self.clock.observe(client, sent, clock::now_millis());
        }
        let device = draft.device.as_deref();
        if let Err(why) = self
            .moderation
            .may_post(draft.by_mod, client, device, now, true)
        {
            let _ = reply.try_send(Err(why));
            return;
        }
        let sender = client;
        self.queue.push(
            now,
            Job::Post {
                draft,
                sender,
                reply,
            },
        );
        self.release_waiting();
    }

    fn admit(&mut self, asked: PostCheck) -> Result<bool, NotPublished> {
        let PostCheck {
            client,
            by_mod,
            device,
            cid,
        } = asked;
        self.moderation
            .may_post(by_mod, client, device.as_deref(), Instant::now(), false)?;
        Ok(cid.is_some_and(|cid| self.history.posted(&cid).is_some()))
    }

    fn delete(&mut self, target: Id, reply: Sender<Moderated>) {
        self.queue
            .push(Instant::now(), Job::Delete { target, reply });
        self.release_waiting();
    }

    /// A device's change to a message: held to its client's post rate and mute as a
    /// post is, then queued in the one sequence.
    fn act(
        &mut self,
        target: Id,
        device: String,
        act: Act,
        client: ClientKey,
        reply: Sender<Acted>,
    ) {
        let now = Instant::now();
        if let Err(why) = self
            .moderation
            .may_post(false, client, Some(&device), now, true)
        {
            let _ = reply.try_send(Err(ActRefused::from(why)));
            return;
        }
        self.queue.push(
            now,
            Job::Act {
                target,
                device,
                act,
                reply,
            },
        );
        self.release_waiting();
    }

    fn mute(&mut self, target: Id, time: Duration) -> Moderated {
        let who = self.history.who(target).map_err(|missing| match missing {
            Missing::NotFound => ModerationRefused::NotFound,
            Missing::SenderUnknown => ModerationRefused::SenderUnknown,
        })?;
        self.moderation.mute(&who, time, Instant::now());
        Ok(Vec::new())
    }

    /// Publishes the posts and deletions that wait, while the streams keep up.
    ///
    /// Posters flat out can publish faster than thousands of streams can be written.
    /// Accepting every post at once would only fill the queues until subscribers are
    /// dropped and must replay, and every message would wait seconds in a queue.
    /// Holding posts back while most streams are behind makes the posters wait
    /// instead: throughput is what the streams can take, queues stay short, and
    /// nothing is dropped. A few stuck clients do not count; the queue cap is theirs.
    ///
    /// With a history file, the records that may go are written first, all in one
    /// write and one flush on a blocking thread, and sent when it returns (see
    /// [`Registry::flushed`]); those that come meanwhile wait for the next write.
    fn release_waiting(&mut self) {
        if self.queue.is_empty() || self.flush.is_some() {
            return;
        }
        let congested = self.subscribers.still_congested();
        let mut batch: Vec<Assigned> = Vec::new();
        let now = Instant::now();
        while let Some(job) = self.queue.next(congested, &batch, now) {
            let Some(assigned) = self.assign(job, &batch) else {
                continue;
            };
            match self.store {
                Some(_) => batch.push(assigned),
                None => self.apply(assigned),
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

    /// Gives a waiting post or deletion its id; `None` for a post already stored (it
    /// is answered with the message it is) and for a deletion of a message that is
    /// not there or that `batch` already deletes (answered here).
    fn assign(&mut self, job: Job, batch: &[Assigned]) -> Option<Assigned> {
        match job {
            Job::Post {
                draft,
                sender,
                reply,
            } => {
                // Sent again (its answer was lost): the message it already is, and
                // nothing sent twice.
                if let Some(message) = draft.cid.as_deref().and_then(|c| self.history.posted(c)) {
                    let _ = reply.try_send(Ok(message.clone()));
                    return None;
                }
                let time = self.clock.time(clock::now_millis());
                let reply_to = draft.reply.map(|to| self.quote(to, batch));
                let message = Message {
                    id: self.ids.take().to_string(),
                    written: written(&draft, time),
                    reply: reply_to,
                    edited: None,
                    deleted: false,
                    reactions: Vec::new(),
                    name: draft.name,
                    text: draft.text,
                    time,
                    by_mod: draft.by_mod,
                    cid: draft.cid,
                    files: draft.files,
                    device: draft.device,
                };
                Some(Assigned {
                    record: Record::Message(message),
                    sender: Some(sender),
                    answer: Answer::Post(reply),
                })
            }
            Job::Delete { target, reply } => {
                let text = target.to_string();
                if deletes(batch, &text) || !self.history.has_message(target) {
                    let _ = reply.try_send(Err(ModerationRefused::NotFound));
                    return None;
                }
                let deletion = Deletion {
                    id: self.ids.take().to_string(),
                    delete: text,
                    own: false,
                };
                Some(Assigned {
                    record: Record::Deletion(deletion),
                    sender: None,
                    answer: Answer::Delete(reply),
                })
            }
            Job::Act {
                target,
                device,
                act,
                reply,
            } => {
                let text = target.to_string();
                let now = self.clock.time(clock::now_millis());
                let checked = match self.history.message(target) {
                    _ if deletes(batch, &text) => Err(Refused::NotFound),
                    None => Err(Refused::NotFound),
                    Some(message) => changes::check(message, &device, &act, now)
                        .map(|changes| (changes, message.clone())),
                };
                let message = match checked {
                    Ok((true, _)) => None,
                    // As it already is: nothing to store or send.
                    Ok((false, message)) => Some(message),
                    Err(why) => {
                        let _ = reply.try_send(Err(ActRefused::Refused(why)));
                        return None;
                    }
                };
                if let Some(message) = message {
                    let files = Vec::new();
                    let _ = reply.try_send(Ok(Done {
                        message,
                        files,
                        event: None,
                    }));
                    return None;
                }
                let id = self.ids.take().to_string();
                let record = match act {
                    Act::React { emoji, on, name } => Record::Reaction(Reaction {
                        id,
                        react: text,
                        emoji,
                        device,
                        name,
                        on,
                    }),
                    Act::Edit { text: new } => Record::Edit(Edit {
                        id,
                        edit: text,
                        text: new,
                        time: now,
                    }),
                    Act::Delete => Record::Deletion(Deletion {
                        id,
                        delete: text,
                        own: true,
                    }),
                };
                Some(Assigned {
                    record,
                    sender: None,
                    answer: Answer::Act(reply),
                })
            }
        }
    }

    /// What a reply to `to` quotes of it: the message as it stands, or that it is
    /// gone (deleted, or being deleted in `batch`) or not kept.
    fn quote(&self, to: Id, batch: &[Assigned]) -> Quote {
        let text = to.to_string();
        match self.history.message(to) {
            Some(m) if !m.deleted && !deletes(batch, &text) => changes::quote(m),
            found => Quote {
                id: text,
                name: String::new(),
                text: String::new(),
                photo: None,
                gone: found.is_some(),
                missing: found.is_none(),
            },
        }
    }

    /// Puts a stored record in the ring, answers it and sends it to everyone.
    fn apply(&mut self, assigned: Assigned) {
        let Assigned {
            record,
            sender,
            answer,
        } = assigned;
        let Ok(id) = record.id().parse::<Id>() else {
            return;
        };
        let (frame, gone) = match record {
            Record::Message(message) => {
                let kept = Kept::message(message, sender);
                let Kept::Message { frame, message, .. } = &kept else {
                    return;
                };
                let (frame, message) = (frame.clone(), Message::clone(message));
                let gone = self.history.push(id, kept);
                // Answer first: the poster's task is then queued ahead of the
                // thousands of stream writers the broadcast wakes.
                if let Answer::Post(reply) = answer {
                    let _ = reply.try_send(Ok(message));
                }
                (frame, gone)
            }
            change => {
                let Some(c) = self.history.change(id, &change) else {
                    // Changed nothing (two of a kind in one write): answered as the
                    // message now stands, or as gone; nothing is sent.
                    answer.unchanged(self.current(&change));
                    return;
                };
                match answer {
                    Answer::Delete(reply) => {
                        let _ = reply.try_send(Ok(c.files.clone()));
                    }
                    Answer::Act(reply) => {
                        let done = match &c.message {
                            Some(message) => Ok(Done {
                                message: message.clone(),
                                files: c.files.clone(),
                                event: Some(id.to_string()),
                            }),
                            None => Err(ActRefused::Refused(Refused::NotFound)),
                        };
                        let _ = reply.try_send(done);
                    }
                    Answer::Post(_) => {}
                }
                (c.frame, c.gone)
            }
        };
        for kept in gone {
            self.release_files(kept);
        }
        self.broadcast(&frame);
    }

    /// The message a change acts on, as it now stands, if it is there and not
    /// deleted.
    fn current(&self, change: &Record) -> Option<Message> {
        let target = change.target()?.parse().ok()?;
        self.history.message(target).filter(|m| !m.deleted).cloned()
    }

    /// Hands the files of a message that left history to be removed.
    fn release_files(&self, gone: Kept) {
        if let (Kept::Message { message, .. }, Some(released)) = (gone, &self.released) {
            if !message.files.is_empty() {
                let ids = message.files.into_iter().map(|f| f.id).collect();
                // Unbounded: never waits. Fails only when the server is stopping.
                let _ = released.try_send(ids);
            }
        }
    }

    /// A write to the history file returned. Written: every record in it is
    /// answered and sent, in order. Not written: none is sent, each is told, and the
    /// ids are given out again (no one has seen them).
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
                if let Some(first) = batch.first().and_then(|a| a.record.id().parse().ok()) {
                    self.ids.give_back(first);
                }
                for assigned in batch {
                    assigned.answer.not_stored();
                }
            }
        }
        self.release_waiting();
    }

    /// Whether this broadcast is written by the registry itself, to every stream
    /// with nothing queued (see [`crate::outbox::Feed::push`]), or left to the
    /// streams' tasks.
    ///
    /// Written here, an event costs each stream one `send` and nothing more: no
    /// task to wake and poll. But the registry then writes to every socket alone,
    /// one event per system call, while nothing else runs; under a flood of posts
    /// that is far slower than waking the tasks, which fall behind, find several
    /// frames queued and send them in one `writev`. So the registry writes only
    /// while events are sparse: every stream has written all it was given, and no
    /// other command is waiting (posts that arrived during a broadcast wait here).
    fn writes_directly(&self) -> bool {
        self.subscribers.caught_up() && self.queue.is_empty() && self.commands_waiting == 0
    }

    fn broadcast(&mut self, frame: &Frame) {
        let direct = self.writes_directly();
        if self.subscribers.broadcast(frame, direct) {
            self.presence.changed(Instant::now());
        }
    }
}

/// Whether `batch` deletes the message `target`.
fn deletes(batch: &[Assigned], target: &str) -> bool {
    batch.iter().any(|a| match &a.record {
        Record::Deletion(d) => d.delete == target,
        _ => false,
    })
}

/// When a message sent at server time `time` was written, if it waited in its page's
/// outbox longer than [`LATE`]: the phone's clock gives only the delay (typed, then
/// sent), which holds whatever that clock reads.
fn written(draft: &Draft, time: u64) -> Option<u64> {
    let waited = draft.sent?.checked_sub(draft.written?)?;
    let waited = waited.min(MAX_WAITED.as_millis() as u64);
    (waited > LATE.as_millis() as u64).then(|| time.saturating_sub(waited))
}

#[cfg(test)]
mod tests;
