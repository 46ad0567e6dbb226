//! The counts every durable queue had when the broker last shut down
//! cleanly (`meta/queue-counts.json`): what a queue answers (passive
//! declares, the admin API, `/metrics`) until its first use opens it, and
//! which queues a start must open at once. Written once every queue has
//! closed; taken (read, then removed durably) at start, so a start after
//! a crash finds none and opens every queue. Knows the file, not the logs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tracing::warn;
use uuid::Uuid;

use crate::error::{CoreError, Result};
use crate::queue::StoredCounts;

/// The file, under the data directory.
fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("meta").join("queue-counts.json")
}

/// Reads the counts the last clean shutdown stored and removes the file
/// (durably) before the broker changes anything, so they are used by one
/// start only. `None`: no clean shutdown before this start (or a file that
/// does not parse), so no queue's counts are known. Blocking.
pub(crate) fn take(data_dir: &Path) -> Result<Option<HashMap<Uuid, StoredCounts>>> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(CoreError::io(&path, error)),
    };
    let counts = match serde_json::from_slice::<HashMap<Uuid, StoredCounts>>(&bytes) {
        Ok(counts) => Some(counts),
        Err(error) => {
            warn!(file = %path.display(), %error, "ignoring stored queue counts that do not parse: every queue opens at start");
            None
        }
    };
    std::fs::remove_file(&path).map_err(|error| CoreError::io(&path, error))?;
    if let Some(dir) = path.parent() {
        conveyor_log::index::sync_dir(dir).map_err(|error| CoreError::io(dir, error))?;
    }
    Ok(counts)
}

/// Stores `counts` for the next start (atomically: the whole file or
/// none). Blocking.
pub(crate) fn store(data_dir: &Path, counts: &HashMap<Uuid, StoredCounts>) -> Result<()> {
    let path = path(data_dir);
    let bytes = serde_json::to_vec(counts).map_err(|error| CoreError::Catalog(format!("encoding the queue counts: {error}")))?;
    conveyor_log::index::write_atomically(&path, &bytes).map_err(|error| CoreError::io(&path, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_counts_serve_one_start_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("meta")).expect("meta");
        assert_eq!(take(dir.path()).expect("take"), None, "no clean shutdown yet");
        let id = Uuid::new_v4();
        let counts = StoredCounts {
            messages: 3,
            size_bytes: 300,
            may_hold_own_ttls: true,
        };
        store(dir.path(), &HashMap::from([(id, counts)])).expect("store");
        assert_eq!(take(dir.path()).expect("take"), Some(HashMap::from([(id, counts)])));
        assert_eq!(take(dir.path()).expect("take"), None, "a crash after this start must not find them");
    }
}
