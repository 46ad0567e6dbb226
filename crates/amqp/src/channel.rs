//! One AMQP channel: content reassembly for publishes, publisher confirms,
//! consumers with their prefetch windows, deliveries and their acks. The
//! queue's own delivery state is the core's; a channel only remembers which
//! delivery tag stands for which (queue, consumer, offset).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, confirm, exchange, queue, tx};
use amq_protocol::types::{AMQPValue, FieldTable, LongUInt};
use bytes::Bytes;
use conveyor_core::Broker;
use conveyor_core::auth::Operation;
use conveyor_core::catalog::QueueDefinition;
use conveyor_core::connection_budget::Reservation;
use conveyor_core::exchange::{Binding, Destination, Exchange, ExchangeKind};
use conveyor_core::limits::Limit;
use conveyor_core::messaging::{DeathReason, Storing};
use conveyor_core::queue::{ConsumerId, DeclaredQueue, Delivery, Durable, QueueType, Visibility};
use conveyor_core::vhost::{self, VirtualHost};
use conveyor_log::record::Record;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::Context;
use crate::consumer_cancel;
use crate::consumer_timeout;
use crate::frame;
use crate::identity::Identity;
use crate::message::{Message, header_table};
use crate::prefetch::Window;
use crate::queue_type;
use crate::reply::{self, Exception, short};
use crate::reply_to::{self, DirectReplyConsumer};
use crate::stream_consumer::{self, Reader};

/// AMQP has no visibility timeout: a delivery is held until acked or the
/// channel closes. This bounds how long a consumer that never acks can hold
/// one (RabbitMQ's `consumer_timeout` default is 30 minutes).
const DELIVERY_LOCK_MS: i64 = 30 * 60 * 1000;
/// Messages acquired per round when the window allows more.
const ACQUIRE_BATCH: usize = 256;
/// Frames to the client wait in this many slots before senders slow down.
pub const OUTBOX_FRAMES: usize = 1024;

/// Frames on their way to the connection's writer.
pub type Outbox = mpsc::Sender<Bytes>;

/// State a channel shares with its consumers' delivery tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: u16,
    pub(crate) broker: Arc<Broker>,
    pub(crate) out: Outbox,
    frame_max: usize,
    pub(crate) next_tag: AtomicU64,
    unacked: Mutex<BTreeMap<u64, Unacked>>,
    /// The channel's global prefetch window: every consumer's deliveries count in it.
    pub(crate) global: Window,
    /// `channel.flow`: while the client has it off, consumers are sent nothing.
    pub(crate) flowing: AtomicBool,
}

impl Shared {
    /// Room for up to `max` deliveries to a consumer, taken in its window
    /// and the channel's together.
    pub(crate) fn reserve(&self, window: &Window, max: usize) -> usize {
        let reserved = window.reserve(max);
        let both = self.global.reserve(reserved);
        window.unreserve_quietly(reserved - both);
        both
    }

    /// Gives back reservations a consumer did not use; the channel's other
    /// consumers may have been waiting for them.
    pub(crate) fn unreserve_unused(&self, window: &Window, count: usize) {
        window.unreserve_quietly(count);
        self.global.unreserve(count);
    }

    /// Remembers a delivery sent with `tag` until it is settled (its slot
    /// in the prefetch windows was reserved before it was read).
    pub(crate) fn track(&self, tag: u64, one: Unacked) {
        self.unacked.lock().insert(tag, one);
    }

    /// A delivery to a consumer counts in its windows again.
    fn occupy(&self, one: &Unacked) {
        if let Some(window) = &one.window {
            window.occupy();
            self.global.occupy();
        }
    }

    /// A delivery to a consumer no longer counts in its windows.
    fn free(&self, one: &Unacked) {
        if let Some(window) = &one.window {
            window.unreserve(1);
            self.global.unreserve(1);
            // At once, not when its task next looks: a publish right after
            // this ack must find the consumer's priority standing again.
            one.queue.set_room(one.consumer, true);
        }
    }
}

#[derive(Debug)]
pub(crate) struct Unacked {
    pub(crate) queue: Arc<DeclaredQueue>,
    pub(crate) consumer: ConsumerId,
    pub(crate) offset: u64,
    pub(crate) delivery_count: u32,
    /// Kept only when the queue dead-letters: a reject without requeue sends it on.
    pub(crate) record: Option<Record>,
    /// The consumer whose window the delivery counts in (none for basic.get).
    pub(crate) window: Option<Arc<Window>>,
    /// When it was sent, for the consumer timeout (`consumer_timeout.rs`).
    pub(crate) delivered: Instant,
}

impl Unacked {
    /// Whether settling it changes the queue's share cursor: not for a
    /// deleted queue (settled with it), nor for a stream, whose
    /// consumers read without acquiring (settling only frees the window).
    fn settles_in_cursor(&self) -> bool {
        !consumer_cancel::gone_with_queue(&self.queue) && self.queue.policy().queue_type != QueueType::Stream
    }
}

#[derive(Debug)]
struct Consumer {
    queue: Arc<DeclaredQueue>,
    id: ConsumerId,
    window: Arc<Window>,
}

/// A publish waiting for its content header and body.
#[derive(Debug)]
struct Publishing {
    exchange: String,
    routing_key: String,
    mandatory: bool,
    properties: Option<BasicProperties>,
    body_size: u64,
    body: Vec<u8>,
    /// The frames' bytes in the connection's budget, held until the message is stored.
    bytes: Option<Reservation>,
}

#[derive(Debug)]
pub struct Channel {
    shared: Arc<Shared>,
    publishing: Option<Publishing>,
    /// Publishes on their way to storage, awaited in order by the channel's
    /// store task, which sends publisher confirms when they are on.
    stores: mpsc::UnboundedSender<StoreWork>,
    /// Publishes handed to the store task, and how many it has seen stored:
    /// synchronous methods wait until they are equal, so a publish is
    /// visible to everything the client does after it on the channel.
    published: u64,
    stored: watch::Receiver<u64>,
    /// With publisher confirms on: the next confirm sequence number.
    confirm_next: Option<u64>,
    consumers: HashMap<String, Consumer>,
    /// The prefetch limit of consumers started from now on (a non-global `basic.qos`).
    prefetch: usize,
    next_consumer_tag: u64,
    /// After a channel exception: frames are ignored until close-ok.
    pub closing: bool,
    /// Journal appends of acks not yet known durable. Every synchronous
    /// method waits for them first, so a client that acks and then makes
    /// any round trip on the channel knows its acks survive a crash; one
    /// that fails closes the channel with INTERNAL_ERROR (541), as does one
    /// found failed when the next ack arrives. Each ack keeps its own: a
    /// journal append refused for want of space fails alone, so a later
    /// one's success says nothing of it. Completed ones are dropped as acks
    /// arrive (`PENDING_ACKS_PRUNE_LEN`).
    pending_acks: Vec<Durable>,
    /// After `tx.select`: publishes and settlements held until `tx.commit`.
    tx: Option<Transaction>,
    /// The budget reservation of the frame being handled, which a publish
    /// takes along (`received`); dropped after any other frame.
    frame_bytes: Option<Reservation>,
    /// The connection's vhost: every queue and exchange name the client
    /// sends is this vhost's (`resource`), every name it gets back its local one.
    vhost: VirtualHost,
    /// Whose permissions every method is checked against (RabbitMQ's table, `identity.rs`).
    identity: Identity,
    /// The channel's consumer of `amq.rabbitmq.reply-to` (Direct Reply-to).
    replies: Option<DirectReplyConsumer>,
}

/// What a transactional channel has done since its last commit or rollback.
#[derive(Debug, Default)]
struct Transaction {
    /// With each publish, its frames' bytes in the connection's budget.
    publishes: Vec<(Message, bool, Option<Reservation>)>,
    /// Body bytes of `publishes`, against `amqp_transaction_bytes_max`.
    body_bytes: u64,
    /// Deliveries settled (by tag), applied at commit, unsettled again at rollback.
    settlements: Vec<(Vec<(u64, Unacked)>, Settlement)>,
}

/// What an ack, nack or reject does to the deliveries it names.
#[derive(Debug, Clone, Copy)]
enum Settlement {
    Ack,
    Refuse(Refusal),
}

/// One append of a published message (to a queue's or a topic's log).
type Stored = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

