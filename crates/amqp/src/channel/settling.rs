//! A channel's settlements: acks, nacks and rejects of the deliveries it
//! holds (now, or at a transaction's commit), giving deliveries back, and
//! waiting for acks and dead letters to be durable before a synchronous
//! method answers. The queue's delivery state is the core's.

use std::future::Future;

use conveyor_core::messaging::Storing;
use tracing::{debug, warn};

use super::refusal::settle_refused;
use super::{Channel, Confirm, Refusal, Settlement, Unacked, stored};
use crate::reply::{self, Exception};

impl Channel {
    /// Waits until every publish handed to the store task is stored and
    /// every ack is durable: what a synchronous method promises.
    /// An ack that could not be stored closes the channel with
    /// INTERNAL_ERROR: the client must not believe it settled.
    pub(super) async fn settle_pending(&mut self) -> Result<(), Exception> {
        let published = self.published;
        let _ = self.stored.wait_for(|stored| *stored >= published).await;
        let mut failed = None;
        for durable in self.pending_acks.drain(..) {
            if let Err(error) = durable.await {
                failed.get_or_insert(error);
            }
        }
        self.prune_acks_at = PENDING_ACKS_PRUNE_LEN;
        match failed {
            Some(error) => Err(ack_not_stored(&error)),
            None => Ok(()),
        }
    }

    /// Drops the pending acks already durable, without waiting, once there
    /// are more than `prune_acks_at`; one already failed closes the
    /// channel.
    pub(super) fn prune_pending_acks(&mut self) -> Result<(), Exception> {
        if self.pending_acks.len() <= self.prune_acks_at {
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
        self.prune_acks_at = (2 * self.pending_acks.len()).max(PENDING_ACKS_PRUNE_LEN);
        match failed {
            Some(error) => Err(ack_not_stored(&error)),
            None => Ok(()),
        }
    }

    /// Settles deliveries now, or at commit on a transactional channel.
    pub(super) fn settle(&mut self, unacked: Vec<(u64, Unacked)>, settlement: Settlement) {
        match self.tx.as_mut() {
            Some(transaction) => transaction.settlements.push((unacked, settlement)),
            None => self.apply(unacked.into_iter().map(|(_, one)| one).collect(), settlement),
        }
    }

    pub(super) fn apply(&mut self, unacked: Vec<Unacked>, settlement: Settlement) {
        match settlement {
            Settlement::Ack => {
                for one in unacked.into_iter().filter(Unacked::settles_in_cursor) {
                    match one.queue.queue().and_then(|queue| queue.ack(one.consumer, one.offset)) {
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

    /// Appends the client did not publish (dead letters) but that later
    /// synchronous methods on the channel must see stored.
    pub(super) fn track_appends(&mut self, appends: Vec<Storing>) {
        if appends.is_empty() {
            return;
        }
        self.published += 1;
        let _ = self
            .stores
            .send((None, Confirm::Durable(appends.into_iter().map(stored).collect(), true), None, None));
    }

    /// Removes the deliveries an ack, nack or reject names.
    pub(super) fn take_unacked(&self, tag: u64, multiple: bool) -> Result<Vec<(u64, Unacked)>, Exception> {
        let mut unacked = self.shared.unacked.lock();
        let taken: Vec<(u64, Unacked)> = if multiple {
            // Tag 0 with `multiple` means everything outstanding; any other
            // must be outstanding itself, as RabbitMQ checks it.
            if tag != 0 && !unacked.contains_key(&tag) {
                return Err(Exception::new(reply::PRECONDITION_FAILED, format!("unknown delivery tag {tag}")));
            }
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

    /// Gives every unacknowledged delivery back to its queue (redelivered
    /// next time): basic.recover, channel close, connection loss.
    pub(super) fn release_unacked(&self) {
        let unacked = std::mem::take(&mut *self.shared.unacked.lock());
        for one in unacked.values() {
            self.shared.free(one);
        }
        let _ = settle_refused(&self.shared.broker, unacked.into_values().collect(), Refusal::GiveBack);
    }
}

/// Pending acks beyond this many are checked, without waiting, as acks arrive.
pub(super) const PENDING_ACKS_PRUNE_LEN: usize = 64;

/// The exception for an ack whose journal append failed: 541, which
/// closes the connection, as RabbitMQ's internal errors do.
fn ack_not_stored(error: &conveyor_core::queue::QueueError) -> Exception {
    warn!(%error, "an acknowledgement could not be stored; closing the connection");
    Exception::new(reply::INTERNAL_ERROR, format!("an acknowledgement could not be stored: {error}"))
}
