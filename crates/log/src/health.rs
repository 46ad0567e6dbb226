//! Whether a log accepts appends, as its writer last found it: what the
//! broker's `/health`, `/metrics` and admin API show. Knows nothing of topics
//! or queues.

use std::fmt;

/// The state of one log's writer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogHealth {
    /// Appends are accepted. (An append refused because the file system was
    /// full leaves the log healthy: it is retried once space is free.)
    #[default]
    Healthy,
    /// A write or fsync failed for a reason other than a full file system:
    /// the page cache may or may not hold what was written, so nothing more
    /// is acknowledged until [`crate::Log::reopen`] recovers the log from
    /// what is on disk.
    Poisoned {
        /// What failed, and why.
        reason: String,
        /// Whether the bytes of the appends that failed were cut from the
        /// file (and the cut made durable). Until they are, a restart could
        /// find them; `reopen` cuts them first.
        failed_tail_removed: bool,
    },
}

impl LogHealth {
    pub fn is_healthy(&self) -> bool {
        matches!(self, LogHealth::Healthy)
    }
}

impl fmt::Display for LogHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogHealth::Healthy => f.write_str("healthy"),
            LogHealth::Poisoned { reason, .. } => write!(f, "poisoned: {reason}"),
        }
    }
}
