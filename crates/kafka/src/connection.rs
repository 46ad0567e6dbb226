//! One Kafka connection: a reader that decodes requests in order and starts
//! their handlers, and a writer that sends replies in the same order (Kafka
//! clients match replies by order as well as by correlation id). Handlers may
//! run concurrently — several produce requests share one fsync — but anything
//! order-sensitive (appends) is started before the next request is read.
//! The connection is in the core's registry while it runs; an operator's
//! close drops the socket at once, in-flight replies with it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use conveyor_core::auth::{Operation, Principal, Resource};
use conveyor_core::connections::Registration;
use conveyor_tls::Accepted;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::Context;
use crate::authentication::{Answer, Authentication};
use crate::frame::{self, FrameError};
use crate::handlers;

/// A reply being computed: resolves to the frame to send, `None` when the
/// request gets no reply (produce with acks=0), or an error that closes the
/// connection.
pub type Reply = Pin<Box<dyn Future<Output = Result<Option<Bytes>, String>> + Send>>;

/// What handlers know about the connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    /// The address the client connected to; advertised back in metadata.
    pub local: SocketAddr,
    /// Who the connection speaks for; `None` before a required SASL
    /// authentication (no handler but ApiVersions runs then).
    pub principal: Option<Principal>,
}

impl ConnectionInfo {
    /// Whether the authorizer lets this connection do `operation` on `resource`;
    /// a refusal is counted and logged.
    pub fn allowed(&self, context: &Context, resource: &Resource<'_>, operation: Operation) -> bool {
        match &self.principal {
            Some(principal) => context
                .broker
                .authorizer()
                .check("kafka", principal, Some(self.peer.ip()), resource, operation)
                .is_ok(),
            None => false,
        }
    }

    /// Whether some ACL lets this connection do `operation` on some resource
    /// of the kind of `resource` (Kafka's `authorizeByResourceType`).
    pub fn allowed_on_any(&self, context: &Context, resource: &Resource<'_>, operation: Operation) -> bool {
        self.principal.as_ref().is_some_and(|principal| {
            context
                .broker
                .authorizer()
                .authorize_any(principal, Some(self.peer.ip()), resource, operation)
        })
    }
}

/// Serves one connection, plain or TLS alike.
pub async fn run(accepted: Accepted, tls: bool, registration: Registration, context: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let Accepted {
        stream,
        peer,
        local,
        client_common_name,
    } = accepted;
    let mut authentication = Authentication::new(&context, peer, client_common_name);
    if let Some(Principal::User(user)) = authentication.principal() {
        registration.set_user(user.clone());
    }
    let mut connection = Arc::new(ConnectionInfo {
        peer,
        local,
        principal: authentication.principal().cloned(),
    });
    debug!(%peer, tls, "Kafka connection opened");
    let (read_half, write_half) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let (replies, mut pending) = mpsc::channel::<Reply>(context.config.in_flight_requests_max.max(1));

    let writer = async move {
        let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
        while let Some(reply) = pending.recv().await {
            match reply.await {
                Ok(Some(frame)) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(reason) => {
                    warn!(%peer, %reason, "could not encode a Kafka reply; closing the connection");
                    return;
                }
            }
            // Flush when no further reply is ready, so pipelined replies share a write.
            if pending.is_empty() && writer.flush().await.is_err() {
                return;
            }
        }
        let _ = writer.flush().await;
    };

    let read_loop = async {
        loop {
            let frame_bytes_max = authentication.frame_bytes_max(context.config.frame_bytes_max);
            let frame = tokio::select! {
                () = crate::stopped(&mut shutdown) => break,
                frame = frame::read_frame(&mut reader, frame_bytes_max) => frame,
            };
            if authentication.expects_raw_token() {
                let Ok(token) = frame else { break };
                let answer = authentication.raw_token(&context, token).await;
                if !send_answer(&replies, answer, &mut authentication, &mut connection, &registration).await {
                    break;
                }
                continue;
            }
            let parsed = frame.and_then(frame::parse_request);
            if let Ok(request) = &parsed
                && request.api == ApiKey::Produce
                && !hold_while_alarmed(&context, &mut shutdown).await
            {
                break;
            }
            let started = Instant::now();
            let request = match parsed {
                Ok(request) => request,
                Err(error) => {
                    log_end(peer, &error);
                    break;
                }
            };
            if registration.client_unknown()
                && let Some(client_id) = request.header.client_id.as_ref().filter(|id| !id.is_empty())
            {
                registration.set_client(client_id.as_str());
            }
            let answer = match request.api {
                ApiKey::SaslHandshake => Some(authentication.handshake(&context, &request)),
                ApiKey::SaslAuthenticate => Some(authentication.authenticate(&context, &request).await),
                ApiKey::ApiVersions => None,
                api if authentication.principal().is_none() => {
                    // A Kafka broker with SASL enabled closes such a connection too.
                    info!(%peer, api = crate::versions::name(api), "Kafka request before authentication; closing the connection");
                    break;
                }
                _ => None,
            };
            if let Some(answer) = answer {
                match answer {
                    Ok(answer) => {
                        if !send_answer(&replies, answer, &mut authentication, &mut connection, &registration).await {
                            break;
                        }
                    }
                    Err(error) => {
                        log_end(peer, &error);
                        break;
                    }
                }
                continue;
            }
            let api = request.api;
            let outcome = handlers::dispatch(&context, &connection, request).map(|reply| timed(reply, &context, api, started));
            match outcome {
                Ok(reply) => {
                    if replies.send(reply).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    log_end(peer, &error);
                    break;
                }
            }
        }
        drop(replies);
    };
    // The writer ends after the reader stops and every started reply is sent.
    tokio::select! {
        _ = async { tokio::join!(read_loop, writer) } => debug!(%peer, "Kafka connection closed"),
        () = registration.closed() => info!(%peer, id = registration.id, "Kafka connection closed by an operator"),
    }
}

