//! Committed offsets of consumer groups, persisted in a log of their own
//! (`<data>/groups/offsets/`): each commit is a batch of records keyed by
//! group, topic and partition whose JSON value is the committed offset (or
//! null for a deletion); replay keeps the last value per key, from the latest
//! snapshot on. Knows offsets and their durability, nothing of membership.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conveyor_log::clock::Clock;
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::{Durability, Log, LogConfig};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::{CoreError, Result};

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

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    /// Every record before this offset of the offsets log is reflected.
    offset: u64,
    entries: Vec<(OffsetKey, CommittedOffset)>,
}

#[derive(Debug)]
struct State {
    offsets: BTreeMap<OffsetKey, CommittedOffset>,
    records_since_snapshot: u64,
}

#[derive(Debug)]
pub struct OffsetStore {
    log: Log,
    snapshot_path: PathBuf,
    clock: Arc<dyn Clock>,
    /// Taken while a commit is enqueued on the log and applied, so the
    /// in-memory order is the log's order. Never held across an await.
    state: Mutex<State>,
}

impl OffsetStore {
    /// Opens the store under `dir`, replaying the snapshot and the records after it. Blocking.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<OffsetStore> {
        conveyor_log::index::create_dir_all(dir).map_err(|error| CoreError::io(dir, error))?;
        let config = LogConfig {
            // The snapshot bounds replay; nothing is deleted behind its back.
            retention_ms: None,
            retention_bytes: None,
            segment_bytes: 64 * 1024 * 1024,
            durability: Durability::Always,
            // Consumers commit offsets on a full file system too, like queue
            // consumers settle (see `queue::journal::JOURNAL_RESERVE_BYTES`).
            reserve_bytes: crate::queue::JOURNAL_RESERVE_BYTES,
            ..LogConfig::default()
        };
        let log = Log::open_with_clock(dir.join("log"), config, Arc::clone(&clock))?;
        let snapshot_path = dir.join("snapshot.json");
        let (mut offset, mut offsets) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let snapshot: Snapshot = serde_json::from_slice(&bytes)
                    .map_err(|error| CoreError::Catalog(format!("offsets snapshot {}: {error}", snapshot_path.display())))?;
                (snapshot.offset, snapshot.entries.into_iter().collect())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => (log.start_offset(), BTreeMap::new()),
            Err(error) => return Err(CoreError::io(&snapshot_path, error)),
        };
        let mut replayed = 0u64;
        while offset < log.high_watermark() {
            let read = log.read(offset, 1 << 20, true)?;
            if read.bytes.is_empty() {
                break;
            }
            let mut position = 0;
            while position < read.bytes.len() {
                let header =
                    conveyor_log::batch::check_batch(&read.bytes[position..]).map_err(|error| CoreError::Catalog(error.to_string()))?;
                let end = position + header.total_bytes();
                for record in decode_records(&read.bytes[position..end]).map_err(|error| CoreError::Catalog(error.to_string()))? {
                    let record_offset = record.offset.unwrap_or_default() as u64;
                    if record_offset < offset {
                        continue;
                    }
                    let key: OffsetKey = serde_json::from_slice(&record.key.unwrap_or_default())
                        .map_err(|error| CoreError::Catalog(format!("offsets record {record_offset}: {error}")))?;
                    match record.value {
                        Some(value) => {
                            let committed: CommittedOffset = serde_json::from_slice(&value)
                                .map_err(|error| CoreError::Catalog(format!("offsets record {record_offset}: {error}")))?;
                            offsets.insert(key, committed);
                        }
                        None => {
                            offsets.remove(&key);
                        }
                    }
                    replayed += 1;
                    offset = record_offset + 1;
                }
                position = end;
            }
        }
        info!(committed = offsets.len(), replayed, "consumer group offsets loaded");
        Ok(OffsetStore {
            log,
            snapshot_path,
            clock,
            state: Mutex::new(State {
                offsets,
                records_since_snapshot: replayed,
            }),
        })
    }

    /// Durably sets (`Some`) or deletes (`None`) offsets. The in-memory view
    /// changes when the records are enqueued, in log order; the call returns
    /// once they are on disk.
    pub async fn write(&self, changes: Vec<(OffsetKey, Option<CommittedOffset>)>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut builder = BatchBuilder::new(self.clock.now_ms());
        for (key, value) in &changes {
            let key = serde_json::to_vec(key).map_err(|error| CoreError::Catalog(error.to_string()))?;
            let value = match value {
                Some(value) => Some(serde_json::to_vec(value).map_err(|error| CoreError::Catalog(error.to_string()))?),
                None => None,
            };
            builder.push(Record::new(Some(key), value));
        }
        let batch = builder.build();
        let appending = {
            let mut state = self.state.lock();
            let appending = self.log.append(batch);
            state.records_since_snapshot += changes.len() as u64;
            for (key, value) in changes {
                match value {
                    Some(value) => {
                        state.offsets.insert(key, value);
                    }
                    None => {
                        state.offsets.remove(&key);
                    }
                }
            }
            appending
        };
        appending.await?;
        self.maybe_snapshot();
        Ok(())
    }

    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<CommittedOffset> {
        self.state
            .lock()
            .offsets
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .cloned()
    }

    /// Every committed offset of `group`, by topic and partition.
    pub fn of_group(&self, group: &str) -> Vec<(String, u32, CommittedOffset)> {
        let state = self.state.lock();
        let from = (group.to_owned(), String::new(), 0);
        state
            .offsets
            .range(from..)
            .take_while(|((owner, _, _), _)| owner == group)
            .map(|((_, topic, partition), committed)| (topic.clone(), *partition, committed.clone()))
            .collect()
    }

    /// Groups that have at least one committed offset.
    pub fn groups(&self) -> Vec<String> {
        let state = self.state.lock();
        let mut groups: Vec<String> = state.offsets.keys().map(|(group, _, _)| group.clone()).collect();
        groups.dedup();
        groups
    }

    fn maybe_snapshot(&self) {
        let snapshot = {
            let mut state = self.state.lock();
            if state.records_since_snapshot < RECORDS_PER_SNAPSHOT {
                return;
            }
            state.records_since_snapshot = 0;
            // Everything enqueued so far is reflected in memory; the snapshot
            // covers the log up to its end, which has at least those records.
            Snapshot {
                offset: self.log.high_watermark(),
                entries: state.offsets.iter().map(|(key, value)| (key.clone(), value.clone())).collect(),
            }
        };
        self.write_snapshot(&snapshot);
    }

    fn write_snapshot(&self, snapshot: &Snapshot) {
        let result = serde_json::to_vec(snapshot)
            .map_err(|error| error.to_string())
            .and_then(|bytes| conveyor_log::index::write_atomically(&self.snapshot_path, &bytes).map_err(|error| error.to_string()));
        if let Err(error) = result {
            // Replay from the previous snapshot still works; only slower.
            tracing::warn!(%error, "could not write the offsets snapshot");
        }
    }

    /// Snapshots and closes the log. Blocking.
    /// The committed offsets' log, for its health.
    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn close(&self) -> Result<()> {
        let snapshot = {
            let state = self.state.lock();
            (state.records_since_snapshot > 0).then(|| Snapshot {
                offset: self.log.high_watermark(),
                entries: state.offsets.iter().map(|(key, value)| (key.clone(), value.clone())).collect(),
            })
        };
        if let Some(snapshot) = snapshot {
            self.write_snapshot(&snapshot);
        }
        self.log.close()?;
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
