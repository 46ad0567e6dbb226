//! One AMQP connection: the protocol header, start/tune/open, then frames
//! dispatched to channels. A writer task owns the socket's write half and
//! sends heartbeats when the connection is otherwise idle. A channel
//! exception closes that channel; a connection exception (bad frame, frame
//! on an unopened channel, failed login) closes the connection — after
//! telling the client why — and nothing else. The connection is in the
//! core's registry while it runs; an operator's close is a connection
//! exception, 320 CONNECTION_FORCED, as in RabbitMQ.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use bytes::Bytes;
use conveyor_core::VirtualHost;
use conveyor_core::auth::Principal;
use conveyor_core::connection_budget::{ConnectionBudget, Reservation};
use conveyor_core::connections::{Protocol, Registration};
use conveyor_core::limits::{Limit, LimitReached};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, WriteHalf};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::Context;
use crate::channel::{Channel, OUTBOX_FRAMES, Outbox, delete_auto_deleted};
use crate::consumer_timeout;
use crate::external;
use crate::frame::{self, FrameError};
use crate::identity::{self, Identity};
use crate::login;
use crate::peer::PeerWatch;
use crate::reply::{self, Exception, short};

/// Frames before tune-ok are small; this bounds them.
const HANDSHAKE_FRAME_MAX: usize = 64 * 1024;
/// How long a closing connection waits for the client's close-ok.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves one connection. `client_common_name` is the CN of the client's
/// verified TLS certificate, which the EXTERNAL mechanism logs in as.
/// `refused` is the connection limit it was accepted past: it is told so
/// at `connection.open` (530, as RabbitMQ does) and closed. `watch` tells
/// whether a TCP peer went away while the connection is not read (over
/// its budget).
pub async fn run<S>(
    stream: S,
    peer: SocketAddr,
    client_common_name: Option<String>,
    context: Arc<Context>,
    mut shutdown: watch::Receiver<bool>,
    refused: Option<LimitReached>,
    watch: Option<PeerWatch>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let registration = context.broker.connections().register(Protocol::Amqp, peer);
    let connection_id = registration.id;
    debug!(%peer, connection_id, "AMQP connection opened");
    // RabbitMQ's `handshake_timeout`: from accept to connection.open, protocol header included.
    let handshake_deadline =
        tokio::time::Instant::now() + Duration::from_millis(context.broker.limits().config().amqp_handshake_timeout_ms);
    let (read_half, mut write_half) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    match tokio::time::timeout_at(handshake_deadline, frame::read_protocol_header(&mut reader)).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(header))) => {
            // The spec's answer to a protocol it does not speak: our header, then close.
            debug!(%peer, ?header, "not an AMQP 0-9-1 protocol header");
            let _ = write_half.write_all(&frame::PROTOCOL_HEADER).await;
            return;
        }
        Ok(Err(_)) => return,
        Err(_) => {
            context.broker.limits().reach(
                Limit::AmqpHandshake,
                format!("AMQP connection from {peer} sent no protocol header in time"),
            );
            return;
        }
    }
    let (out, outbox) = mpsc::channel::<Bytes>(OUTBOX_FRAMES);
    let (heartbeat_tx, heartbeat_rx) = watch::channel(0u16);
    let mut writer = tokio::spawn(write_frames(write_half, outbox, heartbeat_rx));
    let mut connection = Connection {
        context: Arc::clone(&context),
        id: connection_id,
        registration,
        peer,
        out: out.clone(),
        channels: HashMap::new(),
        frame_max: HANDSHAKE_FRAME_MAX,
        channel_max: context.config.channel_max,
        hears_blocked: false,
        vhost: VirtualHost::default(),
        refused,
        budget: ConnectionBudget::new(
            context.broker.limits().config().connection_buffer_bytes_max,
            Arc::clone(context.broker.alarms()),
        ),
        peer_watch: watch,
        client_common_name,
        identity: Identity {
            principal: Principal::User(String::new()),
            peer: peer.ip(),
        },
    };
    let outcome = match tokio::time::timeout_at(handshake_deadline, connection.handshake(&mut reader)).await {
        Ok(Ok(heartbeat_s)) => {
            let _ = heartbeat_tx.send(heartbeat_s);
            connection.serve(&mut reader, heartbeat_s, &mut shutdown).await
        }
        Ok(Err(end)) => end,
        Err(_) => {
            let reached = context.broker.limits().reach(
                Limit::AmqpHandshake,
                format!("AMQP connection from {peer} did not finish its handshake in time"),
            );
            End::Exception(Exception::new(reply::CONNECTION_FORCED, format!("handshake timed out: {reached}")))
        }
    };
    connection.finish(outcome, &mut reader).await;
    drop(connection);
    drop(out);
    // A client that stopped reading cannot hold the connection open: the
    // last frames get a bounded time to go out.
    if tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await.is_err() {
        writer.abort();
    }
    debug!(%peer, connection_id, "AMQP connection closed");
}

