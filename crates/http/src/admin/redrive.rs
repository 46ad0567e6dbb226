//! `POST /api/v1/queues/{name}/redrive`: moves messages out of a queue
//! (typically a dead-letter queue) into another queue — by default each back
//! to the queue it was dead-lettered from, as the core's death headers
//! record it. Each message is acquired, appended to its destination, and
//! acknowledged on the source only once that append is durable, so a crash
//! in between duplicates a message at worst and never loses one.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_core::vhost;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::queues;
use super::vhosts::InVhost;
use crate::HttpState;

/// Most messages one redrive moves.
pub const REDRIVE_MESSAGES_MAX: u32 = 10_000;
const REDRIVE_MESSAGES_DEFAULT: u32 = 100;
/// Messages acquired per round.
const CHUNK: usize = 100;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    /// The queue to move messages to. Without it, each message goes back to
    /// the queue it was dead-lettered from; messages that do not say are left.
    #[serde(default)]
    pub destination: Option<String>,
    /// At most this many messages (1 to 10000, default 100).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub max_messages: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    /// Messages moved (appended to their destination, then acknowledged here).
    pub moved: u64,
    /// Messages left in the queue: no destination known, the destination
    /// does not exist, or it refused the message (full).
    pub skipped: u64,
    /// Messages moved, by destination queue.
    pub destinations: BTreeMap<String, u64>,
}

/// Moves up to `max_messages` messages to `destination` or back to their source queues.
#[utoipa::path(post, operation_id = "redrive_queue", path = "/queues/{name}/redrive", tag = "queues",
    params(("name" = String, Path, description = "the queue to move messages out of"), InVhost),
    request_body = Redrive,
    responses(
        (status = 200, body = Redriven),
        (status = 400, body = ErrorBody),
        (status = 404, description = "unknown queue or destination", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
pub async fn redrive(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(request): ApiJson<Redrive>,
) -> Result<Json<Redriven>, ApiError> {
    let broker = &state.broker;
    let max_messages = match request.max_messages.unwrap_or(REDRIVE_MESSAGES_DEFAULT) {
        count @ 1..=REDRIVE_MESSAGES_MAX => count as usize,
        other => {
            return Err(ApiError::bad_request(format!(
                "max_messages {other} is not between 1 and {REDRIVE_MESSAGES_MAX}"
            )));
        }
    };
    let source = queues::find(broker, &in_vhost, &name)?;
    let fixed = match &request.destination {
        Some(destination) if *destination == name => {
            return Err(ApiError::bad_request("the destination is the queue itself"));
        }
        // In the source's vhost, as dead letters never leave one.
        Some(destination) => Some(queues::find(broker, &in_vhost, destination)?),
        None => None,
    };
    let mut redrive = conveyor_core::redrive::Redrive::new(broker, &source, fixed);
    for _ in 0..max_messages.div_ceil(CHUNK) {
        let done = redrive.done();
        let wanted = (max_messages - (done.moved + done.skipped) as usize).min(CHUNK);
        if wanted == 0 || redrive.step(wanted).await? == 0 {
            break;
        }
    }
    let done = redrive.done().clone();
    let result = Redriven {
        moved: done.moved,
        skipped: done.skipped,
        destinations: done
            .destinations
            .into_iter()
            .map(|(queue, moved)| (vhost::local_name(&queue).to_owned(), moved))
            .collect(),
    };
    Ok(Json(result))
}
