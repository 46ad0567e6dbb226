//! `/api/v1/exchanges` and `/api/v1/bindings`: the exchanges (the
//! predeclared ones included; the default exchange is `amq.default` in
//! paths, `""` in bodies) and their bindings to queues, exchanges and Kafka
//! topics.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_core::Broker;
use conveyor_core::exchange::{Binding, DEFAULT_EXCHANGE, Destination, Exchange, HeaderValue};
use conveyor_core::vhost;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::messages::DEFAULT_EXCHANGE_ALIAS;
use super::vhosts::InVhost;
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeInfo {
    /// The exchange's name in its vhost; `""` is the default exchange.
    pub name: String,
    /// The AMQP virtual host the exchange is in.
    pub vhost: String,
    /// `direct`, `fanout`, `topic` or `headers`.
    pub kind: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub alternate_exchange: Option<String>,
    /// Bindings with this exchange as their source.
    pub bindings: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BindingInfo {
    /// The AMQP virtual host of the binding (both ends are in it; a Kafka topic is in `/`).
    pub vhost: String,
    pub source: String,
    /// `queue`, `exchange` or `topic`.
    pub destination_kind: String,
    pub destination: String,
    pub binding_key: String,
    /// Binding arguments (a headers exchange matches them), as JSON values.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeDetail {
    #[serde(flatten)]
    pub exchange: ExchangeInfo,
    pub bindings_from: Vec<BindingInfo>,
}

fn info(exchange: Exchange, bindings: u64) -> ExchangeInfo {
    let (vhost, name) = vhost::split(&exchange.name);
    ExchangeInfo {
        name: name.to_owned(),
        vhost: vhost.into_owned(),
        kind: exchange.kind.as_str().to_owned(),
        durable: exchange.durable,
        auto_delete: exchange.auto_delete,
        internal: exchange.internal,
        alternate_exchange: exchange.alternate_exchange,
        bindings,
    }
}

fn binding_info(source: &str, binding: Binding) -> BindingInfo {
    let destination_kind = match &binding.destination {
        Destination::Queue(_) => "queue",
        Destination::Exchange(_) => "exchange",
        Destination::Topic(_) => "topic",
    };
    let (vhost, source) = vhost::split(source);
    BindingInfo {
        vhost: vhost.into_owned(),
        source: source.to_owned(),
        destination_kind: destination_kind.to_owned(),
        destination: vhost::local_name(binding.destination.name()).to_owned(),
        binding_key: binding.binding_key,
        arguments: serde_json::Value::Object(binding.arguments.into_iter().map(|(key, value)| (key, json(value))).collect()),
    }
}

/// An AMQP field value as plain JSON.
fn json(value: HeaderValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        HeaderValue::Void => Value::Null,
        HeaderValue::Bool(value) => Value::Bool(value),
        HeaderValue::I8(value) => value.into(),
        HeaderValue::U8(value) => value.into(),
        HeaderValue::I16(value) => value.into(),
        HeaderValue::U16(value) => value.into(),
        HeaderValue::I32(value) => value.into(),
        HeaderValue::U32(value) => value.into(),
        HeaderValue::I64(value) => value.into(),
        HeaderValue::F32(value) => value.into(),
        HeaderValue::F64(value) => value.into(),
        HeaderValue::Decimal { scale, value } => (f64::from(value) / 10f64.powi(i32::from(scale))).into(),
        HeaderValue::Timestamp(value) => value.into(),
        HeaderValue::String(value) => value.into(),
        HeaderValue::Bytes(value) => String::from_utf8_lossy(&value).into_owned().into(),
        HeaderValue::Array(values) => Value::Array(values.into_iter().map(json).collect()),
        HeaderValue::Table(table) => Value::Object(table.into_iter().map(|(key, value)| (key, json(value))).collect()),
    }
}

fn bindings_of(broker: &Broker, name: &str) -> Vec<BindingInfo> {
    broker
        .bindings(name)
        .unwrap_or_default()
        .into_iter()
        .map(|binding| binding_info(name, binding))
        .collect()
}

/// Every exchange, by name.
#[utoipa::path(get, operation_id = "list_exchanges", path = "/exchanges", tag = "exchanges",
    responses((status = 200, body = Vec<ExchangeInfo>), (status = 500, body = ErrorBody)))]
pub async fn list(State(state): State<Arc<HttpState>>) -> Result<Json<Vec<ExchangeInfo>>, ApiError> {
    let broker = &state.broker;
    let exchanges = broker
        .exchanges()
        .into_iter()
        .map(|exchange| {
            let bindings = broker.bindings(&exchange.name).map_or(0, |bindings| bindings.len() as u64);
            info(exchange, bindings)
        })
        .collect();
    Ok(Json(exchanges))
}

/// An exchange and its bindings.
#[utoipa::path(get, operation_id = "describe_exchange", path = "/exchanges/{name}", tag = "exchanges",
    params(("name" = String, Path, description = "exchange name; amq.default for the default exchange"), InVhost),
    responses((status = 200, body = ExchangeDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn describe(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
) -> Result<Json<ExchangeDetail>, ApiError> {
    let broker = &state.broker;
    let name = if name == DEFAULT_EXCHANGE_ALIAS { DEFAULT_EXCHANGE } else { &name };
    let resource = in_vhost.resource(broker, name)?;
    let exchange = broker
        .exchange(&resource)
        .ok_or_else(|| ApiError::not_found(format!("exchange {name:?} does not exist")))?;
    let bindings_from = bindings_of(broker, &resource);
    Ok(Json(ExchangeDetail {
        exchange: info(exchange, bindings_from.len() as u64),
        bindings_from,
    }))
}

/// Every binding of every exchange.
#[utoipa::path(get, operation_id = "list_bindings", path = "/bindings", tag = "exchanges",
    responses((status = 200, body = Vec<BindingInfo>), (status = 500, body = ErrorBody)))]
pub async fn bindings(State(state): State<Arc<HttpState>>) -> Result<Json<Vec<BindingInfo>>, ApiError> {
    let broker = &state.broker;
    let all = broker
        .exchanges()
        .into_iter()
        .flat_map(|exchange| bindings_of(broker, &exchange.name))
        .collect();
    Ok(Json(all))
}