fn stored(storing: Storing) -> Stored {
    Box::pin(async move { storing.await.map_err(|error| error.to_string()) })
}

/// One publish for the store task: its confirm tag (with confirms on), what
/// it waits for, when the client's message was complete (`None` for
/// dead letters the broker appends itself), to time publishes to storage,
/// and its bytes in the connection's budget, given back once stored.
type StoreWork = (Option<u64>, Confirm, Option<Instant>, Option<Reservation>);

/// What a publisher confirm waits for.
enum Confirm {
    /// Every queue and topic the message was routed to, those not stored
    /// yet; and whether every append so far succeeded.
    Durable(Vec<Stored>, bool),
    /// Unroutable: confirmed at once, as RabbitMQ does; also what a
    /// `Durable` becomes once all its appends succeeded.
    Now,
}

impl Confirm {
    /// Polls the appends still pending, dropping those that finished (a
    /// failure is logged and remembered); ready with whether all succeeded.
    fn poll_stored(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<bool> {
        let Confirm::Durable(appends, all) = self else {
            return std::task::Poll::Ready(true);
        };
        appends.retain_mut(|append| match append.as_mut().poll(cx) {
            std::task::Poll::Pending => true,
            std::task::Poll::Ready(result) => {
                if let Err(error) = result {
                    warn!(%error, "a published message could not be stored");
                    *all = false;
                }
                false
            }
        });
        if !appends.is_empty() {
            return std::task::Poll::Pending;
        }
        let all = *all;
        if all {
            *self = Confirm::Now;
        }
        std::task::Poll::Ready(all)
    }
}

impl Channel {
    pub fn new(id: u16, broker: Arc<Broker>, vhost: VirtualHost, identity: Identity, out: Outbox, frame_max: usize) -> Channel {
        let shared = Arc::new(Shared {
            id,
            broker,
            out,
            frame_max,
            next_tag: AtomicU64::new(1),
            unacked: Mutex::new(BTreeMap::new()),
            global: Window::default(),
            flowing: AtomicBool::new(true),
        });
        let (stores, pending) = mpsc::unbounded_channel();
        let (stored_tx, stored) = watch::channel(0);
        tokio::spawn(store_publishes(Arc::clone(&shared), pending, stored_tx));
        Channel {
            shared,
            publishing: None,
            stores,
            published: 0,
            stored,
            confirm_next: None,
            consumers: HashMap::new(),
            prefetch: 0,
            next_consumer_tag: 1,
            closing: false,
            pending_acks: Vec::new(),
            tx: None,
            frame_bytes: None,
            vhost,
            identity,
            replies: None,
        }
    }

    /// The budget reservation of the frame about to be handled: a publish
    /// (method, content header, body) keeps it until the message is stored.
    pub fn received(&mut self, bytes: Reservation) {
        self.frame_bytes = Some(bytes);
    }

    /// Drops the current frame's reservation unless a publish took it.
    pub fn handled(&mut self) {
        self.frame_bytes = None;
    }

    /// Adds the current frame's reservation to the publish in progress.
    fn keep_frame_bytes(&mut self) {
        let bytes = self.frame_bytes.take();
        if let Some(publishing) = self.publishing.as_mut() {
            merge(&mut publishing.bytes, bytes);
        }
    }

    fn id(&self) -> u16 {
        self.shared.id
    }

    /// The broker-wide name of the queue or exchange the client calls `name`.
    fn resource(&self, name: &str) -> Result<String, Exception> {
        self.vhost.resource(name).map_err(|error| reply::vhost_exception(&error))
    }

    async fn send(&self, frames: &[AMQPFrame]) {
        let _ = self.shared.out.send(frame::encode(frames)).await;
    }

    async fn reply(&self, method: AMQPClass) {
        self.send(&[AMQPFrame::Method(self.id(), method)]).await;
    }

