//! One Kafka connection: a reader that decodes requests in order and starts
//! their handlers, and a writer that sends replies in the same order (Kafka
//! clients match replies by order as well as by correlation id). Handlers may
//! run concurrently — several produce requests share one fsync — but anything
//! order-sensitive (appends) is started before the next request is read.
//! The connection is in the core's registry while it runs; an operator's
//! close drops the socket at once, in-flight replies with it. Its memory
//! budget bounds the bytes it holds (a request until answered, a Fetch
//! response until sent): over it, the socket is not read until replies go
//! out. A connection with nothing read, written or in flight for
//! `connections.max.idle.ms` is closed, as Kafka does.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conveyor_core::auth::{Operation, Principal, Resource};
use conveyor_core::connection_budget::{ConnectionBudget, Reservation};
use conveyor_core::connections::Registration;
use conveyor_core::limits::Limit;
use conveyor_tls::Accepted;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, BufWriter};
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
    /// Bytes held for this connection: requests until answered, Fetch
    /// responses until sent. The reader waits for room before reading on.
    pub budget: ConnectionBudget,
}

impl ConnectionInfo {
    pub fn new(context: &Context, peer: SocketAddr, local: SocketAddr, principal: Option<Principal>) -> ConnectionInfo {
        let budget = ConnectionBudget::new(
            context.broker.limits().config().connection_buffer_bytes_max,
            Arc::clone(context.broker.alarms()),
        );
        ConnectionInfo {
            peer,
            local,
            principal,
            budget,
        }
    }

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

/// When the connection last read a request or wrote a reply, and how many
/// replies are still to be written: Kafka's idle connections are those
/// with neither for `connections.max.idle.ms`.
#[derive(Debug)]
struct Activity {
    opened: std::time::Instant,
    last_ms: AtomicU64,
    in_flight: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(self.opened.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long until the connection has been idle for `idle`, or `None` if it has.
    fn idle_in(&self, idle: Duration) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Some(idle);
        }
        let since = self
            .opened
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)));
        idle.checked_sub(since).filter(|left| !left.is_zero())
    }
}

/// What comes next on the socket.
enum Next {
    /// A frame's first bytes are buffered.
    Frame,
    /// The peer closed, the socket failed, or the broker is shutting down.
    Closed,
    /// Nothing read or written for `connections.max.idle.ms`.
    Idle,
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
    let mut connection = Arc::new(ConnectionInfo::new(&context, peer, local, authentication.principal().cloned()));
    debug!(%peer, tls, "Kafka connection opened");
    let (read_half, write_half) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let (replies, mut pending) = mpsc::channel::<(Reply, Reservation)>(context.config.in_flight_requests_max.max(1));
    let activity = Arc::new(Activity {
        opened: std::time::Instant::now(),
        last_ms: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
    });
    let idle = Duration::from_millis(context.broker.limits().config().kafka_connections_max_idle_ms);

    let writer_activity = Arc::clone(&activity);
    let writer = async move {
        let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
        while let Some((mut reply, request_bytes)) = pending.recv().await {
            // Replies already written must not wait behind one that is not
            // ready (a Fetch parked for its max_wait_ms): a client that
            // pipelined ListOffsets before its Fetch would otherwise get
            // them only when the Fetch returns.
            let outcome = match std::future::poll_fn(|cx| Poll::Ready(reply.as_mut().poll(cx))).await {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => {
                    if writer.flush().await.is_err() {
                        return;
                    }
                    reply.await
                }
            };
            let written = match outcome {
                Ok(Some(frame)) => writer.write_all(&frame).await.is_ok(),
                Ok(None) => true,
                Err(reason) => {
                    warn!(%peer, %reason, "could not encode a Kafka reply; closing the connection");
                    false
                }
            };
            // Answered: the request's bytes (and its response's, with the frame) are no longer held.
            drop(request_bytes);
            writer_activity.in_flight.fetch_sub(1, Ordering::Relaxed);
            writer_activity.touch();
            // Flush when no further reply is ready, so pipelined replies share a write.
            if !written || (pending.is_empty() && writer.flush().await.is_err()) {
                return;
            }
        }
        let _ = writer.flush().await;
    };

