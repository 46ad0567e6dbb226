//! One AMQP channel: its method dispatch and transactions; `queue.declare`
//! is `declaring.rs`, the other topology methods `topology.rs`, acks and
//! the other settlements `settling.rs`; publishes are `publishing.rs`
//! (reassembly, routing, confirms handed to `publish_store.rs`'s task),
//! consumers being set up are `consuming.rs`, and a queue consumer's
//! delivery task is `delivery.rs`.
//! The queue's own delivery state is the core's; a channel only remembers
//! which delivery tag stands for which (queue, consumer, offset).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, confirm, exchange, queue, tx};
use bytes::Bytes;
use conveyor_core::Broker;
use conveyor_core::auth::Operation;
use conveyor_core::connection_budget::Reservation;
use conveyor_core::messaging::Storing;
use conveyor_core::queue::{ConsumerId, DeclaredQueue, Durable, QueueType};
use conveyor_core::vhost::{self, VirtualHost};
use conveyor_log::record::Record;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

mod consuming;
mod declaring;
mod delivery;
mod publish_store;
mod publishing;
mod refusal;
mod settling;
mod topology;

pub(crate) use delivery::consumer_ended;
use publish_store::store_publishes;
use refusal::Refusal;
use settling::PENDING_ACKS_PRUNE_LEN;

use crate::Context;
use crate::consumer_cancel;
use crate::consumer_timeout;
use crate::frame;
use crate::identity::Identity;
use crate::message::Message;
use crate::prefetch::Window;
use crate::reply::{self, Exception};
use crate::reply_to::DirectReplyConsumer;

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
    /// found failed when a later ack prunes them. Each ack keeps its own: a
    /// journal append refused for want of space fails alone, so a later
    /// one's success says nothing of it. Completed ones are dropped as acks
    /// arrive, once there are more than `prune_acks_at`.
    pending_acks: Vec<Durable>,
    /// The length of `pending_acks` that triggers the next prune: twice
    /// what the last prune left (at least `PENDING_ACKS_PRUNE_LEN`), so
    /// each ack costs amortized O(1) polls, however many acks a consumer
    /// keeps in flight (one prune per ack over hundreds of pending
    /// acks was a quarter of the consume path's CPU).
    prune_acks_at: usize,
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
            prune_acks_at: PENDING_ACKS_PRUNE_LEN,
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
                self.delete_queue(context, connection_id, delete).await.map_err(fail)?;
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(declare)) => {
                self.declare_exchange(context, declare).await.map_err(fail)?;
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Delete(delete)) => {
                self.delete_exchange(context, delete).await.map_err(fail)?;
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Bind(bind)) => {
                self.bind_exchange(context, bind).await.map_err(fail)?;
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Unbind(unbind)) => {
                self.unbind_exchange(context, unbind).await.map_err(fail)?;
            }
            AMQPClass::Queue(queue::AMQPMethod::Bind(bind)) => {
                self.bind_queue(context, connection_id, bind).await.map_err(fail)?;
            }
            AMQPClass::Queue(queue::AMQPMethod::Unbind(unbind)) => {
                self.unbind_queue(context, unbind).await.map_err(fail)?;
            }
            AMQPClass::Queue(queue::AMQPMethod::Purge(purge)) => {
                self.purge_queue(context, connection_id, purge).await.map_err(fail)?;
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

    /// Drops the consumers whose queue was deleted: they were sent
    /// `basic.cancel` (`consumer_cancel.rs`) and their tags are free again.
    fn forget_cancelled_by_broker(&mut self) {
        self.consumers
            .retain(|_, consumer| !consumer_cancel::gone_with_queue(&consumer.queue));
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
    if held == Held::GivenBack
        && let Some(queue) = consumer.queue.opened()
    {
        queue.release_all(consumer.id);
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

fn not_transactional() -> Exception {
    Exception::new(reply::PRECONDITION_FAILED, "channel is not transactional")
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
