//! Console login sessions: a random token in an `HttpOnly`, `SameSite=Strict`
//! cookie names a principal until it expires or logs out. Held in memory
//! (a restart logs everyone out); bounded in number. Knows tokens and
//! expiry; who may log in is the core's authorizer's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conveyor_core::auth::Principal;
use parking_lot::Mutex;

/// The cookie's name.
pub const COOKIE: &str = "conveyor_session";
/// How long a session lasts after its login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions held at once; the oldest goes first past this.
const SESSIONS_MAX: usize = 10_000;

#[derive(Debug, Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Sessions {
    /// A new session for `principal`; returns its token, or `None` without randomness.
    pub fn start(&self, principal: Principal) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut sessions = self.by_token.lock();
        sessions.retain(|_, (_, expires)| *expires > now);
        if sessions.len() >= SESSIONS_MAX
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(token, _)| token.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), (principal, now + SESSION_TTL));
        Some(token)
    }

    /// The principal of a live session.
    pub fn principal(&self, token: &str) -> Option<Principal> {
        let mut sessions = self.by_token.lock();
        match sessions.get(token) {
            Some((principal, expires)) if *expires > Instant::now() => Some(principal.clone()),
            Some(_) => {
                sessions.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, token: &str) {
        self.by_token.lock().remove(token);
    }
}

/// The session token a request's `Cookie` header carries.
pub fn token_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, token)| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_principal_until_it_ends() {
        let sessions = Sessions::default();
        let token = sessions.start(Principal::User("alice".into())).expect("token");
        assert_eq!(sessions.principal(&token), Some(Principal::User("alice".into())));
        assert_eq!(sessions.principal("forged"), None);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("a=b; {COOKIE}={token}").parse().expect("header"),
        );
        assert_eq!(token_of(&headers).as_deref(), Some(token.as_str()));
        sessions.end(&token);
        assert_eq!(sessions.principal(&token), None);
    }
}