    /// Handles one method on this channel. An `Err` is a channel exception
    /// (the caller closes the channel); connection-level errors are the
    /// caller's to detect.
    pub async fn method(&mut self, context: &Context, connection_id: u64, method: AMQPClass) -> Result<(), Exception> {
        if self.publishing.is_some() {
            return Err(Exception::new(reply::UNEXPECTED_FRAME, "expected content header or body").on(&method));
        }
        let on = method.clone();
        let fail = |exception: Exception| exception.on(&on);
        let asynchronous = matches!(
            method,
            AMQPClass::Basic(
                basic::AMQPMethod::Publish(_)
                    | basic::AMQPMethod::Ack(_)
                    | basic::AMQPMethod::Nack(_)
                    | basic::AMQPMethod::Reject(_)
                    | basic::AMQPMethod::RecoverAsync(_)
            )
        );
        if !asynchronous {
            let settled = self.settle_pending().await;
            // A client closing the channel gets its close-ok; the failure
            // was logged.
            let closing = matches!(
                method,
                AMQPClass::Channel(channel::AMQPMethod::Close(_) | channel::AMQPMethod::CloseOk(_))
            );
            if !closing {
                settled.map_err(fail)?;
            }
        }
        match method {
            AMQPClass::Channel(channel::AMQPMethod::Flow(flow)) => {
                self.shared.flowing.store(flow.active, Ordering::SeqCst);
                if flow.active {
                    // Paused consumers wait on the channel's window.
                    self.shared.global.wake.notify_waiters();
                }
                self.reply(AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk {
                    active: flow.active,
                })))
                .await;
            }
            AMQPClass::Queue(queue::AMQPMethod::Declare(declare)) => {
                self.declare_queue(context, connection_id, declare).await.map_err(fail)?;
            }
            AMQPClass::Queue(queue::AMQPMethod::Delete(delete)) => {
                let name = self.resource(delete.queue.as_str()).map_err(fail)?;
                self.identity
                    .queue(&context.broker, &self.vhost, delete.queue.as_str(), Operation::Configure)
                    .map_err(fail)?;
                check_access(context, connection_id, &self.vhost, &name).map_err(fail)?;
                let count = context
                    .broker
                    .delete_queue(&name, delete.if_empty)
                    .await
                    .map_err(|error| fail(reply::core_exception(&error)))?;
                context.exclusive_owners.lock().remove(&name);
                if !delete.nowait {
                    self.reply(AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
                        message_count: count.min(u64::from(u32::MAX)) as LongUInt,
                    })))
                    .await;
                }
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(declare)) => {
                let name = declare.exchange.to_string();
                let resource = self.resource(&name).map_err(fail)?;
                if declare.passive {
                    context
                        .broker
                        .exchange(&resource)
                        .ok_or_else(|| fail(reply::no_exchange(&name, &self.vhost)))?;
                } else {
                    self.identity
                        .exchange(&context.broker, &self.vhost, &name, Operation::Configure)
                        .map_err(fail)?;
                    let kind: ExchangeKind = declare
                        .kind
                        .as_str()
                        .parse()
                        .map_err(|error: conveyor_core::exchange::ExchangeError| {
                            fail(Exception::new(reply::COMMAND_INVALID, error.to_string()))
                        })?;
                    let alternate = match declare.arguments.inner().get("alternate-exchange") {
                        Some(AMQPValue::LongString(name)) => Some(String::from_utf8_lossy(name.as_bytes()).into_owned()),
                        Some(AMQPValue::ShortString(name)) => Some(name.to_string()),
                        _ => None,
                    };
                    if let Some(alternate) = &alternate {
                        self.identity
                            .exchange(&context.broker, &self.vhost, alternate, Operation::Write)
                            .map_err(fail)?;
                        self.identity
                            .exchange(&context.broker, &self.vhost, &name, Operation::Read)
                            .map_err(fail)?;
                    }
                    let mut definition = Exchange::new(resource, kind);
                    definition.durable = declare.durable;
                    definition.auto_delete = declare.auto_delete;
                    definition.internal = declare.internal;
                    definition.alternate_exchange = alternate;
                    context
                        .broker
                        .declare_exchange(definition)
                        .await
                        .map_err(|error| fail(reply::core_exception(&error)))?;
                }
                if !declare.nowait {
                    self.reply(AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})))
                        .await;
                }
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Delete(delete)) => {
                let name = self.resource(delete.exchange.as_str()).map_err(fail)?;
                self.identity
                    .exchange(&context.broker, &self.vhost, delete.exchange.as_str(), Operation::Configure)
                    .map_err(fail)?;
                context
                    .broker
                    .delete_exchange(&name, delete.if_unused)
                    .await
                    .map_err(|error| fail(reply::core_exception(&error)))?;
                if !delete.nowait {
                    self.reply(AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})))
                        .await;
                }
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Bind(bind)) => {
                let (source, destination) = (
                    self.resource(bind.source.as_str()).map_err(fail)?,
                    self.resource(bind.destination.as_str()).map_err(fail)?,
                );
                self.check_binding(context, bind.destination.as_str(), None, bind.source.as_str())
                    .map_err(fail)?;
                let binding = Binding::new(Destination::Exchange(destination), bind.routing_key.to_string())
                    .with_arguments(header_table(&bind.arguments));
                context
                    .broker
                    .bind(&source, binding)
                    .await
                    .map_err(|error| fail(reply::core_exception(&error)))?;
                if !bind.nowait {
                    self.reply(AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})))
                        .await;
                }
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Unbind(unbind)) => {
                let (source, destination) = (
                    self.resource(unbind.source.as_str()).map_err(fail)?,
                    self.resource(unbind.destination.as_str()).map_err(fail)?,
                );
                self.check_binding(context, unbind.destination.as_str(), None, unbind.source.as_str())
                    .map_err(fail)?;
                let binding = Binding::new(Destination::Exchange(destination), unbind.routing_key.to_string())
                    .with_arguments(header_table(&unbind.arguments));
                context
                    .broker
                    .unbind(&source, binding)
                    .await
                    .map_err(|error| fail(reply::core_exception(&error)))?;
                if !unbind.nowait {
                    self.reply(AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})))
                        .await;
                }
            }
            AMQPClass::Queue(queue::AMQPMethod::Bind(bind)) => {
                let (queue, exchange) = (
                    self.resource(bind.queue.as_str()).map_err(fail)?,
                    self.resource(bind.exchange.as_str()).map_err(fail)?,
                );
                check_access(context, connection_id, &self.vhost, &queue).map_err(fail)?;
                let destination = binding_destination(context, &self.vhost, queue);
                self.check_binding(context, bind.queue.as_str(), Some(&destination), bind.exchange.as_str())
                    .map_err(fail)?;
                let binding = Binding::new(destination, bind.routing_key.to_string()).with_arguments(header_table(&bind.arguments));
                context
                    .broker
                    .bind(&exchange, binding)
                    .await
                    .map_err(|error| fail(reply::core_exception(&error)))?;
                if !bind.nowait {
                    self.reply(AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {}))).await;
                }
            }
            AMQPClass::Queue(queue::AMQPMethod::Unbind(unbind)) => {
                let (queue, exchange) = (
                    self.resource(unbind.queue.as_str()).map_err(fail)?,
                    self.resource(unbind.exchange.as_str()).map_err(fail)?,
                );
                let destination = binding_destination(context, &self.vhost, queue);
                self.check_binding(context, unbind.queue.as_str(), Some(&destination), unbind.exchange.as_str())
                    .map_err(fail)?;
                let binding = Binding::new(destination, unbind.routing_key.to_string()).with_arguments(header_table(&unbind.arguments));
                context
                    .broker
                    .unbind(&exchange, binding)
                    .await
                    .map_err(|error| fail(reply::core_exception(&error)))?;
                self.reply(AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {}))).await;
            }
            AMQPClass::Queue(queue::AMQPMethod::Purge(purge)) => {
                let name = purge.queue.to_string();
                let resource = self.resource(&name).map_err(fail)?;
                let declared = context
                    .broker
                    .queue(&resource)
                    .ok_or_else(|| fail(reply::no_queue(&name, &self.vhost)))?;
                check_access(context, connection_id, &self.vhost, &resource).map_err(fail)?;
                self.identity
                    .queue(&context.broker, &self.vhost, &name, Operation::Read)
                    .map_err(fail)?;
                let broker = Arc::clone(&context.broker);
                let purged = tokio::task::spawn_blocking(move || broker.purge_queue(&declared))
                    .await
                    .map_err(|error| fail(Exception::new(reply::INTERNAL_ERROR, error.to_string())))?
                    .map_err(|error| fail(reply::core_exception(&error)))?;
                if !purge.nowait {
                    self.reply(AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk {
                        message_count: purged.min(u64::from(u32::MAX)) as LongUInt,
                    })))
                    .await;
                }
            }
            AMQPClass::Basic(basic::AMQPMethod::Qos(qos)) => {
                let limit = usize::from(qos.prefetch_count);
                if qos.global {
                    self.shared.global.set_limit(limit);
                } else {
                    self.prefetch = limit;
                }
                self.reply(AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {}))).await;
            }
            AMQPClass::Basic(basic::AMQPMethod::Publish(publish)) => {
                self.identity
                    .exchange(&context.broker, &self.vhost, publish.exchange.as_str(), Operation::Write)
                    .map_err(fail)?;
                match context.broker.exchange(&self.resource(publish.exchange.as_str()).map_err(fail)?) {
                    None => return Err(fail(reply::no_exchange(publish.exchange.as_str(), &self.vhost))),
                    Some(exchange) if exchange.internal => {
                        return Err(fail(Exception::new(
                            reply::ACCESS_REFUSED,
                            format!(
                                "cannot publish to internal exchange '{}' in vhost '{}'",
                                publish.exchange.as_str(),
                                self.vhost.name()
                            ),
                        )));
                    }
                    Some(_) => {}
                }
                self.publishing = Some(Publishing {
                    exchange: publish.exchange.to_string(),
                    routing_key: publish.routing_key.to_string(),
                    mandatory: publish.mandatory,
                    properties: None,
                    body_size: 0,
                    body: Vec::new(),
                    bytes: self.frame_bytes.take(),
                });
            }
            AMQPClass::Basic(basic::AMQPMethod::Consume(consume)) => {
                self.consume(context, connection_id, consume).await.map_err(fail)?;
            }
            AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)) => {
                self.forget_cancelled_by_broker();
                if self
                    .replies
                    .as_ref()
                    .is_some_and(|replies| replies.tag == cancel.consumer_tag.as_str())
                {
                    self.replies = None;
                } else if let Some(consumer) = self.consumers.remove(cancel.consumer_tag.as_str())
                    && let Some(unused) = detach(consumer, Held::KeptByChannel)
                {
                    delete_auto_deleted(context, vec![unused]).await;
                }
                if !cancel.nowait {
                    self.reply(AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                        consumer_tag: cancel.consumer_tag,
                    })))
                    .await;
                }
            }
            AMQPClass::Basic(basic::AMQPMethod::Get(get)) => {
                self.get(context, connection_id, get).await.map_err(fail)?;
            }
            AMQPClass::Basic(basic::AMQPMethod::Ack(ack)) => {
                let unacked = self.take_unacked(ack.delivery_tag, ack.multiple).map_err(fail)?;
                self.settle(unacked, Settlement::Ack);
                self.prune_pending_acks().map_err(fail)?;
            }
            AMQPClass::Basic(basic::AMQPMethod::Nack(nack)) => {
                let unacked = self.take_unacked(nack.delivery_tag, nack.multiple).map_err(fail)?;
                self.settle(unacked, Settlement::Refuse(Refusal::by_consumer(nack.requeue)));
            }
            AMQPClass::Basic(basic::AMQPMethod::Reject(reject)) => {
                let unacked = self.take_unacked(reject.delivery_tag, false).map_err(fail)?;
                self.settle(unacked, Settlement::Refuse(Refusal::by_consumer(reject.requeue)));
            }
            AMQPClass::Basic(basic::AMQPMethod::Recover(_)) => {
                self.release_unacked();
                self.reply(AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})))
                    .await;
            }
            AMQPClass::Basic(basic::AMQPMethod::RecoverAsync(_)) => self.release_unacked(),
            AMQPClass::Tx(tx::AMQPMethod::Select(_)) => {
                if self.confirm_next.is_some() {
                    return Err(fail(Exception::new(
                        reply::PRECONDITION_FAILED,
                        "cannot switch from confirm to tx mode",
                    )));
                }
                self.tx.get_or_insert_with(Transaction::default);
                self.reply(AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {}))).await;
            }
            AMQPClass::Tx(tx::AMQPMethod::Commit(_)) => {
                let transaction = self.tx.replace(Transaction::default()).ok_or_else(|| fail(not_transactional()))?;
                for (message, mandatory, bytes) in transaction.publishes {
                    self.publish(context, message, mandatory, bytes).await;
                }
                for (unacked, settlement) in transaction.settlements {
                    self.apply(unacked.into_iter().map(|(_, one)| one).collect(), settlement);
                }
                self.settle_pending().await.map_err(fail)?;
                self.reply(AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {}))).await;
            }
            AMQPClass::Tx(tx::AMQPMethod::Rollback(_)) => {
                let transaction = self.tx.replace(Transaction::default()).ok_or_else(|| fail(not_transactional()))?;
                // Published messages are dropped; settled deliveries are
                // unacknowledged again, as in RabbitMQ (not redelivered).
                {
                    let mut unacked = self.shared.unacked.lock();
                    for (tag, one) in transaction.settlements.into_iter().flat_map(|(unacked, _)| unacked) {
                        self.shared.occupy(&one);
                        unacked.insert(tag, one);
                    }
                }
                self.reply(AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {}))).await;
            }
            AMQPClass::Confirm(confirm::AMQPMethod::Select(select)) => {
                if self.tx.is_some() {
                    return Err(fail(Exception::new(
                        reply::PRECONDITION_FAILED,
                        "cannot switch from tx to confirm mode",
                    )));
                }
                if self.confirm_next.is_none() {
                    self.confirm_next = Some(1);
                }
                if !select.nowait {
                    self.reply(AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})))
                        .await;
                }
            }
            other => {
                return Err(fail(Exception::new(
                    reply::NOT_IMPLEMENTED,
                    format!("{other:?} is not implemented yet").chars().take(120).collect::<String>(),
                )));
            }
        }
        Ok(())
    }

    /// A content header: the publish's properties and body size.
    pub async fn content_header(&mut self, context: &Context, header: AMQPContentHeader) -> Result<(), Exception> {
        let Some(publishing) = self.publishing.as_mut().filter(|publishing| publishing.properties.is_none()) else {
            return Err(Exception::new(reply::UNEXPECTED_FRAME, "content header without a publish"));
        };
        if header.body_size > context.config.message_bytes_max {
            self.publishing = None;
            context.broker.limits().reach(
                Limit::AmqpMessageBytes,
                format!("a message of {} bytes was refused", header.body_size),
            );
            return Err(Exception::new(
                reply::PRECONDITION_FAILED,
                format!(
                    "message size {} is larger than the configured maximum {}",
                    header.body_size, context.config.message_bytes_max
                ),
            ));
        }
        publishing.properties = Some(header.properties);
        publishing.body_size = header.body_size;
        self.keep_frame_bytes();
        if header.body_size == 0 {
            self.finish_publish(context).await?;
        }
        Ok(())
    }

    /// A body frame of the publish in progress.
    pub async fn content_body(&mut self, context: &Context, body: Vec<u8>) -> Result<(), Exception> {
        let Some(publishing) = self.publishing.as_mut().filter(|publishing| publishing.properties.is_some()) else {
            return Err(Exception::new(reply::UNEXPECTED_FRAME, "content body without a content header"));
        };
        if publishing.body.len() as u64 + body.len() as u64 > publishing.body_size {
            return Err(Exception::new(reply::FRAME_ERROR, "content body larger than the header said"));
        }
        if publishing.body.is_empty() {
            publishing.body = body;
        } else {
            // Exactly what arrived: a body never waits in twice its size
            // (the budget counts the bytes sent, not a doubled capacity).
            publishing.body.reserve_exact(body.len());
            publishing.body.extend_from_slice(&body);
        }
        let complete = publishing.body.len() as u64 == publishing.body_size;
        self.keep_frame_bytes();
        if complete {
            self.finish_publish(context).await?;
        }
        Ok(())
    }

    async fn finish_publish(&mut self, context: &Context) -> Result<(), Exception> {
        let Some(publishing) = self.publishing.take() else { return Ok(()) };
        let mut properties = publishing.properties.unwrap_or_default();
        reply_to::rewrite(&mut properties, self.replies.as_ref())?;
        let message = Message {
            exchange: publishing.exchange,
            routing_key: publishing.routing_key,
            properties,
            body: publishing.body,
        };
        match self.tx.as_mut() {
            Some(transaction) => {
                let limits = context.broker.limits();
                let body_bytes = transaction.body_bytes + message.body.len() as u64;
                let messages_max = limits.config().amqp_transaction_messages_max as usize;
                let refused = if transaction.publishes.len() >= messages_max {
                    Some(Limit::AmqpTransactionMessages)
                } else if body_bytes > limits.config().amqp_transaction_bytes_max {
                    Some(Limit::AmqpTransactionBytes)
                } else {
                    None
                };
                if let Some(limit) = refused {
                    // The channel closes and the transaction goes with it: nothing of it was stored.
                    let reached = limits.reach(limit, "an AMQP transaction grew past its limit");
                    return Err(Exception::new(
                        reply::PRECONDITION_FAILED,
                        format!("transaction too large: commit or roll back sooner ({reached})"),
                    ));
                }
                transaction.body_bytes = body_bytes;
                transaction.publishes.push((message, publishing.mandatory, publishing.bytes));
            }
            None => self.publish(context, message, publishing.mandatory, publishing.bytes).await,
        }
        Ok(())
    }

    /// Waits until every publish handed to the store task is stored and
    /// every ack is durable: what a synchronous method promises.
    /// An ack that could not be stored closes the channel with
    /// INTERNAL_ERROR: the client must not believe it settled.
    async fn settle_pending(&mut self) -> Result<(), Exception> {
        let published = self.published;
        let _ = self.stored.wait_for(|stored| *stored >= published).await;
        let mut failed = None;
        for durable in self.pending_acks.drain(..) {
            if let Err(error) = durable.await {
                failed.get_or_insert(error);
            }
        }
        match failed {
            Some(error) => Err(ack_not_stored(&error)),
            None => Ok(()),
        }
    }

    /// Drops the pending acks already durable, without waiting, once there
    /// are more than `PENDING_ACKS_PRUNE_LEN`; one already failed closes the
    /// channel.
    fn prune_pending_acks(&mut self) -> Result<(), Exception> {
        if self.pending_acks.len() <= PENDING_ACKS_PRUNE_LEN {
            return Ok(());
        }
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let mut failed = None;
        self.pending_acks
            .retain_mut(|durable| match std::pin::Pin::new(durable).poll(&mut context) {
                std::task::Poll::Pending => true,
                std::task::Poll::Ready(Ok(())) => false,
                std::task::Poll::Ready(Err(error)) => {
                    failed.get_or_insert(error);
                    false
                }
            });
        match failed {
            Some(error) => Err(ack_not_stored(&error)),
            None => Ok(()),
        }
    }

    /// Settles deliveries now, or at commit on a transactional channel.
    fn settle(&mut self, unacked: Vec<(u64, Unacked)>, settlement: Settlement) {
        match self.tx.as_mut() {
            Some(transaction) => transaction.settlements.push((unacked, settlement)),
            None => self.apply(unacked.into_iter().map(|(_, one)| one).collect(), settlement),
        }
    }

    fn apply(&mut self, unacked: Vec<Unacked>, settlement: Settlement) {
        match settlement {
            Settlement::Ack => {
                for one in unacked.into_iter().filter(Unacked::settles_in_cursor) {
                    match one.queue.queue.ack(one.consumer, one.offset) {
                        Ok(durable) => self.pending_acks.push(durable),
                        Err(error) => debug!(%error, "ack of a delivery the queue no longer holds for this consumer"),
                    }
                }
            }
            Settlement::Refuse(refusal) => {
                let dead = settle_refused(&self.shared.broker, unacked, refusal);
                self.track_appends(dead);
            }
        }
    }

    /// Routes a complete message and hands its appends to the store task
    /// (with its bytes in the connection's budget, given back once stored).
    async fn publish(&mut self, context: &Context, message: Message, mandatory: bool, bytes: Option<Reservation>) {
        let started = Instant::now();
        if let Some(token) = reply_to::token_of(&message.exchange, &message.routing_key) {
            // A direct reply: straight to its consumer, confirmed at once.
            let token = token.to_owned();
            if let Some(returned) = reply_to::send(&context.broker, &token, message)
                && mandatory
            {
                self.return_unroutable(&returned).await;
            }
            self.confirm_after(Confirm::Now, started, bytes);
            return;
        }
        let headers = message.properties.headers().as_ref().map(header_table).unwrap_or_default();
        // The message keeps the exchange as the client named it (deliveries show it).
        let routed = self
            .vhost
            .resource(&message.exchange)
            .ok()
            .and_then(|exchange| context.broker.route(&exchange, &message.routing_key, &headers).ok())
            .unwrap_or_default();
        let confirm = if routed.is_empty() {
            if mandatory {
                self.return_unroutable(&message).await;
            }
            Confirm::Now
        } else {
            let record = message.into_record();
            let mut appends: Vec<Stored> = Vec::with_capacity(routed.queues.len() + routed.topics.len());
            for name in &routed.queues {
                if let Some(target) = context.broker.queue(name) {
                    let published = context.broker.publish_to_queue(&target, record.clone());
                    appends.extend(published.appends.into_iter().map(stored));
                    if published.refused {
                        appends.push(Box::pin(std::future::ready(Err(format!(
                            "queue '{}' is full (x-overflow reject-publish)",
                            vhost::local_name(name)
                        )))));
                    }
                }
            }
            for name in &routed.topics {
                match context.broker.publish_to_topic(name, record.clone()) {
                    Ok(pending) => appends.push(Box::pin(async move { pending.await.map(drop).map_err(|error| error.to_string()) })),
                    Err(error) => appends.push(Box::pin(std::future::ready(Err(error.to_string())))),
                }
            }
            Confirm::Durable(appends, true)
        };
        self.confirm_after(confirm, started, bytes);
    }

    /// A mandatory publish that reached nobody goes back (312 NO_ROUTE).
    async fn return_unroutable(&self, message: &Message) {
        let method = basic::AMQPMethod::Return(basic::Return {
            reply_code: reply::NO_ROUTE,
            reply_text: short("NO_ROUTE"),
            exchange: short(message.exchange.clone()),
            routing_key: short(message.routing_key.clone()),
        });
        self.send(&content_frames(&self.shared, method, message)).await;
    }

    /// Hands a publish's confirm to the store task, which sends it (in
    /// confirm mode) once what it waits for is stored; `bytes` are held
    /// in the connection's budget until then.
    fn confirm_after(&mut self, confirm: Confirm, started: Instant, bytes: Option<Reservation>) {
        let confirm_tag = self.confirm_next;
        if let Some(next) = self.confirm_next.as_mut() {
            *next += 1;
        }
        self.published += 1;
        let _ = self.stores.send((confirm_tag, confirm, Some(started), bytes));
    }

    async fn declare_queue(&mut self, context: &Context, connection_id: u64, declare: queue::Declare) -> Result<(), Exception> {
        let mut name = declare.queue.to_string();
        if declare.passive && name == reply_to::PSEUDO_QUEUE {
            // It always exists, empty and unconsumed (FastStream checks it so).
            if !declare.nowait {
                self.reply(AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                    queue: short(name),
                    message_count: 0,
                    consumer_count: 0,
                })))
                .await;
            }
            return Ok(());
        }
        if declare.passive {
            let resource = self.resource(&name)?;
            let declared = context.broker.queue(&resource).ok_or_else(|| reply::no_queue(&name, &self.vhost))?;
            check_access(context, connection_id, &self.vhost, &resource)?;
            return self.declare_ok(&declared, declare.nowait).await;
        }
        if name.is_empty() {
            name = format!("amq.gen-{}", uuid::Uuid::new_v4().simple());
        } else if name.starts_with("amq.") {
            return Err(Exception::new(
                reply::ACCESS_REFUSED,
                format!("queue name '{name}' contains reserved prefix 'amq.*'"),
            ));
        }
        let arguments = conveyor_core::queue::policy::arguments_from_table(&header_table(&declare.arguments), &name, self.vhost.name())
            .map_err(|reason| Exception::new(reply::PRECONDITION_FAILED, reason))?;
        queue_type::check_declaration(
            &arguments,
            declare.durable,
            declare.exclusive,
            declare.auto_delete,
            &name,
            self.vhost.name(),
        )?;
        // RabbitMQ checks a server-named queue under its generated name.
        self.identity.queue(&context.broker, &self.vhost, &name, Operation::Configure)?;
        if let Some(dead_letter_exchange) = dead_letter_exchange(&declare.arguments) {
            self.identity
                .exchange(&context.broker, &self.vhost, &dead_letter_exchange, Operation::Write)?;
            self.identity.queue(&context.broker, &self.vhost, &name, Operation::Read)?;
        }
        let name = self.resource(&name)?;
        check_access(context, connection_id, &self.vhost, &name)?;
        let definition = QueueDefinition {
            durable: declare.durable,
            auto_delete: declare.auto_delete,
            arguments,
        };
        let (declared, _created) = context
            .broker
            .declare_queue(&name, definition)
            .await
            .map_err(|error| reply::core_exception(&error))?;
        if declare.exclusive {
            context.exclusive_owners.lock().entry(name).or_insert(connection_id);
        }
        self.declare_ok(&declared, declare.nowait).await
    }

    /// RabbitMQ's table for `queue.bind`, `exchange.bind` and their unbinds:
    /// write on the destination (a queue, an exchange, or a Kafka topic's
    /// ACLs when `queue.bind` names a topic), read on the source exchange.
    fn check_binding(&self, context: &Context, destination: &str, resolved: Option<&Destination>, source: &str) -> Result<(), Exception> {
        match resolved {
            Some(Destination::Topic(topic)) => self.identity.topic(&context.broker, topic, Operation::Write)?,
            Some(_) => self.identity.queue(&context.broker, &self.vhost, destination, Operation::Write)?,
            None => self
                .identity
                .exchange(&context.broker, &self.vhost, destination, Operation::Write)?,
        }
        self.identity.exchange(&context.broker, &self.vhost, source, Operation::Read)
    }

    async fn declare_ok(&self, declared: &DeclaredQueue, nowait: bool) -> Result<(), Exception> {
        if !nowait {
            self.reply(AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                queue: short(vhost::local_name(&declared.name)),
                message_count: declared.queue.available_count().min(u64::from(u32::MAX)) as LongUInt,
                consumer_count: declared.consumer_count().min(u32::MAX as usize) as LongUInt,
            })))
            .await;
        }
        Ok(())
    }

    async fn consume(&mut self, context: &Context, connection_id: u64, consume: basic::Consume) -> Result<(), Exception> {
        let name = consume.queue.to_string();
        if name == reply_to::PSEUDO_QUEUE {
            return self.consume_replies(consume).await;
        }
        let resource = self.resource(&name)?;
        let declared = context.broker.queue(&resource).ok_or_else(|| reply::no_queue(&name, &self.vhost))?;
        check_access(context, connection_id, &self.vhost, &resource)?;
        self.identity.queue(&context.broker, &self.vhost, &name, Operation::Read)?;
        let tag = if consume.consumer_tag.as_str().is_empty() {
            let tag = format!("amq.ctag-{}-{}", self.id(), self.next_consumer_tag);
            self.next_consumer_tag += 1;
            tag
        } else {
            consume.consumer_tag.to_string()
        };
        self.forget_cancelled_by_broker();
        if self.consumers.contains_key(&tag) {
            return Err(Exception::new(reply::NOT_ALLOWED, format!("attempt to reuse consumer tag '{tag}'")));
        }
        let consumers_max = context.broker.limits().config().amqp_consumers_per_channel_max;
        if self.consumers.len() >= consumers_max as usize {
            // RabbitMQ's answer past `consumer_max_per_channel`.
            context
                .broker
                .limits()
                .reach(Limit::AmqpConsumersPerChannel, format!("basic.consume on channel {}", self.id()));
            return Err(Exception::new(
                reply::NOT_ALLOWED,
                format!("reached maximum ({consumers_max}) of consumers per channel"),
            ));
        }
        let priority = consumer_priority(&consume.arguments)?;
        let stream = declared.policy().queue_type == QueueType::Stream;
        let stream_next = if stream {
            stream_consumer::check_consume(consume.no_ack, self.prefetch, &name, self.vhost.name())?;
            let start = stream_consumer::start(&consume.arguments, context.broker.clock().now_ms())?;
            // Resolved before consume-ok: "next" means after what the client could have published before.
            let reading = Arc::clone(&declared);
            Some(
                tokio::task::spawn_blocking(move || reading.queue.stream_offset(start))
                    .await
                    .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?
                    .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?,
            )
        } else {
            None
        };
        let id = declared.new_consumer();
        declared.add_consumer(id, priority, consume.exclusive).map_err(|why| {
            Exception::new(
                reply::ACCESS_REFUSED,
                format!("queue '{name}' in vhost '{}' {why}", self.vhost.name()),
            )
        })?;
        if !consume.nowait {
            self.reply(AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                consumer_tag: short(tag.clone()),
            })))
            .await;
        }
        let consumer = Consumer {
            id,
            queue: declared,
            window: Arc::new(Window::new(self.prefetch)),
        };
        match stream_next {
            Some(next) => tokio::spawn(stream_consumer::deliver(
                Arc::clone(&self.shared),
                Arc::clone(&consumer.queue),
                Reader {
                    consumer: consumer.id,
                    window: Arc::clone(&consumer.window),
                    tag: tag.clone(),
                    next,
                },
            )),
            None => tokio::spawn(deliver(
                Arc::clone(&self.shared),
                Arc::clone(&consumer.queue),
                Delivering {
                    consumer: consumer.id,
                    priority,
                    window: Arc::clone(&consumer.window),
                    tag: tag.clone(),
                    no_ack: consume.no_ack,
                },
            )),
        };
        self.consumers.insert(tag, consumer);
        Ok(())
    }

    /// `basic.consume` of `amq.rabbitmq.reply-to` (`reply_to.rs`).
    async fn consume_replies(&mut self, consume: basic::Consume) -> Result<(), Exception> {
        let tag = if consume.consumer_tag.as_str().is_empty() {
            let tag = format!("amq.ctag-{}-{}", self.id(), self.next_consumer_tag);
            self.next_consumer_tag += 1;
            tag
        } else {
            consume.consumer_tag.to_string()
        };
        self.forget_cancelled_by_broker();
        if self.consumers.contains_key(&tag) {
            return Err(Exception::new(reply::NOT_ALLOWED, format!("attempt to reuse consumer tag '{tag}'")));
        }
        let replies = reply_to::consume(&self.shared, self.replies.as_ref(), tag.clone(), consume.no_ack)?;
        self.replies = Some(replies);
        if !consume.nowait {
            self.reply(AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                consumer_tag: short(tag),
            })))
            .await;
        }
        Ok(())
    }

    async fn get(&mut self, context: &Context, connection_id: u64, get: basic::Get) -> Result<(), Exception> {
        let name = get.queue.to_string();
        let resource = self.resource(&name)?;
        let declared = context.broker.queue(&resource).ok_or_else(|| reply::no_queue(&name, &self.vhost))?;
        check_access(context, connection_id, &self.vhost, &resource)?;
        self.identity.queue(&context.broker, &self.vhost, &name, Operation::Read)?;
        if declared.policy().queue_type == QueueType::Stream {
            return Err(stream_consumer::get_refused(&name, self.vhost.name()));
        }
        let consumer = declared.new_consumer();
        let acquiring = Arc::clone(&declared);
        let broker = Arc::clone(&context.broker);
        let deliveries =
            tokio::task::spawn_blocking(move || broker.acquire_live(&acquiring, consumer, 1, DELIVERY_LOCK_MS, Visibility::Written))
                .await
                .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?
                .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?;
        let (deliveries, dead) = (deliveries.messages, deliveries.dead_letters);
        for append in dead {
            if let Err(error) = append.await {
                warn!(%error, "a dead-lettered message could not be stored");
            }
        }
        let Some(delivery) = deliveries.into_iter().next() else {
            self.reply(AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))).await;
            return Ok(());
        };
        let tag = self.shared.next_tag.fetch_add(1, Ordering::Relaxed);
        if get.no_ack {
            let _ = declared.queue.ack(consumer, delivery.offset);
        } else {
            self.shared.unacked.lock().insert(
                tag,
                Unacked {
                    queue: Arc::clone(&declared),
                    consumer,
                    offset: delivery.offset,
                    delivery_count: delivery.delivery_count,
                    record: declared.policy().dead_letter_exchange.as_ref().map(|_| delivery.record.clone()),
                    window: None,
                    delivered: Instant::now(),
                },
            );
        }
        let redelivered = delivery.redelivered();
        let message = queue_type::delivered(&declared.policy(), delivery);
        let remaining = declared.queue.available_count().min(u64::from(u32::MAX)) as LongUInt;
        let method = basic::AMQPMethod::GetOk(basic::GetOk {
            delivery_tag: tag,
            redelivered,
            exchange: short(message.exchange.clone()),
            routing_key: short(message.routing_key.clone()),
            message_count: remaining,
        });
        self.send(&content_frames(&self.shared, method, &message)).await;
        Ok(())
    }

    /// Drops the consumers whose queue was deleted: they were sent
    /// `basic.cancel` (`consumer_cancel.rs`) and their tags are free again.
    fn forget_cancelled_by_broker(&mut self) {
        self.consumers
            .retain(|_, consumer| !consumer_cancel::gone_with_queue(&consumer.queue));
    }

    /// Appends the client did not publish (dead letters) but that later
    /// synchronous methods on the channel must see stored.
    fn track_appends(&mut self, appends: Vec<Storing>) {
        if appends.is_empty() {
            return;
        }
        self.published += 1;
        let _ = self
            .stores
            .send((None, Confirm::Durable(appends.into_iter().map(stored).collect(), true), None, None));
    }

    /// Removes the deliveries an ack, nack or reject names.
    fn take_unacked(&self, tag: u64, multiple: bool) -> Result<Vec<(u64, Unacked)>, Exception> {
        let mut unacked = self.shared.unacked.lock();
        let taken: Vec<(u64, Unacked)> = if multiple {
            // Tag 0 with `multiple` means everything outstanding.
            let up_to = if tag == 0 { u64::MAX } else { tag };
            let tags: Vec<u64> = unacked.range(..=up_to).map(|(tag, _)| *tag).collect();
            tags.into_iter()
                .filter_map(|tag| unacked.remove(&tag).map(|one| (tag, one)))
                .collect()
        } else {
            match unacked.remove(&tag) {
                Some(one) => vec![(tag, one)],
                None => return Err(Exception::new(reply::PRECONDITION_FAILED, format!("unknown delivery tag {tag}"))),
            }
        };
        for (_, one) in &taken {
            self.shared.free(one);
        }
        Ok(taken)
    }

    /// The exception that closes this channel if a delivery it holds has
    /// waited for its ack past the consumer timeout (`default_ms` unless
    /// its queue says otherwise).
    pub fn timed_out(&self, default_ms: u64) -> Option<Exception> {
        if self.closing {
            return None;
        }
        consumer_timeout::check(self.shared.unacked.lock().values(), self.id(), default_ms, Instant::now())
    }

    /// Gives every unacknowledged delivery back to its queue (redelivered
    /// next time): basic.recover, channel close, connection loss.
    fn release_unacked(&self) {
        let unacked = std::mem::take(&mut *self.shared.unacked.lock());
        for one in unacked.values() {
            self.shared.free(one);
        }
        let _ = settle_refused(&self.shared.broker, unacked.into_values().collect(), Refusal::GiveBack);
    }

    /// Ends the channel: consumers stop, unacked deliveries go back to their
    /// queues. Returns the auto-delete queues left without consumers, for
    /// the caller to delete.
    #[must_use]
    pub fn close(&mut self) -> Vec<Arc<DeclaredQueue>> {
        self.release_unacked();
        let unused = self
            .consumers
            .drain()
            .filter_map(|(_, consumer)| detach(consumer, Held::GivenBack))
            .collect();
        self.publishing = None;
        // An uncommitted transaction is dropped (its publishes with their budget).
        self.tx = None;
        self.frame_bytes = None;
        self.replies = None;
        unused
    }
}

