//! The metadata group's state machine: applies each committed
//! [`Command`] on every node — catalog events with the catalog's own
//! `StateMachine::apply`, door addresses into the member table, consumer
//! groups' committed offsets and the transactions' state with theirs — and
//! snapshots as the catalog's snapshot, kept in `<data>/cluster/snapshot.json`
//! (written atomically). Knows openraft's state-machine contract and the
//! catalog; nothing of the broker's open objects: whoever needs to act on
//! what was applied takes the stream of it ([`CatalogMachine::take_applied`]).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conveyor_core::catalog::{CatalogState, Event};
use conveyor_core::group::CommittedOffsets;
use conveyor_core::journal::StateMachine;
use conveyor_core::transaction::Transactions;
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::Doors;
use crate::error::ClusterError;
use crate::type_config::{Command, NodeId, Outcome, TypeConfig};

type Entry = openraft::Entry<TypeConfig>;
type Meta = SnapshotMeta<NodeId, BasicNode>;

/// What every node holds once the entries up to `last_applied` are applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineData {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    pub catalog: CatalogState,
    /// Each member's advertised door addresses.
    pub doors: BTreeMap<NodeId, Doors>,
    /// The voters when each replicated topic was created: the nodes its
    /// partitions' replicas are chosen from (`partition_groups.rs`), the
    /// same on every node whatever the membership became since.
    #[serde(default)]
    pub topic_voters: BTreeMap<uuid::Uuid, Vec<NodeId>>,
    /// Consumer groups' committed offsets (`Command::Offsets`).
    #[serde(default)]
    pub offsets: CommittedOffsets,
    /// The transaction coordinator's state (`Command::Transaction`).
    #[serde(default)]
    pub transactions: Transactions,
}

/// The snapshot file: the data and the metadata openraft keeps with it.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: MachineData,
}

/// Catalog events applied at one index of the metadata log.
#[derive(Debug, Clone)]
pub struct AppliedEvents {
    pub log_index: u64,
    pub events: Vec<Event>,
    /// The metadata group's voters when they were applied.
    pub voters: Vec<NodeId>,
}

/// The state machine; clones share it.
#[derive(Debug, Clone)]
pub struct CatalogMachine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data: Mutex<MachineData>,
    snapshot: Mutex<Option<SnapshotFile>>,
    snapshot_path: PathBuf,
    /// Every applied catalog entry, in log order, for the one consumer
    /// that takes the receiver (the broker); kept until it does.
    applied: mpsc::UnboundedSender<AppliedEvents>,
    applied_receiver: Mutex<Option<mpsc::UnboundedReceiver<AppliedEvents>>>,
}

