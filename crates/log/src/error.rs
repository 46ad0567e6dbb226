//! The log's error type. Carries no wire codes: each front door maps these
//! onto its protocol's errors.

use std::path::PathBuf;

use crate::batch::FramingError;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The appended bytes are not valid RecordBatch v2 batches; nothing was written.
    #[error("invalid record batch at byte {position}: {reason}")]
    InvalidBatch { position: usize, reason: FramingError },
    /// A read asked for an offset outside `[log_start_offset, high_watermark]`.
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: u64, start: u64, end: u64 },
    /// An earlier write or fsync failed; the log refuses appends until reopened.
    #[error("log {dir} is poisoned by an earlier I/O failure: {reason}")]
    Poisoned { dir: PathBuf, reason: String },
    /// The file system had no room for the append (ENOSPC, or a quota:
    /// EDQUOT); nothing of it was kept and the log stays healthy, so the
    /// append may be retried once space is free.
    #[error("log {dir}: no space left on the file system; the append was not stored")]
    StorageFull { dir: PathBuf },
    /// The log was closed (or its writer stopped).
    #[error("log {0} is closed")]
    Closed(PathBuf),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LogError {
        LogError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
