//! Conveyor's Kafka front door: accepts Kafka-protocol connections, decodes
//! requests with the `kafka-protocol` crate, calls the core, encodes replies.
//! No business logic here: topics, logs and (later) groups live in the core;
//! this crate only translates. To the clients it looks like a one-node cluster.

mod authentication;
pub mod client;
mod connection;
mod errors;
pub mod frame;
mod handlers;
mod sasl;
pub mod share_session;
pub mod versions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::Broker;
use conveyor_core::connections::Protocol;
use conveyor_tls::Listener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Settings of the Kafka listener.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// The node id this broker reports in metadata (Kafka's `node.id`).
    pub node_id: i32,
    /// Largest request frame accepted (Kafka's `socket.request.max.bytes`).
    pub frame_bytes_max: usize,
    /// Requests decoded ahead of their replies on one connection.
    pub in_flight_requests_max: usize,
    /// Host and port given to clients in metadata; `None` uses the address
    /// each client connected to.
    pub advertised_addr: Option<(String, u16)>,
}

impl Default for KafkaConfig {
    fn default() -> KafkaConfig {
        KafkaConfig {
            node_id: 1,
            frame_bytes_max: 100 * 1024 * 1024,
            in_flight_requests_max: 16,
            advertised_addr: None,
        }
    }
}

/// Everything a request handler may use.
#[derive(Debug)]
pub struct Context {
    pub broker: Arc<Broker>,
    pub config: KafkaConfig,
    /// Share consumers' fetch sessions (KIP-932).
    pub share_sessions: share_session::ShareSessions,
}

/// How long open connections get to finish in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves Kafka clients on `listener` (plain TCP or TLS) until `shutdown`
/// turns true, then stops accepting and gives open connections a bounded
/// time to finish.
pub async fn serve(listener: impl Into<Listener>, context: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let mut listener = listener.into();
    let local: Option<SocketAddr> = listener.local_addr().ok();
    let tls = listener.is_tls();
    info!(addr = ?local, tls, "Kafka listener up");
    let mut connections = JoinSet::new();
    let connection_shutdown = shutdown.clone();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    let peer = accepted.peer;
                    // Kafka's answer past `max.connections.per.ip`: close the new socket at once.
                    let Ok(slot) = context.broker.limits().admit_connection(peer.ip()) else {
                        debug!(%peer, "Kafka connection refused: connection limit");
                        continue;
                    };
                    let registration = context.broker.connections().register(Protocol::Kafka, peer);
                    let run = connection::run(accepted, tls, registration, Arc::clone(&context), connection_shutdown.clone());
                    connections.spawn(async move {
                        let _slot = slot;
                        run.await;
                    });
                }
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(%error, "accepting a Kafka connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined
                    && error.is_panic()
                {
                    // A bug, not bad input: bad input closes the connection without panicking.
                    tracing::error!(%error, "a Kafka connection task panicked");
                }
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "Kafka connections still busy after {DRAIN_TIMEOUT:?}; closing them"
        );
        connections.abort_all();
    }
}

/// Handles one request frame (without its size prefix) as a connection
/// would, and returns the reply frame. For fuzzing the request path without
/// sockets; `Err` is what would close the connection.
#[doc(hidden)]
pub async fn handle_frame(context: &Arc<Context>, frame: bytes::Bytes) -> Result<Option<bytes::Bytes>, String> {
    let local: SocketAddr = ([127, 0, 0, 1], 9092).into();
    let connection = Arc::new(connection::ConnectionInfo::new(
        context,
        local,
        local,
        Some(conveyor_core::auth::Principal::Anonymous),
    ));
    let request = frame::parse_request(frame).map_err(|error| error.to_string())?;
    let reply = handlers::dispatch(context, &connection, request).map_err(|error| error.to_string())?;
    reply.await
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, not in the caller's select.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
