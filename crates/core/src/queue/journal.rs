//! The share cursor's journal format: [`CursorImage`] as a [`Journaled`]
//! state machine whose events are the cursor's [`JournalEvent`]s, one JSON
//! record each, in `<queue>/cursor/log/`, with a snapshot in
//! `<queue>/cursor/snapshot.json`. Knows records and JSON, not delivery
//! rules (`share_cursor.rs`) nor files (`journal/`).

use conveyor_log::record::Record;
use serde::{Deserialize, Serialize};

use super::share_cursor::{CursorImage, DurableState, JournalEvent};
use crate::journal::{EncodedEvent, StateMachine};

/// Room a cursor journal (and the committed offsets' journal) keeps reserved
/// past its end (`LogConfig::reserve_bytes`).
pub const JOURNAL_RESERVE_BYTES: u64 = 1024 * 1024;

/// What a cursor snapshot holds besides its journal offset: `start` and
/// `[offset, state, delivery_count]` entries, ascending, all at or above it,
/// and `[offset, not_before_ms]` for the available ones waiting out a retry
/// delay (absent when none does).
#[derive(Debug, Serialize, Deserialize)]
pub struct CursorSnapshot {
    start: u64,
    entries: Vec<(u64, DurableState, u32)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    not_before: Vec<(u64, i64)>,
}

impl StateMachine for CursorImage {
    type Event = JournalEvent;
    type Snapshot = CursorSnapshot;

    fn apply(&mut self, event: &JournalEvent) {
        CursorImage::apply(self, *event);
    }

    fn encode(event: &JournalEvent) -> Result<EncodedEvent, String> {
        Ok((None, Some(serde_json::to_vec(event).map_err(|error| error.to_string())?)))
    }

    fn decode(record: &Record) -> Result<JournalEvent, String> {
        serde_json::from_slice(record.value.as_deref().unwrap_or_default()).map_err(|error| error.to_string())
    }

    fn snapshot(&self) -> CursorSnapshot {
        CursorSnapshot {
            start: self.start,
            entries: self
                .entries
                .iter()
                .map(|(offset, (state, count))| (*offset, *state, *count))
                .collect(),
            not_before: self
                .not_before
                .iter()
                .map(|(offset, not_before_ms)| (*offset, *not_before_ms))
                .collect(),
        }
    }

    fn restore(snapshot: CursorSnapshot) -> CursorImage {
        CursorImage {
            start: snapshot.start,
            entries: snapshot
                .entries
                .into_iter()
                .map(|(offset, state, count)| (offset, (state, count)))
                .collect(),
            not_before: snapshot.not_before.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::journal::{JournalConfig, Journaled};
    use conveyor_log::Durability;
    use conveyor_log::clock::{Clock, ManualClock};

    impl crate::journal::suite::Fixture for CursorImage {
        fn events(count: usize) -> Vec<JournalEvent> {
            // Deliveries, acknowledgements and archivals of ever later
            // offsets, so each one changes the image.
            (0..count as u64)
                .map(|index| match index % 3 {
                    0 => JournalEvent::Delivered {
                        offset: index,
                        delivery_count: 2,
                    },
                    1 => JournalEvent::Acknowledged { offset: index },
                    _ => JournalEvent::Archived {
                        offset: index,
                        delivery_count: 1,
                    },
                })
                .collect()
        }
    }

    crate::journal::suite::journaled_suite!(CursorImage);

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
            (
                JournalEvent::Delayed {
                    offset: 5,
                    not_before_ms: 9_000,
                },
                r#"{"event":"delayed","offset":5,"not_before_ms":9000}"#,
            ),
        ];
        for (event, json) in events {
            assert_eq!(serde_json::to_string(&event).expect("encode"), json);
            assert_eq!(serde_json::from_str::<JournalEvent>(json).expect("decode"), event);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let clock: Arc<dyn Clock> = ManualClock::new(0);
        let config = JournalConfig {
            durability: Durability::Always,
            segment_bytes: 1 << 20,
            snapshot_every_events: 10,
            reserve_bytes: 0,
        };
        let (journal, _) = Journaled::<CursorImage>::open(dir.path(), config, Arc::clone(&clock)).expect("open");
        let mut image = CursorImage {
            start: 5,
            ..CursorImage::default()
        };
        image.entries.insert(5, (DurableState::Available, 2));
        image.entries.insert(6, (DurableState::Acknowledged, 1));
        journal.write_snapshot(&image.snapshot(), 0).expect("snapshot");
        let snapshot_path = dir.path().join("snapshot.json");
        let written = std::fs::read_to_string(&snapshot_path).expect("read snapshot");
        assert_eq!(
            written,
            r#"{"offset":0,"start":5,"entries":[[5,"available",2],[6,"acknowledged",1]]}"#
        );
        image.not_before.insert(5, 9_000);
        journal.write_snapshot(&image.snapshot(), 0).expect("snapshot");
        let written = std::fs::read_to_string(&snapshot_path).expect("read snapshot");
        assert_eq!(
            written,
            r#"{"offset":0,"start":5,"entries":[[5,"available",2],[6,"acknowledged",1]],"not_before":[[5,9000]]}"#
        );
        let (_, replayed) = Journaled::<CursorImage>::open(dir.path(), config, Arc::clone(&clock)).expect("reopen");
        assert_eq!(replayed.state, image, "a retry delay survives a restart");
        journal.close().expect("close");
        // Snapshots written before every journal shared one format name
        // the offset `journal_offset`; they still open.
        std::fs::write(
            &snapshot_path,
            r#"{"journal_offset":0,"start":5,"entries":[[5,"available",2],[6,"acknowledged",1]]}"#,
        )
        .expect("write an older snapshot");
        let (_, replayed) = Journaled::<CursorImage>::open(dir.path(), config, clock).expect("reopen");
        image.not_before.clear();
        assert_eq!(replayed.state, image);
    }
}
