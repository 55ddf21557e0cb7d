//! I/O helpers every part of the server uses: the socket type and a deadline for
//! an I/O step.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::FutureExt as _;

/// A connection's socket as the reactor knows it: one pointer, where smol's
/// `TcpStream` carries 120 bytes of readiness state into every future that holds it.
pub type Socket = Arc<Async<TcpStream>>;

/// `work`, or `TimedOut` once `limit` has passed.
pub async fn with_deadline<T>(
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
