//! The queue of frames between the registry and one `/events` stream: the registry
//! pushes with [`Feed`], the stream's writer takes with [`Outbox`].
//!
//! Why not an `async_channel`: the registry pushes to every stream on every event,
//! and the writer then waits again, so the queue's cost is paid per event per
//! subscriber. A channel's receiver allocates a listener each time it waits and
//! keeps its queue and its three wake lists on separate cache lines; here a push is
//! one uncontended lock, one `VecDeque` slot and at most one wake, nothing is
//! allocated per event, and the writer sends the queued frames to the socket
//! straight from the queue, all of them in one `writev`, without moving them out.
//!
//! Like the channel it replaces, the queue is unbounded with a length cap checked by
//! the registry before each push ([`Feed::push`]), so the registry never waits.
//!
//! Who may write to a stream's socket, and when (one rule, so that frames never
//! overtake one another): the connection, before it attaches the socket to the
//! queue (the response head, the opening, the replay); the registry, in
//! [`Feed::push`], while the queue is drained and events are sparse; the stream's
//! writer, under the queue's lock. One case of the registry's writes needs no lock:
//! while its last push went out whole, the queue is empty and only the registry can
//! fill it. Any new writer joins this list. [`Behind`] counts the streams with frames
//! queued, which is how the registry knows that every stream has caught up.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use async_io::Async;

use crate::io::Socket;
use crate::sse::Frame;

/// Frames given to one `writev`: enough to coalesce a burst, few enough that the
/// `IoSlice` array lives on the stack.
pub const MAX_BATCH: usize = 64;

/// Slots a drained queue may keep; a larger one is freed, so a burst does not leave
/// every subscriber holding its high-water mark.
const KEEP_SLOTS: usize = 4;

/// A new queue, counted in `behind`: the registry's end and the stream's end.
pub fn pair(behind: &Behind) -> (Feed, Outbox) {
    let inner = Arc::new(Inner {
        state: Mutex::default(),
        behind: behind.clone(),
    });
    let feed = Feed {
        inner: inner.clone(),
        socket: None,
        drained: false,
    };
    (feed, Outbox(inner))
}

/// How many streams have frames queued, kept by their queues as they fill and
/// drain: zero means every stream has written everything it was given.
#[derive(Debug, Default, Clone)]
pub struct Behind(Arc<AtomicUsize>);

impl Behind {
    /// Streams with frames queued now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    behind: Behind,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    /// Bytes of the front frame already written.
    offset: usize,
    /// The writer, when it waits for frames.
    waker: Option<Waker>,
    /// The registry has let go: what is queued is all there will be.
    feed_gone: bool,
    /// The stream has ended: nothing pushed now would be written.
    outbox_gone: bool,
    /// The stream's socket, once its opening and replay are written; [`Feed::push`]
    /// takes its own handle from here at its first direct write.
    socket: Option<Socket>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still holds a valid queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The registry's end of one stream's queue. Dropping it ends the stream once the
/// queued frames are written.
#[derive(Debug)]
pub struct Feed {
    inner: Arc<Inner>,
    /// The socket, once attached, held here too, in the registry's own table: a
    /// direct write to a drained queue's stream needs nothing else.
    socket: Option<Socket>,
    /// The queue is empty and stays so: this end's last push was written whole.
    /// Only this end adds frames and the writer writes nothing but queued ones, so
    /// until the next push nobody else writes to the socket.
    drained: bool,
}

/// Why a push was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `cap` frames are already queued: the stream is too far behind.
    Full,
    /// The stream has ended.
    Gone,
}

