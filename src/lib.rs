//! lanchat: a chat server for the phones on a LAN, in one static binary.
//! Server-Sent Events carry messages to the browsers; plain HTTP POSTs carry them in.
//!
//! # Where things live
//!
//! | module | owns |
//! | --- | --- |
//! | `config` | `Config`, its defaults, and the flags and environment that fill it |
//! | `server` | the accept loop, the connection caps, shutdown |
//! | `sched` | which task a thread runs next: the chat's before files moving |
//! | `http` | one connection: heads in and vetted, answers out, the `/events` writer |
//! | `routes` | the table of routes, each with its access; handlers by concern |
//! | `error` | every way a request fails, with its code; the one place errors become answers |
//! | `registry` | the actor that orders messages: history, subscribers, presence, ids, mutes |
//! | `outbox` | one stream's queue of frames, from the registry to its socket |
//! | `sse` | the SSE wire format and chunk framing |
//! | `message` | the message model, form decoding, validation, JSON |
//! | `store` | history on disk for `--data-dir`: append, load, compact |
//! | `multipart`, `upload` | a post with files: parts read one by one, files streamed to the store |
//! | `media` | the files kept, their limits, what an image's bytes say |
//! | `keys` | the access and moderator keys: checks, wrong keys slowed, cookie tokens, the server's secret |
//! | `client` | who a client is for the per-client limits: an IPv4 address, an IPv6 /64 |
//! | `clock` | the time, and message times when this machine's clock is behind the phones' |
//! | `portal` | hotspot mode: other sites' requests, captive-portal probes, who was let in |
//! | `assets` | the files of `web/`, embedded, with ETags and gzip |
//! | `deadline`, `io` | a deadline waited for again and again on one timer; the socket type and I/O deadlines |
//! | `net`, `log` | the LAN addresses the banner shows; log lines for `journalctl` |
//!
//! Modules are private unless a test or a fuzz target needs them.
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

mod assets;
mod client;
mod clock;
pub mod config;
mod deadline;
mod error;
mod http;
mod io;
mod keys;
pub mod log;
mod media;
pub mod message;
pub mod multipart;
pub mod net;
mod outbox;
mod portal;
mod registry;
mod routes;
mod sched;
mod search;
mod server;
pub mod sse;
pub mod store;
mod upload;

use std::future::Future;
use std::sync::Arc;

pub use config::Config;
pub use keys::auto_mod_key;
pub use server::raise_open_file_limit;

/// Serves `listener` with `config` until `shutdown` completes, on
/// `config.threads` threads (this one included). Returns after every stream has been
/// ended (or given up on after a grace of 1.5 s).
pub fn run(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
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
