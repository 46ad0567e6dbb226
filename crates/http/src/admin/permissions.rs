//! `/api/v1/permissions`: RabbitMQ's permission entries — per user and
//! vhost, configure / write / read regular expressions — listed, set and
//! cleared (paths as RabbitMQ's: `/permissions/{vhost}/{user}`, `%2F` for `/`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conveyor_core::auth::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionInfo {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// `PUT`'s body: the three patterns (`""` grants nothing, `.*` everything).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPermission {
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// Every permission entry.
#[utoipa::path(get, operation_id = "list_permissions", path = "/permissions", tag = "permissions",
    responses((status = 200, body = Vec<PermissionInfo>), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<Arc<HttpState>>) -> Json<Vec<PermissionInfo>> {
    let entries = state.broker.permissions().await;
    Json(
        entries
            .into_iter()
            .map(|(user, vhost, permission)| PermissionInfo {
                user,
                vhost,
                configure: permission.configure,
                write: permission.write,
                read: permission.read,
            })
            .collect(),
    )
}

/// Sets a user's entry in a vhost (both must exist).
#[utoipa::path(put, operation_id = "set_permission", path = "/permissions/{vhost}/{user}", tag = "permissions",
    params(("vhost" = String, Path), ("user" = String, Path)), request_body = PutPermission,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set(
    State(state): State<Arc<HttpState>>,
    ApiPath((vhost, user)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutPermission>,
) -> Result<StatusCode, ApiError> {
    let permission = Permission {
        configure: body.configure,
        write: body.write,
        read: body.read,
    };
    state.broker.set_permission(&user, &vhost, permission).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears a user's entry in a vhost.
#[utoipa::path(delete, operation_id = "clear_permission", path = "/permissions/{vhost}/{user}", tag = "permissions",
    params(("vhost" = String, Path), ("user" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn clear(State(state): State<Arc<HttpState>>, ApiPath((vhost, user)): ApiPath<(String, String)>) -> Result<StatusCode, ApiError> {
    if state.broker.clear_permission(&user, &vhost).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "user {user:?} has no permission entry in vhost {vhost:?}"
        )))
    }
}