impl Feed {
    /// Queues `frame` unless `cap` frames are already queued or the stream has ended;
    /// returns how many frames are queued now.
    ///
    /// With `direct`, a frame for a stream with nothing queued is written to its
    /// socket here and now, without blocking, and its writer is not woken at all;
    /// only what the socket does not take is queued. Every write to the socket
    /// happens under this queue's lock, or here while the queue is known to be
    /// drained (see `drained`), so frames never overtake one another.
    pub fn push(&mut self, frame: &Frame, cap: usize, direct: bool) -> Result<usize, Refused> {
        let mut written = 0;
        let drained = std::mem::take(&mut self.drained);
        if let (true, true, Some(socket)) = (direct, drained, &self.socket) {
            // Nothing of the queue's is touched: its lock and its memory were a
            // large share of the cache misses of a broadcast (docs/perf-journal.md, "Where
            // the rest goes").
            match send(socket, frame) {
                Ok(n) if n == frame.len() => {
                    self.drained = true;
                    return Ok(0);
                }
                Ok(n) => written = n,
                Err(_) => {}
            }
        }
        let mut state = self.inner.lock();
        if state.outbox_gone {
            return Err(Refused::Gone);
        }
        if state.frames.len() >= cap {
            return Err(Refused::Full);
        }
        if written > 0 {
            // Begun above: the rest is queued, like any frame a socket did not take.
            state.offset = written;
        } else if direct && !drained && state.frames.is_empty() {
            // Attached (the socket is set only then, and cleared only when the stream
            // has ended, which was refused above).
            if self.socket.is_none() {
                self.socket.clone_from(&state.socket);
            }
            if let Some(socket) = &self.socket {
                match send(socket, frame) {
                    Ok(n) if n == frame.len() => {
                        self.drained = true;
                        return Ok(0);
                    }
                    Ok(n) => state.offset = n,
                    Err(_) => {}
                }
            }
        }
        state.frames.push_back(frame.clone());
        let queued = state.frames.len();
        // A writer with frames already queued is running or about to; only the first
        // frame after a drained queue has someone to wake.
        if queued == 1 {
            self.inner.behind.0.fetch_add(1, Ordering::AcqRel);
            if let Some(waker) = &state.waker {
                waker.wake_by_ref();
            }
        }
        Ok(queued)
    }

