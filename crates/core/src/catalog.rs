//! The metadata catalog: every change to what exists (topics, queues,
//! exchanges and bindings, vhosts, users and grants) is an event appended to a log of its own,
//! and the catalog's state is the replay of those events on top of the latest
//! snapshot. Knows events and their replay; nothing about partitions' data.
//!
//! Layout under `<data>/meta/` (a [`Journaled`] state machine): `log/` is a
//! partition log whose records' values are JSON events; `snapshot.json`
//! holds the state up to an offset of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use conveyor_log::Durability;
use conveyor_log::clock::Clock;
use conveyor_log::record::Record;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use uuid::Uuid;

use crate::auth::{Acl, AuthState, Permission, User};
use crate::error::{CoreError, Result};
use crate::exchange::{Binding, BindingDefinition, Definitions, Destination, Exchange};
use crate::journal::{EncodedEvent, JournalConfig, Journaled, StateMachine};
use crate::queue::{QueuePolicy, StreamRetention};
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
        /// Replicas per partition, on a cluster node; absent on a single
        /// node (and in catalogs written before clusters replicated data).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replication_factor: Option<u16>,
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
    /// On a cluster node: the replicas of the topic's `partition` are now
    /// exactly `replicas` (node ids), moved off a node that left the
    /// cluster. A partition without one keeps the replicas its topic was
    /// created with.
    PartitionReplicasSet {
        id: Uuid,
        name: String,
        partition: u32,
        replicas: Vec<u64>,
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
    /// A cluster node's block of `size` producer ids, starting at the
    /// first not reserved yet (Kafka's AllocateProducerIds): the block is
    /// decided where the event is applied, in the metadata group's order,
    /// so two nodes asking at once get different blocks.
    ProducerIdsAllocated {
        node_id: u64,
        size: i64,
    },
    /// The cluster's one Kafka cluster id, proposed by the first metadata
    /// leader (a cluster node's catalog only); once set it never changes.
    ClusterIdSet {
        cluster_id: String,
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
    /// The durable queue's arguments and policy are now exactly these
    /// (`policy` is absent in catalogs written before the typed policy:
    /// then it is read from `arguments`, see [`QueueDefinition`]).
    QueueArgumentsSet {
        id: Uuid,
        name: String,
        arguments: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<QueuePolicy>,
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
    /// Everything in the vhost goes with it: queues, exchanges, bindings,
    /// permission entries.
    VhostDeleted {
        name: String,
    },
    /// A user is created or replaced whole (credentials, tags, AWS key).
    UserSet {
        user: User,
    },
    /// The user goes with its permission entries.
    UserDeleted {
        name: String,
    },
    /// `user`'s RabbitMQ permission entry in `vhost` is now `permission`.
    PermissionSet {
        user: String,
        vhost: String,
        permission: Permission,
    },
    PermissionCleared {
        user: String,
        vhost: String,
    },
    /// Kafka ACL bindings added.
    AclsCreated {
        acls: Vec<Acl>,
    },
    /// Kafka ACL bindings removed.
    AclsDeleted {
        acls: Vec<Acl>,
    },
    /// The Kafka group's own configs (KIP-848, KIP-932) are now exactly
    /// `configs`; an empty map forgets the group's entry.
    GroupConfigsSet {
        group: String,
        configs: BTreeMap<String, String>,
    },
}

impl Event {
    /// The topic a `TopicCreated` records.
    pub(crate) fn created_topic(&self) -> Option<TopicRecord> {
        let Event::TopicCreated {
            id,
            name,
            partitions,
            configs,
            created_ms,
            replication_factor,
        } = self
        else {
            return None;
        };
        Some(TopicRecord {
            id: *id,
            name: name.clone(),
            partitions: *partitions,
            configs: configs.clone(),
            created_ms: *created_ms,
            replication_factor: *replication_factor,
            replicas: BTreeMap::new(),
        })
    }

    /// What a `QueueArgumentsSet` makes of the queue's `current`
    /// definition (flags unchanged); `None` for any other event.
    pub(crate) fn redefined(&self, current: &QueueDefinition) -> Option<QueueDefinition> {
        let Event::QueueArgumentsSet { arguments, policy, .. } = self else {
            return None;
        };
        let policy = match policy {
            Some(policy) => policy.clone(),
            None => StoredQueueDefinition::legacy_policy(arguments),
        };
        Some(QueueDefinition {
            arguments: arguments.clone(),
            policy,
            ..current.clone()
        })
    }

    /// The queue a `QueueDeclared` records.
    pub(crate) fn declared_queue(&self) -> Option<QueueRecord> {
        let Event::QueueDeclared {
            id,
            name,
            definition,
            created_ms,
        } = self
        else {
            return None;
        };
        Some(QueueRecord {
            id: *id,
            name: name.clone(),
            definition: definition.clone(),
            created_ms: *created_ms,
        })
    }

    /// Whether applying it changes users, their grants or the vhosts those
    /// grants name: the authorizer derives its view again after it.
    pub fn changes_auth(&self) -> bool {
        matches!(
            self,
            Event::UserSet { .. }
                | Event::UserDeleted { .. }
                | Event::PermissionSet { .. }
                | Event::PermissionCleared { .. }
                | Event::AclsCreated { .. }
                | Event::AclsDeleted { .. }
                | Event::VhostDeleted { .. }
        )
    }
}

/// How a queue was declared: its flags, the typed policy the core's rules
/// read, and the arguments as the declaring door keeps them (AMQP's `x-…`
/// arguments as the client sent them, SQS attributes), which the core only
/// keeps, shows and compares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredQueueDefinition")]
pub struct QueueDefinition {
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: BTreeMap<String, String>,
    pub policy: QueuePolicy,
}

#[cfg(test)]
impl QueueDefinition {
    /// A definition with `policy` and no arguments (the core's tests
    /// declare in the core's words).
    pub(crate) fn of_policy(durable: bool, policy: QueuePolicy) -> QueueDefinition {
        QueueDefinition {
            durable,
            policy,
            ..QueueDefinition::default()
        }
    }
}

/// What the core cannot say about a queue's arguments itself: they are in
/// the words of the door that declared it (RabbitMQ's `x-…` arguments,
/// whose vocabulary is `conveyor-rabbit-args`); the binary passes it in
/// `BrokerConfig`. Without one, a queue recorded before the typed policy
/// has the default policy and a stream's arguments do not follow a Kafka
/// config change.
/// Reads the policy a queue's stored arguments make.
pub type PolicyReader = fn(&BTreeMap<String, String>) -> std::result::Result<QueuePolicy, String>;

/// Rewrites a stream's stored arguments for a retention change.
pub type RetentionShown = fn(&BTreeMap<String, String>, &StreamRetention, &StreamRetention) -> BTreeMap<String, String>;

#[derive(Debug, Clone, Copy)]
pub struct ArgumentVocabulary {
    /// The policy `arguments` make, or why they make none: for the queues
    /// a catalog recorded before definitions kept a typed policy.
    pub policy: PolicyReader,
    /// `arguments` showing a stream's retention changed from the first to
    /// the second (by a Kafka config change), for the clients that read
    /// and redeclare them.
    pub stream_retention_shown: RetentionShown,
}

thread_local! {
    /// How a catalog opening on this thread reads the policy of a queue
    /// recorded without one ([`Catalog::open`] sets it around its replay):
    /// serde gives the stored definition no other way to ask.
    static LEGACY_POLICY: std::cell::Cell<Option<PolicyReader>> =
        const { std::cell::Cell::new(None) };
}

/// A queue definition as catalogs store it. Those written before the typed
/// policy have only the `x-…` arguments: their policy is what the opening
/// catalog's [`ArgumentVocabulary`] reads from them, and one that does not
/// parse (or with no vocabulary) is the default policy, as such a queue
/// opened before.
#[derive(Deserialize)]
struct StoredQueueDefinition {
    durable: bool,
    auto_delete: bool,
    #[serde(default)]
    arguments: BTreeMap<String, String>,
    #[serde(default)]
    policy: Option<QueuePolicy>,
}

impl StoredQueueDefinition {
    fn legacy_policy(arguments: &BTreeMap<String, String>) -> QueuePolicy {
        LEGACY_POLICY.get().and_then(|read| read(arguments).ok()).unwrap_or_default()
    }
}

impl From<StoredQueueDefinition> for QueueDefinition {
    fn from(stored: StoredQueueDefinition) -> QueueDefinition {
        let policy = stored
            .policy
            .unwrap_or_else(|| StoredQueueDefinition::legacy_policy(&stored.arguments));
        QueueDefinition {
            durable: stored.durable,
            auto_delete: stored.auto_delete,
            arguments: stored.arguments,
            policy,
        }
    }
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
    /// Replicas per partition (a cluster's topics); `None`: one, here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u16>,
    /// The partitions whose replicas were set since the topic's creation
    /// (`PartitionReplicasSet`), by partition; the others keep the
    /// replicas the topic was created with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<u32, Vec<u64>>,
}

/// Producer ids `first..end`, handed out by one cluster node only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    pub first: i64,
    pub end: i64,
}

/// What exists: the replay of every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub topics: BTreeMap<String, TopicRecord>,
    /// Every producer id below this has been reserved.
    #[serde(default)]
    pub producer_ids_reserved: i64,
    /// On a cluster node: each node's latest block of producer ids.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub producer_id_blocks: BTreeMap<u64, ProducerIdBlock>,
    /// On a cluster node: the cluster's Kafka cluster id, once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueRecord>,
    /// Durable exchanges and bindings.
    #[serde(default)]
    pub routing: Definitions,
    /// The virtual hosts besides `/`, by name.
    #[serde(default)]
    pub vhosts: BTreeSet<String>,
    /// Users, permission entries and ACLs.
    #[serde(default)]
    pub auth: AuthState,
    /// Kafka groups' configs set through IncrementalAlterConfigs, by group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
}

