//! `/api/v1/users`: the broker's users — list, describe, create or replace
//! (`PUT`, RabbitMQ's shape: password, tags), change a password, delete —
//! and `/api/v1/whoami`. Passwords go in and are hashed by the core;
//! credentials and AWS secrets never come out.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use conveyor_core::auth::{AwsAccessKey, Principal, Tag, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::guard::Caller;
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    pub name: String,
    /// `administrator`, `monitoring`.
    pub tags: Vec<String>,
    /// SCRAM mechanisms it has credentials for (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub mechanisms: Vec<String>,
    /// Its AWS access key id, if it has one (the secret is never shown).
    pub aws_access_key_id: Option<String>,
}

impl From<&User> for UserInfo {
    fn from(user: &User) -> UserInfo {
        UserInfo {
            name: user.name.clone(),
            tags: user.tags.iter().map(|tag| tag.name().to_owned()).collect(),
            mechanisms: user
                .credentials
                .iter()
                .map(|credential| credential.mechanism.name().to_owned())
                .collect(),
            aws_access_key_id: user.aws_access_key.as_ref().map(|key| key.access_key_id.clone()),
        }
    }
}

/// `PUT /users/{name}`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutUser {
    /// Hashed into SCRAM credentials; without it an existing user keeps its own.
    pub password: Option<String>,
    /// Replaces the tags (none when absent).
    #[serde(default)]
    pub tags: Vec<String>,
    /// With `aws_secret_access_key`: the user's AWS key (replaces the old one; none when absent).
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The user's name; `anonymous` for the anonymous identity.
    pub name: String,
    pub anonymous: bool,
    pub tags: Vec<String>,
    /// Whether it may change things (administrators and the anonymous identity).
    pub administrator: bool,
}

/// Who the request was let in as.
#[utoipa::path(get, operation_id = "whoami", path = "/whoami", tag = "users",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn whoami(State(state): State<Arc<HttpState>>, caller: Option<Extension<Caller>>) -> Result<Json<WhoAmI>, ApiError> {
    let Some(Extension(Caller(principal))) = caller else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "not logged in"));
    };
    Ok(Json(who(&state, &principal)))
}

pub(super) fn who(state: &HttpState, principal: &Principal) -> WhoAmI {
    let authorizer = state.broker.authorizer();
    let (name, anonymous, tags) = match principal {
        Principal::Anonymous => ("anonymous".to_owned(), true, Vec::new()),
        Principal::User(name) => (
            name.clone(),
            false,
            authorizer
                .user(name)
                .map(|user| user.tags.iter().map(|tag| tag.name().to_owned()).collect())
                .unwrap_or_default(),
        ),
    };
    WhoAmI {
        name,
        anonymous,
        tags,
        administrator: authorizer.is_administrator(principal),
    }
}

/// Every user.
#[utoipa::path(get, operation_id = "list_users", path = "/users", tag = "users",
    responses((status = 200, body = Vec<UserInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<Arc<HttpState>>) -> Json<Vec<UserInfo>> {
    Json(state.broker.authorizer().users().iter().map(UserInfo::from).collect())
}

/// One user.
#[utoipa::path(get, operation_id = "describe_user", path = "/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 200, body = UserInfo), (status = 404, body = ErrorBody)))]
pub async fn describe(State(state): State<Arc<HttpState>>, ApiPath(name): ApiPath<String>) -> Result<Json<UserInfo>, ApiError> {
    let user = state
        .broker
        .authorizer()
        .user(&name)
        .ok_or_else(|| ApiError::not_found(format!("no user {name:?}")))?;
    Ok(Json(UserInfo::from(&user)))
}

/// Creates or replaces a user (durable when answered).
#[utoipa::path(put, operation_id = "put_user", path = "/users/{name}", tag = "users",
    params(("name" = String, Path)), request_body = PutUser,
    responses((status = 201, description = "created"), (status = 204, description = "replaced"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PutUser>,
) -> Result<StatusCode, ApiError> {
    let tags = body
        .tags
        .iter()
        .map(|tag| tag.parse::<Tag>())
        .collect::<Result<BTreeSet<Tag>, _>>()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let aws_access_key = match (body.aws_access_key_id, body.aws_secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Some(AwsAccessKey {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => None,
        _ => return Err(ApiError::bad_request("aws_access_key_id and aws_secret_access_key go together")),
    };
    let created = state.broker.put_user(&name, body.password.as_deref(), tags, aws_access_key).await?;
    Ok(if created { StatusCode::CREATED } else { StatusCode::NO_CONTENT })
}

/// Replaces a user's credentials with ones from a new password.
#[utoipa::path(put, operation_id = "set_user_password", path = "/users/{name}/password", tag = "users",
    params(("name" = String, Path)), request_body = NewPassword,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_password(
    State(state): State<Arc<HttpState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    state.broker.set_user_password(&name, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a user and its permission entries.
#[utoipa::path(delete, operation_id = "delete_user", path = "/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<Arc<HttpState>>, ApiPath(name): ApiPath<String>) -> Result<StatusCode, ApiError> {
    state.broker.delete_user(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