/// Adds `more` to the reservation in `into`.
fn merge(into: &mut Option<Reservation>, more: Option<Reservation>) {
    match (into.as_mut(), more) {
        (Some(held), Some(more)) => held.merge(more),
        (None, more) => *into = more,
        (Some(_), None) => {}
    }
}

/// What becomes of the deliveries a departing consumer was sent and has not settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// `basic.cancel`: they stay unacked on the channel, which may still
    /// ack, nack or reject them (RabbitMQ's behaviour).
    KeptByChannel,
    /// The channel closes: everything the consumer holds goes back.
    GivenBack,
}

/// Stops a consumer (its task gives back what it acquired but had not
/// sent); returns its queue if that was an auto-delete queue's last consumer.
fn detach(consumer: Consumer, held: Held) -> Option<Arc<DeclaredQueue>> {
    consumer.window.cancelled.store(true, Ordering::SeqCst);
    consumer.window.wake.notify_one();
    if held == Held::GivenBack {
        consumer.queue.queue.release_all(consumer.id);
    }
    consumer.queue.notify_available();
    let remaining = consumer.queue.remove_consumer(consumer.id);
    (remaining == 0 && consumer.queue.definition().auto_delete).then_some(consumer.queue)
}

/// Deletes auto-delete queues whose last consumer went away (RabbitMQ's rule).
pub async fn delete_auto_deleted(context: &Context, queues: Vec<Arc<DeclaredQueue>>) {
    for declared in queues {
        // Still the same queue, and nobody attached meanwhile.
        let current = context.broker.queue(&declared.name);
        if current.is_some_and(|current| current.id == declared.id && current.consumer_count() == 0)
            && let Err(error) = context.broker.delete_queue(&declared.name, false).await
        {
            debug!(queue = declared.name, %error, "deleting an auto-delete queue");
        }
    }
}

