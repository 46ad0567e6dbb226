//! Conveyor's HTTP front door, served by axum on the HTTP listener: `/health`,
//! Prometheus `/metrics`, the SQS-compatible API (`POST` with
//! `X-Amz-Target: AmazonSQS.*`, in `sqs/`) and the SNS-compatible API (`POST`
//! of a form with `Action=…`, in `sns/`); the REST admin API under `/api/v1`
//! (`admin/`) and the web console on top of it (`GET /`, `console.rs`). Like
//! every front door it only translates: state and rules live in the core.
//! One middleware times every request the listener serves for the request
//! latency histograms (`timed`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use conveyor_cluster::ClusterNode;
use conveyor_core::Broker;
use conveyor_core::auth::MetricsAccess;
use conveyor_core::auth::Principal;

pub mod admin;
mod arn;
pub mod console;
mod disk_admission;
mod listener;
pub mod metrics;
pub mod sigv4;
pub mod sns;
pub mod sqs;

pub use listener::serve;

/// What the HTTP handlers share.
#[derive(Debug)]
pub struct HttpState {
    pub broker: Arc<Broker>,
    /// True once every listener of the process is up, false again while stopping.
    pub ready: AtomicBool,
    /// The console's login sessions.
    pub sessions: admin::sessions::Sessions,
    /// This node's cluster membership, when it is one of a cluster.
    cluster: std::sync::OnceLock<Arc<ClusterNode>>,
}

impl HttpState {
    pub fn new(broker: Arc<Broker>) -> Arc<HttpState> {
        Arc::new(HttpState {
            broker,
            ready: AtomicBool::new(false),
            sessions: admin::sessions::Sessions::default(),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// Makes `/health`, `/api/v1/cluster` and `/metrics` report `node`.
    pub fn set_cluster(&self, node: Arc<ClusterNode>) {
        let _ = self.cluster.set(node);
    }

    /// The cluster node, when this broker is one.
    pub fn cluster(&self) -> Option<&Arc<ClusterNode>> {
        self.cluster.get()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// Every HTTP route of the broker.
pub fn router(state: Arc<HttpState>) -> Router {
    // AWS SDKs post to the queue URL's origin or to the queue URL itself
    // (`/000000000000/NAME`); `aws` tells SQS and SNS requests apart.
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/", post(aws))
        .route("/{*path}", post(aws))
        .merge(admin::router().route_layer(axum::middleware::from_fn_with_state(Arc::clone(&state), admin::guard::admin)))
        .merge(console::router())
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&state), timed))
        .with_state(state)
}

/// What a handler served, named for the request-latency histogram: the SQS
/// and SNS handlers put their action on the response; admin routes are
/// named by method and route. Only names of things served, never raw
/// client input, so the metric's label sets stay bounded.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub protocol: &'static str,
    pub api: String,
}

/// Times each request from routed to answered (long polls included) into
/// `conveyor_request_duration_seconds`.
async fn timed(State(state): State<Arc<HttpState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
        .filter(|route| route.starts_with(admin::BASE_PATH));
    let response = next.run(request).await;
    let served = response.extensions().get::<Served>().cloned().or_else(|| {
        route.map(|route| Served {
            protocol: "admin",
            api: format!("{method} {route}"),
        })
    });
    if let Some(served) = served {
        state.broker.stats().request_served(served.protocol, &served.api, started.elapsed());
    }
    response
}

/// An AWS API request: SQS names its action in `X-Amz-Target` (AWS JSON
/// 1.0); SNS sends a form with `Action=` (the query protocol). Anything else
/// goes to SQS, which answers with its error for a missing target.
async fn aws(state: State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // In-process callers (tests driving the router) have no peer: they are local.
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
    let signed = Signed {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        peer,
    };
    if !parts.headers.contains_key("x-amz-target") && sns::is_query_request(&parts.headers) {
        sns::handle(state, parts.headers, signed, body).await
    } else {
        sqs::handle(state, parts.headers, signed, body).await
    }
}

/// What SigV4 covers besides the headers and body, and who sent it.
#[derive(Debug)]
pub(crate) struct Signed {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub peer: IpAddr,
}

impl Signed {
    /// Who signed the request (SigV4 against the user store), or why it is refused.
    pub fn authenticate(
        &self,
        state: &HttpState,
        protocol: &'static str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Principal, sigv4::SigV4Error> {
        let request = sigv4::SignedRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers,
            body,
        };
        let now_unix_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        sigv4::authenticate(state.broker.authorizer(), protocol, self.peer, &request, now_unix_s)
    }
}

/// Prometheus text exposition of the broker's state; open, unless
/// `[auth] metrics = "monitoring"` asks for a monitoring user.
async fn metrics(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    use axum::response::IntoResponse;
    if state.broker.authorizer().policy().metrics == MetricsAccess::Monitoring {
        let peer = admin::guard::peer_of(&request);
        match admin::guard::authenticate(&state, request.headers(), peer).await {
            Ok(principal) if state.broker.authorizer().is_monitoring(&principal) => {}
            Ok(_) => return (StatusCode::FORBIDDEN, "the monitoring tag is needed for /metrics\n").into_response(),
            Err(refusal) => return refusal,
        }
    }
    let broker = Arc::clone(&state.broker);
    // Reading every log's bounds is quick but touches many locks: off the reactor.
    let mut body = tokio::task::spawn_blocking(move || metrics::render(&broker))
        .await
        .unwrap_or_default();
    if let Some(node) = state.cluster() {
        metrics::render_cluster(&mut body, &admin::cluster::raft_groups(&state.broker, node));
    }
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// 200 once every listener is up (and, on a cluster node, once it has
/// joined a cluster that has a metadata leader); 503 while starting or
/// stopping, or without a leader, with the reason. The body
/// is `ok`, or `degraded` followed by one line per log that refuses appends
/// (a failed write or fsync poisoned it; `POST /api/v1/logs/reopen` reopens
/// it): the broker still serves everything else, so it stays 200.
async fn health(State(state): State<Arc<HttpState>>) -> (StatusCode, String) {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting or stopping\n".to_owned());
    }
    if let Some(node) = state.cluster() {
        let status = node.status();
        if !status.has_leader() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no metadata leader: node {} is a {} in term {} and knows no leader of its cluster yet\n",
                    status.node_id, status.role, status.term
                ),
            );
        }
    }
    let broker = Arc::clone(&state.broker);
    let degraded = tokio::task::spawn_blocking(move || broker.degraded_logs())
        .await
        .unwrap_or_default();
    if degraded.is_empty() {
        return (StatusCode::OK, "ok\n".to_owned());
    }
    let mut body = format!("degraded: {} log(s) refuse appends until reopened\n", degraded.len());
    for status in degraded {
        body.push_str(&format!("{} ({}): {}\n", status.role, status.dir.display(), status.health));
    }
    (StatusCode::OK, body)
}
