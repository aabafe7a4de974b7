//! HTTP serving: one hyper HTTP/1.1 connection task per TCP connection, each able to be torn
//! down by its handler (the `drop` and `lost-response` faults), throttled bodies, and the
//! [`Simulator`] / [`SimHandle`] lifecycle.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::wire::{self, WireConsignment};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, DurationRound, SecondsFormat, Utc};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::SimConfig;
use crate::faults::FaultSpec;
use crate::routes;
use crate::state::{Access, NewEvent, Received, SimState};

/// State shared by every connection and the handle.
pub(crate) struct Shared {
    pub depot: String,
    pub api_key: String,
    /// Bytes per second; never `Some(0)`.
    pub throttle: Option<u64>,
    state: Mutex<SimState>,
}

impl Shared {
    fn new(config: SimConfig) -> Self {
        let access = Access {
            integration_enabled: config.integration_enabled,
            tracking_enabled: config.tracking_enabled,
            images_enabled: config.images_enabled,
        };
        let state = SimState::new(
            config.seed,
            config.consignments,
            &config.depot,
            config.faults,
            access,
            Utc::now().date_naive(),
        );
        Self {
            depot: config.depot,
            api_key: config.api_key,
            throttle: config.throttle_bytes_per_s.filter(|r| *r > 0),
            state: Mutex::new(state),
        }
    }

    /// The state, even if a previous holder panicked (every update is a whole step).
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Put into every request's extensions: firing it closes the request's TCP connection at once,
/// without a response.
#[derive(Clone)]
pub(crate) struct ConnAbort(Arc<Notify>);

impl ConnAbort {
    /// Closes the connection and never returns: the connection task drops this handler's future.
    pub async fn close_connection(&self) -> Response<Body> {
        self.0.notify_one();
        std::future::pending().await
    }
}

/// "Now", to the millisecond, so the header and the JSON `server_time` agree exactly.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap_or(now)
}

pub(crate) fn server_time_value(now: DateTime<Utc>) -> HeaderValue {
    HeaderValue::from_str(&now.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|_| HeaderValue::from_static("1970-01-01T00:00:00.000Z"))
}

/// A request body, read whole.
pub(crate) enum BodyRead {
    Complete(Bytes),
    /// Over the limit (what arrived was drained and discarded).
    TooLarge,
    /// The client went away or sent a broken body.
    Broken,
}

/// Reads past the limit are drained (so the client sees the 413, not a reset) up to this much.
const DRAIN_CAP: u64 = 16 * 1024 * 1024;

/// Reads a request body frame by frame, refusing more than `limit` bytes and pacing to
/// `throttle` bytes per second.
pub(crate) async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: u64,
    throttle: Option<u64>,
) -> BodyRead {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut over = declared.is_some_and(|n| n > limit);
    if declared.is_some_and(|n| n > limit + DRAIN_CAP) {
        return BodyRead::TooLarge;
    }
    let capacity = declared.unwrap_or(0).min(limit).min(1024 * 1024) as usize;
    let mut buf: Vec<u8> = Vec::with_capacity(capacity);
    let mut total: u64 = 0;
    let start = Instant::now();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return BodyRead::Broken;
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total += data.len() as u64;
        if total > limit {
            over = true;
            buf = Vec::new();
        }
        if !over {
            buf.extend_from_slice(&data);
        }
        if total > limit + DRAIN_CAP {
            return BodyRead::TooLarge;
        }
        if let Some(rate) = throttle {
            pace(start, total, rate).await;
        }
    }
    if over {
        BodyRead::TooLarge
    } else {
        BodyRead::Complete(Bytes::from(buf))
    }
}

/// Sleeps until `bytes` at `rate` bytes per second from `start` have elapsed.
async fn pace(start: Instant, bytes: u64, rate: u64) {
    let due = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
    tokio::time::sleep_until(due).await;
}

/// How a response body goes out.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Delivery {
    pub throttle: Option<u64>,
    /// Announce the full length, send half, then break the connection.
    pub truncate: bool,
}

/// A JSON response with the server-time header, delivered as asked.
pub(crate) fn json_response(
    status: u16,
    body: Vec<u8>,
    now: DateTime<Utc>,
    delivery: Delivery,
) -> Response<Body> {
    let len = body.len();
    let streamed = delivery.truncate || delivery.throttle.is_some();
    let body = if streamed {
        paced_body(Bytes::from(body), delivery)
    } else {
        Body::from(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(wire::SERVER_TIME_HEADER, server_time_value(now));
    if streamed {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    response
}

/// Streams `data` in small chunks at the throttle rate; when truncating, stops at half and
/// fails the body so hyper closes the connection short of the announced length.
fn paced_body(data: Bytes, delivery: Delivery) -> Body {
    struct Cursor {
        data: Bytes,
        pos: usize,
        end: usize,
        chunk: usize,
        rate: Option<u64>,
        fail_at_end: bool,
    }
    let end = if delivery.truncate {
        data.len() / 2
    } else {
        data.len()
    };
    let chunk = match delivery.throttle {
        Some(rate) => (rate / 10).clamp(64, 16 * 1024) as usize,
        None => end.max(1),
    };
    let cursor = Cursor {
        data,
        pos: 0,
        end,
        chunk,
        rate: delivery.throttle,
        fail_at_end: delivery.truncate,
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        if c.pos < c.end {
            let n = c.chunk.min(c.end - c.pos);
            if let Some(rate) = c.rate {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
            }
            let piece = c.data.slice(c.pos..c.pos + n);
            c.pos += n;
            Some((Ok(piece), c))
        } else if c.fail_at_end {
            c.fail_at_end = false;
            // Let hyper flush the head and the half first: it drops unflushed output when the
            // body fails.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((
                Err(std::io::Error::other(
                    "response truncated by fault injection",
                )),
                c,
            ))
        } else {
            None
        }
    });
    Body::new(StreamBody::new(stream.map(|r| r.map(Frame::data))))
}

