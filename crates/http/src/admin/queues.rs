//! `/api/v1/queues`: declare queues (as AMQP's `queue.declare`, with the
//! same checks of their `x-…` arguments), list and describe them (messages
//! ready and unacked, consumers, definition and arguments, where their dead
//! letters go and which queues dead-letter into them), purge and delete.
//! The same core queues AMQP and SQS clients use.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conveyor_core::broker::Redeclaration;
use conveyor_core::exchange::FieldTable;
use conveyor_core::queue::DeclaredQueue;
use conveyor_core::stats::Flow;
use conveyor_core::vhost;
use conveyor_core::{Broker, VirtualHost};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, blocking};
use super::field_table;
use super::vhosts::{InVhost, VhostFilter};
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueSummary {
    /// The queue's name in its vhost.
    pub name: String,
    /// The AMQP virtual host the queue is in (`/` for SQS queues).
    pub vhost: String,
    pub durable: bool,
    pub auto_delete: bool,
    /// Waiting for a consumer.
    pub messages_ready: u64,
    /// Held by consumers, not yet acknowledged.
    pub messages_unacked: u64,
    /// Ready, but waiting out a delay (a delayed retry, SQS's DelaySeconds).
    pub messages_delayed: u64,
    /// Messages dead-lettered from this queue since the broker started.
    pub messages_dead_lettered_total: u64,
    /// Deliveries of messages delivered before, since the broker started.
    pub messages_redelivered_total: u64,
    /// Messages published into the queue per second over the last few seconds.
    pub publish_per_second: f64,
    /// Messages delivered per second over the last few seconds.
    pub deliver_per_second: f64,
    pub consumers: u64,
    /// The exchange dead letters go to (`x-dead-letter-exchange`), if any.
    pub dead_letter_exchange: Option<String>,
    /// Bytes of the queue's message log.
    pub size_bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDetail {
    #[serde(flatten)]
    pub summary: QueueSummary,
    pub id: String,
    pub created_ms: i64,
    /// The declaration's arguments as given (AMQP `x-…` arguments, SQS attributes as `sqs.*`).
    pub arguments: BTreeMap<String, String>,
    pub dead_letter_routing_key: Option<String>,
    /// The queues this queue's dead letters reach now (routed through the
    /// dead-letter exchange with the dead-letter routing key, or an empty
    /// key when it has none).
    pub dead_letter_queues: Vec<String>,
    /// The queues whose dead letters reach this one (the same way): a
    /// dead-letter queue's sources.
    pub dead_letter_sources: Vec<String>,
    pub message_ttl_ms: Option<i64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub delivery_limit: Option<u32>,
    /// Every message below this offset of the queue's log is settled.
    pub settled_below: u64,
    /// The queue log's end offset.
    pub end_offset: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Purged {
    /// Messages removed (those held by consumers stay theirs).
    pub purged: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDeleted {
    /// Messages the queue held when deleted.
    pub messages_deleted: u64,
}

/// Longest queue name: an AMQP short string, as clients name queues.
pub const NAME_BYTES_MAX: usize = 255;

/// `PUT /queues/{name}`'s body: a declaration, as AMQP's `queue.declare` carries it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareQueue {
    /// Survives a restart (default true).
    #[serde(default = "yes")]
    pub durable: bool,
    /// Deleted when its last consumer goes (default false).
    #[serde(default)]
    pub auto_delete: bool,
    /// `x-…` arguments (`x-dead-letter-exchange`, `x-dead-letter-routing-key`,
    /// `x-message-ttl`, `x-max-length`, `x-overflow`, `x-max-priority`,
    /// `x-queue-type`, …). JSON values are AMQP values: an integer is a
    /// `long`, a string a `longstr`, as in RabbitMQ's management API.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQueue {
    /// Only delete the queue if it holds no messages (409 otherwise).
    pub if_empty: Option<bool>,
}

/// The queue `name` of the vhost `in_vhost` names, or 404.
pub(super) fn find(broker: &Broker, in_vhost: &InVhost, name: &str) -> Result<Arc<DeclaredQueue>, ApiError> {
    broker
        .queue(&in_vhost.resource(broker, name)?)
        .ok_or_else(|| ApiError::not_found(format!("queue {name:?} does not exist")))
}

fn summary(broker: &Broker, declared: &DeclaredQueue) -> QueueSummary {
    let flow = broker.stats().queue(&declared.name);
    let (publish_per_second, deliver_per_second) = flow.rates_per_s();
    let (vhost, name) = vhost::split(&declared.name);
    QueueSummary {
        name: name.to_owned(),
        vhost: vhost.into_owned(),
        durable: declared.definition().durable,
        auto_delete: declared.definition().auto_delete,
        messages_ready: declared.available_count(),
        messages_unacked: declared.acquired_count() as u64,
        messages_delayed: declared.delayed_count(),
        messages_dead_lettered_total: Flow::get(&flow.dead_lettered),
        messages_redelivered_total: Flow::get(&flow.redelivered),
        publish_per_second,
        deliver_per_second,
        consumers: declared.consumer_count() as u64,
        dead_letter_exchange: declared.policy().dead_letter_exchange.clone(),
        size_bytes: declared.size_bytes(),
    }
}

/// The queues `declared`'s dead letters are routed to now.
pub(super) fn dead_letter_queues(broker: &Broker, declared: &DeclaredQueue) -> Vec<String> {
    let Some(exchange) = &declared.policy().dead_letter_exchange else {
        return Vec::new();
    };
    let routing_key = declared.policy().dead_letter_routing_key.clone().unwrap_or_default();
    let queues = broker
        .route(&vhost::sibling(&declared.name, exchange), &routing_key, &FieldTable::new())
        .map(|routed| routed.queues)
        .unwrap_or_default();
    // A queue never dead-letters into itself (the core drops such cycles).
    queues.into_iter().filter(|name| *name != declared.name).collect()
}

/// Every queue (of one vhost with `?vhost=`), by name.
#[utoipa::path(get, operation_id = "list_queues", path = "/queues", tag = "queues",
    params(VhostFilter),
    responses((status = 200, body = Vec<QueueSummary>), (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    ApiQuery(filter): ApiQuery<VhostFilter>,
) -> Result<Json<Vec<QueueSummary>>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let queues = blocking(move || {
        Ok(broker
            .queues()
            .iter()
            .filter(|declared| filter.admits(&declared.name))
            .map(|declared| summary(&broker, declared))
            .collect())
    })
    .await?;
    Ok(Json(queues))
}

/// Declares a queue, as AMQP's `queue.declare` does: created (201) or, if
/// it exists declared the same way, left as it is (204); declared
/// otherwise, refused (409). Its arguments are checked as the AMQP door
/// checks them (an `x-max-priority` that is not an integer, an
/// `x-overflow` it does not know: 400). Durable when answered.
#[utoipa::path(put, operation_id = "declare_queue", path = "/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "queue name (1 to 255 bytes, not starting with amq.)"), InVhost),
    request_body = DeclareQueue,
    responses(
        (status = 201, description = "created", body = QueueSummary),
        (status = 204, description = "it existed, declared the same way"),
        (status = 400, description = "an invalid name or argument", body = ErrorBody),
        (status = 403, description = "a name in the reserved amq. namespace", body = ErrorBody),
        (status = 404, description = "no such vhost", body = ErrorBody),
        (status = 409, description = "it exists, declared otherwise", body = ErrorBody),
    ))]
