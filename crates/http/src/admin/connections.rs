//! `/api/v1/connections`: the open Kafka and AMQP connections (protocol,
//! peer address, client, user, since when, open channels) from the core's
//! registry, and closing one — an AMQP client is told 320
//! CONNECTION_FORCED first, as RabbitMQ's management API does; a Kafka
//! connection is dropped.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conveyor_core::connections::ConnectionInfo;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiPath, ErrorBody};
use crate::HttpState;

/// The protocol a connection speaks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionProtocol {
    Kafka,
    Amqp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Connection {
    /// The broker's id of the connection, for closing it.
    pub id: u64,
    pub protocol: ConnectionProtocol,
    /// The client's address and port.
    pub address: String,
    /// Kafka: the client id of its requests; AMQP: the connection name the
    /// client gave, else its library's product and version. Empty until known.
    pub client: String,
    /// AMQP: the user that logged in; Kafka: null.
    pub user: Option<String>,
    /// AMQP: the vhost the connection opened; Kafka: null.
    pub vhost: Option<String>,
    /// When the connection was accepted, in ms since the Unix epoch.
    pub connected_at_ms: u64,
    /// AMQP: open channels; Kafka: 0.
    pub channels: u64,
}

impl From<ConnectionInfo> for Connection {
    fn from(info: ConnectionInfo) -> Connection {
        Connection {
            id: info.id,
            protocol: match info.protocol {
                conveyor_core::connections::Protocol::Kafka => ConnectionProtocol::Kafka,
                conveyor_core::connections::Protocol::Amqp => ConnectionProtocol::Amqp,
            },
            address: info.peer.to_string(),
            client: info.client,
            user: info.user,
            vhost: info.vhost,
            connected_at_ms: info.connected_at_ms,
            channels: info.channels,
        }
    }
}

/// Every open client connection, oldest first.
#[utoipa::path(get, operation_id = "list_connections", path = "/connections", tag = "connections",
    responses((status = 200, body = Vec<Connection>)))]
pub async fn list(State(state): State<Arc<HttpState>>) -> Json<Vec<Connection>> {
    Json(state.broker.connections().list().into_iter().map(Connection::from).collect())
}

/// Closes a connection. Answers once the close is asked for; the
/// connection leaves the list when its socket is closed.
#[utoipa::path(delete, operation_id = "close_connection", path = "/connections/{id}", tag = "connections",
    params(("id" = u64, Path, description = "connection id, from the list")),
    responses(
        (status = 204, description = "closing"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn close(State(state): State<Arc<HttpState>>, ApiPath(id): ApiPath<u64>) -> Result<StatusCode, ApiError> {
    if state.broker.connections().close(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no open connection with id {id}")))
    }
}
