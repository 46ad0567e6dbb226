//! `POST /api/v1/queues/{name}/get`: takes messages out of a queue as a
//! consumer's `basic.get` would, then settles them as RabbitMQ's management
//! API's `ackmode` says — given back, acknowledged, or rejected (with
//! requeue: back after the queue's retry delay; without: dead-lettered
//! through the queue's dead-letter exchange). The core does each step, as
//! for an AMQP consumer; this file only chooses which.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_core::messaging::{DeathReason, Storing};
use conveyor_core::queue::{Durable, Visibility};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, blocking};
use super::messages::{MessageView, PEEK_COUNT_MAX, view};
use super::queues;
use super::vhosts::InVhost;
use crate::HttpState;

/// How long the messages are held between taking and settling them (they
/// are settled in the same request; this only bounds a request that dies).
const LOCK_MS: i64 = 30_000;

/// What becomes of the messages a get takes: RabbitMQ's management API's
/// `ackmode` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Given back at once, delivered once more (they come back flagged redelivered).
    #[default]
    AckRequeueTrue,
    /// Acknowledged: gone from the queue.
    AckRequeueFalse,
    /// Rejected with requeue: back after the queue's retry delay (`x-retry-delay-ms`), if any.
    RejectRequeueTrue,
    /// Rejected without requeue: dead-lettered through the queue's dead-letter exchange (dropped without one).
    RejectRequeueFalse,
}

/// `POST /queues/{name}/get`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMessages {
    /// At most this many messages (1 to 1000, default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000)]
    pub count: usize,
    /// Default `ack_requeue_true`.
    #[serde(default)]
    pub ackmode: AckMode,
}

fn one() -> usize {
    1
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GotMessages {
    /// The messages taken, in delivery order, with their delivery counts
    /// (this delivery included).
    pub messages: Vec<MessageView>,
    /// How they were settled.
    pub ackmode: AckMode,
}

/// Takes up to `count` messages as a consumer would and settles them as
/// `ackmode` says; answers once every settlement (and dead-lettering) is
/// durable.
#[utoipa::path(post, operation_id = "get_messages", path = "/queues/{name}/get", tag = "queues",
    params(("name" = String, Path, description = "queue name"), InVhost),
    request_body = GetMessages,
    responses(
        (status = 200, body = GotMessages),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(request): ApiJson<GetMessages>,
) -> Result<Json<GotMessages>, ApiError> {
    if !(1..=PEEK_COUNT_MAX).contains(&request.count) {
        return Err(ApiError::bad_request(format!(
            "count {} is not between 1 and {PEEK_COUNT_MAX}",
            request.count
        )));
    }
    let broker = Arc::clone(&state.broker);
    let declared = queues::find(&broker, &in_vhost, &name)?;
    let ackmode = request.ackmode;
    let (messages, durables, appends) = blocking(move || {
        let consumer = declared.new_consumer();
        let live = broker.acquire_live(&declared, consumer, request.count, LOCK_MS, Visibility::Durable)?;
        let mut durables: Vec<Durable> = live.durable.into_iter().collect();
        let mut appends: Vec<Storing> = live.dead_letters;
        let mut messages = Vec::with_capacity(live.messages.len());
        for delivery in live.messages {
            match ackmode {
                AckMode::AckRequeueTrue => declared.queue()?.release(consumer, delivery.offset, 0)?,
                AckMode::AckRequeueFalse => durables.push(declared.queue()?.ack(consumer, delivery.offset)?),
                AckMode::RejectRequeueTrue => {
                    let delay_ms = declared.policy().requeue_delay_ms(delivery.delivery_count);
                    declared.queue()?.release(consumer, delivery.offset, delay_ms)?;
                }
                AckMode::RejectRequeueFalse => {
                    let (_, durable) = declared.queue()?.reject(consumer, delivery.offset)?;
                    durables.push(durable);
                    appends.extend(broker.dead_letter(&declared, delivery.record.clone(), DeathReason::Rejected, delivery.delivery_count));
                }
            }
            messages.push(MessageView {
                delivery_count: Some(delivery.delivery_count),
                acquired: Some(false),
                ..view(delivery.record, delivery.offset)
            });
        }
        declared.notify_available();
        Ok((messages, durables, appends))
    })
    .await?;
    for durable in durables {
        durable.await?;
    }
    for append in appends {
        append.await?;
    }
    Ok(Json(GotMessages { messages, ackmode }))
}
