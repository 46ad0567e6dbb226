//! `GET /api/v1/logs/poisoned` and `POST /api/v1/logs/reopen`: the broker's
//! logs that refuse appends because a write or fsync failed (a full file
//! system is not such a failure), and reopening them once the disk is sound
//! again, without a restart. Translates only: the core keeps the logs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_core::log_health::{LogRole, LogStatus};
use conveyor_log::LogHealth;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, blocking};
use crate::HttpState;

/// Which log: what it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogName {
    /// `partition`, `queue_messages`, `queue_cursor`, `catalog`, `consumer_offsets`, `consumer_groups` or `transaction_state`.
    pub kind: &'static str,
    /// The topic, for a partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// The queue (its broker-wide name), for a queue's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

impl From<&LogRole> for LogName {
    fn from(role: &LogRole) -> LogName {
        let mut name = LogName {
            kind: "",
            topic: None,
            partition: None,
            queue: None,
        };
        match role {
            LogRole::Partition { topic, partition } => {
                name.kind = "partition";
                name.topic = Some(topic.clone());
                name.partition = Some(*partition);
            }
            LogRole::QueueMessages { queue } => {
                name.kind = "queue_messages";
                name.queue = Some(queue.clone());
            }
            LogRole::QueueCursor { queue } => {
                name.kind = "queue_cursor";
                name.queue = Some(queue.clone());
            }
            LogRole::Catalog => name.kind = "catalog",
            LogRole::ConsumerOffsets => name.kind = "consumer_offsets",
            LogRole::ConsumerGroups => name.kind = "consumer_groups",
            LogRole::ShareGroups => name.kind = "share_groups",
            LogRole::TransactionState => name.kind = "transaction_state",
        }
        name
    }
}

/// A log that refuses appends.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoisonedLog {
    pub log: LogName,
    /// The log's directory.
    pub dir: String,
    /// What failed, and why.
    pub reason: String,
    /// Whether the bytes of the appends that failed were cut from the disk;
    /// until they are, a restart could find them (reopen cuts them first).
    pub failed_tail_removed: bool,
}

fn poisoned(status: &LogStatus) -> Option<PoisonedLog> {
    match &status.health {
        LogHealth::Healthy => None,
        LogHealth::Poisoned {
            reason,
            failed_tail_removed,
        } => Some(PoisonedLog {
            log: LogName::from(&status.role),
            dir: status.dir.display().to_string(),
            reason: reason.clone(),
            failed_tail_removed: *failed_tail_removed,
        }),
    }
}

/// The outcome of reopening one log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReopenedLog {
    pub log: LogName,
    /// Whether it accepts appends again.
    pub reopened: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The logs that refuse appends until they are reopened; empty when all is well.
#[utoipa::path(get, path = "/logs/poisoned", operation_id = "list_poisoned_logs", tag = "overview",
    responses((status = 200, body = Vec<PoisonedLog>), (status = 500, body = ErrorBody)))]
pub async fn list_poisoned(State(state): State<Arc<HttpState>>) -> Result<Json<Vec<PoisonedLog>>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let statuses = blocking(move || Ok(broker.degraded_logs())).await?;
    Ok(Json(statuses.iter().filter_map(poisoned).collect()))
}

/// Reopens every poisoned log: each is recovered from its files (the
/// appends that failed cut first) and accepts appends again, or stays
/// poisoned if the disk still fails.
#[utoipa::path(post, path = "/logs/reopen", operation_id = "reopen_poisoned_logs", tag = "overview",
    responses((status = 200, body = Vec<ReopenedLog>), (status = 500, body = ErrorBody)))]
pub async fn reopen(State(state): State<Arc<HttpState>>) -> Result<Json<Vec<ReopenedLog>>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let reopened = blocking(move || Ok(broker.reopen_poisoned_logs())).await?;
    Ok(Json(
        reopened
            .into_iter()
            .map(|outcome| ReopenedLog {
                log: LogName::from(&outcome.role),
                reopened: outcome.result.is_ok(),
                error: outcome.result.err().map(|error| error.to_string()),
            })
            .collect(),
    ))
}
