//! lanchat: a chat server for the phones on a LAN, in one static binary.
//! Server-Sent Events carry messages to the browsers; plain HTTP POSTs carry them in.
//!
//! # Where things live
//!
//! | module | owns |
//! | --- | --- |
//! | [`client`] | who a client is for the per-client limits: an IPv4 address, an IPv6 /64 |
//! | [`config`] | `Config`, its defaults, and the flags and environment that fill it |
//! | [`server`] | the accept loop, the connection cap, shutdown |
//! | [`sched`] | which task a thread runs next: the chat's before files moving |
//! | [`conn`] | one connection's keep-alive loop: heads in, answers out (a streamed or chunked one through async-h1's `Encoder`) |
//! | [`deadline`] | a deadline waited for again and again, on one reactor timer |
//! | [`stream`] | the writer of an `/events` stream, from its head until it ends |
//! | [`inbound`] | a connection's reading side: request heads vetted, bodies framed |
//! | [`routes`] | method + path to handler |
//! | [`mod@error`] | every way a request fails; the one place errors become statuses |
//! | [`keys`] | the access and moderator keys: checks, wrong keys slowed, cookie tokens, the server's secret |
//! | [`limit`] | the post rate per client address, a bucket each |
//! | [`portal`] | hotspot mode: other sites' requests, captive-portal probes |
//! | [`multipart`], [`upload`] | a post with files: parts read one by one, files streamed to the store |
//! | [`media`] | the files kept, the quota, what an image's bytes say |
//! | [`download`] | a file (or one of the page's) written to a connection: head, then the bytes by `sendfile`; the head of every answer from memory |
//! | [`clock`] | message times when this machine's clock is behind the phones' |
//! | [`registry`] | the actor: sole owner of subscribers, history, ids, presence, heartbeat, per-client state |
//! | [`outbox`] | one stream's queue of frames, from the registry to its socket |
//! | [`sse`] | the SSE wire format and chunk framing |
//! | [`message`] | the message model, form decoding, validation, JSON |
//! | [`store`] | history on disk for `--data-dir`: append, load, compact |
//! | [`assets`] | the files of `web/`, embedded, with ETags and gzip |
//! | [`net`] | the LAN addresses the start-up banner shows |
//! | [`log`] | log lines for `journalctl` |
//!
//! # Data flow (one way)
//!
//! ```text
//! phone --POST /message--> conn + inbound --> routes --> message::Draft --Publish--> registry
//! phone --GET /events----> conn + inbound --> routes --Join(last id)--------------> registry
//!                            <-- Subscription (replay + a queue of Frames) ----------'
//! registry --lines of a batch--> store (with --data-dir: written and flushed on a
//!            blocking thread) --done--> registry: answer the posts, then broadcast
//! registry --one encoded Frame (Arc<[u8]>), push--> every subscriber's outbox
//! outbox --> conn's stream writer --> socket (all queued frames in one writev)
//! stream ends --> Subscription dropped --Leave--> registry
//! ```
//!
//! Three parties write to a stream's socket, each at its own time (see
//! [`outbox`]): the connection until it attaches the socket to the stream's queue,
//! the registry while that queue is drained and events are sparse, and the stream's
//! writer under the queue's lock.
//!
//! Queues form an acyclic graph: connections hold senders to the registry, the
//! registry holds the feeding end of each stream's outbox; nothing sends back up.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

pub mod assets;
pub mod client;
pub mod clock;
pub mod config;
pub mod conn;
pub mod deadline;
pub mod download;
pub mod error;
pub mod inbound;
pub mod keys;
pub mod limit;
pub mod log;
pub mod media;
pub mod message;
pub mod multipart;
pub mod net;
pub mod outbox;
pub mod portal;
pub mod registry;
pub mod routes;
pub mod sched;
pub mod server;
pub mod sse;
pub mod store;
pub mod stream;
pub mod upload;

use std::future::Future;
use std::io;
use std::sync::Arc;

pub use config::Config;

/// Serves `listener` with `config` until `shutdown` completes, on
/// `config.threads` threads (this one included). Returns after every stream has been
/// ended (or given up on after [`server::SHUTDOWN_GRACE`]).
pub fn run(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = smol::net::TcpListener::try_from(listener)?;
    // Every thread runs the same executors; see `sched` for the order.
    let executors = Arc::new(sched::Executors::default());
    let threads = config.threads.max(1);
    // Closed when the server is done, which releases the helper threads.
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    std::thread::scope(|scope| {
        for i in 1..threads {
            let executors = executors.clone();
            let done = done_rx.clone();
            std::thread::Builder::new()
                .name(format!("lanchat-{i}"))
                .spawn_scoped(scope, move || {
                    smol::block_on(executors.run(async move {
                        let _ = done.recv().await;
                    }))
                })?;
        }
        let serving = server::serve(executors.clone(), listener, config, shutdown);
        let result = smol::block_on(executors.run(serving));
        drop(done_tx);
        result
    })
}
