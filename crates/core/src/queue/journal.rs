//! The share cursor's durability: its [`JournalEvent`]s as records in a log
//! of their own (`<queue>/cursor/log/`) plus a JSON snapshot
//! (`<queue>/cursor/snapshot.json`), replayed on open into a [`CursorImage`].
//! Follows `group/offsets.rs`. Knows records and files, not delivery rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use conveyor_log::clock::Clock;
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::{Appending, Durability, Log, LogConfig};
use serde::{Deserialize, Serialize};

use super::QueueError;
use super::share_cursor::{CursorImage, DurableState, JournalEvent};

/// Room the journal log keeps reserved past its end (`LogConfig::reserve_bytes`).
pub const JOURNAL_RESERVE_BYTES: u64 = 1024 * 1024;

/// Bytes read from the journal per step of the replay.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The snapshot file: the image after every journal record below `journal_offset`.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    journal_offset: u64,
    start: u64,
    /// `[offset, state, delivery_count]`, ascending offsets, all at or above `start`.
    entries: Vec<(u64, DurableState, u32)>,
}

/// The journal log and its snapshot file. Appends are enqueued by the caller
/// under the queue's state lock, so the journal's order is the cursor's.
#[derive(Debug)]
pub(crate) struct CursorJournal {
    log: Log,
    snapshot_path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl CursorJournal {
    /// Opens the journal under `dir` and replays it: the latest snapshot,
    /// then every record after it. Returns the image and how many records
    /// were replayed past the snapshot. Blocking.
    pub fn open(dir: &Path, durability: Durability, clock: Arc<dyn Clock>) -> Result<(CursorJournal, CursorImage, u64), QueueError> {
        conveyor_log::index::create_dir_all(dir).map_err(|source| QueueError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let config = LogConfig {
            // The snapshot bounds replay; the journal's prefix is dropped
            // explicitly once a snapshot covers it, never by retention.
            retention_ms: None,
            retention_bytes: None,
            segment_bytes: 16 * 1024 * 1024,
            durability,
            // Acks and receives are journaled: with this much room kept
            // reserved they still settle (about ten thousand of them) on a
            // full file system, while publishers are refused.
            reserve_bytes: JOURNAL_RESERVE_BYTES,
            ..LogConfig::default()
        };
        let log = Log::open_with_clock(dir.join("log"), config, Arc::clone(&clock))?;
        let snapshot_path = dir.join("snapshot.json");
        let (mut offset, mut image) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|error| QueueError::Journal {
                    path: snapshot_path.clone(),
                    reason: error.to_string(),
                })?;
                let image = CursorImage {
                    start: snapshot.start,
                    entries: snapshot
                        .entries
                        .into_iter()
                        .map(|(offset, state, count)| (offset, (state, count)))
                        .collect(),
                };
                (snapshot.journal_offset, image)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => (0, CursorImage::default()),
            Err(source) => {
                return Err(QueueError::Io {
                    path: snapshot_path,
                    source,
                });
            }
        };
        // Records below the journal's start are covered by a snapshot at
        // least that new (the prefix is dropped only after one is written).
        offset = offset.max(log.start_offset());
        let mut replayed = 0u64;
        // Each step consumes at least one record or stops, and the journal's
        // end does not move during open.
        let end = log.high_watermark();
        let steps_max = end.saturating_sub(offset) + 1;
        for _ in 0..steps_max {
            if offset >= end {
                break;
            }
            let read = log.read(offset, REPLAY_READ_BYTES, true)?;
            let records = decode_batches(&read.bytes).map_err(|reason| QueueError::Journal {
                path: log.dir().to_owned(),
                reason,
            })?;
            let before = offset;
            for record in records {
                let record_offset = record.offset.and_then(|offset| u64::try_from(offset).ok()).unwrap_or(0);
                if record_offset < offset {
                    continue;
                }
                let event: JournalEvent =
                    serde_json::from_slice(record.value.as_deref().unwrap_or_default()).map_err(|error| QueueError::Journal {
                        path: log.dir().to_owned(),
                        reason: format!("record {record_offset}: {error}"),
                    })?;
                image.apply(event);
                replayed += 1;
                offset = record_offset + 1;
            }
            if offset == before {
                // Nothing at or after `offset` in what was read: a gap the log
                // cannot fill. Stop rather than spin.
                break;
            }
        }
        let journal = CursorJournal { log, snapshot_path, clock };
        if offset > end {
            // The snapshot covers journal records that are gone (a tail lost
            // under a durability policy weaker than `always`). New records
            // would get offsets below the snapshot's and be skipped by the
            // next replay, so the snapshot is moved back to the journal's end
            // first.
            tracing::warn!(journal = %journal.log.dir().display(), snapshot_offset = offset, end, "cursor snapshot is ahead of its journal; rewriting it");
            journal.write_snapshot(&image, end)?;
        }
        Ok((journal, image, replayed))
    }

    /// Enqueues `events` as one batch, one record per event; the returned
    /// future resolves when they are durable under the queue's policy.
    pub fn append(&self, events: &[JournalEvent]) -> Result<Option<Appending>, QueueError> {
        if events.is_empty() {
            return Ok(None);
        }
        let mut builder = BatchBuilder::new(self.clock.now_ms());
        for event in events {
            let value = serde_json::to_vec(event).map_err(|error| QueueError::Journal {
                path: self.log.dir().to_owned(),
                reason: error.to_string(),
            })?;
            builder.push(Record::new(None, Some(value)));
        }
        Ok(Some(self.log.append(builder.build())))
    }

