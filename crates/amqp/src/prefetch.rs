//! Prefetch windows (`basic.qos`): how many deliveries a consumer — or all
//! consumers of a channel together, with `global` — may hold
//! unacknowledged before it is sent more. (`prefetch_size` is a reserved
//! field in the RabbitMQ protocol that `amq-protocol` implements, and
//! RabbitMQ refuses non-zero values: there is no byte limit.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Deliveries held unacknowledged against a window's limit.
#[derive(Debug, Default)]
pub struct Window {
    /// Zero means no limit, as in the protocol.
    limit: AtomicUsize,
    in_flight: AtomicUsize,
    /// A consumer's window only: its consumer was cancelled.
    pub cancelled: AtomicBool,
    /// Woken when room frees up, the limit changes or the consumer is cancelled.
    pub wake: Notify,
}

impl Window {
    pub fn new(limit: usize) -> Window {
        Window {
            limit: AtomicUsize::new(limit),
            ..Window::default()
        }
    }

    /// Changes the limit (a global `basic.qos` applies at once).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Takes room for up to `max` deliveries, as much as the limit leaves,
    /// in one step: consumers sharing the window (a global qos) cannot both
    /// take the last slot. Returns how many; give back what goes unused.
    pub fn reserve(&self, max: usize) -> usize {
        let limit = self.limit.load(Ordering::SeqCst);
        let mut reserved = 0;
        let _ = self.in_flight.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |in_flight| {
            reserved = if limit == 0 {
                max
            } else {
                max.min(limit.saturating_sub(in_flight))
            };
            Some(in_flight + reserved)
        });
        reserved
    }

    /// Gives back `count` slots (settled deliveries, or reservations that
    /// went unused) and wakes the consumers waiting for room.
    pub fn unreserve(&self, count: usize) {
        if count > 0 {
            self.in_flight.fetch_sub(count, Ordering::SeqCst);
            self.wake.notify_waiters();
        }
    }

    /// Gives back reservations its only consumer did not use, without a
    /// wake-up: that consumer is the one giving them back, and waking it
    /// would only make it try again at once.
    pub fn unreserve_quietly(&self, count: usize) {
        self.in_flight.fetch_sub(count, Ordering::SeqCst);
    }

    /// A delivery is held against the window again (a rolled back ack).
    pub fn occupy(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_bounds_reservations_and_settling_frees_room() {
        let unlimited = Window::new(0);
        assert_eq!(unlimited.reserve(256), 256);
        let window = Window::new(3);
        assert_eq!(window.reserve(2), 2);
        assert_eq!(window.reserve(256), 1);
        assert_eq!(window.reserve(256), 0, "a full window reserves nothing");
        window.unreserve(1);
        assert_eq!(window.reserve(256), 1);
        window.unreserve(3);
        window.set_limit(1);
        window.occupy();
        assert_eq!(window.reserve(256), 0);
        window.set_limit(0);
        assert_eq!(window.reserve(7), 7);
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let window = std::sync::Arc::new(Window::new(5));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let window = std::sync::Arc::clone(&window);
                std::thread::spawn(move || (0..100).map(|_| window.reserve(2)).sum::<usize>())
            })
            .collect();
        let reserved: usize = threads.into_iter().map(|thread| thread.join().expect("thread")).sum();
        assert_eq!(reserved, 5);
    }
}
