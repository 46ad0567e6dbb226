//! Who may call the admin API, checked before any handler runs: the
//! principal from HTTP Basic credentials (as RabbitMQ's management API), a
//! console session cookie, or — without either — the anonymous identity
//! where `[auth] anonymous` allows the client's address (401 otherwise);
//! reads need `monitoring` (or `administrator`), changes `administrator`
//! (403). A change must not come from another site: an `Origin` that is
//! not this host, a `Sec-Fetch-Site` other than same-origin or none, or a
//! form content type without an `X-Requested-With` header is refused (403),
//! so a cross-site form or script cannot trigger one while curl, the CLI
//! and SDKs are unaffected. The login itself is the core's authorizer's.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use conveyor_core::auth::{FailureReason, Principal};

use super::error::ApiError;
use super::sessions;
use crate::HttpState;

/// The label of the HTTP door's failures and denials in `/metrics`.
pub const PROTOCOL: &str = "http";
/// Paths under the API anyone may call: logging in and out.
const OPEN_PATHS: &[&str] = &["/api/v1/login", "/api/v1/logout"];

/// The principal a request was let in as, for handlers that need it (`whoami`).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The client's address, for handlers that count failures (`login`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

/// The client's address; a server without connect info (in-process tests)
/// has no loopback client.
pub fn peer_of(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |info| info.0.ip())
}

/// Middleware on every admin route.
pub async fn admin(State(state): State<Arc<HttpState>>, mut request: Request, next: Next) -> Response {
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes && let Err(refusal) = same_site(request.headers()) {
        return refusal.into_response();
    }
    let peer = peer_of(&request);
    request.extensions_mut().insert(Peer(peer));
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let principal = match authenticate(&state, request.headers(), peer).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let authorizer = state.broker.authorizer();
    let allowed = if changes {
        authorizer.is_administrator(&principal)
    } else {
        request.uri().path() == "/api/v1/whoami" || authorizer.is_monitoring(&principal)
    };
    if !allowed {
        let needed = if changes { "administrator" } else { "monitoring" };
        authorizer.failures().denied(PROTOCOL, principal.name(), request.uri().path());
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("user '{}' needs the {needed} tag for this", principal.name()),
        )
        .into_response();
    }
    request.extensions_mut().insert(Caller(principal));
    next.run(request).await
}

/// The request's principal, or the 401 to answer.
pub async fn authenticate(state: &HttpState, headers: &HeaderMap, peer: IpAddr) -> Result<Principal, Response> {
    let authorizer = state.broker.authorizer();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let Some((user, password)) = basic_credentials(value) else {
            return Err(unauthorized(headers, "the Authorization header is not HTTP Basic credentials"));
        };
        return match authorizer.authenticate(&user, &password) {
            Ok(principal) => Ok(principal),
            Err(reason) => {
                let delay = authorizer.failures().login_failed(PROTOCOL, reason, peer, &user);
                // Slows whoever keeps guessing, in this request's task only.
                tokio::time::sleep(delay).await;
                Err(unauthorized(headers, "invalid credentials"))
            }
        };
    }
    if let Some(principal) = sessions::token_of(headers).and_then(|token| state.sessions.principal(&token)) {
        return Ok(principal);
    }
    if authorizer.anonymous_allowed(peer) {
        return Ok(Principal::Anonymous);
    }
    authorizer
        .failures()
        .login_failed(PROTOCOL, FailureReason::AnonymousRefused, peer, "");
    Err(unauthorized(headers, "credentials are required"))
}

/// 401, with RabbitMQ's `WWW-Authenticate: Basic` challenge except for the
/// console's own requests (a challenge there would open the browser's dialog
/// over its login page).
fn unauthorized(headers: &HeaderMap, message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    if !headers.contains_key("x-requested-with") {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Conveyor\""));
    }
    response
}

/// `Basic base64(user:password)`.
pub fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Refuses a change a browser could have sent from another site.
fn same_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = |why: &str| Err(ApiError::new(StatusCode::FORBIDDEN, format!("cross-site request refused: {why}")));
    if let Some(site) = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return refused("Sec-Fetch-Site is not same-origin");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        if origin_host.is_none_or(|origin_host| !origin_host.eq_ignore_ascii_case(host)) {
            return refused("its Origin is not this host");
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    let form = content_type
        .as_deref()
        .is_some_and(|kind| matches!(kind, "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"));
    if form && !headers.contains_key("x-requested-with") {
        return refused("a form body needs a JSON body or an X-Requested-With header instead");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn cross_site_changes_are_refused_and_same_site_ones_pass() {
        assert!(
            same_site(&headers(&[("host", "127.0.0.1:8080")])).is_ok(),
            "curl: no Origin, no body"
        );
        assert!(same_site(&headers(&[("host", "127.0.0.1:8080"), ("content-type", "application/json")])).is_ok());
        assert!(same_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(same_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])).is_err());
        assert!(same_site(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])).is_err());
        assert!(same_site(&headers(&[("host", "h"), ("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_site(&headers(&[("host", "h"), ("content-type", "application/x-www-form-urlencoded")])).is_err());
        assert!(
            same_site(&headers(&[
                ("host", "h"),
                ("content-type", "text/plain"),
                ("x-requested-with", "x")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let value = HeaderValue::from_static("Basic YWxpY2U6czNjcjp0"); // alice:s3cr:t
        assert_eq!(basic_credentials(&value), Some(("alice".into(), "s3cr:t".into())));
        assert_eq!(basic_credentials(&HeaderValue::from_static("Bearer x")), None);
    }
}
