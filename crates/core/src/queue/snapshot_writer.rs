//! Writing a queue's cursor snapshot away from the queue (on a blocking
//! thread when an async worker acked): the snapshot into the journal, then
//! the message log cut below the settled prefix it records. Knows the two
//! logs and the queue's snapshot lock; nothing of delivery.

use std::path::PathBuf;
use std::sync::Arc;

use conveyor_log::Log;
use parking_lot::Mutex;

use super::QueueError;
use super::share_cursor::CursorImage;
use crate::journal::{Journaled, StateMachine};

/// What a cursor snapshot needs to be written away from its queue (on a
/// blocking thread): the journal, the message log, and the queue's snapshot
/// lock with its closed flag.
pub(super) struct SnapshotWriter {
    pub(super) dir: PathBuf,
    pub(super) journal: Arc<Journaled<CursorImage>>,
    /// The message log to cut below the settled prefix, if the queue owns it.
    pub(super) messages: Option<Log>,
    pub(super) serial: Arc<Mutex<bool>>,
}

impl SnapshotWriter {
    /// Writes `image` (covering the journal below `journal_offset`) unless
    /// the queue closed meanwhile. A newer snapshot written first wins: the
    /// journal skips an older one, and the message log is only ever cut
    /// forward. Blocking.
    pub(super) fn write(&self, image: &CursorImage, journal_offset: u64) -> Result<(), QueueError> {
        let closed = self.serial.lock();
        if *closed {
            return Ok(());
        }
        Self::write_locked(&self.journal, self.messages.as_ref(), image, journal_offset)?;
        drop(closed);
        Ok(())
    }

    /// Writes the snapshot, then drops the messages it settles. The caller
    /// holds the queue's snapshot lock. Blocking.
    pub(super) fn write_locked(
        journal: &Journaled<CursorImage>,
        messages: Option<&Log>,
        image: &CursorImage,
        journal_offset: u64,
    ) -> Result<(), QueueError> {
        journal.write_snapshot(&image.snapshot(), journal_offset)?;
        let Some(messages) = messages else {
            return Ok(());
        };
        // The snapshot is durable and says everything below its start is
        // settled, so the messages there are never read again: drop them
        // (whole segments go; the log's start offset moves).
        if image.start > messages.start_offset() {
            messages.truncate_prefix(image.start.min(messages.high_watermark()))?;
        }
        Ok(())
    }
}
