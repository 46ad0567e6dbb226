//! A partition group's state machine: every committed [`Command::Append`]
//! is written, in log order, to the partition's log in the broker (the
//! same `Partition::write` a single node uses: idempotent-producer checks,
//! conditions, a marker's transaction state), so every replica's log gets the same batches at the same
//! offsets. The proposer on this node (the leader) gets the append's
//! outcome through its waiter. What was applied (the last Raft log id, the
//! membership, the partition log's end after it) is kept in
//! `applied.json` beside the group's Raft log.
//!
//! A crash between the partition log's write and `applied.json`'s leaves
//! entries in the log that openraft applies again at the next start: an
//! entry whose batches are already at the recorded end is skipped (and one
//! that is not there was refused the first time, and is refused again by
//! being skipped), so no batch is written twice. Knows openraft's
//! state-machine contract and the broker's partitions; no sockets.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::producer::Partition;
use conveyor_core::{Broker, CoreError};
use conveyor_log::batch::whole_batches;
use conveyor_log::{AppendInfo, Log};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::ClusterError;
use crate::type_config::{Command, GroupId, NodeId, Outcome, TypeConfig, partition_write};

type Entry = openraft::Entry<TypeConfig>;

/// How long applying an entry waits for the broker to open its
/// partition (the metadata entry that creates it is applied separately).
const PARTITION_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
const PARTITION_OPEN_POLL: Duration = Duration::from_millis(20);

/// What a proposer waits for: the append's outcome on this node.
pub type AppendWaiter = oneshot::Sender<Result<AppendInfo, CoreError>>;

/// What is applied, as `applied.json` keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// The partition log's end offset once `last_applied` was applied.
    end_offset: u64,
}

/// The state machine of one partition group; clones share it.
#[derive(Debug, Clone)]
pub struct PartitionMachine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    broker: Arc<Broker>,
    group: GroupId,
    path: PathBuf,
    applied: Mutex<Applied>,
    waiters: Mutex<HashMap<Uuid, AppendWaiter>>,
}