/// How a connection ends.
enum End {
    /// The client closed (connection.close) or went away.
    Client,
    /// We close with this exception and wait for close-ok.
    Exception(Exception),
    /// Unreadable input: logged, the socket closed.
    Broken(FrameError),
}

impl From<FrameError> for End {
    /// A frame the broker cannot take is answered with `connection.close`
    /// before the socket closes, as RabbitMQ answers it: 501 FRAME_ERROR
    /// for one too large, nested too deep, of an unknown type, not ending
    /// in 0xCE or undecodable (a short string that is not UTF-8), 540
    /// NOT_IMPLEMENTED for an unknown method. A socket that fails closes.
    fn from(error: FrameError) -> End {
        match error {
            FrameError::Closed => End::Client,
            FrameError::UnknownMethod { .. } => End::Exception(Exception::new(reply::NOT_IMPLEMENTED, error.to_string())),
            FrameError::TooLarge { .. }
            | FrameError::TooDeep(_)
            | FrameError::BadFrameEnd
            | FrameError::UnknownType(_)
            | FrameError::Malformed(_) => End::Exception(Exception::new(reply::FRAME_ERROR, error.to_string())),
            FrameError::Io(_) => End::Broken(error),
        }
    }
}

struct Connection {
    context: Arc<Context>,
    id: u64,
    /// Listed for operators until the connection is dropped.
    registration: Registration,
    peer: SocketAddr,
    out: Outbox,
    channels: HashMap<u16, Channel>,
    frame_max: usize,
    channel_max: u16,
    /// The client understands `connection.blocked` (its capabilities say so).
    hears_blocked: bool,
    /// The vhost `connection.open` named (`/` until then).
    vhost: VirtualHost,
    /// The connection limit this connection was accepted past, told at `connection.open`.
    refused: Option<LimitReached>,
    /// Bytes held for this connection: frames of publishes until stored.
    budget: ConnectionBudget,
    /// Whether the client went away, for when the connection is not read.
    peer_watch: Option<PeerWatch>,
    /// The CN of the client's verified TLS certificate (for EXTERNAL).
    client_common_name: Option<String>,
    /// Who the login proved the client to be (nobody's rights until it did).
    identity: Identity,
}

impl Connection {
    async fn send(&self, frames: &[AMQPFrame]) {
        let _ = self.out.send(frame::encode(frames)).await;
    }

    async fn send_method(&self, channel_id: u16, method: AMQPClass) {
        self.send(&[AMQPFrame::Method(channel_id, method)]).await;
    }