async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<()>) {
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(serve_connection(stream, router.clone(), for_connections.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "upn-sim: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<()>) {
    let _ = stream.set_nodelay(true);
    let abort = Arc::new(Notify::new());
    let conn_abort = ConnAbort(abort.clone());
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(conn_abort.clone());
        let router = router.clone();
        async move {
            let mut response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if !response.headers().contains_key(wire::SERVER_TIME_HEADER) {
                response
                    .headers_mut()
                    .insert(wire::SERVER_TIME_HEADER, server_time_value(now()));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "upn-sim: connection ended with an error");
            }
        }
        _ = abort.notified() => {
            tracing::debug!("upn-sim: connection closed without a response (fault injection)");
        }
        _ = shutdown.changed() => {}
    }
}

/// The simulator's entry points.
pub struct Simulator;

impl Simulator {
    /// Binds `listen` (use `127.0.0.1:0` in tests) and serves on the current tokio runtime until
    /// the handle is dropped.
    pub async fn start(config: SimConfig, listen: SocketAddr) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (tx, rx) = watch::channel(());
        tokio::spawn(accept_loop(listener, routes::router(shared.clone()), rx));
        tracing::info!(%addr, depot = %shared.depot, "upn-sim: serving");
        Ok(SimHandle {
            addr,
            shared,
            shutdown: Some(tx),
            thread: None,
        })
    }

    /// Starts on a dedicated thread with its own tokio runtime (for sync code and for tests that
    /// drive a CLI subprocess). Stops when the handle is dropped.
    pub fn start_background(config: SimConfig, listen: SocketAddr) -> std::io::Result<SimHandle> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (tx, rx) = watch::channel(());
        let router = routes::router(shared.clone());
        // The runtime is made, used and dropped on its own thread only, so this can be called
        // from async code too (a runtime must never be dropped inside another).
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("upn-sim-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let mut stop = rx.clone();
                    tokio::spawn(accept_loop(listener, router, rx));
                    let _ = ready_tx.send(Ok(()));
                    let _ = stop.changed().await;
                });
                // Dropping the runtime here cancels every connection task.
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(std::io::Error::other(
                    "the simulator thread stopped before serving",
                ));
            }
        }
        tracing::info!(%addr, depot = %shared.depot, "upn-sim: serving on a background thread");
        Ok(SimHandle {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

/// A running simulator. Dropping it (or [`SimHandle::shutdown`]) stops it.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<watch::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("depot", &self.shared.depot)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for clients, e.g. `http://127.0.0.1:43127` (a wildcard bind is reached over
    /// loopback).
    pub fn endpoint(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    pub fn depot(&self) -> String {
        self.shared.depot.clone()
    }

    pub fn api_key(&self) -> String {
        self.shared.api_key.clone()
    }

    /// Open (not cancelled) consignments as they are now, in generation order.
    pub fn consignments(&self) -> Vec<WireConsignment> {
        self.shared.lock().open_consignments()
    }

    /// What the simulator has received: the same data as `GET /_sim/received`.
    pub fn received(&self) -> Received {
        self.shared.lock().received()
    }

    /// Queues tracking events, as `POST /_sim/events`; returns how many were queued.
    pub fn push_events(&self, events: Vec<NewEvent>) -> usize {
        self.shared.lock().push_events(events, Utc::now())
    }

    /// Queues one consignment-level (`C`) event of `stage` for every consignment, as UPN does
    /// when a whole round goes out; returns the barcodes, in the simulator's order.
    pub fn push_stage_for_all(&self, stage: &str) -> Vec<String> {
        let barcodes: Vec<String> = self.consignments().into_iter().map(|c| c.barcode).collect();
        self.push_events(
            barcodes
                .iter()
                .map(|b| NewEvent {
                    barcode: b.clone(),
                    pallet: None,
                    capture_type: "C".into(),
                    stage: stage.into(),
                    at: None,
                })
                .collect(),
        );
        barcodes
    }

    /// Replaces the fault set, as `POST /_sim/faults` (restarts the fault streams).
    pub fn set_faults(&self, spec: FaultSpec) {
        self.shared.lock().faults.set(spec);
    }

    /// Sets the three access switches, as `POST /_sim/config`.
    pub fn set_access(&self, integration: bool, tracking: bool, images: bool) {
        self.shared.lock().access = Access {
            integration_enabled: integration,
            tracking_enabled: tracking,
            images_enabled: images,
        };
    }

    /// Cancels an open consignment; false if unknown or already cancelled.
    pub fn cancel(&self, barcode: &str, reason: Option<&str>) -> bool {
        self.shared.lock().cancel(barcode, reason, Utc::now())
    }

    /// Replaces an open consignment's special instructions; false if unknown or cancelled.
    pub fn update_instructions(&self, barcode: &str, text: Option<&str>) -> bool {
        self.shared
            .lock()
            .update_instructions(barcode, text, Utc::now())
    }

    /// Stops serving and closes every connection.
    pub fn shutdown(self) {
        // Drop does the work.
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // Dropping the sender wakes every `changed()`: the accept loop and connections end.
        self.shutdown.take();
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}