impl CatalogMachine {
    /// Loads the snapshot under `dir`, if there is one; entries after it
    /// are applied again by openraft from the log. Blocking.
    pub fn open(dir: &Path) -> Result<CatalogMachine, ClusterError> {
        let snapshot_path = dir.join("snapshot.json");
        let snapshot = match std::fs::read(&snapshot_path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<SnapshotFile>(&bytes).map_err(|error| ClusterError::Storage {
                    path: snapshot_path.clone(),
                    reason: error.to_string(),
                })?,
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                return Err(ClusterError::Storage {
                    path: snapshot_path,
                    reason: error.to_string(),
                });
            }
        };
        let data = snapshot.as_ref().map(|file| file.data.clone()).unwrap_or_default();
        let (applied, applied_receiver) = mpsc::unbounded_channel();
        Ok(CatalogMachine {
            inner: Arc::new(Inner {
                data: Mutex::new(data),
                snapshot: Mutex::new(snapshot),
                snapshot_path,
                applied,
                applied_receiver: Mutex::new(Some(applied_receiver)),
            }),
        })
    }

    /// A copy of what is applied now.
    pub fn data(&self) -> MachineData {
        self.inner.data.lock().clone()
    }

    /// Reads what is applied now.
    pub fn with_data<T>(&self, read: impl FnOnce(&MachineData) -> T) -> T {
        read(&self.inner.data.lock())
    }

    /// Catalog events as they are applied, in log order, from the first
    /// applied since this process started (entries after the snapshot are
    /// applied again at every start); `None` once taken.
    pub fn take_applied(&self) -> Option<mpsc::UnboundedReceiver<AppliedEvents>> {
        self.inner.applied_receiver.lock().take()
    }

    fn snapshot_of(data: &MachineData) -> Result<(Meta, Vec<u8>), serde_json::Error> {
        let snapshot_id = match data.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.leader_id.node_id, id.index),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id: data.last_applied,
            last_membership: data.membership.clone(),
            snapshot_id,
        };
        Ok((meta, serde_json::to_vec(data)?))
    }

    /// Makes `data` with `meta` the newest snapshot, durably.
    async fn keep_snapshot(&self, meta: SnapshotMeta<NodeId, BasicNode>, data: MachineData) -> Result<(), StorageError<NodeId>> {
        let file = SnapshotFile { meta, data };
        let bytes =
            serde_json::to_vec(&file).map_err(|error| StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&error))))?;
        let path = self.inner.snapshot_path.clone();
        tokio::task::spawn_blocking(move || conveyor_log::index::write_atomically(&path, &bytes))
            .await
            .map_err(|error| StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&error))))?
            .map_err(|error| StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&error))))?;
        *self.inner.snapshot.lock() = Some(file);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for CatalogMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let data = self.data();
        let (meta, bytes) =
            Self::snapshot_of(&data).map_err(|error| StorageError::from(StorageIOError::read_state_machine(AnyError::new(&error))))?;
        self.keep_snapshot(meta.clone(), data).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for CatalogMachine {
    type SnapshotBuilder = CatalogMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let data = self.inner.data.lock();
        Ok((data.last_applied, data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        for entry in entries {
            let log_index = entry.log_id.index;
            let mut data = self.inner.data.lock();
            data.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Membership(membership) => data.membership = StoredMembership::new(Some(entry.log_id), membership),
                EntryPayload::Normal(Command::Catalog { events }) => {
                    let voters: Vec<NodeId> = data.membership.membership().voter_ids().collect();
                    for event in &events {
                        data.catalog.apply(event);
                        match event {
                            Event::TopicCreated {
                                id,
                                replication_factor: Some(_),
                                ..
                            } => {
                                data.topic_voters.entry(*id).or_insert_with(|| voters.clone());
                            }
                            Event::TopicDeleted { id, .. } => {
                                data.topic_voters.remove(id);
                            }
                            _ => {}
                        }
                    }
                    // A receiver dropped at shutdown is no error: nothing to tell.
                    let _ = self.inner.applied.send(AppliedEvents { log_index, events, voters });
                }
                EntryPayload::Normal(Command::Advertise { node_id, doors }) => {
                    data.doors.insert(node_id, doors);
                }
                EntryPayload::Normal(Command::Offsets { changes }) => {
                    changes.iter().for_each(|change| data.offsets.apply(change));
                }
                EntryPayload::Normal(Command::Transaction { change }) => data.transactions.apply(&change),
                // Partition groups' entries never reach the metadata group.
                EntryPayload::Normal(Command::Append { .. }) => {}
            }
            outcomes.push(Outcome { log_index });
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> CatalogMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut data: MachineData = serde_json::from_slice(snapshot.get_ref())
            .map_err(|error| StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&error))))?;
        data.last_applied = meta.last_log_id;
        data.membership = meta.last_membership.clone();
        self.keep_snapshot(meta.clone(), data.clone()).await?;
        *self.inner.data.lock() = data;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let snapshot = self.inner.snapshot.lock();
        let Some(file) = snapshot.as_ref() else {
            return Ok(None);
        };
        let bytes = serde_json::to_vec(&file.data)
            .map_err(|error| StorageError::from(StorageIOError::read_snapshot(None, AnyError::new(&error))))?;
        Ok(Some(Snapshot {
            meta: file.meta.clone(),
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
