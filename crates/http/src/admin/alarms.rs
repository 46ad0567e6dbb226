//! `GET /api/v1/alarms` and `PUT /api/v1/alarms`: the resource alarms
//! (free disk below its floor, resident memory above its ceiling) that
//! block publishers, what was measured, and the limits — which an operator
//! can change while the broker runs, as with RabbitMQ's
//! `rabbitmqctl set_disk_free_limit`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_core::alarms::Measured;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ErrorBody, blocking};
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AlarmStatus {
    /// Free disk space is below `disk_free_min_bytes`: publishers are blocked.
    pub disk_alarm: bool,
    /// Memory (resident, or held for connections) is above `memory_max_bytes`: publishers are blocked.
    pub memory_alarm: bool,
    /// Free bytes on the data directory's file system (null if unknown).
    pub disk_free_bytes: Option<u64>,
    pub disk_free_min_bytes: u64,
    /// The larger of the broker's resident memory and `held_bytes` (null if unknown).
    pub memory_used_bytes: Option<u64>,
    /// Bytes the broker holds for client connections: requests and
    /// message bodies not stored yet, responses not sent yet.
    pub held_bytes: u64,
    /// 0: no memory alarm.
    pub memory_max_bytes: u64,
}

impl From<Measured> for AlarmStatus {
    fn from(measured: Measured) -> AlarmStatus {
        AlarmStatus {
            disk_alarm: measured.alarms.disk,
            memory_alarm: measured.alarms.memory,
            disk_free_bytes: measured.disk_free_bytes,
            disk_free_min_bytes: measured.disk_free_min_bytes,
            memory_used_bytes: measured.memory_used_bytes,
            held_bytes: measured.held_bytes,
            memory_max_bytes: measured.memory_max_bytes,
        }
    }
}

/// New limits; a field left out keeps its value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmLimits {
    #[serde(default)]
    pub disk_free_min_bytes: Option<u64>,
    /// 0 turns the memory alarm off.
    #[serde(default)]
    pub memory_max_bytes: Option<u64>,
}

/// The resource alarms, measured now.
#[utoipa::path(get, path = "/alarms", operation_id = "get_alarms", tag = "overview",
    responses((status = 200, body = AlarmStatus), (status = 500, body = ErrorBody)))]
pub async fn status(State(state): State<Arc<HttpState>>) -> Result<Json<AlarmStatus>, ApiError> {
    let broker = Arc::clone(&state.broker);
    // statvfs and /proc reads block.
    let measured = blocking(move || Ok(broker.alarms().check())).await?;
    Ok(Json(measured.into()))
}

/// Changes the limits; the alarms are measured again at once.
#[utoipa::path(put, path = "/alarms", operation_id = "set_alarm_limits", tag = "overview",
    request_body = AlarmLimits,
    responses(
        (status = 200, body = AlarmStatus),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 500, body = ErrorBody),
    ))]
pub async fn set_limits(State(state): State<Arc<HttpState>>, ApiJson(limits): ApiJson<AlarmLimits>) -> Result<Json<AlarmStatus>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let measured = blocking(move || Ok(broker.alarms().set_limits(limits.disk_free_min_bytes, limits.memory_max_bytes))).await?;
    Ok(Json(measured.into()))
}
