//! The Raft log as a journaled state machine: entries appended (an entry
//! at index `i` replaces every entry from `i` on, as Raft's conflict rule
//! wants), truncations, purges, the vote and the committed log id, each an
//! event of the project's `Journaled` journal. A pure function of its
//! events; `log_store.rs` does the I/O and answers openraft.

use std::collections::BTreeMap;

use conveyor_core::journal::{EncodedEvent, StateMachine};
use conveyor_log::record::Record;
use openraft::{LogId, Vote};
use serde::{Deserialize, Serialize};

use crate::type_config::{NodeId, TypeConfig};

type Entry = openraft::Entry<TypeConfig>;

/// One change to the Raft log's durable state. Externally tagged: serde
/// reads an internally tagged enum through a buffer that cannot turn a
/// map's string keys back into integers (a membership's node ids).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogEvent {
    /// The entry, replacing any entry at its index or after it.
    Appended {
        entry: Entry,
    },
    /// Entries from `since` on are gone (a leader's log overrode them).
    Truncated {
        since: u64,
    },
    /// Entries up to and including `upto` are in a snapshot and gone.
    Purged {
        upto: LogId<NodeId>,
    },
    Voted {
        vote: Vote<NodeId>,
    },
    Committed {
        committed: Option<LogId<NodeId>>,
    },
}

/// The Raft log's durable state, replayed from its journal.
#[derive(Debug, Clone, Default)]
pub struct LogState {
    pub entries: BTreeMap<u64, Entry>,
    pub last_purged: Option<LogId<NodeId>>,
    pub vote: Option<Vote<NodeId>>,
    pub committed: Option<LogId<NodeId>>,
}

/// The snapshot file's shape: the log as one JSON text. The journal
/// flattens its snapshot type into the file, and serde cannot read a map
/// with integer keys (a membership's nodes) back through a flatten.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogSnapshot {
    log: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LogImage {
    entries: Vec<Entry>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

impl LogState {
    /// The id of the last entry, or of the last purged one when none is left.
    pub fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries.values().next_back().map(|entry| entry.log_id).or(self.last_purged)
    }
}

impl StateMachine for LogState {
    type Event = LogEvent;
    type Snapshot = LogSnapshot;

    fn apply(&mut self, event: &LogEvent) {
        match event {
            LogEvent::Appended { entry } => {
                let index = entry.log_id.index;
                drop(self.entries.split_off(&index));
                self.entries.insert(index, entry.clone());
            }
            LogEvent::Truncated { since } => drop(self.entries.split_off(since)),
            LogEvent::Purged { upto } => {
                self.entries = self.entries.split_off(&(upto.index + 1));
                if self.last_purged.is_none_or(|purged| purged.index < upto.index) {
                    self.last_purged = Some(*upto);
                }
            }
            LogEvent::Voted { vote } => self.vote = Some(*vote),
            LogEvent::Committed { committed } => self.committed = *committed,
        }
    }

    fn encode(event: &LogEvent) -> Result<EncodedEvent, String> {
        let value = serde_json::to_vec(event).map_err(|error| error.to_string())?;
        Ok((None, Some(value)))
    }

    fn decode(record: &Record) -> Result<LogEvent, String> {
        serde_json::from_slice(record.value.as_deref().unwrap_or_default()).map_err(|error| error.to_string())
    }

    fn snapshot(&self) -> LogSnapshot {
        let image = LogImage {
            entries: self.entries.values().cloned().collect(),
            last_purged: self.last_purged,
            vote: self.vote,
            committed: self.committed,
        };
        // Entries were decoded from JSON or built from types that encode:
        // an entry that would not encode is a bug, and an empty text makes
        // the next open refuse the snapshot rather than lose entries.
        LogSnapshot {
            log: serde_json::to_string(&image).unwrap_or_default(),
        }
    }

    /// The file's outer JSON was checked by `Journaled::open`; an inner
    /// text this code did not write (a hand-edited file) restores an empty
    /// log, loudly: the vote is lost with it.
    fn restore(snapshot: LogSnapshot) -> LogState {
        let image: LogImage = serde_json::from_str(&snapshot.log).unwrap_or_else(|error| {
            tracing::error!(%error, "the raft log's snapshot does not decode; starting from an empty log");
            LogImage::default()
        });
        LogState {
            entries: image.entries.into_iter().map(|entry| (entry.log_id.index, entry)).collect(),
            last_purged: image.last_purged,
            vote: image.vote,
            committed: image.committed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    #[test]
    fn an_entry_replaces_every_entry_from_its_index_on() {
        let mut state = LogState::default();
        for index in 1..=5 {
            state.apply(&LogEvent::Appended { entry: entry(1, index) });
        }
        state.apply(&LogEvent::Appended { entry: entry(2, 3) });
        assert_eq!(state.entries.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(state.last_log_id().map(|id| id.leader_id.term), Some(2));
        state.apply(&LogEvent::Truncated { since: 2 });
        assert_eq!(state.entries.len(), 1);
    }

    #[test]
    fn a_membership_entry_decodes_as_it_was_encoded() {
        let members = std::collections::BTreeMap::from([(1, openraft::BasicNode::new("127.0.0.1:7001"))]);
        let membership = openraft::Membership::new(vec![std::collections::BTreeSet::from([1])], members);
        let event = LogEvent::Appended {
            entry: Entry {
                log_id: entry(1, 1).log_id,
                payload: EntryPayload::Membership(membership.clone()),
            },
        };
        let (key, value) = LogState::encode(&event).expect("encode");
        let record = Record::new(key, value);
        let LogEvent::Appended { entry } = LogState::decode(&record).expect("decode") else {
            panic!("another event");
        };
        assert_eq!(entry.payload, EntryPayload::Membership(membership));
    }

    #[test]
    fn a_snapshot_restores_the_same_log() {
        let mut state = LogState::default();
        for index in 1..=3 {
            state.apply(&LogEvent::Appended { entry: entry(1, index) });
        }
        state.apply(&LogEvent::Purged { upto: entry(1, 1).log_id });
        let json = serde_json::to_string(&state.snapshot()).expect("encode");
        let restored = LogState::restore(serde_json::from_str(&json).expect("decode"));
        assert_eq!(restored.entries.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(restored.last_purged, state.last_purged);
    }

    #[test]
    fn a_purge_keeps_the_last_purged_id_as_the_last_log_id_of_an_empty_log() {
        let mut state = LogState::default();
        for index in 1..=3 {
            state.apply(&LogEvent::Appended { entry: entry(1, index) });
        }
        state.apply(&LogEvent::Purged { upto: entry(1, 3).log_id });
        assert!(state.entries.is_empty());
        assert_eq!(state.last_log_id(), Some(entry(1, 3).log_id));
        // An older purge does not move it back.
        state.apply(&LogEvent::Purged { upto: entry(1, 1).log_id });
        assert_eq!(state.last_purged, Some(entry(1, 3).log_id));
    }
}
