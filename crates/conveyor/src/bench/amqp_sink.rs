//! `conveyor bench amqp-sink`: a no-op AMQP 0-9-1 server, to measure the
//! ceiling of `conveyor bench amqp`'s publish phase (the lapin client) on
//! this machine: what the client reaches when the server does nothing.
//!
//! It speaks just enough for that phase and nothing more: the handshake
//! (any credentials), channel open/close, `confirm.select`, `queue.declare`
//! and `queue.delete` (answered, nothing kept), and `basic.publish` with its
//! content, which it discards. Frames are decoded with `amq-protocol` as
//! Conveyor's front door does. Once everything the client has sent so far is
//! handled (its read buffer is empty), one write carries the replies and one
//! `basic.ack` per channel confirming every publish completed since the last
//! (`multiple` when more than one): the least a server can make the client
//! do, so no broker can confirm faster to this client. Any other method
//! closes the connection with 540 NOT_IMPLEMENTED. Not a broker: no queue,
//! no routing, no storage, no delivery.

use std::collections::HashMap;
use std::net::SocketAddr;

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, connection, queue};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use anyhow::Context;
use clap::Args;
use conveyor_amqp::frame::{self, FrameError};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

/// Largest frame offered in connection.tune (Conveyor's and RabbitMQ's default).
const FRAME_MAX: u32 = 131_072;
const NOT_IMPLEMENTED: u16 = 540;

#[derive(Debug, Args)]
pub struct AmqpSinkArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:5672")]
    pub addr: SocketAddr,
}

pub async fn run(args: &AmqpSinkArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    crate::cli::render::out!("conveyor bench amqp-sink: no-op AMQP 0-9-1 server on {}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(error) = serve(stream).await {
                tracing::debug!(%peer, %error, "amqp-sink connection ended");
            }
        });
    }
}

/// A channel's publish in progress and its confirm counter.
#[derive(Debug, Default)]
struct SinkChannel {
    confirming: bool,
    /// Delivery tag of the last publish (confirms count from 1).
    published: u64,
    /// Delivery tag of the last complete publish, and of the last confirmed.
    complete: u64,
    confirmed: u64,
    /// Body bytes still expected for the publish in progress.
    body_left: Option<u64>,
}

async fn serve(stream: TcpStream) -> Result<(), FrameError> {
    stream.set_nodelay(true)?;
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
    if frame::read_protocol_header(&mut reader).await?.is_err() {
        writer.write_all(&frame::PROTOCOL_HEADER).await?;
        writer.flush().await?;
        return Ok(());
    }
    let mut channels: HashMap<u16, SinkChannel> = HashMap::new();
    let start = AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
        version_major: ProtocolVersion::amqp_0_9_1().major,
        version_minor: ProtocolVersion::amqp_0_9_1().minor,
        server_properties: server_properties(),
        mechanisms: LongString::from("PLAIN AMQPLAIN"),
        locales: LongString::from("en_US"),
    }));
    writer.write_all(&frame::encode(&[AMQPFrame::Method(0, start)])).await?;
    writer.flush().await?;
    loop {
        let incoming = frame::read_frame(&mut reader, FRAME_MAX as usize).await?;
        let mut replies = Vec::new();
        let done = handle(incoming, &mut channels, &mut replies);
        // Only once everything already received is handled: one write
        // carries the confirms of a whole burst of publishes.
        let burst_handled = done || reader.buffer().is_empty();
        if burst_handled {
            for (id, channel) in &mut channels {
                confirm_complete(*id, channel, &mut replies);
            }
        }
        if !replies.is_empty() {
            writer.write_all(&frame::encode(&replies)).await?;
        }
        if burst_handled {
            writer.flush().await?;
        }
        if done {
            return Ok(());
        }
    }
}