impl StateMachine for CatalogState {
    type Event = Event;
    type Snapshot = CatalogSnapshot;

    /// Applies one event. Events are validated before they are appended, so
    /// applying never fails; an event about something absent is a no-op.
    fn apply(&mut self, event: &Event) {
        match event {
            Event::TopicCreated { name, .. } => {
                if let Some(record) = event.created_topic() {
                    self.topics.insert(name.clone(), record);
                }
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
            Event::PartitionReplicasSet {
                id,
                name,
                partition,
                replicas,
            } => {
                if let Some(topic) = self
                    .topics
                    .get_mut(name)
                    .filter(|topic| topic.id == *id && *partition < topic.partitions)
                {
                    topic.replicas.insert(*partition, replicas.clone());
                }
            }
            Event::ProducerIdsReserved { up_to } => {
                self.producer_ids_reserved = self.producer_ids_reserved.max(*up_to);
            }
            Event::ProducerIdsAllocated { node_id, size } => {
                let first = self.producer_ids_reserved;
                self.producer_ids_reserved = first.saturating_add((*size).max(1));
                self.producer_id_blocks.insert(
                    *node_id,
                    ProducerIdBlock {
                        first,
                        end: self.producer_ids_reserved,
                    },
                );
            }
            Event::ClusterIdSet { cluster_id } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                }
            }
            Event::QueueDeclared { name, .. } => {
                if let Some(record) = event.declared_queue() {
                    self.queues.insert(name.clone(), record);
                }
            }
            Event::QueueDeleted { id, name } => {
                if self.queues.get(name).is_some_and(|queue| queue.id == *id) {
                    self.queues.remove(name);
                    let gone = Destination::Queue(name.clone());
                    self.routing.bindings.retain(|defined| defined.binding.destination != gone);
                }
            }
            Event::QueueArgumentsSet { id, name, .. } => {
                if let Some(queue) = self.queues.get_mut(name).filter(|queue| queue.id == *id) {
                    queue.definition = event.redefined(&queue.definition).unwrap_or_else(|| queue.definition.clone());
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
                self.auth.forget_vhost(name);
                let Ok(vhost) = VirtualHost::new(name) else { return };
                self.queues.retain(|queue, _| !vhost.contains(queue));
                self.routing.exchanges.retain(|exchange| !vhost.contains(&exchange.name));
                // A binding never crosses vhosts: its source tells.
                self.routing.bindings.retain(|defined| !vhost.contains(&defined.source));
            }
            Event::UserSet { user } => self.auth.set_user(user),
            Event::UserDeleted { name } => self.auth.delete_user(name),
            Event::PermissionSet { user, vhost, permission } => self.auth.set_permission(user, vhost, permission),
            Event::PermissionCleared { user, vhost } => self.auth.clear_permission(user, vhost),
            Event::AclsCreated { acls } => self.auth.add_acls(acls),
            Event::AclsDeleted { acls } => self.auth.remove_acls(acls),
            Event::GroupConfigsSet { group, configs } => {
                if configs.is_empty() {
                    self.group_configs.remove(group);
                } else {
                    self.group_configs.insert(group.clone(), configs.clone());
                }
            }
        }
    }