pub async fn declare(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(body): ApiJson<DeclareQueue>,
) -> Result<Response, ApiError> {
    let broker = &state.broker;
    let vhost = in_vhost.get(broker)?;
    let (declared, created) = declare_in(broker, &vhost, &name, &body).await?;
    Ok(if created {
        (StatusCode::CREATED, Json(summary(broker, &declared))).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    })
}

/// Declares queue `name` of `vhost` as `body` says, with the AMQP door's
/// checks; whether it was created.
pub(super) async fn declare_in(
    broker: &Broker,
    vhost: &VirtualHost,
    name: &str,
    body: &DeclareQueue,
) -> Result<(Arc<DeclaredQueue>, bool), ApiError> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err(ApiError::bad_request(format!(
            "a queue name is 1 to {NAME_BYTES_MAX} bytes, not {}",
            name.len()
        )));
    }
    if name.starts_with("amq.") {
        // The AMQP door's refusal (403 ACCESS_REFUSED), word for word.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("queue name '{name}' contains reserved prefix 'amq.*'"),
        ));
    }
    let table = field_table::table(&body.arguments);
    let resource = vhost.resource(name).map_err(conveyor_core::CoreError::from)?;
    // As RabbitMQ: a queue that exists is compared with the declaration
    // first; the arguments are checked only for a new queue.
    let texts = conveyor_rabbit_args::argument_texts(&table);
    let redeclaration = Redeclaration {
        durable: body.durable,
        auto_delete: body.auto_delete,
        arguments: &texts,
        compare: conveyor_rabbit_args::differing_argument,
    };
    if let Some(existing) = broker.redeclare_queue(&resource, &redeclaration) {
        return Ok((existing?, false));
    }
    let arguments = conveyor_rabbit_args::arguments_from_table(&table, name, vhost.name()).map_err(ApiError::bad_request)?;
    let definition = conveyor_rabbit_args::definition(&resource, body.durable, body.auto_delete, arguments)?;
    Ok(broker
        .declare_queue_compared(&resource, definition, conveyor_rabbit_args::differing_argument)
        .await?)
}

