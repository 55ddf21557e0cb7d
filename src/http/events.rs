//! The writer of an `/events` stream: from the moment its response head goes out
//! until the client leaves, the registry ends it, or a write stalls.
//!
//! Frames go straight from the subscriber's queue to the socket: every frame queued
//! at that moment in one vectored write, and while events are sparse the registry
//! writes them itself (see [`crate::outbox`] for who may write when). The task then
//! only watches the socket, so that a client that leaves is noticed at once rather
//! than at the second write after it went.

use std::future::Future as _;
use std::io::{self, Read as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_io::{Async, Readable};
use futures_lite::future::poll_fn;

use crate::io::{with_deadline, Socket};
use crate::outbox;
use crate::registry::Subscription;
use crate::sse::{self, Frame};
use crate::Config;

/// The head of every `/events` response. No `Content-Length`: chunked, open-ended.
const EVENTS_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
transfer-encoding: chunked\r\n\r\n";

/// Answers `/events` with `200`, a long `retry:` and the end of the stream, so that
/// the browser comes back later (any other status would make it give up for good).
pub async fn come_back_later(socket: Socket, config: &Config) {
    // Ten times the usual delay: the server is full or stopping.
    let retry = sse::chunk(&sse::retry(config.retry.as_millis() as u64 * 10));
    let frames = [
        Frame::from(EVENTS_HEAD),
        retry,
        Frame::from(sse::LAST_CHUNK),
    ];
    let _ = with_deadline(write_frames(&socket, &frames), config.write_timeout).await;
}

/// Writes an event stream until the client leaves, its queue is closed by the
/// registry (dropped for being too slow, or shutdown), or a write stalls.
pub async fn stream_events(socket: Socket, sub: Subscription, opening: &Frame, config: &Config) {
    let deadline = config.write_timeout;
    // A phone that leaves the Wi-Fi sends no FIN or RST: without this the kernel
    // retransmits to it for many minutes, and it stays counted as online. Data
    // unacknowledged for a heartbeat interval ends the connection instead, and the
    // watch below sees it; a live client acknowledges every heartbeat. At least a
    // second, so that a very short --heartbeat cannot end live connections over a
    // lost packet or two.
    let timeout = config.heartbeat.max(Duration::from_secs(1));
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    if let Err(e) = rustix::net::sockopt::set_tcp_user_timeout(socket.get_ref(), millis) {
        crate::debug!("cannot set TCP_USER_TIMEOUT: {e}");
    }
    let opening = [Frame::from(EVENTS_HEAD), opening.clone()];
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