    fn encode(event: &Event) -> std::result::Result<EncodedEvent, String> {
        let value = serde_json::to_vec(event).map_err(|error| error.to_string())?;
        Ok((None, Some(value)))
    }

    fn decode(record: &Record) -> std::result::Result<Event, String> {
        serde_json::from_slice(record.value.as_deref().unwrap_or_default()).map_err(|error| error.to_string())
    }

    fn snapshot(&self) -> CatalogSnapshot {
        CatalogSnapshot { state: self.clone() }
    }

    fn restore(snapshot: CatalogSnapshot) -> CatalogState {
        snapshot.state
    }
}

/// What the catalog's snapshot file holds besides its offset:
/// `{"offset": N, "state": {…}}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CatalogSnapshot {
    state: CatalogState,
}

/// The catalog: its journal and the state replayed from it. Changes are
/// applied once durable, so the state never shows an event a crash could
/// lose. The caller serializes changes (the broker's metadata lock).
#[derive(Debug)]
pub struct Catalog {
    journal: Arc<Journaled<CatalogState>>,
    state: CatalogState,
}

impl Catalog {
    /// Opens (or creates) the catalog under `meta_dir`: loads the snapshot and
    /// replays the events after it. Blocking.
    /// The policy of a queue recorded before definitions kept a typed one
    /// is what `vocabulary` reads from its arguments.
    pub fn open(meta_dir: &Path, clock: Arc<dyn Clock>, vocabulary: Option<&ArgumentVocabulary>) -> Result<Catalog> {
        Catalog::open_with(meta_dir, clock, EVENTS_PER_SNAPSHOT, vocabulary)
    }