/// A queue's counts, definition and dead-letter wiring.
#[utoipa::path(get, operation_id = "describe_queue", path = "/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "queue name"), InVhost),
    responses((status = 200, body = QueueDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn describe(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
) -> Result<Json<QueueDetail>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let detail = blocking(move || {
        let declared = find(&broker, &in_vhost, &name)?;
        let dead_letter_sources = broker
            .queues()
            .iter()
            .filter(|source| dead_letter_queues(&broker, source).contains(&declared.name))
            .map(|source| vhost::local_name(&source.name).to_owned())
            .collect();
        Ok(QueueDetail {
            summary: summary(&broker, &declared),
            id: declared.id.to_string(),
            created_ms: declared.created_ms,
            arguments: declared.definition().arguments.clone(),
            dead_letter_routing_key: declared.policy().dead_letter_routing_key.clone(),
            dead_letter_queues: dead_letter_queues(&broker, &declared)
                .iter()
                .map(|queue| vhost::local_name(queue).to_owned())
                .collect(),
            dead_letter_sources,
            message_ttl_ms: declared.policy().message_ttl_ms,
            max_length: declared.policy().max_length,
            max_length_bytes: declared.policy().max_length_bytes,
            delivery_limit: declared.policy().delivery_limit,
            settled_below: declared.queue()?.settled_below(),
            end_offset: declared.queue()?.end(),
        })
    })
    .await?;
    Ok(Json(detail))
}

/// Removes every message waiting in the queue (AMQP's `queue.purge`).
#[utoipa::path(post, operation_id = "purge_queue", path = "/queues/{name}/purge", tag = "queues",
    params(("name" = String, Path, description = "queue name"), InVhost),
    responses((status = 200, body = Purged), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn purge(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
) -> Result<Json<Purged>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let purged = blocking(move || {
        let declared = find(&broker, &in_vhost, &name)?;
        Ok(broker.purge_queue(&declared)?)
    })
    .await?;
    Ok(Json(Purged { purged }))
}

/// Deletes a queue and its messages.
#[utoipa::path(delete, operation_id = "delete_queue", path = "/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "queue name"), DeleteQueue, InVhost),
    responses(
        (status = 200, body = QueueDeleted),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`if_empty` and the queue holds messages", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQueue>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
) -> Result<Json<QueueDeleted>, ApiError> {
    let queue = in_vhost.resource(&state.broker, &name)?;
    let messages_deleted = state.broker.delete_queue(&queue, query.if_empty.unwrap_or(false)).await?;
    Ok(Json(QueueDeleted { messages_deleted }))
}
