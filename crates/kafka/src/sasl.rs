//! Kafka SASL on one connection: SaslHandshake picks a mechanism (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512), then SaslAuthenticate requests — or,
//! after a v0 handshake, bare size-prefixed tokens — carry the exchange,
//! which rsasl's server side runs. Its callback hands SCRAM the stored
//! credential (`ScramStoredPassword`) from the core's user store and checks
//! PLAIN passwords against the same store. Knows SASL and the store; what
//! an authenticated principal may do is the authorizer's.

use std::io::Cursor;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use conveyor_core::Broker;
use conveyor_core::auth::{FailureReason, ScramMechanism};
use parking_lot::Mutex;
use rsasl::callback::{Context as SaslContext, Request as SaslRequest, SessionCallback, SessionData};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::prelude::{Mechname, SASLConfig, SASLServer, Session, SessionError, State};
use rsasl::property::{AuthId, AuthzId, Password};
use rsasl::validate::{Validate, Validation, ValidationError};

/// The mechanisms offered, in SaslHandshake's answer.
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// What rsasl's validation yields: the name of the user who proved who they are.
#[derive(Debug)]
struct Login;

impl Validation for Login {
    type Value = String;
}

/// rsasl's view of the user store. Remembers the name the client gave,
/// for the failure counters and log.
#[derive(Debug)]
struct StoreCallback {
    broker: Arc<Broker>,
    user: Arc<Mutex<Option<String>>>,
}

impl SessionCallback for StoreCallback {
    fn callback(&self, session_data: &SessionData, context: &SaslContext, request: &mut SaslRequest<'_>) -> Result<(), SessionError> {
        if !request.is::<ScramStoredPassword>() {
            return Ok(());
        }
        let Some(name) = context.get_ref::<AuthId>() else {
            return Ok(());
        };
        *self.user.lock() = Some(name.to_owned());
        let Some(mechanism) = ScramMechanism::from_name(session_data.mechanism().mechanism) else {
            return Ok(());
        };
        // Unsatisfied, rsasl answers with a made-up salt and fails the
        // proof, so an unknown user looks like a wrong password.
        if let Some(user) = self.broker.authorizer().user(name)
            && let Some(credential) = user.credential(mechanism)
        {
            request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
                credential.iterations,
                &credential.salt,
                &credential.stored_key,
                &credential.server_key,
            ))?;
        }
        Ok(())
    }

    fn validate(&self, session_data: &SessionData, context: &SaslContext, validate: &mut Validate<'_>) -> Result<(), ValidationError> {
        let Some(name) = context.get_ref::<AuthId>() else {
            return Ok(());
        };
        *self.user.lock() = Some(name.to_owned());
        // Kafka refuses to act for another identity than the one authenticated.
        if context
            .get_ref::<AuthzId>()
            .is_some_and(|authzid| !authzid.is_empty() && authzid != name)
        {
            return Ok(());
        }
        let proven = if &**session_data.mechanism().mechanism == "PLAIN" {
            let password = context.get_ref::<Password>().and_then(|bytes| std::str::from_utf8(bytes).ok());
            password.is_some_and(|password| self.broker.authorizer().authenticate(name, password).is_ok())
        } else {
            // rsasl validates a SCRAM exchange only after the client's proof matched the stored key.
            true
        };
        if proven {
            validate.with::<Login, _>(|| Ok(name.to_owned()))?;
        }
        Ok(())
    }
}

/// How a step of the exchange ended.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes; the client has more to say.
    Continue(Bytes),
    /// The client is `user`; send these last bytes (SCRAM's server signature).
    Authenticated { user: String, bytes: Bytes },
    /// Refused: send Kafka's error with `message`, then close.
    Failed {
        message: String,
        reason: FailureReason,
        user: String,
    },
}

/// The exchange in progress on one connection.
pub struct Exchange {
    mechanism: &'static str,
    session: Session<Login>,
    user: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Exchange")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// Starts `mechanism` if it is one offered ([`MECHANISMS`], any case).
    pub fn start(broker: &Arc<Broker>, mechanism: &str) -> Option<Exchange> {
        let mechanism = MECHANISMS.into_iter().find(|offered| offered.eq_ignore_ascii_case(mechanism))?;
        let user = Arc::new(Mutex::new(None));
        let callback = StoreCallback {
            broker: Arc::clone(broker),
            user: Arc::clone(&user),
        };
        let config = SASLConfig::builder().with_defaults().with_callback(callback).ok()?;
        let name = Mechname::parse(mechanism.as_bytes()).ok()?;
        let session = SASLServer::<Login>::new(config).start_suggested(name).ok()?;
        Some(Exchange { mechanism, session, user })
    }

    /// Feeds the client's `token` to the mechanism. Runs on a blocking
    /// thread: checking a PLAIN password is a PBKDF2 of thousands of rounds.
    pub async fn step(mut self, token: Bytes) -> (Option<Exchange>, Step) {
        let joined = tokio::task::spawn_blocking(move || {
            let mut out = Cursor::new(Vec::new());
            let state = self.session.step(Some(&token), &mut out);
            (self, state, out.into_inner())
        })
        .await;
        let Ok((mut exchange, state, out)) = joined else {
            return (
                None,
                failed("the authentication task failed", FailureReason::BadMechanism, String::new()),
            );
        };
        let user = exchange.user.lock().clone().unwrap_or_default();
        let invalid = || {
            format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                exchange.mechanism
            )
        };
        match state {
            Ok(State::Running) => (Some(exchange), Step::Continue(Bytes::from(out))),
            Ok(State::Finished(_)) => match exchange.session.validation() {
                Some(user) => (
                    None,
                    Step::Authenticated {
                        user,
                        bytes: Bytes::from(out),
                    },
                ),
                None => (None, failed(&invalid(), FailureReason::BadCredentials, user)),
            },
            Err(error) => {
                let reason = FailureReason::BadMechanism;
                (None, failed(&format!("{}: {error}", invalid()), reason, user))
            }
        }
    }
}

fn failed(message: &str, reason: FailureReason, user: String) -> Step {
    Step::Failed {
        message: message.to_owned(),
        reason,
        user,
    }
}

/// Why a refused exchange failed, for the counters: an unknown user or a wrong secret.
pub fn failure_reason(broker: &Broker, reason: FailureReason, user: &str) -> FailureReason {
    if reason == FailureReason::BadCredentials && broker.authorizer().user(user).is_none() {
        FailureReason::UnknownUser
    } else {
        reason
    }
}

/// Counts and logs a refused login; returns how long to wait before answering.
pub fn record_failure(broker: &Broker, peer: IpAddr, reason: FailureReason, user: &str) -> std::time::Duration {
    let reason = failure_reason(broker, reason, user);
    broker.authorizer().failures().login_failed("kafka", reason, peer, user)
}
