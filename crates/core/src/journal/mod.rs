//! Journaled state machines: durable state kept as a log of events plus a
//! snapshot, replayed on open. The catalog, the committed offsets and every
//! queue's share-cursor journal are this one shape ([`Journaled`]); each
//! brings its own events and its pure `apply` ([`StateMachine`]). Knows
//! logs, records and snapshot files; nothing of what the events mean.

#[allow(clippy::module_inception)] // `journal::Journaled`, one main type per file.
mod journaled;
mod state_machine;
#[cfg(test)]
pub(crate) mod suite;

use std::path::PathBuf;

pub use journaled::{Appended, JournalConfig, Journaled, Replayed};
pub use state_machine::{EncodedEvent, StateMachine};

/// Why a journal could not be opened, appended to or snapshotted.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Log(#[from] conveyor_log::LogError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What is on disk cannot be read back into a state: opening refuses
    /// rather than start from less than was acknowledged.
    #[error("journal {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("journal {path}: cannot encode: {reason}")]
    Encode { path: PathBuf, reason: String },
    /// An append failed, so the state in memory holds events the journal
    /// does not: no snapshot is written from it until the journal is reopened.
    #[error("journal {path} is behind its state after a failed append; not snapshotting until it is reopened")]
    Diverged { path: PathBuf },
}

impl From<JournalError> for crate::error::CoreError {
    fn from(error: JournalError) -> crate::error::CoreError {
        use crate::error::CoreError;
        match error {
            JournalError::Log(error) => CoreError::Log(error),
            JournalError::Io { path, source } => CoreError::Io { path, source },
            other => CoreError::Catalog(other.to_string()),
        }
    }
}

impl From<JournalError> for crate::queue::QueueError {
    fn from(error: JournalError) -> crate::queue::QueueError {
        use crate::queue::QueueError;
        match error {
            JournalError::Log(error) => QueueError::Log(error),
            JournalError::Io { path, source } => QueueError::Io { path, source },
            JournalError::Corrupt { path, reason } | JournalError::Encode { path, reason } => QueueError::Journal { path, reason },
            JournalError::Diverged { path } => QueueError::Journal {
                path,
                reason: "behind its state after a failed append".to_owned(),
            },
        }
    }
}
