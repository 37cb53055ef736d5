//! The HTTP listeners' defences: serves a router over a tokio `TcpListener` with hyper's
//! HTTP/1 connection builder so that every limit is hyper's own setting, plus the few
//! checks hyper has no setting for. Owns: header read timeout (which also bounds how long
//! an idle keep-alive connection is kept: hyper restarts it while waiting for the next
//! request), the header size limit, the request body deadline and size limit (a declared
//! `Content-Length` over the limit is answered `413` before any byte of the body is read,
//! so `Expect: 100-continue` gets the refusal, never `100 Continue`), a cap on concurrent
//! connections (beyond it new connections wait in the kernel's backlog and cost no
//! descriptor), and a bounded drain at shutdown after which connections are dropped
//! whatever their clients do.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The limits of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The whole request head must arrive within this; also the idle keep-alive timeout.
    pub header_timeout: Duration,
    /// The whole body must arrive within this once the head is in.
    pub body_timeout: Duration,
    /// The request head (request line and headers) may be at most this large.
    pub max_header_bytes: usize,
    /// Bodies larger than this are refused with `413`.
    pub max_body_bytes: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// At shutdown, connections get this long to finish their request, then are dropped.
    pub drain: Duration,
    /// When set, requests whose `Host:` names another host are refused with `421`: a
    /// browser on the LAN tricked by DNS rebinding sends the attacker's name. Names are
    /// compared without the port, case-insensitively; IPv6 literals without brackets.
    pub allowed_hosts: Option<Vec<String>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_header_bytes: 8 * 1024,
            max_body_bytes: 16 * 1024,
            max_connections: 256,
            drain: Duration::from_secs(5),
            allowed_hosts: None,
        }
    }
}

/// hyper's smallest allowed read buffer.
const MIN_BUFFER: usize = 8192;

/// Serves `router` on `listener` until `shutdown` turns true, then drains for at most
/// `limits.drain` and returns. `what` names the listener in log lines.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
) {
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut full_logged = false;
    loop {
        // Reap finished connections so the set does not grow with the history.
        while connections.try_join_next().is_some() {}
        if permits.available_permits() == 0 && !full_logged {
            tracing::warn!(
                listener = what,
                max = limits.max_connections,
                "connection limit reached: new connections wait until one closes"
            );
            full_logged = true;
        }
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning; the limit above
                    // should keep this from happening at all.
                    tracing::warn!(listener = what, %error, "accepting a connection failed");
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = stopped(&mut shutdown) => break,
                    }
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        if permits.available_permits() > limits.max_connections / 2 {
            full_logged = false;
        }
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            limits.clone(),
            shutdown.clone(),
            permit,
        ));
    }
    drop(listener);
    // Connections were told to finish (keep-alive off); give them the drain time, then
    // drop whatever is left, stuck clients included.
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            listener = what,
            left = connections.len(),
            "drain time over: closing the remaining connections"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<Limits>,
    mut shutdown: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let service_limits = limits.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        let limits = service_limits.clone();
        async move { Ok::<_, Infallible>(handle(router, &limits, request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUFFER))
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => Some(result),
        _ = stopping => None,
    };
    let result = match result {
        Some(result) => result,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(error) = result {
        // Timeouts, oversized heads, resets: the client's problem, worth a debug line.
        tracing::debug!(peer = %peer.ip(), %error, "connection closed");
    }
}

/// Enforces the body limits, then hands the request, body read in full, to the router.
async fn handle(router: Router, limits: &Limits, request: Request<Incoming>) -> Response<Body> {
    if let Some(allowed) = &limits.allowed_hosts {
        if let Some(host) = request.headers().get(header::HOST) {
            let name = host.to_str().ok().map(host_name);
            if !name.is_some_and(|name| allowed.iter().any(|a| a.eq_ignore_ascii_case(name))) {
                return refuse(
                    StatusCode::MISDIRECTED_REQUEST,
                    "this listener does not answer to that Host (http.admin_hosts)".to_owned(),
                );
            }
        }
    }
    if let Some(length) = declared_length(&request) {
        if length > limits.max_body_bytes as u64 {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body is larger than {} bytes",
                    limits.max_body_bytes
                ),
            );
        }
    }
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_body_bytes);
    let bytes = match tokio::time::timeout(limits.body_timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body is larger than {} bytes",
                    limits.max_body_bytes
                ),
            );
        }
        Ok(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the request body could not be read".to_owned(),
            );
        }
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms",
                    limits.body_timeout.as_millis()
                ),
            );
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The name part of a `Host:` value: `[::1]:9090` → `::1`, `localhost:9090` → `localhost`.
pub fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A refusal in the API's JSON shape; the connection is closed after it, since the body
/// was not (or not wholly) read.
fn refuse(status: StatusCode, message: String) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
