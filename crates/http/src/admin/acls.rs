//! `/api/v1/acls`: Kafka's ACL bindings (resource type, name, pattern type,
//! principal, host, operation, permission type — Kafka's names, e.g.
//! `TOPIC`, `PREFIXED`, `WRITE`, `ALLOW`): list by filter, create, delete by filter.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conveyor_core::auth::{Acl, AclFilter};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::HttpState;

/// `POST /acls`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAcls {
    /// Each `{resource_type, resource_name, pattern_type, principal, host, operation, permission_type}`.
    #[schema(value_type = Vec<Object>)]
    pub acls: Vec<Acl>,
}

/// The ACL bindings a filter (query parameters, each optional) matches.
#[utoipa::path(get, operation_id = "list_acls", path = "/acls", tag = "acls",
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody)))]
pub async fn list(State(state): State<Arc<HttpState>>, ApiQuery(filter): ApiQuery<AclFilter>) -> Json<Vec<Acl>> {
    Json(state.broker.acls(&filter).await)
}

/// Adds ACL bindings (durable when answered).
#[utoipa::path(post, operation_id = "create_acls", path = "/acls", tag = "acls", request_body = CreateAcls,
    responses((status = 201), (status = 400, body = ErrorBody)))]
pub async fn create(State(state): State<Arc<HttpState>>, ApiJson(body): ApiJson<CreateAcls>) -> Result<StatusCode, ApiError> {
    state.broker.create_acls(body.acls).await?;
    Ok(StatusCode::CREATED)
}

/// Deletes the ACL bindings a filter matches; answers them.
#[utoipa::path(delete, operation_id = "delete_acls", path = "/acls", tag = "acls",
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody)))]
pub async fn delete(State(state): State<Arc<HttpState>>, ApiQuery(filter): ApiQuery<AclFilter>) -> Result<Json<Vec<Acl>>, ApiError> {
    Ok(Json(state.broker.delete_acls(&[filter]).await?))
}
