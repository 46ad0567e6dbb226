//! `/api/v1/exchanges`: declare, list, describe and delete exchanges (the
//! predeclared ones included; the default exchange is `amq.default` in
//! paths, `""` in bodies), as AMQP's `exchange.declare` and
//! `exchange.delete` do, with the same refusals. Their bindings are
//! `bindings.rs`'s.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conveyor_core::exchange::{DEFAULT_EXCHANGE, Exchange, ExchangeKind, HeaderValue};
use conveyor_core::vhost;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::bindings::{BindingInfo, bindings_of};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::field_table;
use super::messages::DEFAULT_EXCHANGE_ALIAS;
use super::vhosts::{InVhost, VhostFilter};
use crate::HttpState;

/// The argument of an exchange declaration the broker keeps (others are
/// ignored, as the AMQP door ignores them).
pub const ALTERNATE_EXCHANGE: &str = "alternate-exchange";

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
pub struct ExchangeDetail {
    #[serde(flatten)]
    pub exchange: ExchangeInfo,
    pub bindings_from: Vec<BindingInfo>,
}

/// `PUT /exchanges/{name}`'s body: a declaration, as AMQP's `exchange.declare` carries it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareExchange {
    /// `direct`, `fanout`, `topic` or `headers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Survives a restart (default true).
    #[serde(default = "yes")]
    pub durable: bool,
    /// Deleted once its last binding goes (default false).
    #[serde(default)]
    pub auto_delete: bool,
    /// Only other exchanges route into it (default false).
    #[serde(default)]
    pub internal: bool,
    /// `alternate-exchange` (a string): where messages go that its bindings route nowhere.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteExchange {
    /// Only delete the exchange if nothing is bound from it (409 otherwise).
    pub if_unused: Option<bool>,
}

/// The exchange a path names: `amq.default` is the default exchange.
fn path_name(name: &str) -> &str {
    if name == DEFAULT_EXCHANGE_ALIAS { DEFAULT_EXCHANGE } else { name }
}

/// An exchange as a declaration gives it (`resource` broker-wide), with the
/// AMQP door's reading of its arguments.
pub(super) fn definition(resource: String, body: &DeclareExchange) -> Result<Exchange, ApiError> {
    let kind: ExchangeKind = body.kind.parse().map_err(ApiError::from)?;
    let alternate_exchange = match body.arguments.get(ALTERNATE_EXCHANGE).map(field_table::field) {
        Some(HeaderValue::String(name)) => Some(name),
        _ => None,
    };
    let mut exchange = Exchange::new(resource, kind);
    exchange.durable = body.durable;
    exchange.auto_delete = body.auto_delete;
    exchange.internal = body.internal;
    exchange.alternate_exchange = alternate_exchange;
    Ok(exchange)
}

pub(super) fn info(exchange: Exchange, bindings: u64) -> ExchangeInfo {
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

/// Every exchange (of one vhost with `?vhost=`), by name.
#[utoipa::path(get, operation_id = "list_exchanges", path = "/exchanges", tag = "exchanges",
    params(VhostFilter),
    responses((status = 200, body = Vec<ExchangeInfo>), (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    ApiQuery(filter): ApiQuery<VhostFilter>,
) -> Result<Json<Vec<ExchangeInfo>>, ApiError> {
    let broker = &state.broker;
    let exchanges = broker
        .exchanges()
        .into_iter()
        .filter(|exchange| filter.admits(&exchange.name))
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
    let name = path_name(&name);
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

/// Declares an exchange, as AMQP's `exchange.declare` does: created (201)
/// or, if it exists declared the same way, left as it is (204); declared
/// otherwise, refused (409). Names starting with `amq.` are reserved (400).
/// Durable when answered.
#[utoipa::path(put, operation_id = "declare_exchange", path = "/exchanges/{name}", tag = "exchanges",
    params(("name" = String, Path, description = "exchange name (1 to 255 bytes, not starting with amq.)"), InVhost),
    request_body = DeclareExchange,
    responses(
        (status = 201, description = "created", body = ExchangeInfo),
        (status = 204, description = "it existed, declared the same way"),
        (status = 400, description = "an unknown type, a reserved or invalid name", body = ErrorBody),
        (status = 404, description = "no such vhost", body = ErrorBody),
        (status = 409, description = "it exists, declared otherwise", body = ErrorBody),
    ))]
pub async fn declare(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
    ApiJson(body): ApiJson<DeclareExchange>,
) -> Result<Response, ApiError> {
    let broker = &state.broker;
    let resource = in_vhost.resource(broker, &name)?;
    let exchange = definition(resource.clone(), &body)?;
    let existed = broker.exchange(&resource).is_some();
    broker.declare_exchange(exchange).await?;
    if existed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let declared = broker
        .exchange(&resource)
        .ok_or_else(|| ApiError::conflict(format!("exchange {name:?} was deleted meanwhile")))?;
    Ok((StatusCode::CREATED, Json(info(declared, 0))).into_response())
}

/// Deletes an exchange and the bindings from and to it, as AMQP's
/// `exchange.delete` does. The predeclared exchanges cannot be deleted.
#[utoipa::path(delete, operation_id = "delete_exchange", path = "/exchanges/{name}", tag = "exchanges",
    params(("name" = String, Path, description = "exchange name"), DeleteExchange, InVhost),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "predeclared, or `if_unused` and it has bindings", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteExchange>,
    ApiQuery(in_vhost): ApiQuery<InVhost>,
) -> Result<StatusCode, ApiError> {
    let broker = &state.broker;
    let name = path_name(&name);
    let resource = in_vhost.resource(broker, name)?;
    if broker.exchange(&resource).is_none() {
        return Err(ApiError::not_found(format!("exchange {name:?} does not exist")));
    }
    broker.delete_exchange(&resource, query.if_unused.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}