/// Pending acks beyond this many are checked, without waiting, as acks arrive.
const PENDING_ACKS_PRUNE_LEN: usize = 64;

/// The channel exception for an ack whose journal append failed.
fn ack_not_stored(error: &conveyor_core::queue::QueueError) -> Exception {
    warn!(%error, "an acknowledgement could not be stored; closing the channel");
    Exception::new(reply::INTERNAL_ERROR, format!("an acknowledgement could not be stored: {error}"))
}

fn not_transactional() -> Exception {
    Exception::new(reply::PRECONDITION_FAILED, "channel is not transactional")
}

/// What becomes of deliveries that were not acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Nack/reject with requeue: back to the queue after its retry delay.
    Retry,
    /// Nack/reject without requeue: settled for good and dead-lettered.
    DeadLetter,
    /// Recover, channel close, connection loss: back to the queue at once.
    GiveBack,
}

impl Refusal {
    fn by_consumer(requeue: bool) -> Refusal {
        if requeue { Refusal::Retry } else { Refusal::DeadLetter }
    }
}

/// Settles deliveries that were not acked; returns the dead-letter appends.
fn settle_refused(broker: &Arc<Broker>, unacked: Vec<Unacked>, refusal: Refusal) -> Vec<Storing> {
    let mut appends = Vec::new();
    // A deleted queue's deliveries are settled with it, a stream's need no
    // settling: nothing to requeue or dead-letter.
    for one in unacked.into_iter().filter(Unacked::settles_in_cursor) {
        let result = if refusal != Refusal::DeadLetter {
            let delay_ms = match refusal {
                Refusal::Retry => one.queue.policy().requeue_delay_ms(one.delivery_count),
                _ => 0,
            };
            one.queue.queue.release(one.consumer, one.offset, delay_ms).map(|_| ())
        } else {
            let rejected = one.queue.queue.reject(one.consumer, one.offset).map(|_| ());
            if rejected.is_ok()
                && let Some(record) = one.record
            {
                appends.extend(broker.dead_letter(&one.queue, record, DeathReason::Rejected, one.delivery_count));
            }
            rejected
        };
        if let Err(error) = result {
            debug!(%error, "settling a delivery the queue no longer holds for this consumer");
        }
        one.queue.notify_available();
    }
    appends
}

