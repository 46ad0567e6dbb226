//! The AMQP 0-9-1 front door: RabbitMQ clients (amqplib, pika, lapin) talk
//! to Conveyor's queues. Frames are decoded with `amq-protocol`; connections
//! and channels are state machines in `connection.rs` and `channel/`; the
//! queues themselves live in the core. No delivery logic here beyond the
//! protocol's: acquisition, acks and redelivery are the core queue's; who
//! may do what is the core's authorizer's (`login.rs`, `identity.rs`).

mod channel;
mod connection;
mod consumer_cancel;
mod consumer_timeout;
mod external;
pub mod frame;
mod identity;
mod login;
pub mod message;
mod method;
pub mod nesting;
mod peer;
mod prefetch;
mod queue_type;
mod reply;
mod reply_to;
mod stream_consumer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conveyor_core::Broker;
use conveyor_tls::Listener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Settings of the AMQP listener.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// Largest frame accepted and offered in connection.tune (RabbitMQ's default).
    pub frame_max: u32,
    pub channel_max: u16,
    /// Heartbeat interval offered, in seconds (0: none).
    pub heartbeat_s: u16,
    /// Largest message body accepted (RabbitMQ's `max_message_size` default).
    pub message_bytes_max: u64,
}

impl Default for AmqpConfig {
    fn default() -> AmqpConfig {
        AmqpConfig {
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat_s: 60,
            message_bytes_max: 128 * 1024 * 1024,
        }
    }
}

/// What every connection shares.
#[derive(Debug)]
pub struct Context {
    pub broker: Arc<Broker>,
    pub config: AmqpConfig,
    /// Exclusive queues and the connection (its registry id) that owns each.
    exclusive_owners: parking_lot::Mutex<HashMap<String, u64>>,
}

impl Context {
    pub fn new(broker: Arc<Broker>, config: AmqpConfig) -> Context {
        Context {
            broker,
            config,
            exclusive_owners: parking_lot::Mutex::new(HashMap::new()),
        }
    }
}

/// Serves one connection over any byte stream (the fuzz target and tests
/// use in-memory pipes); `peer` decides what loopback-only logins allow.
pub async fn serve_connection<S>(stream: S, peer: SocketAddr, context: Arc<Context>, shutdown: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    connection::run(stream, peer, None, context, shutdown, None, None).await;
}

/// AMQP connections accepted past a connection limit that may be in their
/// handshake at once, to be told why at `connection.open`; past this many
/// the socket is closed at once.
const REFUSING_MAX: usize = 64;

/// How long connections get to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts AMQP connections (plain TCP or TLS, amqps) until `shutdown` turns true.
pub async fn serve(listener: impl Into<Listener>, context: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let mut listener = listener.into();
    let local: Option<SocketAddr> = listener.local_addr().ok();
    info!(addr = ?local, tls = listener.is_tls(), "AMQP listener up");
    let mut connections = JoinSet::new();
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    let peer = accepted.peer;
                    let (slot, refused) = match context.broker.limits().admit_connection(peer.ip()) {
                        Ok(slot) => (Some(slot), None),
                        Err(_) if refusing.load(Ordering::Relaxed) >= REFUSING_MAX => continue,
                        Err(reached) => (None, Some(reached)),
                    };
                    let refusing = refused.is_some().then(|| RefusingGuard::new(&refusing));
                    let watch = peer::PeerWatch::new(&accepted.stream);
                    let run = connection::run(
                        accepted.stream,
                        peer,
                        accepted.client_common_name,
                        Arc::clone(&context),
                        shutdown.clone(),
                        refused,
                        watch,
                    );
                    connections.spawn(async move {
                        let _held = (slot, refusing);
                        run.await;
                    });
                }
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(%error, "accepting an AMQP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined
                    && error.is_panic()
                {
                    tracing::error!(%error, "an AMQP connection task panicked");
                }
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!("AMQP connections still open after the drain timeout; closing them");
        connections.shutdown().await;
    }
}

/// Counts one connection being refused while it runs.
struct RefusingGuard(Arc<AtomicUsize>);

impl RefusingGuard {
    fn new(count: &Arc<AtomicUsize>) -> RefusingGuard {
        count.fetch_add(1, Ordering::Relaxed);
        RefusingGuard(Arc::clone(count))
    }
}

impl Drop for RefusingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