impl PartitionMachine {
    /// Loads `applied.json` under `dir`, if there is one. Blocking.
    pub fn open(dir: &Path, group: GroupId, broker: Arc<Broker>) -> Result<PartitionMachine, ClusterError> {
        let path = dir.join("applied.json");
        let applied = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| ClusterError::Storage {
                path: path.clone(),
                reason: error.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Applied::default(),
            Err(error) => {
                return Err(ClusterError::Storage {
                    path,
                    reason: error.to_string(),
                });
            }
        };
        Ok(PartitionMachine {
            inner: Arc::new(Inner {
                broker,
                group,
                path,
                applied: Mutex::new(applied),
                waiters: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Registers the wait of the proposal `request`.
    pub fn wait_for(&self, request: Uuid) -> oneshot::Receiver<Result<AppendInfo, CoreError>> {
        let (sender, receiver) = oneshot::channel();
        self.inner.waiters.lock().insert(request, sender);
        receiver
    }

    /// Forgets the wait of a proposal that was not committed.
    pub fn forget(&self, request: &Uuid) {
        self.inner.waiters.lock().remove(request);
    }

    /// The broker's partition, once it has opened it.
    async fn partition(&self) -> Result<Partition, StorageError<NodeId>> {
        let deadline = tokio::time::Instant::now() + PARTITION_OPEN_TIMEOUT;
        let group = self.inner.group;
        loop {
            let handle = self
                .inner
                .broker
                .topic_by_id(group.topic)
                .and_then(|topic| topic.partition_handle(group.partition));
            if let Some(handle) = handle {
                return Ok(handle);
            }
            if tokio::time::Instant::now() >= deadline {
                let error = std::io::Error::other(format!("partition {group} is not open on this node"));
                return Err(StorageError::from(StorageIOError::write_state_machine(AnyError::new(&error))));
            }
            tokio::time::sleep(PARTITION_OPEN_POLL).await;
        }
    }

    async fn save(&self, applied: Applied) -> Result<(), StorageError<NodeId>> {
        let failed =
            |error: &dyn std::error::Error| StorageError::from(StorageIOError::write_state_machine(AnyError::error(error.to_string())));
        let bytes = serde_json::to_vec(&applied).map_err(|error| failed(&error))?;
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || conveyor_log::index::write_atomically(&path, &bytes))
            .await
            .map_err(|error| failed(&error))?
            .map_err(|error| failed(&error))?;
        *self.inner.applied.lock() = applied;
        Ok(())
    }
}

/// Where `batches`, appended at `at` before, end in `log`: `Some` when the
/// log holds batches of the same shape there (producer, sequence, record
/// count, size), `None` when it does not.
fn already_in_log(log: &Log, at: u64, batches: &[u8]) -> Option<u64> {
    let read = log.read(at, batches.len(), true).ok()?;
    let mut stored = whole_batches(&read.bytes);
    let mut end = None;
    for (wanted, _) in whole_batches(batches) {
        let (found, _) = stored.next()?;
        let same = found.producer_id == wanted.producer_id
            && found.base_sequence == wanted.base_sequence
            && found.last_offset_delta == wanted.last_offset_delta
            && found.batch_length == wanted.batch_length
            && end.is_none_or(|end| found.base_offset as u64 == end)
            && (end.is_some() || found.base_offset as u64 == at);
        if !same {
            return None;
        }
        end = Some(found.last_offset() as u64 + 1);
    }
    end
}

impl RaftSnapshotBuilder<TypeConfig> for PartitionMachine {
    /// The data is the partition log itself: a snapshot says only how far
    /// it goes. The group never purges its Raft log, so no follower is
    /// ever sent one.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let applied = self.inner.applied.lock().clone();
        let bytes =
            serde_json::to_vec(&applied).map_err(|error| StorageError::from(StorageIOError::read_state_machine(AnyError::new(&error))))?;
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
            snapshot_id: format!("{}-{}", self.inner.group, applied.last_applied.map_or(0, |id| id.index)),
        };
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for PartitionMachine {
    type SnapshotBuilder = PartitionMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let applied = self.inner.applied.lock();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut applied = self.inner.applied.lock().clone();
        let mut outcomes = Vec::new();
        let mut appending = Vec::new();
        // What the log held when this call began: entries below it were
        // applied before a crash that kept `applied.json` behind.
        let mut recovered_end: Option<u64> = None;
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Membership(membership) => applied.membership = StoredMembership::new(Some(entry.log_id), membership),
                EntryPayload::Normal(Command::Append {
                    request,
                    batches,
                    conditions,
                    marker,
                }) => {
                    let partition = self.partition().await?;
                    let write = partition_write(batches, conditions, marker);
                    let log_end = *recovered_end.get_or_insert_with(|| partition.log.high_watermark());
                    if applied.end_offset < log_end && appending.is_empty() {
                        if let Some(end) = already_in_log(&partition.log, applied.end_offset, &write.batch_bytes()) {
                            applied.end_offset = end;
                        }
                        // Not there: the first apply refused it; it stays refused.
                        self.forget(&request);
                    } else {
                        // The single-node write: idempotence, conditions and
                        // a marker's transaction state, in log order.
                        appending.push((request, partition.write(write)));
                    }
                }
                // Metadata commands never reach a partition group.
                EntryPayload::Normal(_) => {}
            }
            outcomes.push(Outcome {
                log_index: entry.log_id.index,
            });
        }
        // Enqueued in log order above; awaited together, so one fsync of
        // the log can cover them all.
        for (request, pending) in appending {
            let result = pending.await;
            if let Ok(info) = &result {
                applied.end_offset = applied.end_offset.max(info.last_offset + 1);
            }
            if let Err(CoreError::Log(error)) = &result {
                // The log could not take a committed entry (a full or failed
                // disk): this replica stops here rather than skip it.
                let error = std::io::Error::other(error.to_string());
                return Err(StorageError::from(StorageIOError::write_state_machine(AnyError::new(&error))));
            }
            if let Some(waiter) = self.inner.waiters.lock().remove(&request) {
                // The proposer may have given up waiting: nothing to tell.
                let _ = waiter.send(result);
            }
        }
        self.save(applied).await?;
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> PartitionMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// Never sent (the group keeps its whole Raft log); a snapshot carries
    /// no records, so taking one would leave a gap in the partition log.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let error = std::io::Error::other(format!("partition group {} cannot install a snapshot", self.inner.group));
        Err(StorageError::from(StorageIOError::read_snapshot(
            Some(meta.signature()),
            AnyError::new(&error),
        )))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(None)
    }
}
