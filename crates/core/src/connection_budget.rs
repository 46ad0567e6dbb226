//! One client connection's memory budget: the bytes the broker holds for it
//! — what it sent that is not stored yet (Kafka requests not answered, AMQP
//! bodies being reassembled, publishes not confirmed, uncommitted
//! transactions) and responses waiting for its socket. A front door
//! reserves before it reads more; over the budget the reservation waits,
//! so the connection stops being read until earlier bytes are stored or
//! sent: backpressure, nothing refused. Bytes actually buffered are also
//! counted broker-wide in the resource alarms, whose memory alarm compares
//! them with `memory_max_bytes`. Knows bytes, not protocols.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::alarms::ResourceAlarms;

/// The budget of one connection. Cheap to clone; clones share it.
#[derive(Debug, Clone)]
pub struct ConnectionBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max_bytes: u64,
    reserved_bytes: AtomicU64,
    /// Woken whenever reserved bytes are given back.
    room: Notify,
    alarms: Arc<ResourceAlarms>,
}

/// Bytes reserved in a budget until dropped. `hold` counts the part of them
/// actually buffered in the broker-wide figure.
#[derive(Debug)]
pub struct Reservation {
    inner: Arc<Inner>,
    bytes: u64,
    held_bytes: u64,
}

impl ConnectionBudget {
    pub fn new(max_bytes: u64, alarms: Arc<ResourceAlarms>) -> ConnectionBudget {
        ConnectionBudget {
            inner: Arc::new(Inner {
                max_bytes,
                reserved_bytes: AtomicU64::new(0),
                room: Notify::new(),
                alarms,
            }),
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// Bytes reserved now.
    pub fn reserved_bytes(&self) -> u64 {
        self.inner.reserved_bytes.load(Ordering::Acquire)
    }

    /// Bytes that can be reserved without waiting.
    pub fn available_bytes(&self) -> u64 {
        self.inner.max_bytes.saturating_sub(self.reserved_bytes())
    }

    /// Reserves `bytes`, waiting while that would pass the budget. A
    /// reservation larger than the whole budget goes through once nothing
    /// else is reserved, so one oversized request (allowed by its own
    /// limit) still makes progress instead of waiting forever.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        loop {
            let room = self.inner.room.notified();
            tokio::pin!(room);
            // Registered before the check, so a release between the check and the await is not missed.
            room.as_mut().enable();
            if let Some(reservation) = self.try_reserve(bytes) {
                return reservation;
            }
            room.await;
        }
    }

    /// Reserves `bytes` if that stays within the budget (or nothing else is reserved).
    pub fn try_reserve(&self, bytes: u64) -> Option<Reservation> {
        let max = self.inner.max_bytes;
        self.inner
            .reserved_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                (reserved == 0 || reserved.saturating_add(bytes) <= max).then_some(reserved.saturating_add(bytes))
            })
            .ok()
            .map(|_| self.reservation(bytes))
    }

    /// Reserves `bytes` at once, over the budget if need be: for what the
    /// broker already holds (a response read for the connection). The
    /// reader's next `reserve` then waits until it is sent.
    pub fn reserve_now(&self, bytes: u64) -> Reservation {
        self.inner.reserved_bytes.fetch_add(bytes, Ordering::AcqRel);
        self.reservation(bytes)
    }

    fn reservation(&self, bytes: u64) -> Reservation {
        Reservation {
            inner: Arc::clone(&self.inner),
            bytes,
            held_bytes: 0,
        }
    }
}

impl Reservation {
    /// An empty reservation of `budget`, to merge others into.
    pub fn empty(budget: &ConnectionBudget) -> Reservation {
        budget.reservation(0)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Counts `bytes` more of the reservation as buffered in the broker
    /// (at most the reservation's size in all).
    pub fn hold(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes - self.held_bytes);
        if bytes > 0 {
            self.held_bytes += bytes;
            self.inner.alarms.hold_bytes(bytes);
        }
    }

    /// Counts the whole reservation as buffered.
    pub fn hold_all(mut self) -> Reservation {
        self.hold(self.bytes);
        self
    }

    /// Takes `other`'s bytes into this reservation (they are released together).
    pub fn merge(&mut self, mut other: Reservation) {
        debug_assert!(Arc::ptr_eq(&self.inner, &other.inner), "reservations of one budget");
        self.bytes += std::mem::take(&mut other.bytes);
        self.held_bytes += std::mem::take(&mut other.held_bytes);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held_bytes > 0 {
            self.inner.alarms.release_bytes(self.held_bytes);
        }
        if self.bytes > 0 {
            self.inner.reserved_bytes.fetch_sub(self.bytes, Ordering::AcqRel);
            self.inner.room.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn budget(max_bytes: u64) -> (tempfile::TempDir, ConnectionBudget) {
        let dir = tempfile::tempdir().expect("tempdir");
        let alarms = Arc::new(ResourceAlarms::new(dir.path()));
        (dir, ConnectionBudget::new(max_bytes, alarms))
    }

    #[tokio::test]
    async fn a_reservation_past_the_budget_waits_until_bytes_are_given_back() {
        let (_dir, budget) = budget(100);
        let first = budget.reserve(60).await;
        assert_eq!(budget.available_bytes(), 40);
        assert!(budget.try_reserve(50).is_none(), "60 + 50 > 100");
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(50).await.bytes() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waits while over the budget");
        drop(first);
        let reserved = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the release")
            .expect("task");
        assert_eq!(reserved, 50);
        assert_eq!(budget.reserved_bytes(), 0, "the waiter's reservation was dropped with its task");
    }

    #[tokio::test]
    async fn one_oversized_reservation_goes_through_alone() {
        let (_dir, budget) = budget(100);
        let huge = budget.reserve(1_000).await;
        assert_eq!(budget.available_bytes(), 0);
        assert!(budget.try_reserve(1).is_none(), "nothing more while it is held");
        drop(huge);
        assert!(budget.try_reserve(1).is_some());
    }

    #[tokio::test]
    async fn held_bytes_are_counted_broker_wide_until_released() {
        let (_dir, budget) = budget(1_000);
        let mut reservation = budget.reserve(300).await;
        reservation.hold(100);
        reservation.hold(500);
        assert_eq!(budget.inner.alarms.held_bytes(), 300, "at most the reservation");
        let mut merged = Reservation::empty(&budget);
        merged.merge(reservation);
        merged.merge(budget.reserve_now(50).hold_all());
        assert_eq!(merged.bytes(), 350);
        assert_eq!(budget.inner.alarms.held_bytes(), 350);
        drop(merged);
        assert_eq!(budget.inner.alarms.held_bytes(), 0);
        assert_eq!(budget.reserved_bytes(), 0);
    }
}
