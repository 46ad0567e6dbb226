//! `GET /api/v1/limits`: every limit in force (`[limits]`), its value and
//! how often it was reached since the broker started, plus the connections
//! open now. Read-only: limits change through the config file and a restart.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_core::limits::Limit;
use serde::Serialize;
use utoipa::ToSchema;

use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsStatus {
    pub limits: Vec<LimitStatus>,
    /// Client connections (Kafka, AMQP, HTTP) holding a slot now.
    pub connections_open: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitStatus {
    /// The `[limits]` key, e.g. `queues_max`.
    pub name: &'static str,
    pub value: u64,
    /// Times it was reached (a request refused, a connection closed) since the broker started.
    pub reached_total: u64,
}

/// Every limit, its value and how often it was reached.
#[utoipa::path(get, path = "/limits", operation_id = "get_limits", tag = "overview",
    responses((status = 200, body = LimitsStatus)))]
pub async fn status(State(state): State<Arc<HttpState>>) -> Json<LimitsStatus> {
    let limits = state.broker.limits();
    Json(LimitsStatus {
        limits: Limit::ALL
            .iter()
            .map(|&limit| LimitStatus {
                name: limit.key(),
                value: limits.config().value(limit),
                reached_total: limits.reached_total(limit),
            })
            .collect(),
        connections_open: limits.open_connections(),
    })
}
