//! Who a Kafka connection speaks for, and the SASL requests that change it.
//! A connection starts as the user its verified client certificate names
//! (Kafka's mTLS principal, `User:CN`), else as the anonymous identity if
//! `[auth] anonymous` lets its address in, else as nobody: then only
//! ApiVersions and the SASL requests are served, as by a Kafka broker with
//! SASL enabled. One SASL exchange per connection (no re-authentication).
//! Knows the handshake's rules and Kafka's error codes; the exchange
//! itself is `sasl.rs`'s, the decisions on requests the authorizer's.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use conveyor_core::auth::Principal;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use crate::Context;
use crate::frame::{self, FrameError, Request};
use crate::sasl::{self, Exchange, MECHANISMS, Step};

/// Largest frame read before a client is authenticated (Kafka's
/// `sasl.server.max.receive.size` default): a stranger cannot make the broker
/// buffer a 100 MB request.
pub const UNAUTHENTICATED_FRAME_BYTES_MAX: usize = 512 * 1024;

/// A reply to a SASL request, and whether the connection closes after it.
#[derive(Debug)]
pub struct Answer {
    /// A whole frame, size prefix included; `None` sends nothing.
    pub frame: Option<Bytes>,
    pub close: bool,
}

#[derive(Debug)]
pub struct Authentication {
    peer: SocketAddr,
    principal: Option<Principal>,
    exchange: Option<Exchange>,
    /// After a v0 SaslHandshake the tokens come bare, not in SaslAuthenticate requests.
    raw_tokens: bool,
    /// A SASL exchange was started: a second SaslHandshake is refused.
    sasl_started: bool,
}

impl Authentication {
    pub fn new(context: &Context, peer: SocketAddr, client_common_name: Option<String>) -> Authentication {
        let principal = match client_common_name {
            Some(common_name) => Some(Principal::User(common_name)),
            None => context
                .broker
                .authorizer()
                .anonymous_allowed(peer.ip())
                .then_some(Principal::Anonymous),
        };
        Authentication {
            peer,
            principal,
            exchange: None,
            raw_tokens: false,
            sasl_started: false,
        }
    }

    /// `None` until the client has authenticated (where it must).
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// Whether the next frame is a bare SASL token (after a v0 handshake).
    pub fn expects_raw_token(&self) -> bool {
        self.raw_tokens && self.exchange.is_some()
    }

    /// The frame limit that applies now.
    pub fn frame_bytes_max(&self, configured: usize) -> usize {
        if self.principal.is_some() {
            configured
        } else {
            configured.min(UNAUTHENTICATED_FRAME_BYTES_MAX)
        }
    }

    /// SaslHandshake: starts the mechanism the client names, or lists the offered ones.
    pub fn handshake(&mut self, context: &Context, request: &Request) -> Result<Answer, FrameError> {
        let body: SaslHandshakeRequest = frame::decode_body(request)?;
        let mechanisms = MECHANISMS.iter().map(|name| StrBytes::from_static_str(name)).collect();
        let mut response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
        let mut close = false;
        if self.sasl_started {
            response.error_code = ResponseError::IllegalSaslState.code();
            close = true;
        } else {
            match Exchange::start(&context.broker, body.mechanism.as_str()) {
                Some(exchange) => {
                    self.exchange = Some(exchange);
                    self.raw_tokens = request.version == 0;
                    self.sasl_started = true;
                }
                None => response.error_code = ResponseError::UnsupportedSaslMechanism.code(),
            }
        }
        let frame = frame::encode_response(ApiKey::SaslHandshake, request.version, request.header.correlation_id, &response)
            .map_err(FrameError::Io)?;
        Ok(Answer { frame: Some(frame), close })
    }

    /// SaslAuthenticate: one step of the exchange the handshake started.
    pub async fn authenticate(&mut self, context: &Context, request: &Request) -> Result<Answer, FrameError> {
        let body: SaslAuthenticateRequest = frame::decode_body(request)?;
        let encode = |response: &SaslAuthenticateResponse| {
            frame::encode_response(ApiKey::SaslAuthenticate, request.version, request.header.correlation_id, response)
                .map_err(FrameError::Io)
        };
        let Some(exchange) = self.exchange.take().filter(|_| !self.raw_tokens) else {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "SaslAuthenticate before a SaslHandshake (v1) picked a mechanism",
                )));
            return Ok(Answer {
                frame: Some(encode(&response)?),
                close: true,
            });
        };
        let (next, step) = exchange.step(body.auth_bytes).await;
        self.exchange = next;
        let (response, close) = match step {
            Step::Continue(bytes) => (SaslAuthenticateResponse::default().with_auth_bytes(bytes), false),
            Step::Authenticated { user, bytes } => {
                self.authenticated(user);
                (SaslAuthenticateResponse::default().with_auth_bytes(bytes), false)
            }
            Step::Failed { message, reason, user } => {
                let delay = sasl::record_failure(&context.broker, self.peer.ip(), reason, &user);
                tokio::time::sleep(delay).await;
                let response = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(message)));
                (response, true)
            }
        };
        Ok(Answer {
            frame: Some(encode(&response)?),
            close,
        })
    }

    /// A bare token after a v0 handshake: the answer is a bare size-prefixed
    /// token; a failure closes the connection without one, as Kafka does.
    pub async fn raw_token(&mut self, context: &Context, token: Bytes) -> Answer {
        let Some(exchange) = self.exchange.take() else {
            return Answer { frame: None, close: true };
        };
        let (next, step) = exchange.step(token).await;
        self.exchange = next;
        let bytes = match step {
            Step::Continue(bytes) => bytes,
            Step::Authenticated { user, bytes } => {
                self.authenticated(user);
                bytes
            }
            Step::Failed { reason, user, .. } => {
                let delay = sasl::record_failure(&context.broker, self.peer.ip(), reason, &user);
                tokio::time::sleep(delay).await;
                return Answer { frame: None, close: true };
            }
        };
        let mut frame = BytesMut::with_capacity(4 + bytes.len());
        frame.put_i32(bytes.len() as i32);
        frame.put_slice(&bytes);
        Answer {
            frame: Some(frame.freeze()),
            close: false,
        }
    }

    fn authenticated(&mut self, user: String) {
        info!(peer = %self.peer, user, "Kafka client authenticated");
        self.principal = Some(Principal::User(user));
        self.raw_tokens = false;
    }
}
