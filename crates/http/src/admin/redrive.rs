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
use conveyor_core::queue::policy::headers;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, blocking};
use super::messages::store_in_queue;
use super::queues;
use crate::HttpState;

/// Most messages one redrive moves.
pub const REDRIVE_MESSAGES_MAX: u32 = 10_000;
const REDRIVE_MESSAGES_DEFAULT: u32 = 100;
/// Messages acquired per round.
const CHUNK: usize = 100;
/// How long the redrive holds what it acquired: released at the end anyway.
const LOCK_MS: i64 = 60_000;

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
    params(("name" = String, Path, description = "the queue to move messages out of")),
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
    let source = queues::find(broker, &name)?;
    let fixed = match &request.destination {
        Some(destination) if *destination == name => {
            return Err(ApiError::bad_request("the destination is the queue itself"));
        }
        Some(destination) => Some(queues::find(broker, destination)?),
        None => None,
    };
    let consumer = source.new_consumer();
    let mut result = Redriven {
        moved: 0,
        skipped: 0,
        destinations: BTreeMap::new(),
    };
    // What was skipped stays acquired until the end, so later rounds move
    // on past it; everything still held is released below, whatever happened.
    let outcome: Result<(), ApiError> = async {
        for _ in 0..max_messages.div_ceil(CHUNK) {
            let wanted = (max_messages - (result.moved + result.skipped) as usize).min(CHUNK);
            if wanted == 0 {
                break;
            }
            let live = {
                let (broker, source) = (Arc::clone(broker), Arc::clone(&source));
                blocking(move || Ok(broker.acquire_live(&source, consumer, wanted, LOCK_MS)?)).await?
            };
            for dead_letter in live.dead_letters {
                dead_letter.await?;
            }
            if live.messages.is_empty() {
                break;
            }
            for delivery in live.messages {
                let destination = fixed.clone().or_else(|| {
                    delivery
                        .record
                        .header(headers::DEATH_QUEUE)
                        .and_then(|header| header.value.as_deref())
                        .and_then(|value| std::str::from_utf8(value).ok())
                        .filter(|origin| *origin != name)
                        .and_then(|origin| broker.queue(origin))
                });
                let Some(destination) = destination else {
                    result.skipped += 1;
                    continue;
                };
                let mut record = delivery.record;
                // A fresh message in its destination: its own offset, a new TTL clock.
                record.offset = None;
                record.timestamp_ms = None;
                if !store_in_queue(broker, &destination, record).await? {
                    result.skipped += 1;
                    continue;
                }
                source.queue.ack(consumer, delivery.offset)?.await?;
                result.moved += 1;
                *result.destinations.entry(destination.name.clone()).or_default() += 1;
            }
        }
        Ok(())
    }
    .await;
    source.queue.release_all(consumer);
    source.notify_available();
    outcome?;
    Ok(Json(result))
}
