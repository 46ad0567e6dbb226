//! The metadata catalog: every change to what exists (topics, queues,
//! exchanges and bindings) is an event appended to a log of its own,
//! and the catalog's state is the replay of those events on top of the latest
//! snapshot. Knows events and their replay; nothing about partitions' data.
//!
//! Layout under `<data>/meta/`: `log/` is a partition log whose records' values
//! are JSON events; `snapshot.json` holds the state up to an offset of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::{Durability, Log, LogConfig};
use serde::{Deserialize, Serialize};
use tracing::info;
use uuid::Uuid;

use crate::error::{CoreError, Result};
use crate::exchange::{Binding, BindingDefinition, Definitions, Destination, Exchange};
use crate::vhost::VirtualHost;

/// Take a snapshot after this many events, so a restart replays at most that many.
const EVENTS_PER_SNAPSHOT: u64 = 1000;

/// One change to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    TopicCreated {
        id: Uuid,
        name: String,
        partitions: u32,
        configs: BTreeMap<String, String>,
        created_ms: i64,
    },
    TopicDeleted {
        id: Uuid,
        name: String,
    },
    /// The topic now has `partitions` partitions (only ever more).
    PartitionsCreated {
        id: Uuid,
        name: String,
        partitions: u32,
    },
    /// The topic's explicit configs are now exactly `configs`.
    TopicConfigsSet {
        id: Uuid,
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// Producer ids below `up_to` are handed out (or reserved to be): none is
    /// ever given twice, across restarts.
    ProducerIdsReserved {
        up_to: i64,
    },
    /// A durable queue (transient queues are never recorded: they do not
    /// survive a restart).
    QueueDeclared {
        id: Uuid,
        name: String,
        definition: QueueDefinition,
        created_ms: i64,
    },
    QueueDeleted {
        id: Uuid,
        name: String,
    },
    /// The durable queue's arguments are now exactly `arguments`.
    QueueArgumentsSet {
        id: Uuid,
        name: String,
        arguments: BTreeMap<String, String>,
    },
    /// A durable exchange (transient ones are never recorded).
    ExchangeDeclared {
        exchange: Exchange,
    },
    /// Its bindings, as source or destination, go with it.
    ExchangeDeleted {
        name: String,
    },
    /// A binding whose source and destination both survive a restart.
    BindingAdded {
        source: String,
        binding: Binding,
    },
    BindingRemoved {
        source: String,
        binding: Binding,
    },
    /// One binding of `source` became another in one step (an SNS
    /// subscription's attributes, kept in its arguments, changed): a crash
    /// leaves the old one or the new one, never both or neither.
    BindingReplaced {
        source: String,
        old: Binding,
        new: Binding,
    },
    /// A virtual host besides `/`, with its predeclared exchanges.
    VhostCreated {
        name: String,
    },
    /// Everything in the vhost goes with it: queues, exchanges, bindings.
    VhostDeleted {
        name: String,
    },
}

/// How a queue was declared: its flags and arguments (AMQP's `x-…`
/// arguments, SQS attributes), kept as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDefinition {
    pub durable: bool,
    pub auto_delete: bool,
    #[serde(default)]
    pub arguments: BTreeMap<String, String>,
}

/// A durable queue as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    pub id: Uuid,
    pub name: String,
    pub definition: QueueDefinition,
    pub created_ms: i64,
}

/// A topic as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub id: Uuid,
    pub name: String,
    pub partitions: u32,
    pub configs: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// What exists: the replay of every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub topics: BTreeMap<String, TopicRecord>,
    /// Every producer id below this has been reserved.
    #[serde(default)]
    pub producer_ids_reserved: i64,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueRecord>,
    /// Durable exchanges and bindings.
    #[serde(default)]
    pub routing: Definitions,
    /// The virtual hosts besides `/`, by name.
    #[serde(default)]
    pub vhosts: BTreeSet<String>,
}

