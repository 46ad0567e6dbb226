//! Committed offsets of consumer groups, a [`Journaled`] state machine in
//! `<data>/groups/offsets/`: each commit is a batch of records keyed by
//! group, topic and partition whose JSON value is the committed offset (or
//! none for a deletion); replay keeps the last value per key, from the
//! latest snapshot on. On a cluster node the offsets are the metadata
//! group's instead (`coordination.rs`): a commit is proposed there and
//! reads see what this node applied. Knows offsets and their durability,
//! nothing of membership.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use conveyor_log::Durability;
use conveyor_log::clock::Clock;
use conveyor_log::record::Record;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::coordination::{Coordination, read_through};
use crate::error::{CoreError, Result};
use crate::journal::{EncodedEvent, JournalConfig, Journaled, StateMachine};

/// Write a snapshot after this many records, so replay stays bounded.
const RECORDS_PER_SNAPSHOT: u64 = 10_000;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_ms: i64,
}

/// (group, topic, partition).
pub type OffsetKey = (String, String, u32);

/// One record of the offsets journal: `key` is now committed at `value`,
/// or has no committed offset any more (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetChange {
    pub key: OffsetKey,
    pub value: Option<CommittedOffset>,
}

/// Every committed offset: the replay of the changes. Serialized as its
/// snapshot (a JSON object cannot have tuple keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OffsetsSnapshot", into = "OffsetsSnapshot")]
pub struct CommittedOffsets {
    offsets: BTreeMap<OffsetKey, CommittedOffset>,
}

/// What the offsets' snapshot file holds besides its offset:
/// `{"offset": N, "entries": [[key, value], …]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct OffsetsSnapshot {
    entries: Vec<(OffsetKey, CommittedOffset)>,
}

impl From<OffsetsSnapshot> for CommittedOffsets {
    fn from(snapshot: OffsetsSnapshot) -> CommittedOffsets {
        <CommittedOffsets as StateMachine>::restore(snapshot)
    }
}

impl From<CommittedOffsets> for OffsetsSnapshot {
    fn from(offsets: CommittedOffsets) -> OffsetsSnapshot {
        offsets.snapshot()
    }
}

impl StateMachine for CommittedOffsets {
    type Event = OffsetChange;
    type Snapshot = OffsetsSnapshot;

    fn apply(&mut self, change: &OffsetChange) {
        match &change.value {
            Some(value) => {
                self.offsets.insert(change.key.clone(), value.clone());
            }
            None => {
                self.offsets.remove(&change.key);
            }
        }
    }

    fn encode(change: &OffsetChange) -> std::result::Result<EncodedEvent, String> {
        let key = serde_json::to_vec(&change.key).map_err(|error| error.to_string())?;
        let value = match &change.value {
            Some(value) => Some(serde_json::to_vec(value).map_err(|error| error.to_string())?),
            None => None,
        };
        Ok((Some(key), value))
    }

    fn decode(record: &Record) -> std::result::Result<OffsetChange, String> {
        let key = serde_json::from_slice(record.key.as_deref().unwrap_or_default()).map_err(|error| format!("key: {error}"))?;
        let value = match &record.value {
            Some(value) => Some(serde_json::from_slice(value).map_err(|error| format!("value: {error}"))?),
            None => None,
        };
        Ok(OffsetChange { key, value })
    }

    fn snapshot(&self) -> OffsetsSnapshot {
        OffsetsSnapshot {
            entries: self.offsets.iter().map(|(key, value)| (key.clone(), value.clone())).collect(),
        }
    }

    fn restore(snapshot: OffsetsSnapshot) -> CommittedOffsets {
        CommittedOffsets {
            offsets: snapshot.entries.into_iter().collect(),
        }
    }
}

#[derive(Debug)]
pub struct OffsetStore {
    journal: Arc<Journaled<CommittedOffsets>>,
    /// Taken while a commit is enqueued on the journal and applied, so the
    /// in-memory order is the journal's order. Never held across an await.
    state: Mutex<CommittedOffsets>,
    /// On a cluster node: where offsets are kept instead of `journal` and
    /// `state`.
    replication: OnceLock<Arc<dyn Coordination>>,
}

