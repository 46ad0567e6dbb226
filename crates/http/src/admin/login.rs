//! `/api/v1/login` and `/api/v1/logout`: the console's session. A login
//! checks the user's password with the core's authorizer and sets an
//! `HttpOnly`, `SameSite=Strict` session cookie; logout ends it. Failures
//! are counted and slowed down like any other login.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ErrorBody};
use super::guard::Peer;
use super::sessions::{self, COOKIE, SESSION_TTL};
use super::users::{WhoAmI, who};
use crate::HttpState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// Logs in: answers who, with the session cookie.
#[utoipa::path(post, operation_id = "login", path = "/login", tag = "users", request_body = Login,
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn login(
    State(state): State<Arc<HttpState>>,
    Extension(Peer(peer)): Extension<Peer>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let authorizer = state.broker.authorizer();
    let principal = match authorizer.authenticate(&body.username, &body.password) {
        Ok(principal) => principal,
        Err(reason) => {
            let delay = authorizer
                .failures()
                .login_failed(super::guard::PROTOCOL, reason, peer, &body.username);
            tokio::time::sleep(delay).await;
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid user name or password"));
        }
    };
    let token = state
        .sessions
        .start(principal.clone())
        .ok_or_else(|| ApiError::internal("no randomness for a session token"))?;
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut response = Json(who(&state, &principal)).into_response();
    let value = HeaderValue::from_str(&cookie).map_err(|error| ApiError::internal(error.to_string()))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

/// Ends the session of the request's cookie.
#[utoipa::path(post, operation_id = "logout", path = "/logout", tag = "users",
    responses((status = 204)))]
pub async fn logout(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Some(token) = sessions::token_of(&headers) {
        state.sessions.end(&token);
    }
    let expired = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