impl CatalogState {
    /// Applies one event. Events are validated before they are appended, so
    /// applying never fails; an event about something absent is a no-op.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::TopicCreated {
                id,
                name,
                partitions,
                configs,
                created_ms,
            } => {
                self.topics.insert(
                    name.clone(),
                    TopicRecord {
                        id: *id,
                        name: name.clone(),
                        partitions: *partitions,
                        configs: configs.clone(),
                        created_ms: *created_ms,
                    },
                );
            }
            Event::TopicDeleted { id, name } => {
                if self.topics.get(name).is_some_and(|topic| topic.id == *id) {
                    self.topics.remove(name);
                }
            }
            Event::PartitionsCreated { id, name, partitions } => {
                if let Some(topic) = self.topics.get_mut(name).filter(|topic| topic.id == *id) {
                    topic.partitions = topic.partitions.max(*partitions);
                }
            }
            Event::TopicConfigsSet { id, name, configs } => {
                if let Some(topic) = self.topics.get_mut(name).filter(|topic| topic.id == *id) {
                    topic.configs = configs.clone();
                }
            }
            Event::ProducerIdsReserved { up_to } => {
                self.producer_ids_reserved = self.producer_ids_reserved.max(*up_to);
            }
            Event::QueueDeclared {
                id,
                name,
                definition,
                created_ms,
            } => {
                self.queues.insert(
                    name.clone(),
                    QueueRecord {
                        id: *id,
                        name: name.clone(),
                        definition: definition.clone(),
                        created_ms: *created_ms,
                    },
                );
            }
            Event::QueueDeleted { id, name } => {
                if self.queues.get(name).is_some_and(|queue| queue.id == *id) {
                    self.queues.remove(name);
                    let gone = Destination::Queue(name.clone());
                    self.routing.bindings.retain(|defined| defined.binding.destination != gone);
                }
            }
            Event::QueueArgumentsSet { id, name, arguments } => {
                if let Some(queue) = self.queues.get_mut(name).filter(|queue| queue.id == *id) {
                    queue.definition.arguments = arguments.clone();
                }
            }
            Event::ExchangeDeclared { exchange } => {
                self.routing.exchanges.retain(|existing| existing.name != exchange.name);
                self.routing.exchanges.push(exchange.clone());
            }
            Event::ExchangeDeleted { name } => {
                self.routing.exchanges.retain(|existing| existing.name != *name);
                let gone = Destination::Exchange(name.clone());
                self.routing
                    .bindings
                    .retain(|defined| defined.source != *name && defined.binding.destination != gone);
            }
            Event::BindingAdded { source, binding } => {
                let defined = BindingDefinition {
                    source: source.clone(),
                    binding: binding.clone(),
                };
                if !self.routing.bindings.contains(&defined) {
                    self.routing.bindings.push(defined);
                }
            }
            Event::BindingRemoved { source, binding } => {
                self.routing
                    .bindings
                    .retain(|defined| !(defined.source == *source && defined.binding == *binding));
            }
            Event::BindingReplaced { source, old, new } => {
                self.routing
                    .bindings
                    .retain(|defined| !(defined.source == *source && defined.binding == *old));
                let defined = BindingDefinition {
                    source: source.clone(),
                    binding: new.clone(),
                };
                if !self.routing.bindings.contains(&defined) {
                    self.routing.bindings.push(defined);
                }
            }
            Event::VhostCreated { name } => {
                self.vhosts.insert(name.clone());
            }
            Event::VhostDeleted { name } => {
                if !self.vhosts.remove(name) {
                    return;
                }
                let Ok(vhost) = VirtualHost::new(name) else { return };
                self.queues.retain(|queue, _| !vhost.contains(queue));
                self.routing.exchanges.retain(|exchange| !vhost.contains(&exchange.name));
                // A binding never crosses vhosts: its source tells.
                self.routing.bindings.retain(|defined| !vhost.contains(&defined.source));
            }
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    /// The state includes every event before this offset of the metadata log.
    offset: u64,
    state: CatalogState,
}

/// The catalog: its state and the log it is replayed from.
#[derive(Debug)]
pub struct Catalog {
    log: Log,
    snapshot_path: PathBuf,
    state: CatalogState,
    events_since_snapshot: u64,
}