    /// [`Catalog::open`] with another snapshot cadence.
    pub(crate) fn open_with(
        meta_dir: &Path,
        clock: Arc<dyn Clock>,
        snapshot_every_events: u64,
        vocabulary: Option<&ArgumentVocabulary>,
    ) -> Result<Catalog> {
        let config = JournalConfig {
            durability: Durability::Always,
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_events,
            reserve_bytes: 0,
        };
        /// Unsets [`LEGACY_POLICY`] however the replay ends.
        struct Reading;
        impl Drop for Reading {
            fn drop(&mut self) {
                LEGACY_POLICY.set(None);
            }
        }
        let reading = Reading;
        LEGACY_POLICY.set(vocabulary.map(|vocabulary| vocabulary.policy));
        let opened = Journaled::<CatalogState>::open(meta_dir, config, clock);
        drop(reading);
        let (journal, replayed) = opened?;
        info!(
            topics = replayed.state.topics.len(),
            replayed = replayed.events,
            "metadata catalog loaded"
        );
        Ok(Catalog {
            journal: Arc::new(journal),
            state: replayed.state,
        })
    }

    pub fn state(&self) -> &CatalogState {
        &self.state
    }

    /// Appends `event` durably, then applies it. When this returns `Ok` the
    /// change survives a crash. A snapshot that falls due is written after
    /// it; if that fails the change stands (the journal still has it) and the
    /// failure is logged: the next one is tried later.
    pub async fn append(&mut self, event: Event) -> Result<()> {
        self.journal.append(std::slice::from_ref(&event))?.await?;
        self.state.apply(&event);
        self.snapshot_if_due().await;
        Ok(())
    }

