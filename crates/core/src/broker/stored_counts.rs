//! What the last clean shutdown stored of every durable queue
//! (`meta/queue-counts.json`) and every partition
//! (`meta/partition-counts.json`): what one answers (passive declares,
//! the admin API, `/metrics`) until its first use opens it, and which a
//! start must open at once. Written once everything has closed; taken
//! (read, then removed durably) at start, so a start after a crash finds
//! none and opens everything. Knows the files, not the logs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::warn;
use uuid::Uuid;

use crate::error::{CoreError, Result};

/// Each durable queue's [`StoredCounts`](crate::queue::StoredCounts), by queue id.
pub(crate) const QUEUES: &str = "queue-counts.json";
/// Each topic's [`PartitionSummary`](crate::partition_slot::PartitionSummary)s, by topic id.
pub(crate) const PARTITIONS: &str = "partition-counts.json";

/// The file, under the data directory.
fn path(data_dir: &Path, file: &str) -> PathBuf {
    data_dir.join("meta").join(file)
}

/// Reads what the last clean shutdown stored in `file` and removes it
/// (durably) before the broker changes anything, so it is used by one
/// start only. `None`: no clean shutdown before this start (or a file that
/// does not parse), so nothing is known. Blocking.
pub(crate) fn take<T: DeserializeOwned>(data_dir: &Path, file: &str) -> Result<Option<HashMap<Uuid, T>>> {
    let path = path(data_dir, file);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(CoreError::io(&path, error)),
    };
    let counts = match serde_json::from_slice::<HashMap<Uuid, T>>(&bytes) {
        Ok(counts) => Some(counts),
        Err(error) => {
            warn!(file = %path.display(), %error, "ignoring stored counts that do not parse: everything they cover opens at start");
            None
        }
    };
    std::fs::remove_file(&path).map_err(|error| CoreError::io(&path, error))?;
    if let Some(dir) = path.parent() {
        conveyor_log::index::sync_dir(dir).map_err(|error| CoreError::io(dir, error))?;
    }
    Ok(counts)
}

/// Stores `counts` in `file` for the next start (atomically: the whole
/// file or none). Blocking.
pub(crate) fn store<T: Serialize>(data_dir: &Path, file: &str, counts: &HashMap<Uuid, T>) -> Result<()> {
    let path = path(data_dir, file);
    let bytes = serde_json::to_vec(counts).map_err(|error| CoreError::Catalog(format!("encoding the queue counts: {error}")))?;
    conveyor_log::index::write_atomically(&path, &bytes).map_err(|error| CoreError::io(&path, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::StoredCounts;

    #[test]
    fn stored_counts_serve_one_start_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("meta")).expect("meta");
        assert_eq!(
            take::<StoredCounts>(dir.path(), QUEUES).expect("take"),
            None,
            "no clean shutdown yet"
        );
        let id = Uuid::new_v4();
        let counts = StoredCounts {
            messages: 3,
            size_bytes: 300,
            may_hold_own_ttls: true,
        };
        store(dir.path(), QUEUES, &HashMap::from([(id, counts)])).expect("store");
        assert_eq!(take(dir.path(), QUEUES).expect("take"), Some(HashMap::from([(id, counts)])));
        assert_eq!(
            take::<StoredCounts>(dir.path(), QUEUES).expect("take"),
            None,
            "a crash after this start must not find them"
        );
    }
}
