//! The broker's background redrives (SQS's message move tasks): which run
//! or ran out of each source queue, their status and progress, and asking
//! one to stop. Knows tasks, not how a message moves (`redrive.rs` runs
//! them), nor the broker that holds this registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::CoreError;

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

    pub(crate) fn set_moved(&self, moved: u64) {
        self.state.lock().moved = moved;
    }

    /// Resolves when the task is asked to stop.
    pub(crate) fn cancelled(&self) -> tokio::sync::futures::Notified<'_> {
        self.cancelled.notified()
    }

    /// Why it failed (status [`TaskStatus::Failed`]).
    pub fn failure(&self) -> Option<Arc<CoreError>> {
        self.state.lock().failure.clone()
    }

    /// Records that the task ended.
    pub(crate) fn finish(&self, status: TaskStatus, failure: Option<CoreError>) {
        let mut state = self.state.lock();
        // A cancel that came during the last step still ends it as cancelled.
        state.status = match (state.status, status) {
            (TaskStatus::Cancelling, TaskStatus::Completed) => TaskStatus::Cancelled,
            (_, status) => status,
        };
        state.failure = failure.map(Arc::new);
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
    /// Registers a background redrive out of `source` and starts it with
    /// `run`; at most one runs per source.
    pub(crate) fn start(
        &self,
        source: &str,
        destination: Option<String>,
        rate_per_second: Option<u32>,
        started_ms: i64,
        to_move: u64,
        run: impl FnOnce(Arc<RedriveTask>),
    ) -> Result<Arc<RedriveTask>, StartError> {
        let mut by_source = self.by_source.lock();
        let tasks = by_source.entry(source.to_owned()).or_default();
        if tasks.iter().any(|task| task.status().is_active()) {
            return Err(StartError::AlreadyRunning(source.to_owned()));
        }
        let task = Arc::new(RedriveTask {
            id: uuid::Uuid::new_v4(),
            source: source.to_owned(),
            destination,
            rate_per_second,
            started_ms,
            to_move,
            state: parking_lot::Mutex::new(TaskState {
                status: TaskStatus::Running,
                moved: 0,
                failure: None,
            }),
            cancelled: tokio::sync::Notify::new(),
        });
        tasks.push_front(Arc::clone(&task));
        tasks.truncate(TASKS_KEPT_PER_SOURCE);
        run(Arc::clone(&task));
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
