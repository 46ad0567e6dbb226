//! Redrive: moving the messages of one queue (typically a dead-letter queue)
//! into another — a fixed destination, or each back to the queue it was
//! dead-lettered from, as its death headers record. The admin API's redrive
//! and SQS's message move tasks are both this one loop. Each message is
//! acquired, published into its destination under that queue's policies, and
//! acknowledged in the source only once that append is durable: a crash in
//! between duplicates a message at worst and never loses one.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::broker::Broker;
use crate::error::{CoreError, Result};
use crate::queue::policy::headers;
use crate::queue::{ConsumerId, DeclaredQueue};
pub use crate::redrive_tasks::{CancelError, RedriveTask, RedriveTasks, StartError, TaskStatus};

/// How long a redrive holds what it acquired: released at the end anyway.
const LOCK_MS: i64 = 60_000;

/// What a redrive did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Messages moved (appended to their destination, then acknowledged in the source).
    pub moved: u64,
    /// Messages left in the source: no destination known, the destination
    /// does not exist, or it refused the message (full).
    pub skipped: u64,
    /// Messages moved, by destination queue.
    pub destinations: BTreeMap<String, u64>,
}

/// One redrive out of `source`, run in steps ([`Redrive::step`]) so a caller
/// can pace it, report progress or stop between them. What it skipped stays
/// acquired until it is dropped, so later steps move on past it; dropping it
/// gives everything still held back to the source.
pub struct Redrive {
    broker: Arc<Broker>,
    source: Arc<DeclaredQueue>,
    destination: Option<Arc<DeclaredQueue>>,
    consumer: ConsumerId,
    done: Redriven,
}

impl std::fmt::Debug for Redrive {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Redrive")
            .field("source", &self.source.name)
            .field("destination", &self.destination.as_ref().map(|queue| &queue.name))
            .field("done", &self.done)
            .finish()
    }
}

impl Redrive {
    /// A redrive from `source` into `destination`, or without one each
    /// message back to the queue it was dead-lettered from.
    pub fn new(broker: &Arc<Broker>, source: &Arc<DeclaredQueue>, destination: Option<Arc<DeclaredQueue>>) -> Redrive {
        Redrive {
            broker: Arc::clone(broker),
            source: Arc::clone(source),
            destination,
            consumer: source.new_consumer(),
            done: Redriven::default(),
        }
    }

    pub fn done(&self) -> &Redriven {
        &self.done
    }

    /// Handles up to `wanted` more messages (moves or skips each); returns
    /// how many it handled, 0 once the source has none available. Fails if
    /// the fixed destination was deleted, or on a storage error.
    pub async fn step(&mut self, wanted: usize) -> Result<usize> {
        if let Some(destination) = &self.destination
            && self
                .broker
                .queue(&destination.name)
                .is_none_or(|current| current.id != destination.id)
        {
            return Err(CoreError::UnknownQueue(destination.name.clone()));
        }
        let live = {
            let (broker, source, consumer) = (Arc::clone(&self.broker), Arc::clone(&self.source), self.consumer);
            tokio::task::spawn_blocking(move || broker.acquire_live(&source, consumer, wanted, LOCK_MS, crate::queue::Visibility::Durable))
                .await
                .map_err(|_| CoreError::ShuttingDown)??
        };
        for dead_letter in live.dead_letters {
            dead_letter.await?;
        }
        let handled = live.messages.len();
        for delivery in live.messages {
            let Some(destination) = self.destination_of(&delivery.record) else {
                self.done.skipped += 1;
                continue;
            };
            let mut record = delivery.record;
            // A fresh message in its destination: its own offset, a new TTL
            // clock, and the key it had before dead-lettering (its message
            // group) rather than the dead-letter routing key.
            record.offset = None;
            record.timestamp_ms = None;
            if let Some(key) = record.header(headers::DEATH_ROUTING_KEY).and_then(|header| header.value.clone()) {
                record.key = (!key.is_empty()).then_some(key);
            }
            let published = self.broker.republish_to_queue(&destination, record);
            for append in published.appends {
                append.await?;
            }
            destination.notify_available();
            if published.refused {
                self.done.skipped += 1;
                continue;
            }
            self.source.queue()?.ack(self.consumer, delivery.offset)?.await?;
            self.done.moved += 1;
            *self.done.destinations.entry(destination.name.clone()).or_default() += 1;
        }
        Ok(handled)
    }

    /// The fixed destination, or the queue the message died in (never the source itself).
    fn destination_of(&self, record: &conveyor_log::record::Record) -> Option<Arc<DeclaredQueue>> {
        if let Some(destination) = &self.destination {
            return Some(Arc::clone(destination));
        }
        record
            .header(headers::DEATH_QUEUE)
            .and_then(|header| header.value.as_deref())
            .and_then(|value| std::str::from_utf8(value).ok())
            .filter(|origin| *origin != self.source.name)
            .and_then(|origin| self.broker.queue(origin))
    }
}

impl Drop for Redrive {
    fn drop(&mut self) {
        if let Some(queue) = self.source.opened() {
            queue.release_all(self.consumer);
        }
        self.source.notify_available();
    }
}

/// Messages a background redrive handles per step without a rate.
const TASK_STEP_MESSAGES: usize = 100;

/// Starts a redrive out of `source` in the background (SQS's
/// StartMessageMoveTask), paced to `rate_per_second` when given; at most
/// one runs per source ([`Broker::redrive_tasks`]).
pub fn start_task(
    broker: &Arc<Broker>,
    source: &Arc<DeclaredQueue>,
    destination: Option<Arc<DeclaredQueue>>,
    rate_per_second: Option<u32>,
) -> Result<Arc<RedriveTask>, StartError> {
    let redrive = Redrive::new(broker, source, destination.clone());
    broker.redrive_tasks().start(
        &source.name,
        destination.map(|queue| queue.name.clone()),
        rate_per_second,
        broker.clock().now_ms(),
        source.available_count(),
        |task| {
            tokio::spawn(run(task, redrive));
        },
    )
}

/// Runs a background redrive in steps until it has handled what was
/// available when it started, is cancelled or fails.
async fn run(task: Arc<RedriveTask>, mut redrive: Redrive) {
    let step_messages = task.rate_per_second.map_or(TASK_STEP_MESSAGES, |rate| rate as usize);
    // Bounded: every step but the last handles at least one message of `to_move`.
    for _ in 0..=task.to_move {
        if task.status() == TaskStatus::Cancelling {
            return task.finish(TaskStatus::Cancelled, None);
        }
        let handled = redrive.done().moved + redrive.done().skipped;
        let wanted = task.to_move.saturating_sub(handled).min(step_messages as u64) as usize;
        if wanted == 0 {
            break;
        }
        let step_started = tokio::time::Instant::now();
        let cancelled = task.cancelled();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        match redrive.step(wanted).await {
            Ok(0) => break,
            Ok(_) => task.set_moved(redrive.done().moved),
            Err(error) => return task.finish(TaskStatus::Failed, Some(error)),
        }
        if task.rate_per_second.is_some() {
            tokio::select! {
                () = tokio::time::sleep_until(step_started + std::time::Duration::from_secs(1)) => {}
                () = &mut cancelled => {}
            }
        }
    }
    task.finish(TaskStatus::Completed, None);
}
