//! Conveyor's HTTP front door, served by axum on the HTTP listener: `/health`,
//! Prometheus `/metrics`, the SQS-compatible API (`POST` with
//! `X-Amz-Target: AmazonSQS.*`, in `sqs/`) and the SNS-compatible API (`POST`
//! of a form with `Action=…`, in `sns/`); the REST admin API under `/api/v1`
//! and the web console join them as they land. Like every
//! front door it only translates: state and rules live in the core.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use conveyor_core::Broker;

pub mod admin;
mod arn;
pub mod metrics;
pub mod sns;
pub mod sqs;

/// What the HTTP handlers share.
#[derive(Debug)]
pub struct HttpState {
    pub broker: Arc<Broker>,
    /// True once every listener of the process is up, false again while stopping.
    pub ready: AtomicBool,
}

impl HttpState {
    pub fn new(broker: Arc<Broker>) -> Arc<HttpState> {
        Arc::new(HttpState {
            broker,
            ready: AtomicBool::new(false),
        })
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
        .merge(admin::router())
        .with_state(state)
}

/// An AWS API request: SQS names its action in `X-Amz-Target` (AWS JSON
/// 1.0); SNS sends a form with `Action=` (the query protocol). Anything else
/// goes to SQS, which answers with its error for a missing target.
async fn aws(state: State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    if !headers.contains_key("x-amz-target") && sns::is_query_request(&headers) {
        sns::handle(state, headers, body).await
    } else {
        sqs::handle(state, headers, body).await
    }
}

/// Prometheus text exposition of the broker's state.
async fn metrics(State(state): State<Arc<HttpState>>) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let broker = Arc::clone(&state.broker);
    // Reading every log's bounds is quick but touches many locks: off the reactor.
    let body = tokio::task::spawn_blocking(move || metrics::render(&broker))
        .await
        .unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}

/// 200 once every listener is up; 503 while starting or stopping.
async fn health(State(state): State<Arc<HttpState>>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting or stopping\n")
    }
}
