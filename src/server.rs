//! The accept loop: a task per connection, the connection cap, and shutdown.
//!
//! Shutdown runs in the order that lets every layer finish what it holds: stop
//! accepting; close the stop channel, which ends idle connections; tell the registry
//! to stop, which closes every stream's queue so each stream ends its response; wait
//! (bounded) for the connections to finish; then for the registry.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_channel::Sender;

use futures_lite::FutureExt as _;
use smol::net::TcpListener;
use smol::{Executor, Timer};

use crate::client::ClientKey;
use crate::http::conn::{self, Shared};
use crate::io::Socket;
use crate::media::Media;
use crate::message::Record;
use crate::registry;
use crate::sched::Executors;
use crate::sse::{self, Frame};
use crate::store::Store;
use crate::Config;

/// How long shutdown waits for connections to finish writing before it gives up on
/// them: a stuck client must not hold the process past a service manager's patience.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(1_500);

/// How long to wait before accepting again after `accept` failed (out of file
/// descriptors, say): long enough for connections to close, short enough to notice.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Raises the soft limit on open files to the hard limit: each connection is a file
/// descriptor, and the usual soft limit (1,024) is far below the default cap of
/// 10,000. Returns the soft limit before and after (`None`: unlimited).
pub fn raise_open_file_limit() -> io::Result<(Option<u64>, Option<u64>)> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if before.is_some() && before < limit.maximum.or(Some(u64::MAX)) {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok((before, limit.current))
}

/// Counts an open connection, overall and for its client address, for as long as it
/// lives.
struct Slot {
    open: Arc<AtomicUsize>,
    client: ClientKey,
    per_client: Arc<Mutex<HashMap<ClientKey, usize>>>,
    /// Held, never used: the channel closes when the last slot is dropped, which is
    /// how shutdown knows every connection has finished.
    _alive: Sender<()>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

/// Accepts and serves connections until `shutdown` completes, then shuts down.
pub async fn serve(
    executors: Arc<Executors>,
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (store, restored) = open_history(&config)?;
    // Files are kept only while a message names them: at start, those of the
    // restored history.
    let named: HashSet<String> = restored
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) => Some(m.files.iter().map(|f| f.id.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    let media =
        Media::open(config.data_dir.clone(), config.media_limits(), &named).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot keep files in the data directory: {e}"),
            )
        })?;
    let (released_tx, released) = async_channel::unbounded();
    let (registry, registry_task) = registry::new(registry::Options {
        history: config.history,
        backlog: config.backlog,
        queue: config.queue,
        heartbeat: config.heartbeat,
        epoch: new_epoch(),
        store,
        post_rate: config.post_rate,
        restored,
        released: Some(released_tx),
    });
    let registry_task = executors.requests.spawn(stop_on_panic(registry_task));
    let (stop_tx, stop) = async_channel::bounded::<()>(1);
    let secret = crate::keys::Secret::load(config.data_dir.as_deref()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot keep the server's secret in the data directory: {e}"),
        )
    })?;
    let keys = crate::keys::Keys::new(config.key.as_deref(), config.mod_key.as_deref(), &secret);
    let shared = Arc::new(Shared {
        media,
        keys,
        let_in: crate::portal::LetIn::default(),
        opening: opening(&config),
        config,
        registry: registry.clone(),
        stop,
        executors: executors.clone(),
    });
    // The files of messages that left history go, off the chat's threads (a removal
    // may wait on an SD card). Ends when the registry drops its end.
    let removing = shared.clone();
    executors
        .bulk
        .spawn(async move {
            while let Ok(ids) = released.recv().await {
                let media = removing.clone();
                smol::unblock(move || media.media.remove(&ids)).await;
            }
        })
        .detach();
    let connections = Connections::default();

    accept(&executors.requests, &listener, &shared, &connections)
        .or(shutdown)
        .await;

    // In the order that lets each layer finish what it holds (see the module docs).
    drop(listener);
    drop(stop_tx);
    registry.shutdown();
    connections.finish(SHUTDOWN_GRACE).await;
    registry_task.await;
    Ok(())
}

/// The history to start with and the store to keep it in, with `--data-dir`.
fn open_history(config: &Config) -> io::Result<(Option<Store>, Vec<Record>)> {
    let Some(dir) = &config.data_dir else {
        return Ok((None, Vec::new()));
    };
    let (store, restored) = Store::open(dir, config.history).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot use the data directory {}: {e}", dir.display()),
        )
    })?;
    crate::info!(
        "history: {} messages restored from {}",
        restored
            .iter()
            .filter(|r| matches!(r, Record::Message(_)))
            .count(),
        dir.join(crate::store::FILE_NAME).display()
    );
    Ok((Some(store), restored))
}

/// The registry alone holds every subscriber, the history and the next id: after a
/// panic there is nothing consistent to go on with. Stop, so that a service manager
/// starts a fresh process (history on disk is kept).
async fn stop_on_panic(registry_task: impl Future<Output = ()>) {
    if let Err(panic) = AssertUnwindSafe(registry_task).catch_unwind().await {
        crate::error!(
            "a bug stopped the registry: {}; the server stops",
            crate::log::panic_text(&*panic)
        );
        std::process::abort();
    }
}

/// The first chunk of every stream: the `retry:` delay, a comment, and a ping, so
/// that a page knows the heartbeat interval from the first byte.
fn opening(config: &Config) -> Frame {
    let mut opening = sse::retry(config.retry.as_millis() as u64);
    opening.extend_from_slice(&sse::comment("lanchat"));
    opening.extend_from_slice(&registry::ping(config.heartbeat));
    sse::chunk(&opening)
}

