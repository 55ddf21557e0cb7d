//! One connection: its keep-alive loop, built on our own head reader and async-h1's
//! `Encoder` rather than `async_h1::accept`, and the writer of an `/events` stream.
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
//! - an `/events` stream is written by this module straight from the subscriber
//!   queue: every frame queued at that moment goes out in one vectored write, and a
//!   read on the socket notices at once when the client goes away. While events are
//!   sparse the registry writes them to the socket itself (see `outbox`); this
//!   task then only watches for the end of the connection.

use std::future::Future as _;
use std::io::{self, Read as _};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_io::{Async, Readable, Timer};
use futures_lite::future::poll_fn;
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};
use http_types::{Method, Response};

use crate::error::Error;
use crate::inbound::{Failed, Head, Inbound};
use crate::outbox;
use crate::registry::Subscription;
use crate::routes::{self, Reply};
use crate::server::Shared;
use crate::sse::{self, Frame};

/// A request body left unread by its handler is read and thrown away up to this
/// size, so the connection can be reused; past it, the connection is closed.
const MAX_DISCARD: u64 = 64 * 1024;

/// The head of every `/events` response. No `Content-Length`: chunked, open-ended.
const EVENTS_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
transfer-encoding: chunked\r\n\r\n";

/// Serves one connection until the client closes, a deadline passes, or shutdown.
/// `slot` is held for as long as the connection lives, by whichever task serves it
/// last. A panic while serving it ends this connection only, with a log line that
/// names the request.
pub async fn serve(stream: Socket, shared: Arc<Shared>, slot: impl Send + 'static) {
    let mut line = String::new();
    let served = AssertUnwindSafe(keep_alive(stream, shared, slot, &mut line))
        .catch_unwind()
        .await;
    if let Err(panic) = served {
        crate::error!(
            "a bug ended one connection while it served `{}`: {}; the server goes on",
            line.escape_debug(),
            panic_text(&*panic)
        );
    }
}

/// Runs `task` (a stream writer); a panic ends it alone, with a log line.
pub async fn contain(task: impl std::future::Future<Output = ()>, what: &str) {
    if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
        crate::error!(
            "a bug ended {what}: {}; the server goes on",
            panic_text(&*panic)
        );
    }
}

/// The message a panic was raised with.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

/// A connection's socket as the reactor knows it: one pointer, where smol's
/// `TcpStream` carries 120 bytes of readiness state into every future that holds it.
pub type Socket = Arc<Async<std::net::TcpStream>>;

