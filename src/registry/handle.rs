//! How the rest of the server reaches the registry: the commands it takes, the
//! [`Handle`] that sends them and waits for the answer, a stream's [`Subscription`]
//! (whose drop says the stream left), and what each command can come to.

use std::time::Duration;

use async_channel::Sender;

use crate::client::ClientKey;
use crate::config::Rate;
use crate::message::{Draft, Id, Message, Record};
use crate::outbox::Outbox;
use crate::sse::Frame;
use crate::store::Store;

use super::{Act, Found, Refused};

/// A post asking to be admitted before its files are read.
#[derive(Debug)]
pub struct PostCheck {
    /// Who is posting.
    pub client: ClientKey,
    /// Posted by the moderator, whom nothing holds back.
    pub by_mod: bool,
    /// The poster's device tag, if its page sent its secret before the files.
    pub device: Option<String>,
    /// The post's `cid`, if it came before its files.
    pub cid: Option<String>,
}

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
        /// Who asks, and for which post.
        asked: PostCheck,
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
    /// A device reacts to a message, or edits or deletes its own.
    Act {
        /// The message.
        target: Id,
        /// The device tag asking.
        device: String,
        /// What it asks.
        act: Act,
        /// Who asks, for the post rate and a mute.
        client: ClientKey,
        /// Where the outcome goes.
        reply: Sender<Acted>,
    },
    /// The newest messages whose text holds every word, looking at no more than
    /// `scan` places before `before`.
    Search {
        /// The words, folded (see `crate::search`).
        words: Vec<String>,
        /// Only messages before this one; `None`: from the newest.
        before: Option<Id>,
        /// Places looked at, at most.
        scan: usize,
        /// Messages found, at most.
        limit: usize,
        /// Where the result goes.
        reply: Sender<Found>,
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

/// What a moderator's deletion or mute comes to. `Ok` holds the ids of the files
/// the deleted message carried, for the caller to remove (none for a mute).
pub type Moderated = Result<Vec<String>, ModerationRefused>;

/// Why a moderator's deletion or mute was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationRefused {
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

/// What a device's change comes to: the message as it now stands (with the ids of
/// the files a deletion took from it), or why it was not done.
pub type Acted = Result<Done, ActRefused>;

/// A change done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The message as it now stands.
    pub message: Message,
    /// The ids of its files to remove (it was deleted).
    pub files: Vec<String>,
    /// The change's own id in the sequence; `None` when it changed nothing.
    pub event: Option<String>,
}

/// Why a device's change was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActRefused {
    /// The registry has stopped (shutting down).
    Stopped,
    /// The history file could not be written.
    NotStored,
    /// Over the post rate; one more is allowed after this.
    Limited(Duration),
    /// Muted by the moderator; the mute ends after this.
    Muted(Duration),
    /// Not allowed, or not there.
    Refused(Refused),
}

impl From<NotPublished> for ActRefused {
    fn from(why: NotPublished) -> Self {
        match why {
            NotPublished::NotStored => ActRefused::NotStored,
            NotPublished::Limited(wait) => ActRefused::Limited(wait),
            NotPublished::Muted(wait) => ActRefused::Muted(wait),
        }
    }
}

/// Limits the registry works within; see `Config` for why each has its default.
#[derive(Debug)]
pub struct Options {
    /// Records kept for replay.
    pub history: usize,
    /// Messages a new client (no `Last-Event-ID`) is sent first.
    pub backlog: usize,
    /// Frames a subscriber may have queued before it is dropped.
    pub queue: usize,
    /// Interval between heartbeat comments.
    pub heartbeat: Duration,
    /// The epoch that prefixes every id, so ids from an earlier run never match.
    /// Ignored when `restored` has records: their epoch goes on.
    pub epoch: u64,
    /// Where each record is written before anyone is sent it, with `--data-dir`.
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
    pub(super) key: u64,
    /// Frames to write before anything from `frames`: the replay and the presence.
    pub replay: Vec<Frame>,
    /// Live frames, in order. Closed by the registry when this subscriber is dropped
    /// (too slow) or at shutdown: write what is queued, then end the response.
    pub frames: Outbox,
    pub(super) leave_tx: Sender<Command>,
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
    pub(super) tx: Sender<Command>,
}

impl Handle {
    /// Sends the command `make` builds around a reply channel, and waits for the
    /// reply; `None` when the registry has stopped.
    async fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = async_channel::bounded(1);
        self.tx.send(make(reply)).await.ok()?;
        rx.recv().await.ok()
    }

    /// Opens a stream. `None` when the registry has stopped (shutting down).
    pub async fn join(&self, last_event_id: Option<String>) -> Option<Subscription> {
        self.ask(|reply| Command::Join {
            last_event_id,
            reply,
        })
        .await
    }

    /// The newest `count` messages before `before`, oldest first; empty when the
    /// registry has stopped.
    pub async fn recent(&self, before: Option<Id>, count: usize) -> Vec<Message> {
        let asked = self.ask(|reply| Command::Recent {
            before,
            count,
            reply,
        });
        asked.await.unwrap_or_default()
    }

    /// Stores and sends a message; returns it with its id and time once it is
    /// stored (with `--data-dir`: on the device) and on its way to everyone.
    pub async fn publish(&self, draft: Draft, client: ClientKey) -> Result<Message, PublishError> {
        let asked = self.ask(|reply| Command::Publish {
            draft,
            client,
            reply,
        });
        match asked.await {
            Some(published) => published.map_err(PublishError::from),
            None => Err(PublishError::Stopped),
        }
    }

    /// Whether `client` may post now (`Ok(true)` when a post with `cid` is already
    /// stored), asked before a post's files are read so that a refused or repeated
    /// upload costs no disk.
    pub async fn admit(&self, asked: PostCheck) -> Result<bool, PublishError> {
        let asked = self.ask(|reply| Command::Admit { asked, reply });
        match asked.await {
            Some(admitted) => admitted.map_err(PublishError::from),
            None => Err(PublishError::Stopped),
        }
    }

    /// Deletes a message for everyone; returns once the deletion is stored and on
    /// its way.
    pub async fn delete(&self, target: Id) -> Moderated {
        let asked = self.ask(|reply| Command::Delete { target, reply });
        asked.await.unwrap_or(Err(ModerationRefused::Stopped))
    }

    /// A device's change to a message; returns once it is stored and on its way.
    pub async fn act(&self, target: Id, device: String, act: Act, client: ClientKey) -> Acted {
        let asked = self.ask(|reply| Command::Act {
            target,
            device,
            act,
            client,
            reply,
        });
        asked.await.unwrap_or(Err(ActRefused::Stopped))
    }

    /// One step of a search (see [`Command::Search`]); nothing found when the
    /// registry has stopped.
    pub async fn search(
        &self,
        words: Vec<String>,
        before: Option<Id>,
        scan: usize,
        limit: usize,
    ) -> Found {
        let asked = self.ask(|reply| Command::Search {
            words,
            before,
            scan,
            limit,
            reply,
        });
        asked.await.unwrap_or_default()
    }

    /// Mutes the sender of a message for `time` (zero: lifts the mute).
    pub async fn mute(&self, target: Id, time: Duration) -> Moderated {
        let asked = self.ask(|reply| Command::Mute {
            target,
            time,
            reply,
        });
        asked.await.unwrap_or(Err(ModerationRefused::Stopped))
    }

    /// Ends every stream and stops the registry task.
    pub fn shutdown(&self) {
        let _ = self.tx.try_send(Command::Shutdown);
    }
}