/// The open connections: how many, how many per client address, and a way to wait
/// until none is left.
struct Connections {
    open: Arc<AtomicUsize>,
    /// Taken by the accept loop and by each connection as it ends, never held across
    /// an await: a count per address, not the subscriber list (which only the
    /// registry has).
    per_client: Arc<Mutex<HashMap<ClientKey, usize>>>,
    /// Cloned into every [`Slot`]; the receiver learns that all are gone when the
    /// channel closes.
    alive_tx: Sender<()>,
    alive_rx: async_channel::Receiver<()>,
    /// Connections over a cap, being answered `503` and closed.
    refusing: Arc<AtomicUsize>,
}

impl Default for Connections {
    fn default() -> Self {
        let (alive_tx, alive_rx) = async_channel::bounded(1);
        Connections {
            open: Arc::default(),
            per_client: Arc::default(),
            alive_tx,
            alive_rx,
            refusing: Arc::default(),
        }
    }
}

/// What a new connection is given.
enum Admission {
    /// Served, holding a slot.
    Served(Slot),
    /// Over a cap: answered `503` (a stream, a long `retry:`) if its head comes
    /// within [`REFUSE_WAIT`], else closed.
    Refused(Refusing),
}

/// Counts a connection being refused, for as long as that takes.
struct Refusing {
    refusing: Arc<AtomicUsize>,
    _alive: Sender<()>,
}

impl Drop for Refusing {
    fn drop(&mut self) {
        self.refusing.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a connection over a cap may take to send its head before it is closed
/// without an answer: a browser sends its head at once; a socket held open to take
/// a slot sends nothing.
const REFUSE_WAIT: Duration = Duration::from_secs(1);

/// Connections being refused at once, at most: past it, one over a cap is closed at
/// once, without reading its head.
const MAX_REFUSING: usize = 256;

impl Connections {
    /// Counts a new connection from `client` as served, unless it is over `cap`
    /// overall or over `per_client` for its address: then it is counted only among
    /// those being refused, and holds nobody else's slot; `None` when even those
    /// are [`MAX_REFUSING`] already (close it at once).
    fn open(&self, client: ClientKey, cap: usize, per_client: usize) -> Option<Admission> {
        let mut counts = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mine = counts.get(&client).copied().unwrap_or(0);
        if mine >= per_client || self.open.load(Ordering::Relaxed) >= cap {
            drop(counts);
            if self.refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
                self.refusing.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            return Some(Admission::Refused(Refusing {
                refusing: self.refusing.clone(),
                _alive: self.alive_tx.clone(),
            }));
        }
        counts.insert(client, mine + 1);
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(Admission::Served(Slot {
            open: self.open.clone(),
            client,
            per_client: self.per_client.clone(),
            _alive: self.alive_tx.clone(),
        }))
    }

    /// Waits until every connection has finished, at most `grace`.
    async fn finish(self, grace: Duration) {
        let Connections {
            open,
            alive_tx,
            alive_rx,
            ..
        } = self;
        drop(alive_tx);
        let finished = async {
            let _ = alive_rx.recv().await;
            true
        };
        let gave_up = async {
            Timer::after(grace).await;
            false
        };
        if !finished.or(gave_up).await {
            crate::warn!(
                "{} connections still open after {grace:?}; closing them",
                open.load(Ordering::Relaxed),
            );
        }
    }
}

/// Accepts connections, a task each, until the listener fails for good (never: an
/// error such as running out of file descriptors pauses and goes on).
async fn accept(
    ex: &Executor<'static>,
    listener: &TcpListener,
    shared: &Arc<Shared>,
    connections: &Connections,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                crate::warn!("accept failed: {e}; pausing");
                Timer::after(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let client = peer.ip();
        let config = &shared.config;
        let admitted =
            connections.open(client.into(), config.max_connections, config.max_per_client);
        let Some(admission) = admitted else {
            // Too many being refused already: closed without a word.
            continue;
        };
        let shared = shared.clone();
        let socket: Socket = stream.into();
        let task = async move {
            match admission {
                Admission::Refused(refusing) => {
                    let _refusing = refusing;
                    // Boxed: rare, and it must not make every connection's task larger.
                    let refuse = || {
                        Box::pin(async {
                            conn::refuse(socket, shared)
                                .or(async {
                                    Timer::after(REFUSE_WAIT).await;
                                })
                                .await
                        })
                    };
                    conn::contain(refuse, "a refused connection").await;
                }
                Admission::Served(slot) => conn::serve(socket, client, shared, slot).await,
            }
        };
        // Boxed so that each task's allocation is only as large as the connection
        // future it runs.
        ex.spawn(Box::pin(task)).detach();
    }
}

/// The epoch of this run's ids: the time in milliseconds, times 1,000, plus a random
/// part. The time alone is not enough: a Raspberry Pi has no clock of its own and
/// may start at the same time of day after every power cut until the network sets
/// it, and two runs can start within one millisecond. A browser holding an id of an
/// earlier run must never have it taken for one of this run's.
fn new_epoch() -> u64 {
    let mut random = [0u8; 2];
    // No randomness (never seen on Linux): the time alone still differs per run.
    let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
    crate::clock::now_millis()
        .saturating_mul(1000)
        .saturating_add(u64::from(u16::from_le_bytes(random)) % 1000)
}
