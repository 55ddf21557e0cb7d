//! One connection: its keep-alive loop, built on our own head reader and async-h1's
//! `Encoder` rather than `async_h1::accept`, until it ends or becomes an `/events`
//! stream (then [`crate::stream`] writes it).
//!
//! Why not `accept`: it closes without a response on any head it cannot parse and on
//! a handler error, holds a slow head for a fixed 60 s, and keeps an 8 KiB copy
//! buffer for the whole life of a streamed response. Here:
//! - the connection waits for the first byte of a request for `idle_timeout`, then
//!   for the whole head for `head_timeout`; heads are read and vetted by
//!   [`crate::inbound`] (why not async-h1's `decode`: see there), and one that
//!   cannot be served gets its status (`400`, `431`, `501`, `505`) and a close;
//! - requests are answered in the order they came, also when a client sends the
//!   next before the answer to the last (pipelining); `Expect: 100-continue` is
//!   answered on this path, in order;
//! - an `/events` stream moves to a task of its own on the writers' executor, and
//!   this task, with all it needed for requests, ends;
//! - an upload, and a large file going out, run on the bulk executor, behind the
//!   chat's tasks (see [`crate::sched`]);
//! - a panic while serving a connection ends that connection only.

use std::io;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use async_channel::Receiver;
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};
use http_types::headers::{HeaderName, Headers, CONNECTION, CONTENT_TYPE};
use http_types::{Method, Response};

use super::events;
use super::head::{HEAD_ROOM, ONE_WRITE};
use super::inbound::{Failed, Inbound, RequestHead};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::io::with_deadline;
use crate::io::Socket;
use crate::registry::{Handle, Subscription};
use crate::routes::{self, Peer, Reply};
use crate::sched::Executors;
use crate::sse::Frame;
use crate::Config;

/// A request body left unread by its handler is read and thrown away up to this
/// size, so the connection can be reused; past it, the connection is closed.
const MAX_DISCARD: u64 = 64 * 1024;

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// The way to the registry.
    pub registry: Handle,
    /// Never sent on; closed at shutdown, which wakes every waiting `recv`.
    pub stop: Receiver<()>,
    /// Where tasks run: streams and files apart from requests (see [`crate::sched`]).
    pub executors: Arc<Executors>,
    /// The first chunk of every stream: the `retry:` delay and a comment.
    pub opening: Frame,
    /// The files people shared.
    pub media: crate::media::Media,
    /// The access and moderator keys' checks.
    pub keys: crate::keys::Keys,
    /// Hotspot clients let online (`--portal`).
    pub let_in: crate::portal::LetIn,
}

/// Serves one connection until the client closes, a deadline passes, or shutdown.
/// `slot` is held for as long as the connection lives, by whichever task serves it
/// last. A panic while serving it ends this connection only, with a log line that
/// names the request.
pub async fn serve(stream: Socket, client: IpAddr, shared: Arc<Shared>, slot: impl Send + 'static) {
    let mut line = String::new();
    let served = AssertUnwindSafe(keep_alive(stream, client, shared, slot, &mut line))
        .catch_unwind()
        .await;
    if let Err(panic) = served {
        crate::error!(
            "a bug ended one connection while it served `{}`: {}; the server goes on",
            line.escape_debug(),
            crate::log::panic_text(&*panic)
        );
    }
}

/// Runs the task `start` makes (a stream writer); a panic ends it alone, with a log
/// line. It takes a maker, not the task: a task passed in would be held twice, as
/// the argument and as what is awaited, and every open stream would pay for both.
pub async fn contain<F: std::future::Future<Output = ()>>(start: impl FnOnce() -> F, what: &str) {
    if let Err(panic) = AssertUnwindSafe(start()).catch_unwind().await {
        crate::error!(
            "a bug ended {what}: {}; the server goes on",
            crate::log::panic_text(&*panic)
        );
    }
}