    /// The journal's log, for its health.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The offset after the last journal record committed so far.
    pub fn end(&self) -> u64 {
        self.log.high_watermark()
    }

    /// Writes `image` as the snapshot covering the journal below
    /// `journal_offset`, then drops the journal's segments wholly below it.
    /// The caller serializes snapshots so that they only move forward.
    pub fn write_snapshot(&self, image: &CursorImage, journal_offset: u64) -> Result<(), QueueError> {
        let snapshot = Snapshot {
            journal_offset,
            start: image.start,
            entries: image
                .entries
                .iter()
                .map(|(offset, (state, count))| (*offset, *state, *count))
                .collect(),
        };
        let bytes = serde_json::to_vec(&snapshot).map_err(|error| QueueError::Journal {
            path: self.snapshot_path.clone(),
            reason: error.to_string(),
        })?;
        conveyor_log::index::write_atomically(&self.snapshot_path, &bytes).map_err(|source| QueueError::Io {
            path: self.snapshot_path.clone(),
            source,
        })?;
        // Only after the snapshot is durable may the records it covers go.
        if journal_offset > self.log.start_offset() {
            self.log.truncate_prefix(journal_offset)?;
        }
        Ok(())
    }

    /// Closes the journal log. Blocking.
    pub fn close(&self) -> Result<(), QueueError> {
        self.log.close()?;
        Ok(())
    }
}

/// Every record of the whole batches in `bytes`.
pub(crate) fn decode_batches(bytes: &Bytes) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut position = 0;
    // Each step consumes one batch of at least a header's length.
    let steps_max = bytes.len() / conveyor_log::batch::HEADER_BYTES + 1;
    for _ in 0..steps_max {
        if position >= bytes.len() {
            break;
        }
        let rest = &bytes[position..];
        let header = conveyor_log::batch::check_batch(rest).map_err(|error| error.to_string())?;
        let total_bytes = header.total_bytes();
        if total_bytes == 0 || total_bytes > rest.len() {
            return Err(format!("batch at byte {position} overruns the read"));
        }
        records.extend(decode_records(&rest[..total_bytes]).map_err(|error| error.to_string())?);
        position += total_bytes;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::clock::ManualClock;
    use proptest::prelude::*;

    #[test]
    fn journal_records_and_snapshot_have_the_documented_json_shape() {
        let events = [
            (
                JournalEvent::Delivered {
                    offset: 7,
                    delivery_count: 2,
                },
                r#"{"event":"delivered","offset":7,"delivery_count":2}"#,
            ),
            (JournalEvent::Acknowledged { offset: 7 }, r#"{"event":"acknowledged","offset":7}"#),
            (
                JournalEvent::Archived {
                    offset: 8,
                    delivery_count: 3,
                },
                r#"{"event":"archived","offset":8,"delivery_count":3}"#,
            ),
        ];
        for (event, json) in events {
            assert_eq!(serde_json::to_string(&event).expect("encode"), json);
            assert_eq!(serde_json::from_str::<JournalEvent>(json).expect("decode"), event);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let clock: Arc<dyn Clock> = ManualClock::new(0);
        let (journal, _, _) = CursorJournal::open(dir.path(), Durability::Always, clock).expect("open");
        let mut image = CursorImage {
            start: 5,
            ..CursorImage::default()
        };
        image.entries.insert(5, (DurableState::Available, 2));
        image.entries.insert(6, (DurableState::Acknowledged, 1));
        journal.write_snapshot(&image, 0).expect("snapshot");
        let written = std::fs::read_to_string(dir.path().join("snapshot.json")).expect("read snapshot");
        assert_eq!(
            written,
            r#"{"journal_offset":0,"start":5,"entries":[[5,"available",2],[6,"acknowledged",1]]}"#
        );
        journal.close().expect("close");
    }

    #[test]
    fn events_survive_reopen_and_a_snapshot_only_covers_the_records_below_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock: Arc<dyn Clock> = ManualClock::new(0);
        {
            let (journal, _, _) = CursorJournal::open(dir.path(), Durability::Always, Arc::clone(&clock)).expect("open");
            let first = [
                JournalEvent::Delivered {
                    offset: 0,
                    delivery_count: 1,
                },
                JournalEvent::Acknowledged { offset: 0 },
            ];
            journal.append(&first).expect("encode").expect("pending").wait().expect("durable");
            let mut image = CursorImage::default();
            first.into_iter().for_each(|event| image.apply(event));
            journal.write_snapshot(&image, journal.end()).expect("snapshot");
            let second = [JournalEvent::Delivered {
                offset: 1,
                delivery_count: 4,
            }];
            journal.append(&second).expect("encode").expect("pending").wait().expect("durable");
        }
        let (journal, image, replayed) = CursorJournal::open(dir.path(), Durability::Always, clock).expect("reopen");
        assert_eq!(replayed, 1, "only the record after the snapshot is replayed");
        assert_eq!(image.entries.get(&0), Some(&(DurableState::Acknowledged, 1)));
        assert_eq!(image.entries.get(&1), Some(&(DurableState::Available, 4)));
        journal.close().expect("close");
    }

    proptest! {
        #[test]
        fn decoding_garbage_reads_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_batches(&Bytes::from(bytes));
        }
    }
}
