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

    /// How many more deliveries the window takes now, at most `max`.
    pub fn room(&self, max: usize) -> usize {
        match self.limit.load(Ordering::SeqCst) {
            0 => max,
            limit => max.min(limit.saturating_sub(self.in_flight.load(Ordering::SeqCst))),
        }
    }

    /// A delivery is now held against the window.
    pub fn occupy(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// A delivery was settled.
    pub fn free(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.wake.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_bounds_the_room_and_settling_frees_it() {
        let unlimited = Window::new(0);
        unlimited.occupy();
        assert_eq!(unlimited.room(256), 256);
        let window = Window::new(3);
        window.occupy();
        window.occupy();
        assert_eq!(window.room(256), 1);
        window.occupy();
        assert_eq!(window.room(256), 0);
        window.free();
        assert_eq!(window.room(256), 1);
        window.set_limit(1);
        assert_eq!(window.room(256), 0);
        window.set_limit(0);
        assert_eq!(window.room(7), 7);
    }
}