    /// Frames queued and not yet wholly written.
    pub fn len(&self) -> usize {
        self.inner.lock().frames.len()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.inner.lock();
            state.feed_gone = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The stream's end of its queue.
#[derive(Debug)]
pub struct Outbox(Arc<Inner>);

impl Outbox {
    /// Ready with `true` when frames are queued, with `false` when none are and the
    /// registry has let go (the stream should end).
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut state = self.0.lock();
        if !state.frames.is_empty() {
            return Poll::Ready(true);
        }
        if state.feed_gone {
            return Poll::Ready(false);
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Writes queued frames to `out`, every frame queued at that moment in one
    /// `writev` (up to [`MAX_BATCH`]), until the queue is empty (`Ok(true)`) or `out`
    /// would block (`Ok(false)`: wait until it is writable and call again).
    pub fn write_to(&self, mut out: impl Write) -> io::Result<bool> {
        let mut state = self.0.lock();
        let had_frames = !state.frames.is_empty();
        loop {
            if state.frames.is_empty() {
                if state.frames.capacity() > KEEP_SLOTS {
                    state.frames = VecDeque::new();
                }
                if had_frames {
                    self.0.behind.0.fetch_sub(1, Ordering::AcqRel);
                }
                return Ok(true);
            }
            match write_once(&mut out, &state.frames, state.offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let (whole, offset) = advance(&state.frames, state.offset, n);
                    state.frames.drain(..whole);
                    state.offset = offset;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Frames queued and not yet wholly written.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.lock().frames.len()
    }

    /// Lets [`Feed::push`] write to `socket` while nothing is queued; called once the
    /// stream's opening and replay are written.
    pub fn attach(&self, socket: Socket) {
        self.0.lock().socket = Some(socket);
    }

    /// Whether the registry has let go of this stream.
    pub fn is_closed(&self) -> bool {
        self.0.lock().feed_gone
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.outbox_gone = true;
        state.socket = None;
        if !state.frames.is_empty() {
            self.0.behind.0.fetch_sub(1, Ordering::AcqRel);
        }
        // The frames are shared with every other stream; this one's claim goes now.
        state.frames.clear();
    }
}

/// One `send`, without blocking. Straight to the kernel: the C library's `send`
/// would also make it a thread-cancellation point, at a cost on every event. A failed
/// write is left for the writer, which meets it again and ends the stream.
fn send(socket: &Async<TcpStream>, frame: &Frame) -> rustix::io::Result<usize> {
    rustix::net::send(socket.get_ref(), frame, rustix::net::SendFlags::NOSIGNAL)
}

/// One write of up to [`MAX_BATCH`] frames, the first from byte `offset`; returns
/// the bytes written. One frame, the usual case, goes out with `send`, which skips
/// the copying in of an iovec array and the file-position lookup that `writev` does.
pub fn write_once<'a>(
    mut out: impl Write,
    frames: impl IntoIterator<Item = &'a Frame>,
    offset: usize,
) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); MAX_BATCH];
    let mut count = 0;
    for (slot, frame) in slices.iter_mut().zip(frames) {
        let skip = if count == 0 { offset } else { 0 };
        *slot = IoSlice::new(frame.get(skip..).unwrap_or_default());
        count += 1;
    }
    match count {
        0 => Ok(0),
        1 => out.write(&slices[0]),
        _ => out.write_vectored(&slices[..count]),
    }
}

/// After `written` more bytes, the first frame already written up to `offset`: how
/// many of `frames` are now wholly written, and how far into the next one.
pub fn advance<'a>(
    frames: impl IntoIterator<Item = &'a Frame>,
    offset: usize,
    written: usize,
) -> (usize, usize) {
    let mut done = offset + written;
    let mut whole = 0;
    for frame in frames {
        if done < frame.len() {
            break;
        }
        done -= frame.len();
        whole += 1;
    }
    (whole, done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    fn frame(text: &str) -> Frame {
        Frame::from(text.as_bytes())
    }

    /// A socket that takes at most `room` bytes, then would block.
    struct Socket {
        bytes: Vec<u8>,
        room: usize,
        writes: usize,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.writes += 1;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.room - n);
                self.bytes.extend_from_slice(&buf[..take]);
                n += take;
            }
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Count {
        fn woken(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// A waker that counts how often it is woken.
    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    /// A queue holding `texts`, as frames.
    fn queued(texts: &[&str]) -> (Feed, Outbox) {
        let (mut feed, outbox) = pair(&Behind::default());
        for text in texts {
            feed.push(&frame(text), 8, false).unwrap();
        }
        (feed, outbox)
    }

    fn socket(room: usize) -> Socket {
        Socket {
            bytes: Vec::new(),
            room,
            writes: 0,
        }
    }

    #[test]
    fn queued_frames_go_out_in_one_write_in_order() {
        let (_feed, outbox) = queued(&["a", "bb", "ccc"]);
        let mut socket = socket(usize::MAX);
        assert!(outbox.write_to(&mut socket).unwrap());
        assert_eq!(socket.bytes, b"abbccc");
        assert_eq!(socket.writes, 1);
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn a_blocked_socket_resumes_mid_frame_without_loss_or_repeat() {
        let (mut feed, outbox) = queued(&["hello ", "lovely ", "world"]);
        let mut socket = socket(9);
        assert!(!outbox.write_to(&mut socket).unwrap(), "would block");
        assert_eq!(outbox.len(), 2, "the half-written frame stays queued");
        feed.push(&frame("!"), 8, false).unwrap();
        socket.room = usize::MAX;
        assert!(outbox.write_to(&mut socket).unwrap());
        assert_eq!(socket.bytes, b"hello lovely world!");
    }

    #[test]
    fn a_full_queue_or_an_ended_stream_refuses() {
        let behind = Behind::default();
        let (mut feed, outbox) = pair(&behind);
        assert_eq!(feed.push(&frame("a"), 2, false), Ok(1));
        assert_eq!(feed.push(&frame("b"), 2, false), Ok(2));
        assert_eq!(feed.push(&frame("c"), 2, false), Err(Refused::Full));
        drop(outbox);
        assert_eq!(feed.push(&frame("d"), 2, false), Err(Refused::Gone));
    }

    #[test]
    fn the_writer_is_woken_by_the_first_frame_and_when_the_feed_goes() {
        let (mut feed, outbox) = pair(&Behind::default());
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(outbox.poll_ready(&mut cx).is_pending());
        feed.push(&frame("a"), 8, false).unwrap();
        feed.push(&frame("b"), 8, false).unwrap();
        assert_eq!(count.woken(), 1, "one wake for a burst");
        assert_eq!(outbox.poll_ready(&mut cx), Poll::Ready(true));
        outbox.write_to(io::sink()).unwrap();
        assert!(outbox.poll_ready(&mut cx).is_pending());
        drop(feed);
        assert_eq!(count.woken(), 2);
        assert_eq!(outbox.poll_ready(&mut cx), Poll::Ready(false));
        assert!(outbox.is_closed());
    }

    #[test]
    fn behind_counts_the_streams_with_frames_queued() {
        let behind = Behind::default();
        let (mut feed, outbox) = pair(&behind);
        let (mut other_feed, other) = pair(&behind);
        feed.push(&frame("a"), 8, false).unwrap();
        feed.push(&frame("b"), 8, false).unwrap();
        other_feed.push(&frame("c"), 8, false).unwrap();
        assert_eq!(behind.count(), 2);
        outbox.write_to(io::sink()).unwrap();
        assert_eq!(behind.count(), 1);
        drop(other);
        assert_eq!(behind.count(), 0);
        drop(feed);
    }

    /// Both ends of a loopback connection; the server's end non-blocking, as the
    /// reactor keeps it.
    fn connection() -> (Arc<Async<TcpStream>>, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Arc::new(Async::new(server).unwrap()), client)
    }

    #[test]
    fn a_direct_push_writes_to_an_idle_socket_without_waking_the_writer() {
        use std::io::Read as _;
        let behind = Behind::default();
        let (mut feed, outbox) = pair(&behind);
        let (count, waker) = counting_waker();
        assert!(outbox
            .poll_ready(&mut Context::from_waker(&waker))
            .is_pending());
        let (socket, mut client) = connection();
        // Before the stream attaches its socket (its replay is still going out),
        // frames are queued even when direct.
        assert_eq!(feed.push(&frame("early "), 8, true), Ok(1));
        outbox.write_to(socket.get_ref()).unwrap();
        outbox.attach(socket.clone());
        assert_eq!(feed.push(&frame("direct"), 8, true), Ok(0));
        assert_eq!(count.woken(), 1, "woken for the early one only");
        assert_eq!(behind.count(), 0);
        let mut got = [0u8; 12];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"early direct");
    }

    /// A queue whose stream has attached its socket, and the client's end.
    fn attached() -> (Behind, Feed, Outbox, Arc<Async<TcpStream>>, TcpStream) {
        let behind = Behind::default();
        let (feed, outbox) = pair(&behind);
        let (socket, client) = connection();
        outbox.attach(socket.clone());
        (behind, feed, outbox, socket, client)
    }

    /// Far more than a loopback socket buffers: a direct write of it takes part.
    fn big_frame() -> Frame {
        (0..32 << 20)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// Everything the client's end receives until the server's end closes.
    fn read_all(mut client: TcpStream) -> std::thread::JoinHandle<Vec<u8>> {
        use std::io::Read as _;
        std::thread::spawn(move || {
            let mut all = Vec::new();
            client.read_to_end(&mut all).unwrap();
            all
        })
    }

    /// Writes what is queued, waiting while the socket is full, until none is left.
    fn drain(outbox: &Outbox, socket: &Async<TcpStream>) {
        while !outbox.write_to(socket.get_ref()).unwrap() {
            futures_lite::future::block_on(socket.writable()).unwrap();
        }
    }

    #[test]
    fn what_a_full_socket_refuses_is_queued_and_goes_out_in_order() {
        let (behind, mut feed, outbox, socket, client) = attached();
        let big = big_frame();
        assert_eq!(feed.push(&big, 8, true), Ok(1));
        assert_eq!(behind.count(), 1);
        assert_eq!(
            feed.push(&frame("tail"), 8, true),
            Ok(2),
            "queued behind it"
        );
        let reader = read_all(client);
        drain(&outbox, &socket);
        assert_eq!(behind.count(), 0);
        drop((feed, outbox, socket));
        let all = reader.join().unwrap();
        assert_eq!(all.len(), big.len() + 4);
        assert!(
            all[..big.len()] == big[..],
            "the big frame whole and in order"
        );
        assert_eq!(&all[big.len()..], b"tail");
    }

    #[test]
    fn a_drained_stream_is_written_without_the_lock_and_keeps_its_order() {
        let (behind, mut feed, outbox, socket, client) = attached();
        // Written whole under the lock: the queue is known to be drained.
        assert_eq!(feed.push(&frame("one "), 8, true), Ok(0));
        // Written without the lock, whole.
        assert_eq!(feed.push(&frame("two "), 8, true), Ok(0));
        // Written without the lock, in part: the rest is queued for the writer.
        let big = big_frame();
        assert_eq!(feed.push(&big, 8, true), Ok(1));
        assert_eq!(behind.count(), 1);
        assert_eq!(feed.push(&frame("tail "), 8, true), Ok(2), "behind it");
        let reader = read_all(client);
        drain(&outbox, &socket);
        assert_eq!(behind.count(), 0);
        // Caught up: direct again.
        assert_eq!(feed.push(&frame("end"), 8, true), Ok(0));
        drop((feed, outbox, socket));
        let all = reader.join().unwrap();
        assert_eq!(&all[..8], b"one two ");
        assert!(all[8..8 + big.len()] == big[..], "the big frame whole");
        assert_eq!(&all[8 + big.len()..], b"tail end");
    }
}
