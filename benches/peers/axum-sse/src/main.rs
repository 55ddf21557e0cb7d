//! A chat server as people write it with axum: a `tokio::sync::broadcast` channel,
//! one `Sse` stream per subscriber, on a current-thread runtime (one thread, as
//! lanchat is measured with `--threads 1`). A peer for the load generator only.
//! `axum::serve` leaves Nagle's algorithm on; `--nodelay` sets `TCP_NODELAY` on each
//! connection, as lanchat does, to tell the two apart in a measurement.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use futures_util::Stream;
use futures_util::StreamExt as _;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

struct Chat {
    tx: broadcast::Sender<(String, String)>,
    epoch: u128,
    n: AtomicU64,
    online: AtomicU64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let nodelay = args.iter().any(|a| a == "--nodelay");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (tx, _) = broadcast::channel(1024);
        let chat = Arc::new(Chat {
            tx,
            epoch: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            n: AtomicU64::new(0),
            online: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/events", get(events))
            .route("/message", post(message))
            .with_state(chat);
        let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        eprintln!("info: axum-sse listening on {addr} (1 threads)");
        if nodelay {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await.expect("serve");
        } else {
            axum::serve(listener, app).await.expect("serve");
        }
    });
}

async fn events(
    State(chat): State<Arc<Chat>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = chat.tx.subscribe();
    // To the new client only: the load generator waits for a count that reaches N.
    let online = chat.online.fetch_add(1, Ordering::Relaxed) + 1;
    let presence = Event::default()
        .event("presence")
        .data(format!("{{\"online\":{online}}}"));
    let messages = BroadcastStream::new(rx).filter_map(|m| async move {
        let (id, data) = m.ok()?;
        Some(Ok(Event::default().id(id).data(data)))
    });
    let stream = futures_util::stream::once(async move { Ok(presence) }).chain(messages);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn message(State(chat): State<Arc<Chat>>, body: String) -> impl IntoResponse {
    let text = body
        .split('&')
        .find_map(|p| p.strip_prefix("message="))
        .unwrap_or("")
        .to_string();
    let n = chat.n.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("{}-{n}", chat.epoch);
    let json = serde_json::json!({"id": id, "name": "loadgen", "text": text}).to_string();
    let _ = chat.tx.send((id, json.clone()));
    (StatusCode::CREATED, json)
}
