//! Conveyor's partition log: append-only segments of Kafka RecordBatch v2
//! bytes with sparse offset and time indexes and an aborted-transactions index, group-committed durability,
//! size/age rolling, retention, crash recovery, and what a failing or full
//! disk does to it, all on a storage backend (`storage`: the real file
//! system, or with the `sim` feature a simulated disk that fails on
//! purpose). Knows batches, offsets and files; nothing about topics, queues,
//! consumers or wire protocols. Logs own no threads: a fixed I/O pool
//! (`io_pool`) runs the writer of whichever log has work, and every segment
//! file goes through its open-file cache.
//!
//! ```no_run
//! use conveyor_log::{Log, LogConfig, record::{BatchBuilder, Record}};
//! let log = Log::open("/tmp/example-log", LogConfig::default())?;
//! let mut batch = BatchBuilder::new(1_700_000_000_000);
//! batch.push(Record::new(None, Some(b"hello".to_vec())));
//! let appended = log.append(batch.build()).wait()?;
//! let read = log.read(appended.base_offset, 1 << 20, true)?;
//! assert!(!read.bytes.is_empty());
//! log.close()?;
//! # Ok::<(), conveyor_log::LogError>(())
//! ```

mod appending;
pub mod batch;
pub mod batch_filter;
mod cleaner;
pub mod clock;
pub mod codec;
mod compaction_config;
pub mod compaction_plan;
mod config;
mod error;
mod file_cache;
mod file_system;
mod health;
pub mod histogram;
pub mod index;
mod io_pool;
mod log;
mod log_cell;
pub mod offset_map;
pub mod reactor_guard;
pub mod record;
pub mod recovery;
pub mod retention;
mod segment;
mod segment_files;
mod segment_swap;
mod shared;
#[cfg(feature = "sim")]
pub mod sim;
pub mod storage;
pub mod throttle;
pub mod transaction_index;
pub mod transaction_outcomes;
mod writer;

pub use appending::{AppendInfo, Appending};
pub use cleaner::{CleanStats, CleanerSettings};
pub use compaction_config::{CompactionConfig, DELETE_RETENTION_MS_DEFAULT, MIN_CLEANABLE_DIRTY_RATIO_DEFAULT};
pub use config::{DAY_MS, Durability, DurabilityParseError, LogConfig};
pub use error::{LogError, Result};
pub use file_system::FileSystem;
pub use health::LogHealth;
pub use io_pool::{IoPool, IoPoolConfig, default_open_files_max};
pub use log::{Log, ReadOutcome, Visibility};
pub use storage::{Storage, StorageFile};
pub use writer::RESERVE_FIRST_BYTES;
