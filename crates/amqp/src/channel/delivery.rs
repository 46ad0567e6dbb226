//! A classic or quorum queue consumer's delivery task: acquires what the
//! consumer's prefetch window allows, sends it, and parks until messages
//! arrive, room frees up or the consumer is cancelled. Knows the channel's
//! shared state; stream consumers have their own loop (`stream_consumer.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use amq_protocol::protocol::basic;
use conveyor_core::queue::{ConsumerId, DeclaredQueue, Delivery, Visibility};
use tracing::warn;

use super::{ACQUIRE_BATCH, DELIVERY_LOCK_MS, Shared, Unacked, content_frames};
use crate::consumer_cancel;
use crate::frame;
use crate::prefetch::Window;
use crate::queue_type;
use crate::reply::short;

/// A consumer's delivery loop: acquires what its prefetch window allows and
/// sends it; parks until messages arrive, room frees up or it is cancelled.
/// A consumer as its delivery task sees it.
pub(super) struct Delivering {
    pub(super) consumer: ConsumerId,
    /// `x-priority`: while a consumer of higher priority has room, this one waits.
    pub(super) priority: i64,
    pub(super) window: Arc<Window>,
    pub(super) tag: String,
    pub(super) no_ack: bool,
}

pub(super) async fn deliver(shared: Arc<Shared>, declared: Arc<DeclaredQueue>, delivering: Delivering) {
    let Delivering {
        consumer,
        priority,
        window,
        tag,
        no_ack,
    } = delivering;
    // Messages are delivered once written, before their fsync, as RabbitMQ
    // does (only the publisher's confirm waits for the disk).
    // The queue opened when the consumer attached (`basic.consume`).
    let mut high_watermark = match declared.queue() {
        Ok(queue) => queue.subscribe_written(),
        Err(error) => {
            warn!(queue = declared.name, %error, "a consumer's queue could not be opened");
            return;
        }
    };
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
        if consumer_ended(&shared, &declared, &window, &tag).await {
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
                            let _ = declared.queue().and_then(|queue| queue.release(consumer, offset, 0));
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
            .opened()
            .and_then(|queue| queue.next_deadline_ms())
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
        let _ = declared.queue().and_then(|queue| queue.ack(consumer, delivery.offset));
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

/// Whether a consumer's delivery loop ends: the consumer was cancelled, its
/// channel closed, or its queue deleted (the client is then told with
/// `basic.cancel`).
pub(crate) async fn consumer_ended(shared: &Shared, declared: &DeclaredQueue, window: &Window, tag: &str) -> bool {
    if window.cancelled.load(Ordering::SeqCst) || shared.out.is_closed() {
        return true;
    }
    if consumer_cancel::gone_with_queue(declared) {
        let _ = shared
            .out
            .send(frame::encode(&[consumer_cancel::notification(shared.id, tag)]))
            .await;
        return true;
    }
    false
}