/// What `queue.bind` names (broker-wide): a queue, or else a Kafka topic of
/// that name (so AMQP-published messages can be read by Kafka consumers).
/// Kafka topics have no vhost: they are reachable from `/` only, so the
/// other vhosts stay isolated.
fn binding_destination(context: &Context, vhost: &VirtualHost, resource: String) -> Destination {
    if vhost.is_default() && context.broker.queue(&resource).is_none() && context.broker.topic(&resource).is_some() {
        Destination::Topic(resource)
    } else {
        Destination::Queue(resource)
    }
}

/// A queue declaration's `x-dead-letter-exchange`, as the client named it.
fn dead_letter_exchange(arguments: &FieldTable) -> Option<String> {
    match arguments.inner().get("x-dead-letter-exchange") {
        Some(AMQPValue::LongString(name)) => Some(String::from_utf8_lossy(name.as_bytes()).into_owned()),
        Some(AMQPValue::ShortString(name)) => Some(name.to_string()),
        _ => None,
    }
}

/// Exclusive queues (by broker-wide name) belong to the connection that declared them.
fn check_access(context: &Context, connection_id: u64, vhost: &VirtualHost, resource: &str) -> Result<(), Exception> {
    match context.exclusive_owners.lock().get(resource) {
        Some(owner) if *owner != connection_id => Err(Exception::new(
            reply::RESOURCE_LOCKED,
            format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '{}'",
                vhost::local_name(resource),
                vhost.name()
            ),
        )),
        _ => Ok(()),
    }
}