async fn keep_alive(
    stream: Socket,
    shared: Arc<Shared>,
    slot: impl Send + 'static,
    line: &mut String,
) {
    // Small frames must not wait for Nagle's algorithm.
    let _ = stream.get_ref().set_nodelay(true);
    let inbound = Inbound::new(stream.clone());
    // What this future holds while it waits for a request is what every idle
    // connection costs: the answering, with its request, body and response, is
    // boxed and lives only while it runs.
    loop {
        let head = match next_head(&inbound, &stream, &shared).await {
            Some(Ok(head)) => head,
            Some(Err(e)) => {
                let res = e.into_response();
                let _ = Box::pin(write_response(&stream, res, Method::Get, true, &shared)).await;
                return;
            }
            None => return,
        };
        line.clone_from(&head.line);
        match Box::pin(answer(head, &stream, &inbound, &shared)).await {
            After::Next => {}
            After::Close => return,
            After::Events(sub) => {
                // The stream moves to the writers' executor, and this task, with all
                // it needed for requests, ends.
                let writers = shared.writers.clone();
                let task = async move {
                    let _slot = slot;
                    contain(stream_events(stream, sub, &shared), "an event stream").await;
                };
                writers.spawn(Box::pin(task)).detach();
                return;
            }
            After::ComeBackLater => return Box::pin(come_back_later(stream, &shared)).await,
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
async fn answer(head: Box<Head>, stream: &Socket, inbound: &Inbound, shared: &Shared) -> After {
    let req = head.request;
    let method = req.method();
    let client_closes = header_is(&req, "connection", "close");
    if head.expects_continue {
        // In order: the previous answer is out, this one has not started.
        let mut writer = &**stream;
        let sent = with_deadline(writer.write_all(CONTINUE), shared.config.write_timeout);
        if sent.await.is_err() {
            return After::Close;
        }
    }
    match routes::handle(req, shared).await {
        Reply::Response(res) => {
            let res = *res;
            let closes = client_closes || res_header_is(&res, "connection", "close");
            if write_response(stream, res, method, closes, shared)
                .await
                .is_err()
                || closes
                || !discard_body(inbound, shared).await
            {
                return After::Close;
            }
            After::Next
        }
        Reply::Events(sub) => After::Events(sub),
        Reply::ComeBackLater => After::ComeBackLater,
    }
}

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Answers one request on a connection over the cap, then closes it: `503` for a
/// request, a `retry:` for a stream.
pub async fn refuse(stream: Socket, shared: Arc<Shared>) {
    let inbound = Inbound::new(stream.clone());
    if let Some(Ok(head)) = next_head(&inbound, &stream, &shared).await {
        if head.request.url().path() == "/events" {
            return Box::pin(come_back_later(stream, &shared)).await;
        }
        let res = Error::Unavailable.into_response();
        let method = head.request.method();
        drop(head);
        let _ = Box::pin(write_response(&stream, res, method, true, &shared)).await;
    }
}

/// The next request head: `None` when there is none to answer (the client closed or
/// went quiet, a deadline passed, shutdown); `Some(Err)` for a head to refuse.
async fn next_head(
    inbound: &Inbound,
    stream: &Socket,
    shared: &Shared,
) -> Option<Result<Box<Head>, Error>> {
    // Idle: wait for a first byte, so a keep-alive connection may rest longer than a
    // head may take to arrive. A client that sent its next request already is not
    // idle.
    if !inbound.has_buffered() {
        let mut probe = [0u8; 1];
        let first = async { matches!(stream.peek(&mut probe).await, Ok(n) if n > 0) }
            .or(async {
                Timer::after(shared.config.idle_timeout).await;
                false
            })
            .or(async {
                let _ = shared.stop.recv().await;
                false
            })
            .await;
        if !first {
            return None;
        }
    }
    let deadline = async {
        Timer::after(shared.config.head_timeout).await;
        Ok(None)
    };
    match inbound.head().or(deadline).await {
        // Boxed: a request is a few hundred bytes that only the answer needs.
        Ok(Some(head)) => Some(Ok(Box::new(head))),
        Ok(None) | Err(Failed::Gone) => None,
        Err(Failed::Refused(e)) => Some(Err(e)),
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
        res.insert_header("connection", "close");
    }
    // Bodies here are small and in memory: encode all of it, then one write.
    let mut bytes = Vec::new();
    async_h1::server::Encoder::new(res, method)
        .read_to_end(&mut bytes)
        .await?;
    let mut writer = &**stream;
    with_deadline(writer.write_all(&bytes), shared.config.write_timeout).await
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

async fn come_back_later(socket: Socket, shared: &Shared) {
    // Ten times the usual delay: the server is full or stopping.
    let retry = sse::chunk(&sse::retry(shared.config.retry.as_millis() as u64 * 10));
    let frames = [
        Frame::from(EVENTS_HEAD),
        retry,
        Frame::from(sse::LAST_CHUNK),
    ];
    let _ = with_deadline(write_frames(&socket, &frames), shared.config.write_timeout).await;
}

/// Writes an event stream until the client leaves, its queue is closed by the
/// registry (dropped for being too slow, or shutdown), or a write stalls.
async fn stream_events(socket: Socket, sub: Subscription, shared: &Shared) {
    let deadline = shared.config.write_timeout;
    // A phone that leaves the Wi-Fi sends no FIN or RST: without this the kernel
    // retransmits to it for many minutes, and it stays counted as online. Data
    // unacknowledged for a heartbeat interval ends the connection instead, and the
    // watch below sees it; a live client acknowledges every heartbeat. At least a
    // second, so that a very short --heartbeat cannot end live connections over a
    // lost packet or two.
    let timeout = shared.config.heartbeat.max(Duration::from_secs(1));
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    if let Err(e) = rustix::net::sockopt::set_tcp_user_timeout(socket.get_ref(), millis) {
        crate::debug!("cannot set TCP_USER_TIMEOUT: {e}");
    }
    let opening = [Frame::from(EVENTS_HEAD), shared.opening.clone()];
    for frames in [&opening[..], &sub.replay] {
        if with_deadline(write_frames(&socket, frames), deadline)
            .await
            .is_err()
        {
            return;
        }
    }
    // One readiness watch for the life of the stream: registered with the reactor
    // once, it costs no syscall per event (a `read` per event would cost one).
    let mut watch = Watch::new(&socket);
    sub.frames.attach(socket.clone());
    while next_frames(&sub, &socket, &mut watch).await {
        // Straight from the queue to the socket, without blocking; the deadline and
        // its timer only when the socket is full.
        loop {
            match sub.frames.write_to(socket.get_ref()) {
                Ok(true) => break,
                Ok(false) => {
                    if with_deadline(socket.writable(), deadline).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
    if sub.frames.is_closed() {
        // Ended by the registry: end the response properly so the browser reconnects.
        let end = [Frame::from(sse::LAST_CHUNK)];
        let _ = with_deadline(write_frames(&socket, &end), deadline).await;
    }
}

/// Waits for frames to write: `false` when there will be none (the registry has let
/// go and the queue is empty) or the client has gone. The readiness watch exists only
/// to notice end-of-file: without it, a client that left is found only at the second
/// write after it went.
async fn next_frames<'a>(
    sub: &Subscription,
    socket: &'a Async<std::net::TcpStream>,
    watch: &mut Watch<'a>,
) -> bool {
    poll_fn(|cx| {
        if let Poll::Ready(more) = sub.frames.poll_ready(cx) {
            return Poll::Ready(more);
        }
        loop {
            match watch.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Ready(Ok(())) => {}
            }
            // Readable: the client closed, or sent something (it has nothing to say
            // on a stream; what it sends is dropped).
            let mut bytes = [0u8; 64];
            match socket.get_ref().read(&mut bytes) {
                Ok(0) => return Poll::Ready(false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(false),
            }
            watch.readable = socket.readable();
            watch.armed = false;
        }
    })
    .await
}

/// One readiness registration for the life of a stream, polled only when the reactor
/// has woken it. The stream's task is woken for every event; polling the
/// registration each time would take its lock and touch its memory per event per
/// subscriber, to learn nothing.
struct Watch<'a> {
    readable: Readable<'a, std::net::TcpStream>,
    /// Registered with the reactor, and not woken since.
    armed: bool,
    wake: Arc<WatchWake>,
    waker: Waker,
}

#[derive(Default)]
struct WatchWake {
    fired: AtomicBool,
    /// The stream's task, woken in turn.
    task: Mutex<Option<Waker>>,
}

impl Wake for WatchWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = &*task {
            task.wake_by_ref();
        }
    }
}

impl<'a> Watch<'a> {
    fn new(socket: &'a Async<std::net::TcpStream>) -> Self {
        let wake = Arc::new(WatchWake::default());
        Watch {
            readable: socket.readable(),
            armed: false,
            waker: Waker::from(wake.clone()),
            wake,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.armed && !self.wake.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        {
            let mut task = self
                .wake
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let polled = Pin::new(&mut self.readable).poll(&mut Context::from_waker(&self.waker));
        self.armed = polled.is_pending();
        polled
    }
}

/// Writes whole frames, as few system calls as the kernel allows (the same write
/// as a stream's outbox makes).
async fn write_frames(socket: &Async<std::net::TcpStream>, frames: &[Frame]) -> io::Result<()> {
    let (mut first, mut offset) = (0, 0);
    while first < frames.len() {
        match outbox::write_once(socket.get_ref(), &frames[first..], offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                let (whole, rest) = outbox::advance(&frames[first..], offset, n);
                first += whole;
                offset = rest;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn with_deadline<T>(
    work: impl std::future::Future<Output = io::Result<T>>,
    limit: Duration,
) -> io::Result<T> {
    let mut work = std::pin::pin!(work);
    // Nearly every write completes at once: a timer for it would cost a reactor
    // registration per event per subscriber.
    if let Some(done) = futures_lite::future::poll_once(&mut work).await {
        return done;
    }
    work.or(async {
        Timer::after(limit).await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await
}

fn header_is(req: &http_types::Request, name: &str, value: &str) -> bool {
    req.header(name)
        .is_some_and(|v| v.iter().any(|v| v.as_str().eq_ignore_ascii_case(value)))
}

fn res_header_is(res: &Response, name: &str, value: &str) -> bool {
    res.header(name)
        .is_some_and(|v| v.iter().any(|v| v.as_str().eq_ignore_ascii_case(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_contained_task_ends_that_task_only() {
        let after = smol::block_on(async {
            contain(async { panic!("boom") }, "a test task").await;
            "went on"
        });
        assert_eq!(after, "went on");
        let text = std::panic::catch_unwind(|| panic!("with {}", "text")).unwrap_err();
        assert_eq!(panic_text(&*text), "with text");
    }
}