/// Why the connection ends, logged at the level it deserves.
fn log_end(peer: SocketAddr, error: &FrameError) {
    match error {
        FrameError::Eof => {}
        FrameError::Io(reason) => debug!(%peer, %reason, "Kafka connection ended"),
        // Kafka's answer to a request it cannot read: close the connection.
        reason => info!(%peer, %reason, "closing Kafka connection"),
    }
}

/// Queues a SASL answer in reply order; when it authenticated the client,
/// later requests see the new principal. False when the connection is to close.
async fn send_answer(
    replies: &mpsc::Sender<Reply>,
    answer: Answer,
    authentication: &mut Authentication,
    connection: &mut Arc<ConnectionInfo>,
    registration: &Registration,
) -> bool {
    if let Some(frame) = answer.frame
        && replies.send(Box::pin(async move { Ok(Some(frame)) })).await.is_err()
    {
        return false;
    }
    if authentication.principal() != connection.principal.as_ref() {
        if let Some(Principal::User(user)) = authentication.principal() {
            registration.set_user(user.clone());
        }
        *connection = Arc::new(ConnectionInfo {
            principal: authentication.principal().cloned(),
            ..ConnectionInfo::clone(connection)
        });
    }
    !answer.close
}

/// While a resource alarm is on (low disk or memory), a produce request
/// waits here and the connection reads nothing more, as an AMQP publisher
/// is blocked: nothing is refused or lost, and the client's request timeout
/// and retries apply. False if the broker shuts down meanwhile.
async fn hold_while_alarmed(context: &Context, shutdown: &mut watch::Receiver<bool>) -> bool {
    let mut alarms = context.broker.alarms().subscribe();
    let measured = *alarms.borrow_and_update();
    if !measured.alarms.any() {
        return true;
    }
    info!(reason = measured.alarms.reason(), "Kafka producer held by a resource alarm");
    loop {
        tokio::select! {
            changed = alarms.changed() => {
                if changed.is_err() || !alarms.borrow_and_update().alarms.any() {
                    return true;
                }
            }
            () = crate::stopped(shutdown) => return false,
        }
    }
}

/// Records the request's latency, from read to reply encoded, once the reply is ready.
fn timed(reply: Reply, context: &Arc<Context>, api: ApiKey, started: Instant) -> Reply {
    let stats = Arc::clone(context.broker.stats());
    Box::pin(async move {
        let outcome = reply.await;
        stats.request_served("kafka", crate::versions::name(api), started.elapsed());
        outcome
    })
}