/// A consumer's `x-priority` argument (0 without one); RabbitMQ takes any
/// integer and refuses other values with 406.
fn consumer_priority(arguments: &FieldTable) -> Result<i64, Exception> {
    let Some(value) = arguments.inner().get("x-priority") else {
        return Ok(0);
    };
    let priority = match value {
        AMQPValue::ShortShortInt(number) => Some(i64::from(*number)),
        AMQPValue::ShortShortUInt(number) => Some(i64::from(*number)),
        AMQPValue::ShortInt(number) => Some(i64::from(*number)),
        AMQPValue::ShortUInt(number) => Some(i64::from(*number)),
        AMQPValue::LongInt(number) => Some(i64::from(*number)),
        AMQPValue::LongUInt(number) => Some(i64::from(*number)),
        AMQPValue::LongLongInt(number) => Some(*number),
        _ => None,
    };
    priority.ok_or_else(|| Exception::new(reply::PRECONDITION_FAILED, format!("invalid arg 'x-priority' of type {value:?}")))
}

/// A method that carries content, its content header and its body frames
/// (at most `frame_max` bytes each, 8 of them framing), sent as one piece so
/// that nothing else on the channel comes between them.
pub(crate) fn content_frames(shared: &Shared, method: basic::AMQPMethod, message: &Message) -> Vec<AMQPFrame> {
    let mut frames = vec![
        AMQPFrame::Method(shared.id, AMQPClass::Basic(method)),
        AMQPFrame::Header(
            shared.id,
            AMQPContentHeader {
                class_id: 60,
                body_size: message.body.len() as u64,
                properties: message.properties.clone(),
            },
        ),
    ];
    let chunk = shared.frame_max.saturating_sub(8).max(1);
    frames.extend(message.body.chunks(chunk).map(|piece| AMQPFrame::Body(shared.id, piece.to_vec())));
    frames
}