    /// Appends `events`, each its own batch, all enqueued before any is
    /// awaited: the log's writer takes them as one group with one fsync
    /// (group commit). Each that is durable is applied, in order; one
    /// result per event. A failed write or fsync poisons the log, so those
    /// that fail are the ones after the first failure.
    pub async fn append_each(&mut self, events: Vec<Event>) -> Vec<Result<()>> {
        let enqueued: Vec<_> = events
            .iter()
            .map(|event| self.journal.append(std::slice::from_ref(event)))
            .collect();
        let mut results = Vec::with_capacity(events.len());
        for (event, appended) in events.iter().zip(enqueued) {
            let result = match appended {
                Ok(appended) => appended.await.map_err(CoreError::from),
                Err(error) => Err(error.into()),
            };
            if result.is_ok() {
                self.state.apply(event);
            }
            results.push(result);
        }
        if !events.is_empty() {
            self.snapshot_if_due().await;
        }
        results
    }

    /// Writes a snapshot if one fell due; if that fails the events stand
    /// (the journal has them) and the failure is logged.
    async fn snapshot_if_due(&mut self) {
        if self.journal.claim_snapshot() {
            let (journal, snapshot, offset) = (Arc::clone(&self.journal), self.state.snapshot(), self.journal.end());
            let written = tokio::task::spawn_blocking(move || journal.write_snapshot(&snapshot, offset)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => warn!(%error, "could not write the catalog snapshot; replay stays longer until one is written"),
                Err(error) => warn!(%error, "the catalog snapshot task failed"),
            }
        }
    }

    /// The metadata log, for its health.
    pub fn log(&self) -> &conveyor_log::Log {
        self.journal.log()
    }