    let read_loop = async {
        loop {
            match next_frame(&mut reader, &activity, idle, &mut shutdown).await {
                Next::Frame => {}
                Next::Closed => break,
                Next::Idle => {
                    let reached = context
                        .broker
                        .limits()
                        .reach(Limit::KafkaIdle, format!("Kafka connection from {peer} was idle"));
                    info!(%peer, %reached, "closing an idle Kafka connection");
                    break;
                }
            }
            let frame_bytes_max = authentication.frame_bytes_max(context.config.frame_bytes_max);
            let read = read_frame(&mut reader, &connection, frame_bytes_max).await;
            activity.touch();
            let (frame, request_bytes) = match read {
                Ok(read) => read,
                Err(error) => {
                    log_end(peer, &error);
                    break;
                }
            };
            if authentication.expects_raw_token() {
                let answer = authentication.raw_token(&context, frame).await;
                if !send_answer(
                    &replies,
                    &activity,
                    answer,
                    request_bytes,
                    &mut authentication,
                    &mut connection,
                    &registration,
                )
                .await
                {
                    break;
                }
                continue;
            }
            let request = match frame::parse_request(frame) {
                Ok(request) => request,
                Err(error) => {
                    log_end(peer, &error);
                    break;
                }
            };
            if request.api == ApiKey::Produce && !admit_produce(&context, request_bytes.bytes(), &mut shutdown).await {
                break;
            }
            let started = Instant::now();
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
                        if !send_answer(
                            &replies,
                            &activity,
                            answer,
                            request_bytes,
                            &mut authentication,
                            &mut connection,
                            &registration,
                        )
                        .await
                        {
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
            let reply = match handlers::dispatch(&context, &connection, request) {
                Ok(reply) => timed(reply, &context, api, started),
                Err(error) => {
                    log_end(peer, &error);
                    break;
                }
            };
            activity.in_flight.fetch_add(1, Ordering::Relaxed);
            if replies.send((reply, request_bytes)).await.is_err() {
                break;
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

/// Waits until the next frame starts arriving (without consuming it), the
/// connection has been idle too long, or the broker shuts down.
async fn next_frame<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    activity: &Activity,
    idle: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Next {
    loop {
        let Some(left) = activity.idle_in(idle) else {
            return Next::Idle;
        };
        tokio::select! {
            () = crate::stopped(shutdown) => return Next::Closed,
            // Cancel-safe: what a cancelled fill reads stays in the buffer.
            filled = reader.fill_buf() => return match filled {
                Ok(bytes) if !bytes.is_empty() => Next::Frame,
                _ => Next::Closed,
            },
            () = tokio::time::sleep(left) => {}
        }
    }
}

/// Reads one frame once the connection's budget has room for it: while
/// the bytes of unanswered requests and unsent responses fill the budget,
/// the socket is not read (backpressure). The reservation covers the
/// request until its reply is written.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    connection: &ConnectionInfo,
    frame_bytes_max: usize,
) -> Result<(Bytes, Reservation), FrameError> {
    let size = frame::read_frame_size(reader, frame_bytes_max).await?;
    let mut reservation = connection.budget.reserve(size as u64).await;
    let frame = frame::read_frame_body(reader, size, |arrived| reservation.hold(arrived as u64)).await?;
    Ok((frame, reservation))
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
    replies: &mpsc::Sender<(Reply, Reservation)>,
    activity: &Activity,
    answer: Answer,
    request_bytes: Reservation,
    authentication: &mut Authentication,
    connection: &mut Arc<ConnectionInfo>,
    registration: &Registration,
) -> bool {
    if let Some(frame) = answer.frame {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let reply: Reply = Box::pin(async move { Ok(Some(frame)) });
        if replies.send((reply, request_bytes)).await.is_err() {
            return false;
        }
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

/// Admits a produce request's bytes against the resource alarms (the disk
/// floor and the memory ceiling): while one is on, the request waits here
/// and the connection reads nothing more, as an AMQP publisher is blocked;
/// nothing is refused or lost, and the client's request timeout and
/// retries apply. False if the broker shuts down meanwhile.
async fn admit_produce(context: &Context, bytes: u64, shutdown: &mut watch::Receiver<bool>) -> bool {
    let alarms = context.broker.alarms();
    if alarms.try_admit(bytes) {
        return true;
    }
    info!(
        reason = alarms.measured().alarms.reason(),
        "Kafka producer held by a resource alarm"
    );
    tokio::select! {
        () = alarms.admit(bytes) => true,
        () = crate::stopped(shutdown) => false,
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