    /// start / start-ok / tune / tune-ok / open / open-ok. Returns the
    /// negotiated heartbeat interval.
    async fn handshake<R: tokio::io::AsyncRead + Unpin>(&mut self, reader: &mut R) -> Result<u16, End> {
        let config = &self.context.config;
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
                version_major: ProtocolVersion::amqp_0_9_1().major,
                version_minor: ProtocolVersion::amqp_0_9_1().minor,
                server_properties: server_properties(),
                mechanisms: LongString::from(external::mechanisms(self.client_common_name.as_deref())),
                locales: LongString::from("en_US"),
            })),
        )
        .await;
        let start_ok = match self.expect_method(reader).await? {
            AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok)) => start_ok,
            other => {
                return Err(End::Exception(
                    Exception::new(reply::COMMAND_INVALID, "expected connection.start-ok").on(&other),
                ));
            }
        };
        self.hears_blocked = matches!(
            start_ok.client_properties.inner().get("capabilities"),
            Some(AMQPValue::FieldTable(capabilities))
                if matches!(capabilities.inner().get("connection.blocked"), Some(AMQPValue::Boolean(true)))
        );
        let mechanism = start_ok.mechanism.as_str();
        let login = if mechanism == external::MECHANISM {
            external::login(&self.context.broker, self.client_common_name.as_deref())
        } else {
            login::login(&self.context.broker, self.peer, mechanism, start_ok.response.as_bytes())
        };
        match login {
            Ok((principal, user)) => {
                self.registration.set_user(user);
                self.identity = Identity {
                    principal,
                    peer: self.peer.ip(),
                };
            }
            Err(refused) => {
                let failures = self.context.broker.authorizer().failures();
                let delay = failures.login_failed(identity::PROTOCOL, refused.reason, self.peer.ip(), &refused.user);
                // Repeated failures from one address wait longer each time:
                // this connection's task waits, no worker is held.
                tokio::time::sleep(delay).await;
                return Err(End::Exception(Exception::new(
                    reply::ACCESS_REFUSED,
                    format!("Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."),
                )));
            }
        }
        self.registration.set_client(client_name(&start_ok.client_properties));
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
                channel_max: config.channel_max,
                frame_max: config.frame_max,
                heartbeat: config.heartbeat_s,
            })),
        )
        .await;
        let tune_ok = match self.expect_method(reader).await? {
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok)) => tune_ok,
            other => {
                return Err(End::Exception(
                    Exception::new(reply::COMMAND_INVALID, "expected connection.tune-ok").on(&other),
                ));
            }
        };
        // 0 means "no limit" from the client: ours applies.
        let frame_max = match tune_ok.frame_max {
            0 => config.frame_max,
            asked => asked.min(config.frame_max),
        };
        if frame_max < 4096 {
            return Err(End::Exception(Exception::new(
                reply::NOT_ALLOWED,
                format!("frame_max {frame_max} is below the minimum 4096"),
            )));
        }
        self.frame_max = frame_max as usize;
        if tune_ok.channel_max != 0 {
            self.channel_max = tune_ok.channel_max.min(config.channel_max);
        }
        let open = match self.expect_method(reader).await? {
            AMQPClass::Connection(connection::AMQPMethod::Open(open)) => open,
            other => {
                return Err(End::Exception(
                    Exception::new(reply::COMMAND_INVALID, "expected connection.open").on(&other),
                ));
            }
        };
        if let Some(refused) = &self.refused {
            // RabbitMQ's answer (rabbit_reader) past its connection limits.
            let scope = match refused.limit {
                Limit::ConnectionsPerAddress => "connection limit per source address",
                _ => "node connection limit",
            };
            return Err(End::Exception(Exception::new(
                reply::NOT_ALLOWED,
                format!("connection refused: {scope} ({}) is reached", refused.max),
            )));
        }
        // RabbitMQ's answer (rabbit_reader) to a vhost that does not exist.
        let Some(vhost) = self.context.broker.vhost(open.virtual_host.as_str()) else {
            return Err(End::Exception(Exception::new(
                reply::NOT_ALLOWED,
                format!("vhost {} not found", open.virtual_host.as_str()),
            )));
        };
        self.identity.open_vhost(&self.context.broker, &vhost).map_err(End::Exception)?;
        self.registration.set_vhost(vhost.name());
        self.vhost = vhost;
        self.send_method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})))
            .await;
        Ok(tune_ok.heartbeat)
    }

    async fn expect_method<R: tokio::io::AsyncRead + Unpin>(&self, reader: &mut R) -> Result<AMQPClass, End> {
        match frame::read_frame(reader, self.frame_max).await {
            Ok(AMQPFrame::Method(0, method)) => Ok(method),
            Ok(_) => Err(End::Exception(Exception::new(
                reply::UNEXPECTED_FRAME,
                "expected a method on channel 0",
            ))),
            Err(error) => Err(End::from(error)),
        }
    }

    async fn serve<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        heartbeat_s: u16,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        // A peer silent for two heartbeat intervals is gone (the spec's rule).
        let silence_max = (heartbeat_s > 0).then(|| Duration::from_secs(u64::from(heartbeat_s) * 2));
        let closed = self.registration.closed();
        tokio::pin!(closed);
        let mut timeouts = tokio::time::interval(consumer_timeout::CHECK_INTERVAL);
        timeouts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (budget, frame_max, peer_watch) = (self.budget.clone(), self.frame_max, self.peer_watch.clone());
            let read = async {
                let start = match silence_max {
                    Some(limit) => tokio::time::timeout(limit, frame::read_frame_start(reader, frame_max))
                        .await
                        .unwrap_or(Err(FrameError::Closed))?,
                    None => frame::read_frame_start(reader, frame_max).await?,
                };
                // Over the budget (bodies being reassembled, publishes not
                // stored yet), the rest waits: the socket is not read until
                // stores give bytes back. Not client silence: no timeout.
                let bytes = reserve_unless_gone(&budget, start.total as u64, peer_watch.as_ref()).await?;
                let frame = frame::read_frame_rest(reader, start).await?;
                Ok::<_, FrameError>((frame, bytes.hold_all()))
            };
            tokio::pin!(read);
            // The read is polled to its end across ticks: a frame is never cut.
            let frame = loop {
                tokio::select! {
                    frame = &mut read => break frame,
                    _ = shutdown.changed() => {
                        return End::Exception(Exception::new(reply::CONNECTION_FORCED, "broker shutdown"));
                    }
                    () = &mut closed => {
                        return End::Exception(Exception::new(reply::CONNECTION_FORCED, "closed via management API"));
                    }
                    _ = timeouts.tick() => self.close_timed_out_channels().await,
                }
            };
            let (frame, bytes) = match frame {
                Ok(read) => read,
                Err(error) => return End::from(error),
            };
            // A resource alarm holds every frame of a publish: its method,
            // its header (whose body size is admitted against the disk
            // floor) and its body frames.
            let admitted = match &frame {
                AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Publish(_))) | AMQPFrame::Body(..) => Some(0),
                AMQPFrame::Header(_, header) => Some(header.body_size),
                _ => None,
            };
            if let Some(admitted) = admitted
                && let Some(end) = self.hold_while_alarmed(admitted, shutdown).await
            {
                return end;
            }
            if let Some(channel) = self.channels.get_mut(&frame.channel_id()) {
                channel.received(bytes);
            }
            let id = frame.channel_id();
            let end = self.dispatch(frame).await;
            if let Some(channel) = self.channels.get_mut(&id) {
                channel.handled();
            }
            self.registration.set_channels(self.channels.len() as u64);
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// Closes the channels holding a delivery past the consumer timeout
    /// (`consumer_timeout.rs`); what they held goes back to its queues.
    async fn close_timed_out_channels(&mut self) {
        let default_ms = self.context.broker.limits().config().amqp_consumer_timeout_ms;
        let timed_out: Vec<(u16, Exception)> = self
            .channels
            .iter()
            .filter_map(|(id, channel)| channel.timed_out(default_ms).map(|exception| (*id, exception)))
            .collect();
        for (id, exception) in timed_out {
            let Some(channel) = self.channels.get_mut(&id) else { continue };
            info!(peer = %self.peer, channel = id, text = exception.text, "closing a channel: consumer timeout");
            let unused = channel.close();
            channel.closing = true;
            delete_auto_deleted(&self.context, unused).await;
            self.send(&[exception.channel_close(id)]).await;
        }
    }

    /// While a resource alarm is on (or `bytes` would take free disk below
    /// its floor), a publish waits here and the connection reads nothing
    /// more, as RabbitMQ blocks a publishing connection; a client that
    /// understands it hears `connection.blocked` with the reason, then
    /// `connection.unblocked`. Nothing is refused or lost.
    async fn hold_while_alarmed(&mut self, bytes: u64, shutdown: &mut watch::Receiver<bool>) -> Option<End> {
        let alarms = Arc::clone(self.context.broker.alarms());
        if alarms.try_admit(bytes) {
            return None;
        }
        let measured = alarms.measured();
        info!(peer = %self.peer, reason = measured.alarms.reason(), "AMQP publisher blocked by a resource alarm");
        if self.hears_blocked {
            let reason = short(measured.alarms.reason());
            self.send_method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Blocked(connection::Blocked { reason })),
            )
            .await;
        }
        tokio::select! {
            () = alarms.admit(bytes) => {}
            _ = shutdown.changed() => {
                return Some(End::Exception(Exception::new(reply::CONNECTION_FORCED, "broker shutdown")));
            }
        }
        if self.hears_blocked {
            self.send_method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Unblocked(connection::Unblocked {})),
            )
            .await;
        }
        None
    }

    /// Handles one frame; `Some` ends the connection.
    async fn dispatch(&mut self, frame: AMQPFrame) -> Option<End> {
        tracing::trace!(peer = %self.peer, %frame, "frame received");
        match frame {
            AMQPFrame::Heartbeat => None,
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close))) => {
                debug!(peer = %self.peer, code = close.reply_code, text = close.reply_text.as_str(), "client closed the connection");
                self.send_method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})))
                    .await;
                Some(End::Client)
            }
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => Some(End::Client),
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(update))) => {
                // OAuth 2 clients refresh their token so; the connection
                // stays open. Conveyor's users are password users, whose
                // login is not re-checked here (README, "AMQP").
                debug!(peer = %self.peer, reason = update.reason.as_str(), "connection.update-secret");
                self.send_method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(connection::UpdateSecretOk {})),
                )
                .await;
                None
            }
            AMQPFrame::Method(0, other) => Some(End::Exception(
                Exception::new(reply::COMMAND_INVALID, "unexpected method on channel 0").on(&other),
            )),
            AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::Open(_))) => {
                if self.channels.contains_key(&id) {
                    return Some(End::Exception(Exception::new(
                        reply::CHANNEL_ERROR,
                        format!("second 'channel.open' seen on channel {id}"),
                    )));
                }
                if id > self.channel_max || self.channels.len() >= usize::from(self.channel_max) {
                    self.context
                        .broker
                        .limits()
                        .reach(Limit::AmqpChannels, format!("channel.open of channel {id}"));
                    return Some(End::Exception(Exception::new(
                        reply::CHANNEL_ERROR,
                        format!("channel {id} is above channel_max {}", self.channel_max),
                    )));
                }
                self.channels.insert(
                    id,
                    Channel::new(
                        id,
                        Arc::clone(&self.context.broker),
                        self.vhost.clone(),
                        self.identity.clone(),
                        self.out.clone(),
                        self.frame_max,
                    ),
                );
                self.send_method(id, AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})))
                    .await;
                None
            }
            AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::Close(_))) => {
                if let Some(mut channel) = self.channels.remove(&id) {
                    delete_auto_deleted(&self.context, channel.close()).await;
                }
                self.send_method(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})))
                    .await;
                None
            }
            AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => {
                // Our channel.close was acknowledged: the channel id is free again.
                if let Some(mut channel) = self.channels.remove(&id) {
                    delete_auto_deleted(&self.context, channel.close()).await;
                }
                None
            }
            frame => {
                let id = frame.channel_id();
                let context = Arc::clone(&self.context);
                let connection_id = self.id;
                let Some(channel) = self.channels.get_mut(&id) else {
                    return Some(End::Exception(Exception::new(
                        reply::CHANNEL_ERROR,
                        format!("expected 'channel.open' on channel {id}"),
                    )));
                };
                if channel.closing {
                    // Everything but close-ok is dropped after a channel exception.
                    return None;
                }
                let result = match frame {
                    AMQPFrame::Method(_, method) => {
                        let started = Instant::now();
                        let name = crate::method::synchronous_name(&method);
                        let result = channel.method(&context, connection_id, method).await;
                        if let Some(name) = name {
                            context.broker.stats().request_served("amqp", name, started.elapsed());
                        }
                        result
                    }
                    AMQPFrame::Header(_, header) => channel.content_header(&context, header).await,
                    AMQPFrame::Body(_, body) => channel.content_body(&context, body).await,
                    _ => Err(Exception::new(reply::UNEXPECTED_FRAME, "unexpected frame")),
                };
                if let Err(exception) = result {
                    // Connection exceptions (framing, 503, 530, 540, …) close the connection, as in RabbitMQ; the rest the channel.
                    if exception.closes_connection() {
                        return Some(End::Exception(exception));
                    }
                    debug!(peer = %self.peer, channel = id, code = exception.code, text = exception.text, "channel exception");
                    let unused = channel.close();
                    channel.closing = true;
                    delete_auto_deleted(&self.context, unused).await;
                    self.send(&[exception.channel_close(id)]).await;
                }
                None
            }
        }
    }

    /// Ends the connection: tells the client why if it was us, releases every
    /// channel's deliveries, deletes exclusive queues.
    async fn finish<R: tokio::io::AsyncRead + Unpin>(&mut self, end: End, reader: &mut R) {
        match end {
            End::Client => {}
            End::Broken(error) => info!(peer = %self.peer, %error, "closing an AMQP connection: unreadable input"),
            End::Exception(exception) => {
                info!(peer = %self.peer, code = exception.code, text = exception.text, "closing an AMQP connection");
                // Bounded: a client that stopped reading must not keep the connection.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.send(&[exception.connection_close()])).await;
                // Wait (bounded) for close-ok; anything else the client sends meanwhile is dropped.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                    for _ in 0..1000 {
                        match frame::read_frame(reader, self.frame_max).await {
                            Ok(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
            }
        }
        let mut unused = Vec::new();
        for (_, mut channel) in self.channels.drain() {
            unused.extend(channel.close());
        }
        delete_auto_deleted(&self.context, unused).await;
        let exclusive: Vec<String> = {
            let mut owners = self.context.exclusive_owners.lock();
            let mine: Vec<String> = owners
                .iter()
                .filter(|(_, owner)| **owner == self.id)
                .map(|(name, _)| name.clone())
                .collect();
            for name in &mine {
                owners.remove(name);
            }
            mine
        };
        for name in exclusive {
            if let Err(error) = self.context.broker.delete_queue(&name, false).await {
                debug!(queue = name, %error, "deleting an exclusive queue");
            }
        }
    }
}

/// How often a connection waiting for room in its budget checks that its client is still there.
const PEER_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Reserves `bytes` in the budget, waiting for room; a client that goes
/// away meanwhile ends the wait (its connection is not being read, so only
/// the socket itself can tell).
async fn reserve_unless_gone(budget: &ConnectionBudget, bytes: u64, watch: Option<&PeerWatch>) -> Result<Reservation, FrameError> {
    if let Some(reservation) = budget.try_reserve(bytes) {
        return Ok(reservation);
    }
    let gone = async {
        let Some(watch) = watch else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(PEER_CHECK_INTERVAL).await;
            if watch.gone() {
                return;
            }
        }
    };
    tokio::select! {
        reservation = budget.reserve(bytes) => Ok(reservation),
        () = gone => Err(FrameError::Closed),
    }
}

