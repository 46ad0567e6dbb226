//! `/api/v1/bindings`: list the bindings of every exchange, add one and
//! remove one, as AMQP's `queue.bind`/`exchange.bind` and their unbinds do
//! (a binding is its source, destination, routing key and arguments; a
//! Kafka topic can be a destination in vhost `/`). Translates only: the
//! router refuses what AMQP's methods would have refused.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conveyor_core::exchange::{Binding, DEFAULT_EXCHANGE, Destination};
use conveyor_core::{Broker, CoreError, VirtualHost, vhost};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::field_table;
use super::messages::DEFAULT_EXCHANGE_ALIAS;
use super::vhosts::{InVhost, VhostFilter};
use crate::HttpState;

/// What a binding delivers to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationType {
    #[default]
    Queue,
    Exchange,
    /// A Kafka topic (vhost `/` only): messages land in the partition Kafka's partitioner picks for the routing key.
    Topic,
}

impl DestinationType {
    fn of(destination: &Destination) -> DestinationType {
        match destination {
            Destination::Queue(_) => DestinationType::Queue,
            Destination::Exchange(_) => DestinationType::Exchange,
            Destination::Topic(_) => DestinationType::Topic,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationType::Queue => "queue",
            DestinationType::Exchange => "exchange",
            DestinationType::Topic => "topic",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BindingInfo {
    /// The AMQP virtual host of the binding (both ends are in it; a Kafka topic is in `/`).
    pub vhost: String,
    /// The source exchange; `""` is the default exchange.
    pub source: String,
    pub destination: String,
    /// `queue`, `exchange` or `topic`.
    pub destination_type: DestinationType,
    /// The binding key (RabbitMQ calls it the routing key of the binding).
    pub routing_key: String,
    /// Binding arguments (a headers exchange matches them), as JSON values.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    /// The same as `destination_type` (kept for earlier clients).
    pub destination_kind: String,
    /// The same as `routing_key` (kept for earlier clients).
    pub binding_key: String,
}

/// `POST` and `DELETE /bindings`' body: one binding, in the vhost of `?vhost=`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingRequest {
    /// The source exchange (`""` or `amq.default` name the default exchange, which takes no bindings).
    pub source: String,
    /// The queue, exchange or Kafka topic bound to.
    pub destination: String,
    /// `queue` (default), `exchange` or `topic`.
    #[serde(default)]
    pub destination_type: DestinationType,
    /// The binding key: an exact key (direct) or a pattern (topic); unused by fanout and headers exchanges.
    #[serde(default)]
    pub routing_key: String,
    /// Binding arguments as JSON values (AMQP types as in queue arguments); a headers exchange matches them (`x-match`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

pub(super) fn binding_info(source: &str, binding: Binding) -> BindingInfo {
    let destination_type = DestinationType::of(&binding.destination);
    let (vhost, source) = vhost::split(source);
    BindingInfo {
        vhost: vhost.into_owned(),
        source: source.to_owned(),
        destination: vhost::local_name(binding.destination.name()).to_owned(),
        destination_type,
        routing_key: binding.binding_key.clone(),
        arguments: field_table::json_table(&binding.arguments),
        destination_kind: destination_type.as_str().to_owned(),
        binding_key: binding.binding_key,
    }
}

/// The bindings whose source is the exchange `name` (broker-wide).
pub(super) fn bindings_of(broker: &Broker, name: &str) -> Vec<BindingInfo> {
    broker
        .bindings(name)
        .unwrap_or_default()
        .into_iter()
        .map(|binding| binding_info(name, binding))
        .collect()
}

/// The source (broker-wide) and the binding a request names in `vhost`.
pub(super) fn resolve(vhost: &VirtualHost, request: &BindingRequest) -> Result<(String, Binding), ApiError> {
    let source = if request.source == DEFAULT_EXCHANGE_ALIAS {
        DEFAULT_EXCHANGE
    } else {
        &request.source
    };
    let source = vhost.resource(source).map_err(CoreError::from)?;
    let destination = match request.destination_type {
        DestinationType::Queue => Destination::Queue(vhost.resource(&request.destination).map_err(CoreError::from)?),
        DestinationType::Exchange => Destination::Exchange(vhost.resource(&request.destination).map_err(CoreError::from)?),
        // Kafka topics have no vhost: only `/` binds to them, as over AMQP.
        DestinationType::Topic if vhost.is_default() => Destination::Topic(request.destination.clone()),
        DestinationType::Topic => {
            return Err(ApiError::bad_request(format!(
                "Kafka topics are reachable from vhost '/' only, not from {:?}",
                vhost.name()
            )));
        }
    };
    let binding = Binding::new(destination, request.routing_key.clone()).with_arguments(field_table::table(&request.arguments));
    Ok((source, binding))
}

/// Every binding of every exchange (of one vhost with `?vhost=`).
#[utoipa::path(get, operation_id = "list_bindings", path = "/bindings", tag = "exchanges",
    params(VhostFilter),
    responses((status = 200, body = Vec<BindingInfo>), (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    ApiQuery(filter): ApiQuery<VhostFilter>,
) -> Result<Json<Vec<BindingInfo>>, ApiError> {
    let broker = &state.broker;
    let all = broker
        .exchanges()
        .into_iter()
        .filter(|exchange| filter.admits(&exchange.name))
        .flat_map(|exchange| bindings_of(broker, &exchange.name))
        .collect();
    Ok(Json(all))
}

/// Binds a queue, an exchange or a Kafka topic to an exchange, as AMQP's
/// `queue.bind` and `exchange.bind` do: both ends must exist; binding the
/// same (source, destination, key, arguments) again changes nothing (204).
/// Durable when answered if both ends are.
#[utoipa::path(post, operation_id = "add_binding", path = "/bindings", tag = "exchanges",
    params(InVhost), request_body = BindingRequest,
    responses(
        (status = 201, description = "bound", body = BindingInfo),
        (status = 204, description = "it was bound already"),
        (status = 400, description = "the default exchange, invalid arguments, a topic outside `/`", body = ErrorBody),
        (status = 404, description = "no such vhost, exchange, queue or topic", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<Arc<HttpState>>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(request): ApiJson<BindingRequest>,
) -> Result<Response, ApiError> {
    let broker = &state.broker;
    let (source, binding) = resolve(&in_vhost.get(broker)?, &request)?;
    if broker.exchange(&source).is_none() {
        return Err(ApiError::not_found(format!("exchange {:?} does not exist", request.source)));
    }
    if broker.bindings(&source)?.contains(&binding) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    broker.bind(&source, binding.clone()).await?;
    Ok((StatusCode::CREATED, Json(binding_info(&source, binding))).into_response())
}

/// Removes a binding (the same source, destination, key and arguments), as
/// AMQP's `queue.unbind` and `exchange.unbind` do.
#[utoipa::path(delete, operation_id = "remove_binding", path = "/bindings", tag = "exchanges",
    params(InVhost), request_body = BindingRequest,
    responses(
        (status = 204, description = "removed"),
        (status = 400, body = ErrorBody),
        (status = 404, description = "no such vhost, exchange or binding", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<Arc<HttpState>>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(request): ApiJson<BindingRequest>,
) -> Result<StatusCode, ApiError> {
    let broker = &state.broker;
    let (source, binding) = resolve(&in_vhost.get(broker)?, &request)?;
    if broker.exchange(&source).is_none() {
        return Err(ApiError::not_found(format!("exchange {:?} does not exist", request.source)));
    }
    if !broker.bindings(&source)?.contains(&binding) {
        return Err(ApiError::not_found(format!(
            "exchange {:?} has no such binding to {} {:?} with routing key {:?}",
            request.source,
            request.destination_type.as_str(),
            request.destination,
            request.routing_key
        )));
    }
    broker.unbind(&source, binding).await?;
    Ok(StatusCode::NO_CONTENT)
}