impl OffsetStore {
    /// Opens the store under `dir`, replaying the snapshot and the records after it. Blocking.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<OffsetStore> {
        OffsetStore::open_with(dir, clock, RECORDS_PER_SNAPSHOT)
    }

    /// [`OffsetStore::open`] with another snapshot cadence.
    pub(crate) fn open_with(dir: &Path, clock: Arc<dyn Clock>, snapshot_every_events: u64) -> Result<OffsetStore> {
        let config = JournalConfig {
            durability: Durability::Always,
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_events,
            // Consumers commit offsets on a full file system too, as queue
            // consumers settle (see `queue::JOURNAL_RESERVE_BYTES`).
            reserve_bytes: crate::queue::JOURNAL_RESERVE_BYTES,
        };
        let (journal, replayed) = Journaled::<CommittedOffsets>::open(dir, config, clock)?;
        info!(
            committed = replayed.state.offsets.len(),
            replayed = replayed.events,
            "consumer group offsets loaded"
        );
        Ok(OffsetStore {
            journal: Arc::new(journal),
            state: Mutex::new(replayed.state),
            replication: OnceLock::new(),
        })
    }

    /// Keeps offsets in the cluster's metadata group from now on. Call
    /// before the doors serve; a second call changes nothing.
    pub fn replicate_through(&self, replication: Arc<dyn Coordination>) {
        let _ = self.replication.set(replication);
    }

    /// Where groups are coordinated on a cluster node, if this is one.
    pub fn replication(&self) -> Option<&Arc<dyn Coordination>> {
        self.replication.get()
    }

    /// Reads the committed offsets: the metadata group's on a cluster
    /// node, else this store's.
    fn read<T: Default>(&self, read: impl FnOnce(&CommittedOffsets) -> T) -> T {
        match self.replication.get() {
            Some(replication) => read_through(|reader| replication.read_offsets(reader), read),
            None => read(&self.state.lock()),
        }
    }

    /// Durably sets (`Some`) or deletes (`None`) offsets. The in-memory view
    /// changes when the records are enqueued, in journal order; the call
    /// returns once they are on disk.
    pub async fn write(&self, changes: Vec<(OffsetKey, Option<CommittedOffset>)>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let changes: Vec<OffsetChange> = changes.into_iter().map(|(key, value)| OffsetChange { key, value }).collect();
        if let Some(replication) = self.replication.get() {
            return replication.propose_offsets(changes).await.map_err(CoreError::Coordination);
        }
        let appended = {
            let mut state = self.state.lock();
            let appended = self.journal.append(&changes)?;
            changes.iter().for_each(|change| state.apply(change));
            appended
        };
        appended.await?;
        self.maybe_snapshot().await;
        Ok(())
    }

    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<CommittedOffset> {
        self.read(|state| state.offsets.get(&(group.to_owned(), topic.to_owned(), partition)).cloned())
    }

    /// Every committed offset of `group`, by topic and partition.
    pub fn of_group(&self, group: &str) -> Vec<(String, u32, CommittedOffset)> {
        let from = (group.to_owned(), String::new(), 0);
        self.read(|state| {
            state
                .offsets
                .range(from..)
                .take_while(|((owner, _, _), _)| owner == group)
                .map(|((_, topic, partition), committed)| (topic.clone(), *partition, committed.clone()))
                .collect()
        })
    }

    /// Groups that have at least one committed offset.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.read(|state| state.offsets.keys().map(|(group, _, _)| group.clone()).collect());
        groups.dedup();
        groups
    }

    /// Writes a snapshot if one is due, off the reactor.
    async fn maybe_snapshot(&self) {
        self.journal.snapshot_when_due(&self.state, "committed offsets").await;
    }

    /// The committed offsets' log, for its health.
    pub fn log(&self) -> &conveyor_log::Log {
        self.journal.log()
    }

    /// Snapshots and closes the log. Blocking.
    pub fn close(&self) -> Result<()> {
        self.journal.close_with_snapshot(&self.state, "committed offsets")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::clock::ManualClock;

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: format!("m{offset}"),
            commit_ms: 1,
        }
    }

    fn key(group: &str, topic: &str, partition: u32) -> OffsetKey {
        (group.to_owned(), topic.to_owned(), partition)
    }

    impl crate::journal::suite::Fixture for CommittedOffsets {
        fn events(count: usize) -> Vec<OffsetChange> {
            // Commits to a few keys, every third one a deletion.
            (0..count)
                .map(|index| OffsetChange {
                    key: key("g", "t", (index % 3) as u32),
                    value: (index % 3 != 2 || index % 2 == 0).then(|| committed(index as i64)),
                })
                .collect()
        }
    }

    crate::journal::suite::journaled_suite!(CommittedOffsets);

    #[tokio::test]
    async fn the_journal_is_truncated_once_a_snapshot_covers_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock: Arc<dyn Clock> = ManualClock::new(1);
        let store = OffsetStore::open_with(dir.path(), Arc::clone(&clock), 3).expect("open");
        for offset in 0..10 {
            store
                .write(vec![(key("g", "t", 0), Some(committed(offset)))])
                .await
                .expect("commit");
        }
        assert!(
            store.journal.log().start_offset() >= 9,
            "start {}",
            store.journal.log().start_offset()
        );
        drop(store);
        let path = dir.path().to_owned();
        let store = tokio::task::spawn_blocking(move || OffsetStore::open(&path, clock))
            .await
            .expect("join")
            .expect("reopen");
        assert_eq!(store.get("g", "t", 0), Some(committed(9)));
    }

    #[tokio::test]
    async fn commits_and_deletions_survive_reopen_with_and_without_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock: Arc<dyn Clock> = ManualClock::new(1);
        {
            let store = OffsetStore::open(dir.path(), Arc::clone(&clock)).expect("open");
            store
                .write(vec![(key("g", "t", 0), Some(committed(5))), (key("g", "t", 1), Some(committed(7)))])
                .await
                .expect("commit");
            store.write(vec![(key("g", "t", 0), Some(committed(9)))]).await.expect("commit");
            store
                .write(vec![(key("g", "t", 1), None), (key("h", "t", 0), Some(committed(3)))])
                .await
                .expect("commit");
        }
        let path = dir.path().to_owned();
        let clock2 = Arc::clone(&clock);
        let store = tokio::task::spawn_blocking(move || OffsetStore::open(&path, clock2))
            .await
            .expect("join")
            .expect("reopen");
        assert_eq!(store.get("g", "t", 0), Some(committed(9)));
        assert_eq!(store.get("g", "t", 1), None);
        assert_eq!(store.of_group("h"), vec![("t".to_owned(), 0, committed(3))]);
        assert_eq!(store.groups(), vec!["g".to_owned(), "h".to_owned()]);
        let path = dir.path().to_owned();
        let store = tokio::task::spawn_blocking(move || {
            store.close().expect("close");
            OffsetStore::open(&path, clock).expect("reopen from snapshot")
        })
        .await
        .expect("join");
        assert_eq!(store.get("g", "t", 0), Some(committed(9)));
        assert_eq!(store.groups().len(), 2);
    }
}