async fn keep_alive(
    stream: Socket,
    client: IpAddr,
    shared: Arc<Shared>,
    slot: impl Send + 'static,
    line: &mut String,
) {
    // Small frames must not wait for Nagle's algorithm.
    let _ = stream.get_ref().set_nodelay(true);
    let inbound = Inbound::new(stream.clone());
    let stop = shared.stop.clone();
    let mut waits = Waits::new(&stop);
    let local = match shared.config.portal {
        true => stream.get_ref().local_addr().ok(),
        false => None,
    };
    // What this future holds while it waits for a request is what every idle
    // connection costs: the answering, with its request, body and response, is
    // boxed and lives only while it runs.
    loop {
        let head = match next_head(&inbound, &shared, &mut waits).await {
            Some(Ok(head)) => head,
            Some(Err(e)) => {
                let res = e.into_response(false);
                let _ = Box::pin(write_response(&stream, res, Method::Get, true, &shared)).await;
                return;
            }
            None => return,
        };
        line.clone_from(&head.line);
        let peer = Peer { client, local };
        let after = if is_upload(&head) {
            // Files coming in are read behind the chat's tasks.
            let (stream, inbound, sharing) = (stream.clone(), inbound.clone(), shared.clone());
            let answering = async move { answer(head, peer, &stream, &inbound, &sharing).await };
            shared.executors.bulk.spawn(answering).await
        } else {
            Box::pin(answer(head, peer, &stream, &inbound, &shared)).await
        };
        match after {
            After::Next => {}
            After::Close => return,
            After::Events(sub) => {
                // The stream moves to the writers' executor, and this task, with all
                // it needed for requests, ends.
                let executors = shared.executors.clone();
                let task = async move {
                    let _slot = slot;
                    let writing =
                        || events::stream_events(stream, sub, &shared.opening, &shared.config);
                    contain(writing, "an event stream").await;
                };
                executors.writers.spawn(Box::pin(task)).detach();
                return;
            }
            After::ComeBackLater => {
                return Box::pin(events::come_back_later(stream, &shared.config)).await
            }
        }
    }
}

/// What the connection does after an answer.
enum After {
    /// Read the next request.
    Next,
    /// Close.
    Close,
    /// Write this event stream until it or the client ends.
    Events(Subscription),
    /// Tell an event stream to come back later, and close.
    ComeBackLater,
}

/// Answers one request: the interim `100 Continue` when asked for, the handler, its
/// response, and what is left of the body.
async fn answer(
    head: Box<RequestHead>,
    peer: Peer,
    stream: &Socket,
    inbound: &Inbound,
    shared: &Shared,
) -> After {
    let req = head.request;
    let method = req.method();
    let client_closes = header_is(&req, CONNECTION, "close");
    if head.expects_continue {
        // In order: the previous answer is out, this one has not started.
        let mut writer = &**stream;
        let sent = with_deadline(writer.write_all(CONTINUE), shared.config.write_timeout);
        if sent.await.is_err() {
            return After::Close;
        }
    }
    let routed = routes::handle(req, peer, shared);
    let (written, closes) = match routed.await {
        Reply::Response(res) => {
            let res = *res;
            let closes = client_closes || header_is(&res, CONNECTION, "close");
            let written = write_response(stream, res, method, closes, shared).await;
            (written, closes)
        }
        Reply::File(download) => {
            let body = method != Method::Head;
            let timeout = shared.config.write_timeout;
            let written = if body && download.is_large() {
                // A photo going out is sent behind the chat's tasks.
                let stream = stream.clone();
                let sending = async move {
                    super::download::write(&stream, *download, true, client_closes, timeout).await
                };
                shared.executors.bulk.spawn(sending).await
            } else {
                super::download::write(stream, *download, body, client_closes, timeout).await
            };
            (written, client_closes)
        }
        Reply::Events(sub) => return After::Events(sub),
        Reply::ComeBackLater => return After::ComeBackLater,
    };
    if written.is_err() || closes || !discard_body(inbound, shared).await {
        return After::Close;
    }
    After::Next
}

/// Whether a request brings files (a `multipart/form-data` body).
fn is_upload(head: &RequestHead) -> bool {
    head.request.method() == Method::Post
        && head
            .request
            .header(CONTENT_TYPE)
            .is_some_and(|v| crate::multipart::is_form_data(v.last().as_str()))
}

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Answers one request on a connection over the cap, then closes it: `503` for a
/// request, a `retry:` for a stream.
pub async fn refuse(stream: Socket, shared: Arc<Shared>) {
    let inbound = Inbound::new(stream.clone());
    let mut waits = Waits::new(&shared.stop);
    if let Some(Ok(head)) = next_head(&inbound, &shared, &mut waits).await {
        if head.request.url().path() == "/events" {
            return Box::pin(events::come_back_later(stream, &shared.config)).await;
        }
        let res = Error::Unavailable.into_response(false);
        let method = head.request.method();
        drop(head);
        let _ = Box::pin(write_response(&stream, res, method, true, &shared)).await;
    }
}