    /// Snapshots and closes the metadata log. Blocking.
    pub fn close(&mut self) -> Result<()> {
        // A snapshot that cannot be written (a full file system) only makes
        // the next open replay more events.
        if self.journal.has_events_after_snapshot()
            && let Err(error) = self.journal.write_snapshot(&self.state.snapshot(), self.journal.end())
        {
            warn!(%error, "could not write the catalog snapshot on close; the next open replays its events");
        }
        self.journal.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::clock::ManualClock;

    fn clock() -> Arc<dyn Clock> {
        ManualClock::new(1)
    }

    impl crate::journal::suite::Fixture for CatalogState {
        fn events(count: usize) -> Vec<Event> {
            // Topics, then growing, reconfiguring and deleting them, so
            // every kind of topic event is replayed.
            (0..count)
                .map(|index| {
                    let id = Uuid::from_u128(index as u128 / 4);
                    let name = format!("topic-{}", index / 4);
                    match index % 4 {
                        0 => Event::TopicCreated {
                            id,
                            name,
                            partitions: 1,
                            configs: BTreeMap::new(),
                            created_ms: index as i64,
                            replication_factor: None,
                        },
                        1 => Event::PartitionsCreated { id, name, partitions: 3 },
                        2 => Event::TopicConfigsSet {
                            id,
                            name,
                            configs: BTreeMap::from([("retention.ms".to_owned(), index.to_string())]),
                        },
                        _ => Event::QueueDeclared {
                            id,
                            name,
                            definition: QueueDefinition::default(),
                            created_ms: index as i64,
                        },
                    }
                })
                .collect()
        }
    }

    crate::journal::suite::journaled_suite!(CatalogState);

    fn created(name: &str) -> Event {
        Event::TopicCreated {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            partitions: 3,
            configs: BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]),
            created_ms: 1,
            replication_factor: None,
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
            let mut catalog = Catalog::open(dir.path(), clock(), None).expect("open");
            catalog.append(created("orders")).await.expect("append");
            catalog.append(deleted.clone()).await.expect("append");
            catalog
                .append(Event::TopicDeleted {
                    id: gone_id,
                    name: "gone".into(),
                })
                .await
                .expect("append");
            // Dropped without close(): no snapshot, so the reopen replays the log.
        }
        let mut catalog = tokio::task::spawn_blocking({
            let path = dir.path().to_owned();
            move || Catalog::open(&path, clock(), None)
        })
        .await
        .expect("join")
        .expect("reopen");
        assert_eq!(catalog.state().topics.keys().collect::<Vec<_>>(), vec!["orders"]);
        assert_eq!(catalog.state().topics["orders"].partitions, 3);
        catalog.append(created("later")).await.expect("append");
        let path = dir.path().to_owned();
        let reopened = tokio::task::spawn_blocking(move || {
            catalog.close().expect("close");
            Catalog::open(&path, clock(), None).expect("reopen after snapshot")
        })
        .await
        .expect("join");
        assert_eq!(reopened.state().topics.keys().collect::<Vec<_>>(), vec!["later", "orders"]);
    }

    #[tokio::test]
    async fn a_snapshot_that_cannot_be_written_fails_no_change_that_is_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The snapshot is written to `snapshot.tmp` first: a directory there
        // makes every snapshot fail.
        std::fs::create_dir(dir.path().join("snapshot.tmp")).expect("block the snapshot");
        {
            let mut catalog = Catalog::open_with(dir.path(), clock(), 1, None).expect("open");
            for name in ["a", "b", "c"] {
                catalog.append(created(name)).await.expect("durable despite the snapshot failing");
            }
            assert_eq!(catalog.state().topics.len(), 3);
        }
        assert!(!dir.path().join("snapshot.json").exists());
        let path = dir.path().to_owned();
        let reopened = tokio::task::spawn_blocking(move || Catalog::open(&path, clock(), None))
            .await
            .expect("join")
            .expect("reopen");
        assert_eq!(reopened.state().topics.keys().collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }

    #[tokio::test]
    async fn the_snapshot_file_keeps_its_documented_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut catalog = Catalog::open(dir.path(), clock(), None).expect("open");
        catalog.append(Event::ProducerIdsReserved { up_to: 1000 }).await.expect("append");
        tokio::task::spawn_blocking(move || catalog.close())
            .await
            .expect("join")
            .expect("close");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("snapshot.json")).expect("read")).expect("json");
        assert_eq!(written["offset"], 1);
        assert_eq!(written["state"]["producer_ids_reserved"], 1000);
    }

    #[test]
    fn producer_id_blocks_never_overlap_and_the_cluster_id_is_set_once() {
        let mut state = CatalogState::default();
        state.apply(&Event::ProducerIdsReserved { up_to: 1000 });
        for (node_id, size) in [(1, 1000), (2, 1000), (1, 1000)] {
            state.apply(&Event::ProducerIdsAllocated { node_id, size });
        }
        assert_eq!(state.producer_id_blocks[&2], ProducerIdBlock { first: 2000, end: 3000 });
        assert_eq!(
            state.producer_id_blocks[&1],
            ProducerIdBlock { first: 3000, end: 4000 },
            "the latest block"
        );
        assert_eq!(state.producer_ids_reserved, 4000);
        state.apply(&Event::ClusterIdSet {
            cluster_id: "first".into(),
        });
        state.apply(&Event::ClusterIdSet {
            cluster_id: "second".into(),
        });
        assert_eq!(state.cluster_id.as_deref(), Some("first"));
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
    fn a_partition_s_replicas_are_set_for_that_incarnation_and_an_older_record_loads_without_any() {
        let mut state = CatalogState::default();
        state.apply(&created("orders"));
        let id = state.topics["orders"].id;
        let set = |id, partition| Event::PartitionReplicasSet {
            id,
            name: "orders".into(),
            partition,
            replicas: vec![1, 2, 4],
        };
        state.apply(&set(Uuid::new_v4(), 0));
        state.apply(&set(id, 99));
        assert!(
            state.topics["orders"].replicas.is_empty(),
            "another incarnation's, or no such partition"
        );
        state.apply(&set(id, 0));
        assert_eq!(state.topics["orders"].replicas, BTreeMap::from([(0, vec![1, 2, 4])]));

        let older =
            r#"{"id":"00000000-0000-0000-0000-000000000007","name":"t","partitions":2,"configs":{},"created_ms":1,"replication_factor":3}"#;
        let record: TopicRecord = serde_json::from_str(older).expect("a record written before replicas were set");
        assert!(record.replicas.is_empty());
        assert!(
            !serde_json::to_string(&record).expect("json").contains("replicas\""),
            "written as before"
        );
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
                arguments: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
                ..QueueDefinition::default()
            },
            created_ms: 0,
        });
        let set = |id| Event::QueueArgumentsSet {
            id,
            name: "tasks".into(),
            arguments: BTreeMap::from([("b".to_owned(), "2".to_owned())]),
            policy: None,
        };
        state.apply(&set(Uuid::new_v4()));
        assert_eq!(state.queues["tasks"].definition.arguments.get("a").map(String::as_str), Some("1"));
        state.apply(&set(id));
        assert_eq!(
            state.queues["tasks"].definition.arguments,
            BTreeMap::from([("b".to_owned(), "2".to_owned())])
        );
    }

    #[tokio::test]
    async fn users_permissions_and_acls_survive_reopen_and_go_with_their_user_or_vhost() {
        use crate::auth::{AclOperation, AclPermissionType, AclResourceType, PatternType};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut alice = User::new("alice").expect("user");
        alice.set_password("s3cret").expect("password");
        let bob = User::new("bob").expect("user");
        let acl = Acl {
            resource_type: AclResourceType::Topic,
            resource_name: "orders.".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission_type: AclPermissionType::Allow,
        };
        let events = [
            Event::VhostCreated { name: "staging".into() },
            Event::UserSet { user: alice.clone() },
            Event::UserSet { user: bob.clone() },
            Event::PermissionSet {
                user: "alice".into(),
                vhost: "/".into(),
                permission: Permission::full(),
            },
            Event::PermissionSet {
                user: "alice".into(),
                vhost: "staging".into(),
                permission: Permission::full(),
            },
            Event::PermissionSet {
                user: "bob".into(),
                vhost: "/".into(),
                permission: Permission::full(),
            },
            Event::AclsCreated { acls: vec![acl.clone()] },
            Event::UserDeleted { name: "bob".into() },
            Event::VhostDeleted { name: "staging".into() },
        ];
        {
            let mut catalog = Catalog::open(dir.path(), clock(), None).expect("open");
            for event in events {
                catalog.append(event).await.expect("append");
            }
        }
        let path = dir.path().to_owned();
        let catalog = tokio::task::spawn_blocking(move || Catalog::open(&path, clock(), None))
            .await
            .expect("join")
            .expect("reopen");
        let auth = &catalog.state().auth;
        assert_eq!(auth.users.keys().collect::<Vec<_>>(), vec!["alice"]);
        assert!(auth.users["alice"].verify_password("s3cret"), "credentials replay");
        assert_eq!(
            auth.permissions.keys().collect::<Vec<_>>(),
            vec!["alice"],
            "bob's entry went with bob"
        );
        assert_eq!(
            auth.permissions["alice"].keys().collect::<Vec<_>>(),
            vec!["/"],
            "staging's went with staging"
        );
        assert!(auth.acls.contains(&acl));
    }
}
