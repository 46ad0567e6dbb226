//! openraft's log storage over the project's own journal: the Raft log,
//! vote and committed id are [`LogState`] events in a `Journaled` journal
//! under `<data>/cluster/raft-log/` (fsynced before openraft is told they
//! are durable, as it requires). Knows openraft's storage contract; nothing
//! of what the entries mean.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use conveyor_core::journal::{Appended, JournalConfig, JournalError, Journaled};
use conveyor_log::Durability;
use conveyor_log::clock::SystemClock;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogId, LogState as RaftLogState, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::Mutex;

use crate::error::ClusterError;
use crate::log_state::{LogEvent, LogState};
use crate::type_config::{NodeId, TypeConfig};

type Entry = openraft::Entry<TypeConfig>;

/// Snapshot the Raft log's own state after this many events.
const EVENTS_PER_SNAPSHOT: u64 = 1000;

/// The metadata group's log store; clones share it (the reader openraft
/// asks for is a clone).
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    journal: Arc<Journaled<LogState>>,
    /// Lock order: taken while an event is enqueued, so the journal's
    /// order is the state's.
    state: Mutex<LogState>,
}

impl LogStore {
    /// Opens (or creates) the log under `dir` and replays it. Blocking.
    pub fn open(dir: &Path) -> Result<LogStore, ClusterError> {
        let config = JournalConfig {
            durability: Durability::Always,
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_events: EVENTS_PER_SNAPSHOT,
            reserve_bytes: 0,
        };
        let (journal, replayed) =
            Journaled::<LogState>::open(dir, config, Arc::new(SystemClock)).map_err(|error| ClusterError::Storage {
                path: dir.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(LogStore {
            inner: Arc::new(Inner {
                journal: Arc::new(journal),
                state: Mutex::new(replayed.state),
            }),
        })
    }

    /// Whether the log has ever held an entry or a vote: a node with
    /// nothing may be bootstrapped.
    pub fn is_pristine(&self) -> bool {
        let state = self.inner.state.lock();
        state.entries.is_empty() && state.last_purged.is_none() && state.vote.is_none()
    }

    /// Journals `events` and applies them to the state in one step.
    fn record(&self, events: &[LogEvent]) -> Result<Appended, JournalError> {
        let mut state = self.inner.state.lock();
        let appended = self.inner.journal.append(events)?;
        for event in events {
            conveyor_core::journal::StateMachine::apply(&mut *state, event);
        }
        Ok(appended)
    }

    async fn record_durably(&self, events: &[LogEvent]) -> Result<(), StorageError<NodeId>> {
        self.record(events).map_err(write_failed)?.await.map_err(write_failed)?;
        self.snapshot_when_due().await;
        Ok(())
    }

    async fn snapshot_when_due(&self) {
        self.inner.journal.snapshot_when_due(&self.inner.state, "raft log").await;
    }

    /// Snapshots and closes the journal. Blocking.
    pub fn close(&self) {
        if let Err(error) = self.inner.journal.close_with_snapshot(&self.inner.state, "raft log") {
            tracing::warn!(%error, "closing the raft log");
        }
    }
}

/// A journal write that failed, as openraft's storage error.
fn write_failed(error: JournalError) -> StorageError<NodeId> {
    StorageError::from(StorageIOError::write_logs(AnyError::new(&error)))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let state = self.inner.state.lock();
        Ok(state.entries.range(range).map(|(_, entry)| entry.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<RaftLogState<TypeConfig>, StorageError<NodeId>> {
        let state = self.inner.state.lock();
        Ok(RaftLogState {
            last_purged_log_id: state.last_purged,
            last_log_id: state.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.record_durably(&[LogEvent::Voted { vote: *vote }]).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.state.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        // Not awaited: a committed id lost in a crash is learned again
        // from the leader.
        self.record(&[LogEvent::Committed { committed }]).map_err(write_failed)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.state.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let events: Vec<LogEvent> = entries.into_iter().map(|entry| LogEvent::Appended { entry }).collect();
        let appended = self.record(&events).map_err(write_failed)?;
        let store = self.clone();
        // openraft goes on while the fsync runs; it counts the entries
        // durable only once the callback says so.
        tokio::spawn(async move {
            let result = appended.await.map_err(std::io::Error::other);
            callback.log_io_completed(result);
            store.snapshot_when_due().await;
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.record_durably(&[LogEvent::Truncated { since: log_id.index }]).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.record_durably(&[LogEvent::Purged { upto: log_id }]).await
    }
}