/// Bytes of queued frames gathered into one write.
const WRITE_BYTES_MAX: usize = 64 * 1024;

/// Writes outgoing frames; sends a heartbeat after a quiet half-interval.
/// Frames already queued when one is taken go out in the same write (up to
/// `WRITE_BYTES_MAX`): one `send` for a burst of deliveries or confirms
/// instead of one per frame.
async fn write_frames<S: AsyncWrite>(mut writer: WriteHalf<S>, mut outbox: mpsc::Receiver<Bytes>, heartbeat: watch::Receiver<u16>) {
    let heartbeat_frame = frame::encode(&[AMQPFrame::Heartbeat]);
    // Grows to what bursts need (at most about twice `WRITE_BYTES_MAX`), as the read buffer is 64 KiB.
    let mut gathered = Vec::new();
    loop {
        let interval_s = *heartbeat.borrow();
        let next = if interval_s == 0 {
            outbox.recv().await
        } else {
            match tokio::time::timeout(Duration::from_millis(u64::from(interval_s) * 500), outbox.recv()).await {
                Ok(next) => next,
                Err(_) => Some(heartbeat_frame.clone()),
            }
        };
        let Some(bytes) = next else { break };
        let written = if bytes.len() >= WRITE_BYTES_MAX {
            writer.write_all(&bytes).await
        } else {
            gathered.clear();
            gathered.extend_from_slice(&bytes);
            while gathered.len() < WRITE_BYTES_MAX {
                let Ok(more) = outbox.try_recv() else { break };
                gathered.extend_from_slice(&more);
            }
            writer.write_all(&gathered).await
        };
        if written.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// What RabbitMQ clients look for before using an extension.
fn server_properties() -> FieldTable {
    let mut capabilities = FieldTable::default();
    for name in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
        "consumer_priorities",
    ] {
        capabilities.insert(short(name), AMQPValue::Boolean(true));
    }
    let mut properties = FieldTable::default();
    properties.insert(short("product"), AMQPValue::LongString(LongString::from("Conveyor")));
    properties.insert(short("version"), AMQPValue::LongString(LongString::from(env!("CARGO_PKG_VERSION"))));
    properties.insert(short("platform"), AMQPValue::LongString(LongString::from("Rust")));
    properties.insert(short("capabilities"), AMQPValue::FieldTable(capabilities));
    properties
}

/// Who the client says it is: the connection name it was given (RabbitMQ
/// clients' `connection_name`), else its library's product and version.
fn client_name(properties: &FieldTable) -> String {
    let text = |key: &str| match properties.inner().get(key) {
        Some(AMQPValue::LongString(value)) => Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        Some(AMQPValue::ShortString(value)) => Some(value.to_string()),
        _ => None,
    };
    if let Some(name) = text("connection_name").filter(|name| !name.is_empty()) {
        return name;
    }
    match (text("product"), text("version")) {
        (Some(product), Some(version)) => format!("{product} {version}"),
        (Some(product), None) => product,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_its_connection_name_or_else_its_product_and_version() {
        let mut properties = FieldTable::default();
        properties.insert(short("product"), AMQPValue::LongString(LongString::from("pika")));
        properties.insert(short("version"), AMQPValue::LongString(LongString::from("1.3.2")));
        assert_eq!(client_name(&properties), "pika 1.3.2");
        properties.insert(short("connection_name"), AMQPValue::LongString(LongString::from("orders-app")));
        assert_eq!(client_name(&properties), "orders-app");
        assert_eq!(client_name(&FieldTable::default()), "");
    }
}
