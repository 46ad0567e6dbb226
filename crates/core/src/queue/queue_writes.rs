//! Where a queue's two writes go: the record batches a publish appends to
//! its message log, and the events its cursor journals (delivered,
//! acknowledged, archived, delayed…). On a single node both go straight to
//! the queue's own logs ([`LocalWrites`]); a replicated queue's leader
//! sends them through the queue's group, whose state machine appends them
//! to every replica's copies with these same `LocalWrites`, so the copies
//! are equal offset for offset. Knows the two logs; no policy, no cursor
//! rules, no consensus.

use std::sync::Arc;

use bytes::Bytes;
use conveyor_log::{Appending, Log};

use super::QueueError;
use super::durable::Durable;
use super::share_cursor::{CursorImage, JournalEvent};
use crate::journal::Journaled;

/// Where a queue's writes go. Called in the queue's order (cursor events
/// under its state lock), and each implementation keeps that order: the
/// journal's order is the cursor's.
pub trait QueueWrites: Send + Sync + std::fmt::Debug {
    /// Appends one record batch (a publish) to the message log; resolves
    /// with its offsets once durable (replicated: committed and written to
    /// this node's copy, so a consumer here can read it).
    fn append_messages(&self, batch: Bytes) -> Appending;

    /// Appends the cursor's `events` to its journal; resolves once durable.
    fn append_cursor(&self, events: &[JournalEvent]) -> Durable;
}

/// A queue's own logs, written here: a single node's queue, and each
/// replica's copy of a replicated one. Clones write the same logs.
#[derive(Debug, Clone)]
pub struct LocalWrites {
    messages: Log,
    journal: Arc<Journaled<CursorImage>>,
}

impl LocalWrites {
    pub(super) fn new(messages: Log, journal: Arc<Journaled<CursorImage>>) -> LocalWrites {
        LocalWrites { messages, journal }
    }
}

impl QueueWrites for LocalWrites {
    fn append_messages(&self, batch: Bytes) -> Appending {
        self.messages.append(batch)
    }

    fn append_cursor(&self, events: &[JournalEvent]) -> Durable {
        Durable::from_append(self.journal.append(events).map_err(QueueError::from))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use conveyor_log::LogError;
    use conveyor_log::clock::{Clock, ManualClock};
    use conveyor_log::record::Record;

    use super::*;
    use crate::queue::{ConsumerId, Queue, QueueConfig};

    const ALICE: ConsumerId = ConsumerId(1);

    /// The queue's own logs behind a seam that counts what goes through
    /// it, and refuses everything once `refusing` (a leader that lost its
    /// leadership).
    #[derive(Debug)]
    struct Counted {
        local: LocalWrites,
        batches: AtomicUsize,
        event_appends: AtomicUsize,
        refusing: AtomicBool,
    }

    impl QueueWrites for Counted {
        fn append_messages(&self, batch: Bytes) -> Appending {
            if self.refusing.load(Ordering::SeqCst) {
                return Appending::Ready(Some(Err(LogError::Closed(Path::new("not the leader").to_path_buf()))));
            }
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.local.append_messages(batch)
        }

        fn append_cursor(&self, events: &[JournalEvent]) -> Durable {
            if self.refusing.load(Ordering::SeqCst) {
                return Durable::from_append(Err(QueueError::Closed));
            }
            self.event_appends.fetch_add(1, Ordering::SeqCst);
            self.local.append_cursor(events)
        }
    }

    fn open_counted(dir: &Path, clock: &Arc<ManualClock>) -> (Queue, Arc<Counted>) {
        let mut seam = None;
        let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
        let queue = Queue::open_through(dir, QueueConfig::default(), clock, |local| {
            let counted = Arc::new(Counted {
                local,
                batches: AtomicUsize::new(0),
                event_appends: AtomicUsize::new(0),
                refusing: AtomicBool::new(false),
            });
            seam = Some(Arc::clone(&counted));
            counted
        })
        .expect("open queue");
        (queue, seam.expect("the seam was made"))
    }

    fn bodies(count: u64) -> Vec<Record> {
        (0..count)
            .map(|index| Record::new(None, Some(format!("m{index}").into_bytes())))
            .collect()
    }

    #[test]
    fn publishes_and_cursor_events_go_through_the_seam_into_the_queues_own_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        let (queue, seam) = open_counted(dir.path(), &clock);
        queue.publish(bodies(3)).wait().expect("publish");
        let taken = queue.acquire(ALICE, 3, 30_000).expect("acquire");
        taken.durable.wait().expect("deliveries durable");
        assert_eq!(taken.messages.len(), 3);
        queue.ack(ALICE, 0).expect("ack").wait().expect("ack durable");
        assert_eq!(seam.batches.load(Ordering::SeqCst), 1, "the one publish");
        assert!(seam.event_appends.load(Ordering::SeqCst) >= 2, "the deliveries and the ack");
        drop(queue);

        // What went through the seam is what the queue's logs hold: reopened
        // without it, the ack stays and the unacknowledged two come back.
        let clock_dyn: Arc<dyn Clock> = Arc::clone(&clock) as Arc<dyn Clock>;
        let reopened = Queue::open(dir.path(), QueueConfig::default(), clock_dyn).expect("reopen");
        let again = reopened.acquire(ALICE, 10, 30_000).expect("acquire again");
        let seen: Vec<(u64, u32)> = again
            .messages
            .iter()
            .map(|delivery| (delivery.offset, delivery.delivery_count))
            .collect();
        assert_eq!(seen, [(1, 2), (2, 2)]);
    }

    #[test]
    fn writes_the_seam_refuses_fail_the_publish_and_the_ack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        let (queue, seam) = open_counted(dir.path(), &clock);
        queue.publish(bodies(1)).wait().expect("publish");
        queue.acquire(ALICE, 1, 30_000).expect("acquire").durable.wait().expect("durable");
        seam.refusing.store(true, Ordering::SeqCst);
        assert!(queue.publish(bodies(1)).wait().is_err(), "a refused publish is not acknowledged");
        assert!(queue.ack(ALICE, 0).expect("ack").wait().is_err(), "a refused ack is not durable");
    }
}
