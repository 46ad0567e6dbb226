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
            self.source.queue.ack(self.consumer, delivery.offset)?.await?;
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
        self.source.queue.release_all(self.consumer);
        self.source.notify_available();
    }
}

/// Messages a background redrive handles per step without a rate.
const TASK_STEP_MESSAGES: usize = 100;
/// Tasks remembered per source queue, running or finished (SQS lists up to ten).
const TASKS_KEPT_PER_SOURCE: usize = 10;

/// Where a background redrive stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Running,
    Completed,
    /// Asked to stop; stops before its next step.
    Cancelling,
    Cancelled,
    Failed,
}

impl TaskStatus {
    /// Running or about to stop: a source has at most one such task.
    pub fn is_active(self) -> bool {
        matches!(self, TaskStatus::Running | TaskStatus::Cancelling)
    }
}

/// A redrive running in the background (SQS's message move task), paced
/// to at most `rate_per_second` messages a second when given.
#[derive(Debug)]
pub struct RedriveTask {
    pub id: uuid::Uuid,
    pub source: String,
    /// `None`: each message back to the queue it was dead-lettered from.
    pub destination: Option<String>,
    pub rate_per_second: Option<u32>,
    pub started_ms: i64,
    /// The source's available messages when the task started: it handles no more than these.
    pub to_move: u64,
    state: parking_lot::Mutex<TaskState>,
    cancelled: tokio::sync::Notify,
}

#[derive(Debug)]
struct TaskState {
    status: TaskStatus,
    moved: u64,
    failure: Option<Arc<CoreError>>,
}

impl RedriveTask {
    pub fn status(&self) -> TaskStatus {
        self.state.lock().status
    }

    /// Messages moved so far.
    pub fn moved(&self) -> u64 {
        self.state.lock().moved
    }

    /// Why it failed (status [`TaskStatus::Failed`]).
    pub fn failure(&self) -> Option<Arc<CoreError>> {
        self.state.lock().failure.clone()
    }

    fn finish(&self, status: TaskStatus, failure: Option<CoreError>) {
        let mut state = self.state.lock();
        // A cancel that came during the last step still ends it as cancelled.
        state.status = match (state.status, status) {
            (TaskStatus::Cancelling, TaskStatus::Completed) => TaskStatus::Cancelled,
            (_, status) => status,
        };
        state.failure = failure.map(Arc::new);
    }

    async fn run(self: Arc<Self>, mut redrive: Redrive) {
        let step_messages = self.rate_per_second.map_or(TASK_STEP_MESSAGES, |rate| rate as usize);
        // Bounded: every step but the last handles at least one message of `to_move`.
        for _ in 0..=self.to_move {
            if self.status() == TaskStatus::Cancelling {
                return self.finish(TaskStatus::Cancelled, None);
            }
            let handled = redrive.done().moved + redrive.done().skipped;
            let wanted = self.to_move.saturating_sub(handled).min(step_messages as u64) as usize;
            if wanted == 0 {
                break;
            }
            let step_started = tokio::time::Instant::now();
            let cancelled = self.cancelled.notified();
            tokio::pin!(cancelled);
            cancelled.as_mut().enable();
            match redrive.step(wanted).await {
                Ok(0) => break,
                Ok(_) => self.state.lock().moved = redrive.done().moved,
                Err(error) => return self.finish(TaskStatus::Failed, Some(error)),
            }
            if self.rate_per_second.is_some() {
                tokio::select! {
                    () = tokio::time::sleep_until(step_started + std::time::Duration::from_secs(1)) => {}
                    () = &mut cancelled => {}
                }
            }
        }
        self.finish(TaskStatus::Completed, None);
    }
}

/// Why [`RedriveTasks::start`] refused.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a redrive of {0:?} is already running")]
    AlreadyRunning(String),
}

/// Why [`RedriveTasks::cancel`] refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no such redrive task")]
    UnknownTask,
    #[error("the redrive task is not running")]
    NotRunning,
}

/// The broker's background redrives, the latest few per source queue. In
/// memory: a restart ends them (what they moved stays moved).
#[derive(Debug, Default)]
pub struct RedriveTasks {
    by_source: parking_lot::Mutex<BTreeMap<String, std::collections::VecDeque<Arc<RedriveTask>>>>,
}

impl RedriveTasks {
    /// Starts a background redrive out of `source`; at most one runs per source.
    pub fn start(
        &self,
        broker: &Arc<Broker>,
        source: &Arc<DeclaredQueue>,
        destination: Option<Arc<DeclaredQueue>>,
        rate_per_second: Option<u32>,
    ) -> Result<Arc<RedriveTask>, StartError> {
        let mut by_source = self.by_source.lock();
        let tasks = by_source.entry(source.name.clone()).or_default();
        if tasks.iter().any(|task| task.status().is_active()) {
            return Err(StartError::AlreadyRunning(source.name.clone()));
        }
        let task = Arc::new(RedriveTask {
            id: uuid::Uuid::new_v4(),
            source: source.name.clone(),
            destination: destination.as_ref().map(|queue| queue.name.clone()),
            rate_per_second,
            started_ms: broker.clock().now_ms(),
            to_move: source.queue.available_count(),
            state: parking_lot::Mutex::new(TaskState {
                status: TaskStatus::Running,
                moved: 0,
                failure: None,
            }),
            cancelled: tokio::sync::Notify::new(),
        });
        tasks.push_front(Arc::clone(&task));
        tasks.truncate(TASKS_KEPT_PER_SOURCE);
        tokio::spawn(Arc::clone(&task).run(Redrive::new(broker, source, destination)));
        Ok(task)
    }

    /// The latest tasks out of `source`, newest first.
    pub fn list(&self, source: &str, max: usize) -> Vec<Arc<RedriveTask>> {
        self.by_source
            .lock()
            .get(source)
            .map(|tasks| tasks.iter().take(max).cloned().collect())
            .unwrap_or_default()
    }

    /// Asks a running task to stop before its next step; returns it.
    pub fn cancel(&self, source: &str, id: uuid::Uuid) -> Result<Arc<RedriveTask>, CancelError> {
        let task = self
            .by_source
            .lock()
            .get(source)
            .and_then(|tasks| tasks.iter().find(|task| task.id == id).cloned())
            .ok_or(CancelError::UnknownTask)?;
        {
            let mut state = task.state.lock();
            if state.status != TaskStatus::Running {
                return Err(CancelError::NotRunning);
            }
            state.status = TaskStatus::Cancelling;
        }
        task.cancelled.notify_one();
        Ok(task)
    }
}