/// Handles one frame, pushing the replies; true when the connection ends.
fn handle(incoming: AMQPFrame, channels: &mut HashMap<u16, SinkChannel>, replies: &mut Vec<AMQPFrame>) -> bool {
    let method = |id: u16, class: AMQPClass| AMQPFrame::Method(id, class);
    // Confirms go out before any other reply on their channel, as a broker's would.
    if let AMQPFrame::Method(id, class) = &incoming
        && !matches!(class, AMQPClass::Basic(basic::AMQPMethod::Publish(_)))
        && let Some(channel) = channels.get_mut(id)
    {
        confirm_complete(*id, channel, replies);
    }
    match incoming {
        AMQPFrame::Heartbeat => {}
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(_))) => {
            replies.push(method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
                    channel_max: 2047,
                    frame_max: FRAME_MAX,
                    heartbeat: 0,
                })),
            ));
        }
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(_))) => {}
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Open(_))) => {
            replies.push(method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})),
            ));
        }
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
            replies.push(method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
            ));
            return true;
        }
        AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::Open(_))) => {
            channels.insert(id, SinkChannel::default());
            replies.push(method(id, AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {}))));
        }
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => return true,
        AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => {}
        AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::Close(_))) => {
            channels.remove(&id);
            replies.push(method(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))));
        }
        AMQPFrame::Method(id, AMQPClass::Confirm(confirm::AMQPMethod::Select(select))) => {
            channels.entry(id).or_default().confirming = true;
            if !select.nowait {
                replies.push(method(id, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {}))));
            }
        }
        AMQPFrame::Method(id, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))) => {
            if !declare.nowait {
                replies.push(method(
                    id,
                    AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                        queue: declare.queue,
                        message_count: 0,
                        consumer_count: 0,
                    })),
                ));
            }
        }
        AMQPFrame::Method(id, AMQPClass::Queue(queue::AMQPMethod::Delete(delete))) => {
            if !delete.nowait {
                replies.push(method(
                    id,
                    AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: 0 })),
                ));
            }
        }
        AMQPFrame::Method(id, AMQPClass::Basic(basic::AMQPMethod::Publish(_))) => {
            let channel = channels.entry(id).or_default();
            channel.published += 1;
            channel.body_left = None;
        }
        AMQPFrame::Header(id, header) => {
            let channel = channels.entry(id).or_default();
            channel.body_left = Some(header.body_size);
            if header.body_size == 0 {
                channel.body_left = None;
                channel.complete = channel.published;
            }
        }
        AMQPFrame::Body(id, body) => {
            let channel = channels.entry(id).or_default();
            let left = channel.body_left.unwrap_or(0).saturating_sub(body.len() as u64);
            channel.body_left = Some(left);
            if left == 0 {
                channel.body_left = None;
                channel.complete = channel.published;
            }
        }
        other => {
            let (class_id, method_id) = match &other {
                AMQPFrame::Method(_, class) => (class.get_amqp_class_id(), class.get_amqp_method_id()),
                _ => (0, 0),
            };
            replies.push(method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                    reply_code: NOT_IMPLEMENTED,
                    reply_text: ShortString::from("NOT_IMPLEMENTED - the no-op sink serves only the publish phase"),
                    class_id,
                    method_id,
                })),
            ));
            return true;
        }
    }
    false
}

/// One `basic.ack` for every publish on the channel completed since the last one.
fn confirm_complete(id: u16, channel: &mut SinkChannel, replies: &mut Vec<AMQPFrame>) {
    if channel.confirming && channel.complete > channel.confirmed {
        replies.push(AMQPFrame::Method(
            id,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag: channel.complete,
                multiple: channel.complete > channel.confirmed + 1,
            })),
        ));
        channel.confirmed = channel.complete;
    }
}

/// The capabilities lapin looks for before confirm mode.
fn server_properties() -> FieldTable {
    let mut capabilities = FieldTable::default();
    for name in ["publisher_confirms", "basic.nack", "consumer_cancel_notify", "connection.blocked"] {
        capabilities.insert(ShortString::from(name), AMQPValue::Boolean(true));
    }
    let mut properties = FieldTable::default();
    properties.insert(
        ShortString::from("product"),
        AMQPValue::LongString(LongString::from("conveyor bench amqp-sink")),
    );
    properties.insert(ShortString::from("capabilities"), AMQPValue::FieldTable(capabilities));
    properties
}
