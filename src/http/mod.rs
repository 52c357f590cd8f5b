//! The admin HTTP endpoint (`mirrord.http.listen`, default `127.0.0.1:9464`):
//!
//! | path       | answer |
//! |------------|--------|
//! | `/metrics` | Prometheus text format 0.0.4 ([`Metrics::encode`]) |
//! | `/live`    | 200 while the process serves HTTP at all |
//! | `/ready`   | 200 once every flow has started (a latch the run loop sets), 503 before |
//! | `/status`  | JSON [`crate::status::StatusReport`] |
//! | `/`        | the status page (`page.html`: flows, lag trends, groups, alarms, cutover verdict) |
//! | `POST /final-sync[?flow=A->B]` | one immediate checkpoint and group-offset-sync round (`final_sync.rs`) |
//!
//! GET and HEAD for the others (405 otherwise), 404 for other paths.
//!
//! The server runs on **its own thread with a current-thread tokio runtime**, not on the daemon's
//! runtime: when flows saturate the daemon's worker threads (or block one in librdkafka), scrapes
//! and health checks still answer promptly, which is exactly when an operator needs them. It is
//! deliberately small: at most [`MAX_CONNECTIONS`] connections at a time — when they are all taken,
//! the oldest is closed to make room, so clients that connect and never send or never read cannot
//! starve a scrape — a header read timeout, a cap on a connection's lifetime, and on shutdown a
//! short grace period for requests in flight.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::metrics::{self, Metrics};
use crate::status::StatusBoard;

mod final_sync;

/// The status page: plain HTML with inline CSS and JavaScript, no external assets.
const STATUS_PAGE: &str = include_str!("page.html");

/// Concurrent connections served; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a connection is kept (a client that stopped reading holds it at most this long;
/// keep-alive clients simply reconnect).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// How long requests in flight may finish after shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long `/status` waits at most for idle lag monitors to measure again.
const FRESH_LAG_WAIT: Duration = Duration::from_millis(1500);

/// What the endpoint serves; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub metrics: Metrics,
    pub status: StatusBoard,
    /// `/ready`: set once every flow has started; never cleared (a reload must not make a
    /// running daemon look unready to a load balancer or systemd-style health check).
    pub ready: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on `{addr}` (`mirrord.http.listen`): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the HTTP endpoint: {0}")]
    Start(#[source] std::io::Error),
}

/// The running endpoint.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl HttpServer {
    /// The bound address (the real port when `addr` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server stopped (after `shutdown` resolved and the grace period).
    pub fn join(self) {
        let _ = self.thread.join();
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Binds `addr` now (so a bad address fails start-up with a clear error) and serves on a
/// dedicated thread until `shutdown` resolves. `shutdown` runs on the server's own runtime: use a
/// runtime-independent future (a `tokio::sync` receiver, a `ShutdownWatch`, ...).
pub fn serve<F>(addr: SocketAddr, state: HttpState, shutdown: F) -> Result<HttpServer, HttpError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
    listener.set_nonblocking(true).map_err(HttpError::Start)?;
    let local_addr = listener.local_addr().map_err(HttpError::Start)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(HttpError::Start)?;
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || runtime.block_on(accept_loop(listener, state, shutdown)))
        .map_err(HttpError::Start)?;
    info!(addr = %local_addr, "HTTP endpoint listening (/metrics /live /ready /status)");
    Ok(HttpServer { local_addr, thread })
}

async fn accept_loop<F>(listener: std::net::TcpListener, state: HttpState, shutdown: F)
where
    F: Future<Output = ()>,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            warn!("HTTP endpoint cannot use its socket: {error}");
            return;
        }
    };
    let state = Arc::new(state);
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    // Open connections, oldest first: (serial, its own close signal).
    let mut open: std::collections::VecDeque<(u64, watch::Sender<bool>)> = Default::default();
    let mut serial = 0u64;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        open.retain(|(_, close)| !close.is_closed());
        if open.len() >= MAX_CONNECTIONS {
            // Make room by closing the oldest: a well-behaved request takes milliseconds, so the
            // oldest is the one that stalls (connected and silent, or not reading its answer).
            if let Some((_, close)) = open.pop_front() {
                let _ = close.send(true);
            }
        }
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!("HTTP endpoint cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let closing = closing_rx.clone();
        let (evict, evicted) = watch::channel(false);
        serial += 1;
        open.push_back((serial, evict));
        connections.spawn(async move {
            let _ = tokio::time::timeout(
                CONNECTION_LIFETIME,
                serve_connection(stream, state, closing, evicted),
            )
            .await;
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!("HTTP connections still open at shutdown were closed");
    }
    connections.abort_all();
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<HttpState>,
    mut closing: watch::Receiver<bool>,
    mut evicted: watch::Receiver<bool>,
) {
    let service = service_fn(move |request| {
        let state = state.clone();
        async move {
            if request.uri().path() == "/final-sync" {
                return Ok::<_, Infallible>(final_sync::respond(&request, &state).await);
            }
            if request.uri().path() == "/status" && request.method() == Method::GET {
                // An idle lag monitor measures every few seconds: the answer waits for a fresh
                // round (docs/operations.md, *Idle cost*).
                state.status.fresh_lag(FRESH_LAG_WAIT).await;
            }
            Ok::<_, Infallible>(respond(&request, &state))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                debug!("HTTP connection ended: {error}");
            }
        }
        _ = async { closing.wait_for(|closing| *closing).await.map(|_| ()) } => {
            // Finish the request in flight, then close (keep-alive connections close at once).
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
        _ = async { evicted.wait_for(|evicted| *evicted).await.map(|_| ()) } => {
            debug!("HTTP connection closed to make room for a new one");
        }
    }
}

fn respond(request: &Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let known = matches!(path, "/" | "/metrics" | "/live" | "/ready" | "/status");
    if !known {
        return text(
            StatusCode::NOT_FOUND,
            "not found; try /, /metrics, /live, /ready, /status, POST /final-sync\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/metrics" => with_type(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            state.metrics.encode().into_bytes(),
        ),
        "/live" => text(StatusCode::OK, "live\n"),
        "/ready" => {
            if state.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: flows are starting\n",
                )
            }
        }
        "/status" => match serde_json::to_vec_pretty(&state.status.snapshot()) {
            Ok(mut body) => {
                body.push(b'\n');
                with_type(StatusCode::OK, "application/json", body)
            }
            Err(error) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot encode the status: {error}\n"),
            ),
        },
        _ => with_type(
            StatusCode::OK,
            "text/html; charset=utf-8",
            STATUS_PAGE.as_bytes().to_vec(),
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