/// The next request head: `None` when there is none to answer (the client closed or
/// went quiet, a deadline passed, shutdown); `Some(Err)` for a head to refuse.
async fn next_head(
    inbound: &Inbound,
    shared: &Shared,
    waits: &mut Waits<'_>,
) -> Option<Result<Box<RequestHead>, Error>> {
    // Idle: wait for a first byte, so a keep-alive connection may rest longer than a
    // head may take to arrive. A client that sent its next request already is not
    // idle.
    if !inbound.has_buffered() {
        let idle_until = Instant::now() + shared.config.idle_timeout;
        let first = inbound
            .arrival()
            .or(async {
                waits.deadline.until(idle_until).await;
                false
            })
            .or(async {
                let _ = (&mut waits.stop).await;
                false
            })
            .await;
        if !first {
            return None;
        }
    }
    let head_until = Instant::now() + shared.config.head_timeout;
    let deadline = async {
        waits.deadline.until(head_until).await;
        Ok(None)
    };
    match inbound.head().or(deadline).await {
        // Boxed: a request is a few hundred bytes that only the answer needs.
        Ok(Some(head)) => Some(Ok(Box::new(head))),
        Ok(None) | Err(Failed::Gone) => None,
        Err(Failed::Refused(e)) => Some(Err(e)),
    }
}

/// What a connection waits on between requests, kept from one request to the next:
/// made anew for each, the timer would be a registration with the reactor (and a
/// wake-up of its thread) per request, and the wait for shutdown an allocation.
struct Waits<'a> {
    deadline: Deadline,
    stop: Pin<Box<async_channel::Recv<'a, ()>>>,
}

impl<'a> Waits<'a> {
    fn new(stop: &'a Receiver<()>) -> Self {
        Waits {
            deadline: Deadline::default(),
            stop: Box::pin(stop.recv()),
        }
    }
}

async fn write_response(
    stream: &Socket,
    mut res: Response,
    method: Method,
    closes: bool,
    shared: &Shared,
) -> io::Result<()> {
    if closes {
        res.insert_header(CONNECTION, "close");
    }
    let mut writer = &**stream;
    let timeout = shared.config.write_timeout;
    match res.len() {
        // In memory and small (every answer but a file's): head and body in one
        // buffer, for one write; the head as a file's is written.
        Some(len) if len <= ONE_WRITE => {
            let mut bytes = super::head::response_head(&res, len as u64, false, len);
            if method != Method::Head {
                let start = bytes.len();
                bytes.resize(start + len, 0);
                res.take_body().read_exact(&mut bytes[start..]).await?;
            }
            with_deadline(writer.write_all(&bytes), timeout).await
        }
        // A file: sent as it is read, each piece within the write deadline, so a
        // large photo on a slow phone takes as long as it needs while it moves.
        Some(_) => {
            let mut encoder = async_h1::server::Encoder::new(res, method);
            let mut piece = vec![0; ONE_WRITE];
            loop {
                let n = encoder.read(&mut piece).await?;
                if n == 0 {
                    return Ok(());
                }
                with_deadline(writer.write_all(&piece[..n]), timeout).await?;
            }
        }
        // Length unknown: chunked, by async-h1's encoder.
        None => {
            let mut bytes = Vec::with_capacity(HEAD_ROOM);
            let mut encoder = async_h1::server::Encoder::new(res, method);
            encoder.read_to_end(&mut bytes).await?;
            with_deadline(writer.write_all(&bytes), timeout).await
        }
    }
}

/// Reads what the handler left of the body; `false` when the connection cannot be
/// reused (too much left, too slow, or broken).
async fn discard_body(inbound: &Inbound, shared: &Shared) -> bool {
    let drained = async { Ok(inbound.discard_body(MAX_DISCARD).await) };
    matches!(
        with_deadline(drained, shared.config.body_timeout).await,
        Ok(true)
    )
}

/// Whether a header of a request or a response has `value` (ASCII case ignored).
fn header_is(headers: impl AsRef<Headers>, name: HeaderName, value: &str) -> bool {
    headers
        .as_ref()
        .get(name)
        .is_some_and(|v| v.iter().any(|v| v.as_str().eq_ignore_ascii_case(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_contained_task_ends_that_task_only() {
        let after = smol::block_on(async {
            contain(|| async { panic!("boom") }, "a test task").await;
            "went on"
        });
        assert_eq!(after, "went on");
        let text = std::panic::catch_unwind(|| panic!("with {}", "text")).unwrap_err();
        assert_eq!(crate::log::panic_text(&*text), "with text");
    }
}