impl Catalog {
    /// Opens (or creates) the catalog under `meta_dir`: loads the snapshot and
    /// replays the events after it. Blocking.
    pub fn open(meta_dir: &Path) -> Result<Catalog> {
        conveyor_log::index::create_dir_all(meta_dir).map_err(|error| CoreError::io(meta_dir, error))?;
        let config = LogConfig {
            // Metadata is never lost to retention: the snapshot is what bounds replay.
            retention_ms: None,
            retention_bytes: None,
            segment_bytes: 64 * 1024 * 1024,
            durability: Durability::Always,
            ..LogConfig::default()
        };
        let log = Log::open(meta_dir.join("log"), config)?;
        let snapshot_path = meta_dir.join("snapshot.json");
        let (mut offset, mut state) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let snapshot: Snapshot = serde_json::from_slice(&bytes)
                    .map_err(|error| CoreError::Catalog(format!("snapshot {}: {error}", snapshot_path.display())))?;
                (snapshot.offset, snapshot.state)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => (log.start_offset(), CatalogState::default()),
            Err(error) => return Err(CoreError::io(&snapshot_path, error)),
        };
        let mut replayed = 0u64;
        while offset < log.high_watermark() {
            let read = log.read(offset, 1 << 20, true)?;
            if read.bytes.is_empty() {
                break;
            }
            let mut position = 0;
            while position < read.bytes.len() {
                let header =
                    conveyor_log::batch::check_batch(&read.bytes[position..]).map_err(|error| CoreError::Catalog(error.to_string()))?;
                let end = position + header.total_bytes();
                for record in decode_records(&read.bytes[position..end]).map_err(|error| CoreError::Catalog(error.to_string()))? {
                    let record_offset = record.offset.unwrap_or_default() as u64;
                    if record_offset < offset {
                        continue;
                    }
                    let value = record.value.unwrap_or_default();
                    let event: Event = serde_json::from_slice(&value)
                        .map_err(|error| CoreError::Catalog(format!("metadata event at offset {record_offset}: {error}")))?;
                    state.apply(&event);
                    replayed += 1;
                    offset = record_offset + 1;
                }
                position = end;
            }
        }
        info!(topics = state.topics.len(), replayed, "metadata catalog loaded");
        Ok(Catalog {
            log,
            snapshot_path,
            state,
            events_since_snapshot: replayed,
        })
    }

    pub fn state(&self) -> &CatalogState {
        &self.state
    }

    /// Appends `event` durably, then applies it. When this returns `Ok` the
    /// change survives a crash.
    pub async fn append(&mut self, event: Event, now_ms: i64) -> Result<()> {
        let value = serde_json::to_vec(&event).map_err(|error| CoreError::Catalog(error.to_string()))?;
        let mut builder = BatchBuilder::new(now_ms);
        builder.push(Record::new(None, Some(value)));
        self.log.append(builder.build()).await?;
        self.state.apply(&event);
        self.events_since_snapshot += 1;
        if self.events_since_snapshot >= EVENTS_PER_SNAPSHOT {
            self.write_snapshot()?;
        }
        Ok(())
    }

    /// Writes the state as of the log's end, atomically.
    fn write_snapshot(&mut self) -> Result<()> {
        let snapshot = Snapshot {
            offset: self.log.high_watermark(),
            state: self.state.clone(),
        };
        let bytes = Bytes::from(serde_json::to_vec(&snapshot).map_err(|error| CoreError::Catalog(error.to_string()))?);
        conveyor_log::index::write_atomically(&self.snapshot_path, &bytes).map_err(|error| CoreError::io(&self.snapshot_path, error))?;
        self.events_since_snapshot = 0;
        Ok(())
    }

    /// The metadata log, for its health.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Snapshots and closes the metadata log. Blocking.
    /// A snapshot that cannot be written (a full file system) only makes
    /// the next open replay more events.
    pub fn close(&mut self) -> Result<()> {
        if self.events_since_snapshot > 0
            && let Err(error) = self.write_snapshot()
        {
            tracing::warn!(%error, "could not write the catalog snapshot on close; the next open replays its events");
        }
        self.log.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(name: &str) -> Event {
        Event::TopicCreated {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            partitions: 3,
            configs: BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]),
            created_ms: 1,
        }
    }

    #[tokio::test]
    async fn events_survive_reopen_with_and_without_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deleted = created("gone");
        let Event::TopicCreated { id: gone_id, .. } = deleted else {
            unreachable!()
        };
        {
            let mut catalog = Catalog::open(dir.path()).expect("open");
            catalog.append(created("orders"), 1).await.expect("append");
            catalog.append(deleted.clone(), 2).await.expect("append");
            catalog
                .append(
                    Event::TopicDeleted {
                        id: gone_id,
                        name: "gone".into(),
                    },
                    3,
                )
                .await
                .expect("append");
            // Dropped without close(): no snapshot, so the reopen replays the log.
        }
        let mut catalog = tokio::task::spawn_blocking({
            let path = dir.path().to_owned();
            move || Catalog::open(&path)
        })
        .await
        .expect("join")
        .expect("reopen");
        assert_eq!(catalog.state().topics.keys().collect::<Vec<_>>(), vec!["orders"]);
        assert_eq!(catalog.state().topics["orders"].partitions, 3);
        catalog.append(created("later"), 4).await.expect("append");
        let path = dir.path().to_owned();
        let reopened = tokio::task::spawn_blocking(move || {
            catalog.close().expect("close");
            Catalog::open(&path).expect("reopen after snapshot")
        })
        .await
        .expect("join");
        assert_eq!(reopened.state().topics.keys().collect::<Vec<_>>(), vec!["later", "orders"]);
    }

    #[test]
    fn events_about_other_incarnations_are_ignored() {
        let mut state = CatalogState::default();
        state.apply(&created("orders"));
        let stale = Event::TopicDeleted {
            id: Uuid::new_v4(),
            name: "orders".into(),
        };
        state.apply(&stale);
        assert!(state.topics.contains_key("orders"));
    }

    #[test]
    fn queue_arguments_set_replaces_the_arguments_of_that_incarnation_only() {
        let mut state = CatalogState::default();
        let id = Uuid::new_v4();
        state.apply(&Event::QueueDeclared {
            id,
            name: "tasks".into(),
            definition: QueueDefinition {
                durable: true,
                auto_delete: false,
                arguments: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
            },
            created_ms: 0,
        });
        let set = |id| Event::QueueArgumentsSet {
            id,
            name: "tasks".into(),
            arguments: BTreeMap::from([("b".to_owned(), "2".to_owned())]),
        };
        state.apply(&set(Uuid::new_v4()));
        assert_eq!(state.queues["tasks"].definition.arguments.get("a").map(String::as_str), Some("1"));
        state.apply(&set(id));
        assert_eq!(
            state.queues["tasks"].definition.arguments,
            BTreeMap::from([("b".to_owned(), "2".to_owned())])
        );
    }
}