/// Awaits each publish's appends in order; sends its confirm when the
/// channel is in confirm mode; counts it stored and times it. Publishes that
/// are already stored when the one before them is (the log group-commits
/// them together) are confirmed with a single `basic.ack` with `multiple`
/// set, as RabbitMQ does: one frame instead of one per publish.
async fn store_publishes(shared: Arc<Shared>, mut pending: mpsc::UnboundedReceiver<StoreWork>, stored: watch::Sender<u64>) {
    let mut count = 0u64;
    // A publish taken from the queue that was not stored yet: the next to await.
    let mut held: Option<StoreWork> = None;
    loop {
        let next = match held.take() {
            Some(work) => Some(work),
            None => pending.recv().await,
        };
        let Some((mut confirm_tag, mut confirm, mut started, mut bytes)) = next else {
            return;
        };
        // Acks not sent yet: the first and last confirm tag of the run.
        let mut acks: Option<(u64, u64)> = None;
        let mut frames = Vec::new();
        loop {
            let durable = std::future::poll_fn(|cx| confirm.poll_stored(cx)).await;
            // Stored: the connection may read that much more.
            drop(bytes.take());
            if let Some(started) = started {
                // A publish has no reply: its latency is until it is stored (and
                // confirmed). Recorded before anything on the channel can see it stored.
                shared.broker.stats().request_served("amqp", "basic.publish", started.elapsed());
            }
            count += 1;
            match (confirm_tag, durable) {
                (Some(tag), true) => acks = Some((acks.map_or(tag, |(first, _)| first), tag)),
                (Some(delivery_tag), false) => {
                    frames.extend(acks.take().map(|run| confirm_frame(&shared, run)));
                    let nack = basic::AMQPMethod::Nack(basic::Nack {
                        delivery_tag,
                        multiple: false,
                        requeue: false,
                    });
                    frames.push(AMQPFrame::Method(shared.id, AMQPClass::Basic(nack)));
                }
                (None, _) => {}
            }
            // Take the next publish only if it is stored already.
            let Ok(mut work) = pending.try_recv() else { break };
            if work
                .1
                .poll_stored(&mut std::task::Context::from_waker(std::task::Waker::noop()))
                .is_pending()
            {
                held = Some(work);
                break;
            }
            // Stored: its result is kept in `work.1`, so the await above is immediate.
            (confirm_tag, confirm, started, bytes) = (work.0, std::mem::replace(&mut work.1, Confirm::Now), work.2, work.3.take());
        }
        stored.send_replace(count);
        frames.extend(acks.map(|run| confirm_frame(&shared, run)));
        if !frames.is_empty() && shared.out.send(frame::encode(&frames)).await.is_err() {
            return;
        }
    }
}

/// The `basic.ack` confirming the run of publishes `first..=last`.
fn confirm_frame(shared: &Shared, (first, last): (u64, u64)) -> AMQPFrame {
    let ack = basic::AMQPMethod::Ack(basic::Ack {
        delivery_tag: last,
        multiple: last > first,
    });
    AMQPFrame::Method(shared.id, AMQPClass::Basic(ack))
}

/// A consumer's delivery loop: acquires what its prefetch window allows and
/// sends it; parks until messages arrive, room frees up or it is cancelled.
/// A consumer as its delivery task sees it.
struct Delivering {
    consumer: ConsumerId,
    /// `x-priority`: while a consumer of higher priority has room, this one waits.
    priority: i64,
    window: Arc<Window>,
    tag: String,
    no_ack: bool,
}

async fn deliver(shared: Arc<Shared>, declared: Arc<DeclaredQueue>, delivering: Delivering) {
    let Delivering {
        consumer,
        priority,
        window,
        tag,
        no_ack,
    } = delivering;
    // Messages are delivered once written, before their fsync, as RabbitMQ
    // does (only the publisher's confirm waits for the disk).
    let mut high_watermark = declared.queue.subscribe_written();
    loop {
        // Interest first, then the check: nothing that happens in between is missed.
        let available = declared.available();
        tokio::pin!(available);
        available.as_mut().enable();
        let woken = window.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let roomier = shared.global.wake.notified();
        tokio::pin!(roomier);
        roomier.as_mut().enable();
        high_watermark.borrow_and_update();
        if window.cancelled.load(Ordering::SeqCst) || shared.out.is_closed() {
            return;
        }
        if consumer_cancel::gone_with_queue(&declared) {
            let _ = shared
                .out
                .send(frame::encode(&[consumer_cancel::notification(shared.id, &tag)]))
                .await;
            return;
        }
        // No-ack consumers are not limited by prefetch (as in RabbitMQ).
        // Reserved in the windows before acquiring, so consumers sharing a
        // global window cannot overrun it; what goes unused is given back.
        let paused = !shared.flowing.load(Ordering::SeqCst);
        let mut reserved = if no_ack || paused {
            0
        } else {
            shared.reserve(&window, ACQUIRE_BATCH)
        };
        let room = if paused {
            0
        } else if no_ack {
            ACQUIRE_BATCH
        } else {
            reserved
        };
        declared.set_room(consumer, room > 0);
        // A consumer of higher priority with room takes the messages; this
        // one waits until that one is full or gone (either wakes it).
        // So does one waiting its turn behind a single active consumer.
        let outranked = room > 0 && (declared.outranked(priority) || declared.waits_its_turn(consumer));
        if outranked {
            shared.unreserve_unused(&window, reserved);
            reserved = 0;
        }
        if room > 0 && !outranked {
            let (acquiring, broker) = (Arc::clone(&declared), Arc::clone(&shared.broker));
            let acquired =
                tokio::task::spawn_blocking(move || broker.acquire_live(&acquiring, consumer, room, DELIVERY_LOCK_MS, Visibility::Written))
                    .await;
            let acquired = match acquired {
                Ok(Ok(live)) => Ok(live),
                Ok(Err(error)) => Err(error.to_string()),
                Err(error) => Err(error.to_string()),
            };
            let taken = acquired.as_ref().map_or(0, |live| live.messages.len());
            shared.unreserve_unused(&window, reserved.saturating_sub(taken));
            let deliveries = match acquired {
                Ok(live) => {
                    let (deliveries, dead) = (live.messages, live.dead_letters);
                    for append in dead {
                        if let Err(error) = append.await {
                            warn!(%error, "a dead-lettered message could not be stored");
                        }
                    }
                    deliveries
                }
                // Deleted meanwhile: the next round tells the client.
                Err(_) if consumer_cancel::gone_with_queue(&declared) => continue,
                Err(error) => {
                    warn!(queue = declared.name, %error, "acquiring messages failed; the consumer stops");
                    return;
                }
            };
            if !deliveries.is_empty() {
                let mut deliveries = deliveries.into_iter();
                // Bounded by the deliveries acquired.
                while let Some(delivery) = deliveries.next() {
                    if window.cancelled.load(Ordering::SeqCst) {
                        // Cancelled meanwhile: what was not sent goes back;
                        // what was stays the channel's to settle.
                        let unsent: Vec<u64> = std::iter::once(delivery.offset)
                            .chain(deliveries.map(|unsent| unsent.offset))
                            .collect();
                        if !no_ack {
                            shared.unreserve_unused(&window, unsent.len());
                        }
                        for offset in unsent {
                            let _ = declared.queue.release(consumer, offset, 0);
                        }
                        declared.notify_available();
                        return;
                    }
                    send_delivery(&shared, &declared, consumer, &window, &tag, no_ack, delivery).await;
                }
                continue;
            }
        }
        // Retry delays and expired locks make messages available without
        // a notification: wake for the next one.
        let wake_in_ms = declared
            .queue
            .next_deadline_ms()
            .map_or(DELIVERY_LOCK_MS, |deadline_ms| deadline_ms - shared.broker.clock().now_ms())
            .clamp(1, DELIVERY_LOCK_MS);
        tokio::select! {
            () = &mut available => {}
            () = &mut woken => {}
            // Only a consumer without room listens for the channel's: one
            // that had room would be woken by its own unused reservations.
            // A paused one hears the flow turn back on there too.
            () = &mut roomier, if reserved == 0 && (paused || (!no_ack && !outranked)) => {}
            changed = high_watermark.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(std::time::Duration::from_millis(wake_in_ms as u64)) => {}
        }
    }
}

async fn send_delivery(
    shared: &Shared,
    declared: &Arc<DeclaredQueue>,
    consumer: ConsumerId,
    window: &Arc<Window>,
    tag: &str,
    no_ack: bool,
    delivery: Delivery,
) {
    let delivery_tag = shared.next_tag.fetch_add(1, Ordering::Relaxed);
    if no_ack {
        let _ = declared.queue.ack(consumer, delivery.offset);
    } else {
        let one = Unacked {
            queue: Arc::clone(declared),
            consumer,
            offset: delivery.offset,
            delivery_count: delivery.delivery_count,
            record: declared.policy().dead_letter_exchange.as_ref().map(|_| delivery.record.clone()),
            window: Some(Arc::clone(window)),
            delivered: Instant::now(),
        };
        // Its slot in the prefetch windows was reserved before acquiring.
        shared.unacked.lock().insert(delivery_tag, one);
    }
    let redelivered = delivery.redelivered();
    let message = queue_type::delivered(&declared.policy(), delivery);
    let method = basic::AMQPMethod::Deliver(basic::Deliver {
        consumer_tag: short(tag.to_owned()),
        delivery_tag,
        redelivered,
        exchange: short(message.exchange.clone()),
        routing_key: short(message.routing_key.clone()),
    });
    let _ = shared.out.send(frame::encode(&content_frames(shared, method, &message))).await;
}
