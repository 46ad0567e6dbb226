//! `/api/v1/vhosts`: list, create and delete AMQP virtual hosts. `/`
//! always exists (SQS queues, SNS topics and the other endpoints' names are
//! in it); deleting another vhost deletes its queues (with their messages)
//! and exchanges. In paths, `/` is `%2F`, as in RabbitMQ's API. Also
//! [`InVhost`], the `?vhost=` of the endpoints that name one queue or
//! exchange.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conveyor_core::vhost::DEFAULT_VHOST;
use conveyor_core::{Broker, CoreError, VirtualHost};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiPath, ErrorBody};
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct VhostInfo {
    pub name: String,
    /// Queues declared in the vhost.
    pub queues: u64,
    /// Exchanges in the vhost, the predeclared ones included.
    pub exchanges: u64,
}

/// `?vhost=`: the vhost of the queue or exchange a path names.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InVhost {
    /// The AMQP vhost the queue or exchange is in; `/` when absent.
    pub vhost: Option<String>,
}

impl InVhost {
    /// The vhost (404 for an unknown one).
    pub(super) fn get(&self, broker: &Broker) -> Result<VirtualHost, ApiError> {
        let vhost_name = self.vhost.as_deref().unwrap_or(DEFAULT_VHOST);
        broker
            .vhost(vhost_name)
            .ok_or_else(|| ApiError::not_found(format!("vhost {vhost_name:?} does not exist")))
    }

    /// The broker-wide name of `name` in this vhost (404 for an unknown vhost).
    pub(super) fn resource(&self, broker: &Broker, name: &str) -> Result<String, ApiError> {
        Ok(self.get(broker)?.resource(name).map_err(CoreError::from)?)
    }
}

/// `?vhost=` of a listing: only what is in that vhost; everything when absent.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VhostFilter {
    /// Only the objects of this AMQP vhost; those of every vhost when absent.
    pub vhost: Option<String>,
}

impl VhostFilter {
    /// Whether the broker-wide name `resource` is in the vhost asked for.
    pub(super) fn admits(&self, resource: &str) -> bool {
        self.vhost
            .as_deref()
            .is_none_or(|wanted| conveyor_core::vhost::split(resource).0 == wanted)
    }
}

fn info(broker: &Broker, vhost: &VirtualHost) -> VhostInfo {
    VhostInfo {
        name: vhost.name().to_owned(),
        queues: broker.queues().iter().filter(|queue| vhost.contains(&queue.name)).count() as u64,
        exchanges: broker.exchanges().iter().filter(|exchange| vhost.contains(&exchange.name)).count() as u64,
    }
}

/// Every virtual host, `/` first.
#[utoipa::path(get, operation_id = "list_vhosts", path = "/vhosts", tag = "vhosts",
    responses((status = 200, body = Vec<VhostInfo>), (status = 500, body = ErrorBody)))]
pub async fn list(State(state): State<Arc<HttpState>>) -> Result<Json<Vec<VhostInfo>>, ApiError> {
    let broker = &state.broker;
    Ok(Json(broker.vhosts().iter().map(|vhost| info(broker, vhost)).collect()))
}

/// Creates a virtual host with its predeclared exchanges (the default
/// exchange and `amq.direct`, `amq.fanout`, `amq.topic`, `amq.headers`,
/// `amq.match`); creating one that exists changes nothing.
#[utoipa::path(put, operation_id = "create_vhost", path = "/vhosts/{name}", tag = "vhosts",
    params(("name" = String, Path, description = "vhost name (1 to 255 bytes, no control characters)")),
    responses(
        (status = 201, description = "created", body = VhostInfo),
        (status = 204, description = "it existed"),
        (status = 400, description = "an invalid name", body = ErrorBody),
    ))]
pub async fn create(State(state): State<Arc<HttpState>>, ApiPath(name): ApiPath<String>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let broker = &state.broker;
    let (vhost, created) = broker.create_vhost(&name).await?;
    Ok(if created {
        (StatusCode::CREATED, Json(info(broker, &vhost))).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    })
}

/// Deletes a virtual host with its queues (and their messages), exchanges
/// and bindings. `/` cannot be deleted.
#[utoipa::path(delete, operation_id = "delete_vhost", path = "/vhosts/{name}", tag = "vhosts",
    params(("name" = String, Path, description = "vhost name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "an invalid name, or `/`", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn delete(State(state): State<Arc<HttpState>>, ApiPath(name): ApiPath<String>) -> Result<StatusCode, ApiError> {
    state.broker.delete_vhost(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
