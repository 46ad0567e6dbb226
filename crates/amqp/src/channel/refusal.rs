//! What becomes of deliveries a consumer refuses (`basic.nack`,
//! `basic.reject`) or leaves unsettled when its channel closes: given back,
//! retried after the queue's delay, or dead-lettered. Knows the core's queue
//! operations; which delivery tags those are is the channel's.

use std::sync::Arc;

use conveyor_core::Broker;
use conveyor_core::messaging::{DeathReason, Storing};
use tracing::debug;

use super::Unacked;

/// What becomes of deliveries that were not acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Nack/reject with requeue: back to the queue after its retry delay.
    Retry,
    /// Nack/reject without requeue: settled for good and dead-lettered.
    DeadLetter,
    /// Recover, channel close, connection loss: back to the queue at once.
    GiveBack,
}

impl Refusal {
    pub(super) fn by_consumer(requeue: bool) -> Refusal {
        if requeue { Refusal::Retry } else { Refusal::DeadLetter }
    }
}

/// Settles deliveries that were not acked; returns the dead-letter appends.
pub(super) fn settle_refused(broker: &Arc<Broker>, unacked: Vec<Unacked>, refusal: Refusal) -> Vec<Storing> {
    let mut appends = Vec::new();
    // A deleted queue's deliveries are settled with it, a stream's need no
    // settling: nothing to requeue or dead-letter.
    for one in unacked.into_iter().filter(Unacked::settles_in_cursor) {
        let result = if refusal != Refusal::DeadLetter {
            let delay_ms = match refusal {
                Refusal::Retry => one.queue.policy().requeue_delay_ms(one.delivery_count),
                _ => 0,
            };
            one.queue
                .queue()
                .and_then(|queue| queue.release(one.consumer, one.offset, delay_ms))
                .map(|_| ())
        } else {
            let rejected = one
                .queue
                .queue()
                .and_then(|queue| queue.reject(one.consumer, one.offset))
                .map(|_| ());
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
