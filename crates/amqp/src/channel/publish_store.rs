//! A channel's publish store task: awaits each publish's appends in order
//! and sends its confirm (one `basic.ack` with `multiple` for a run already
//! stored together). Knows the channel's shared state and confirms, not
//! routing or consumers.

use std::sync::Arc;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic};
use tokio::sync::{mpsc, watch};

use super::{Confirm, Shared, StoreWork};
use crate::frame;

/// Awaits each publish's appends in order; sends its confirm when the
/// channel is in confirm mode; counts it stored and times it. Publishes that
/// are already stored when the one before them is (the log group-commits
/// them together) are confirmed with a single `basic.ack` with `multiple`
/// set, as RabbitMQ does: one frame instead of one per publish.
pub(super) async fn store_publishes(shared: Arc<Shared>, mut pending: mpsc::UnboundedReceiver<StoreWork>, stored: watch::Sender<u64>) {
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
