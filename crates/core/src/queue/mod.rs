//! Queues: one message log plus a share cursor, the delivery state that AMQP
//! queues, SQS queues and Kafka share groups (KIP-932) all need — available,
//! acquired by a consumer until a deadline, acknowledged, archived (dead) —
//! with delivery counts that survive restarts. `share_cursor.rs` is the pure
//! state machine, `journal.rs` its journal's format (a `Journaled` state
//! machine), `queue.rs` the two logs together, `queue_writes.rs` where
//! their writes go (here, or through a replicated queue's group). No wire protocol and no broker wiring here.

pub mod deaths;
mod declared;
mod durable;
mod journal;
pub mod policy;
#[allow(clippy::module_inception)] // `queue::Queue`, one main type per file.
mod queue;
mod queue_writes;
mod share_cursor;
mod snapshot_writer;
mod stream;

use std::path::PathBuf;

pub(crate) use declared::blocking_in_place;
pub use declared::{DeclaredQueue, Opener, StoredCounts};
pub mod deduplication;
pub use conveyor_log::Visibility;
pub use deduplication::{Claim, Deduplicated, Deduplication, Original};
pub use durable::Durable;
pub use journal::JOURNAL_RESERVE_BYTES;
pub use policy::{DeadLetterStrategy, Overflow, QueuePolicy, QueueType, StreamRetention};
pub use queue::{CursorStart, Deliveries, Delivery, Peeked, Queue, QueueConfig};
pub use queue_writes::{LocalWrites, QueueWrites};
pub use share_cursor::{
    Acquired, Acquisition, Archived, ConsumerId, CursorError, CursorImage, DurableState, GroupKey, JournalEvent, ShareCursor,
    ShareCursorConfig,
};
pub use stream::{Committed, StreamStart};

/// Why a queue operation failed. A [`CursorError`] fails only that request;
/// a log error may mean the queue is poisoned until reopened.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error(transparent)]
    Log(#[from] conveyor_log::LogError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cursor journal {path}: {reason}")]
    Journal { path: PathBuf, reason: String },
    #[error("the queue is closed")]
    Closed,
}
