//! The broker's core state: the data directory (held with a lock file), the
//! metadata catalog and the open topics. Front doors call these operations;
//! none of them knows a wire format.
//!
//! Lock order: the catalog mutex (async, held across a durable append) is
//! taken before the topics map's lock, and the topics lock is never held
//! across an await.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conveyor_log::clock::{Clock, system_clock};
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Durability, Log, LogConfig};
use parking_lot::RwLock;
use tracing::{info, warn};
use uuid::Uuid;

use crate::alarms::ResourceAlarms;
use crate::catalog::{Catalog, Event, QueueDefinition};
use crate::connections::Connections;
use crate::error::{CoreError, Result};
use crate::exchange::{Binding, Destination, Exchange, ExchangeError, FieldTable, RouteResult, Router, is_predeclared};
use crate::group::{GroupConfig, GroupCoordinator, OffsetStore};
use crate::partitioner;
use crate::producer::{Partition, PendingAppend};
use crate::queue::{DeclaredQueue, Queue, QueueConfig, QueuePolicy};
use crate::redrive::RedriveTasks;
use crate::stats::{Flow, Stats};
use crate::topic::Topic;
use crate::topic_config::{TopicConfig, TopicDefaults};
use crate::topic_name::validate_topic_name;
use crate::vhost::{self, VhostError, VirtualHost};

/// Most partitions one topic may have; bounds what one request can create.
pub const PARTITIONS_MAX: u32 = 10_000;
const LOCK_FILE: &str = ".lock";

/// Settings of the core, filled by the binary from flags, env and TOML.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    /// Create a topic when a client produces to or asks metadata of an unknown one (Kafka's `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of a topic created without a count (Kafka's `num.partitions`).
    pub default_partitions: u32,
    pub topic_defaults: TopicDefaults,
}

impl BrokerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> BrokerConfig {
        BrokerConfig {
            data_dir: data_dir.into(),
            auto_create_topics: true,
            default_partitions: 1,
            topic_defaults: TopicDefaults::default(),
        }
    }
}

#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    clock: Arc<dyn Clock>,
    /// Held (locked) for the broker's lifetime; the OS releases it if the process dies.
    _lock: File,
    catalog: tokio::sync::Mutex<Catalog>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    cluster_id: String,
    groups: Arc<GroupCoordinator>,
    /// (next id to hand out, first id not reserved yet).
    producer_ids: parking_lot::Mutex<(i64, i64)>,
    queues: RwLock<BTreeMap<String, Arc<DeclaredQueue>>>,
    /// Exchanges and bindings of every virtual host; changes go through the
    /// catalog lock, routing only reads.
    router: RwLock<Router>,
    /// The virtual hosts besides `/`, by name; changes go through the catalog lock.
    vhosts: RwLock<BTreeMap<String, VirtualHost>>,
    /// Traffic counters for operators; not state.
    stats: Arc<Stats>,
    /// Disk and memory alarms: while one is on, publishers wait.
    alarms: Arc<ResourceAlarms>,
    /// Open client connections of every protocol; not state.
    connections: Arc<Connections>,
    /// How to read a stored message's headers for a headers exchange (the
    /// AMQP front door knows its encoding), when the broker routes a message
    /// itself (dead-lettering).
    header_reader: std::sync::OnceLock<HeaderReader>,
    /// Redrives running in the background (SQS message move tasks).
    redrive_tasks: RedriveTasks,
}

/// Reads a stored message's headers for headers-exchange routing.
pub type HeaderReader = fn(&conveyor_log::record::Record) -> FieldTable;

/// Producer ids are reserved in the catalog this many at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl Broker {
    /// Opens the data directory: takes its lock, loads the catalog, opens and
    /// recovers every partition log, removes data of deleted topics. Blocking.
    pub fn open(config: BrokerConfig) -> Result<Broker> {
        Broker::open_with_clock(config, system_clock())
    }

    pub fn open_with_clock(config: BrokerConfig, clock: Arc<dyn Clock>) -> Result<Broker> {
        let data_dir = &config.data_dir;
        conveyor_log::index::create_dir_all(data_dir).map_err(|error| CoreError::io(data_dir, error))?;
        let lock = lock_data_dir(data_dir)?;
        let catalog = Catalog::open(&data_dir.join("meta"))?;
        let cluster_id = load_cluster_id(&data_dir.join("meta").join("cluster.id"))?;
        let offsets = OffsetStore::open(&data_dir.join("groups").join("offsets"), Arc::clone(&clock))?;
        let groups = Arc::new(GroupCoordinator::new(offsets, Arc::clone(&clock), GroupConfig::default()));
        let topics_dir = data_dir.join("topics");
        conveyor_log::index::create_dir_all(&topics_dir).map_err(|error| CoreError::io(&topics_dir, error))?;
        let mut topics = BTreeMap::new();
        let stats = Arc::new(Stats::default());
        for record in catalog.state().topics.values() {
            let config_of_topic = TopicConfig::new(record.configs.clone())?;
            let log_config = config_of_topic.log_config(&config.topic_defaults);
            let dir = topics_dir.join(record.id.to_string());
            let logs = open_partitions(&dir, 0..record.partitions, &log_config, &clock, &stats.topic(&record.name))?;
            let topic = Topic::new(record.id, record.name.clone(), dir, logs, config_of_topic);
            topics.insert(record.name.clone(), Arc::new(topic));
        }
        remove_orphans(&topics_dir, &topics.values().map(|topic| topic.id.to_string()).collect());
        let queues = open_queues(data_dir, &catalog, &config, &clock)?;
        let vhosts: BTreeMap<String, VirtualHost> = catalog
            .state()
            .vhosts
            .iter()
            .filter_map(|name| VirtualHost::new(name).ok().map(|vhost| (name.clone(), vhost)))
            .collect();
        let router = Router::from_definitions(&catalog.state().routing, vhosts.values())?;
        // Start above everything reserved before: ids handed out before a crash are never reused.
        let reserved = catalog.state().producer_ids_reserved;
        info!(data_dir = %data_dir.display(), topics = topics.len(), "broker state opened");
        let alarms = Arc::new(ResourceAlarms::new(data_dir));
        Ok(Broker {
            config,
            _lock: lock,
            catalog: tokio::sync::Mutex::new(catalog),
            topics: RwLock::new(topics),
            cluster_id,
            groups,
            producer_ids: parking_lot::Mutex::new((reserved, reserved)),
            queues: RwLock::new(queues),
            router: RwLock::new(router),
            vhosts: RwLock::new(vhosts),
            stats,
            redrive_tasks: RedriveTasks::default(),
            header_reader: std::sync::OnceLock::new(),
            alarms,
            connections: Arc::new(Connections::new(Arc::clone(&clock))),
            clock,
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// This data directory's cluster id (Kafka clients show and compare it).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Traffic counters: messages and bytes in and out per topic and queue, request latencies.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Sets how stored messages' headers are read for headers-exchange
    /// routing by the broker itself (once; later calls are ignored).
    pub fn set_header_reader(&self, reader: HeaderReader) {
        let _ = self.header_reader.set(reader);
    }

    /// A stored message's headers as a headers exchange matches them (empty
    /// without a reader, or for a message no front door encoded).
    pub fn routing_headers(&self, record: &conveyor_log::record::Record) -> FieldTable {
        self.header_reader.get().map_or_else(FieldTable::new, |read| read(record))
    }

    pub fn alarms(&self) -> &Arc<ResourceAlarms> {
        &self.alarms
    }

    /// The open client connections (Kafka, AMQP): list them, close one.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// The consumer group coordinator (membership and committed offsets).
    /// Background redrives, the latest few per source queue.
    pub fn redrive_tasks(&self) -> &RedriveTasks {
        &self.redrive_tasks
    }

    pub fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.groups
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// Every topic, by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|topic| topic.id == id).cloned()
    }

    /// The log of one partition.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Log> {
        let found = self.topic(topic).ok_or_else(|| CoreError::UnknownTopic(topic.to_owned()))?;
        found.partition(partition).ok_or_else(|| CoreError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
        })
    }

    /// Checks a create request without creating anything (CreateTopics'
    /// `validate_only`).
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(u32, TopicConfig)> {
        validate_topic_name(name)?;
        let partitions = partitions.unwrap_or(self.config.default_partitions);
        if partitions == 0 || partitions > PARTITIONS_MAX {
            return Err(CoreError::InvalidPartitions(format!(
                "{partitions} (must be between 1 and {PARTITIONS_MAX})"
            )));
        }
        let config = TopicConfig::new(configs.clone())?;
        if self.topic(name).is_some() {
            return Err(CoreError::TopicExists(name.to_owned()));
        }
        Ok((partitions, config))
    }

    /// Creates a topic with `partitions` partitions (the broker default when
    /// `None`) and explicit configs. Durable when it returns.
    pub async fn create_topic(&self, name: &str, partitions: Option<u32>, configs: BTreeMap<String, String>) -> Result<Arc<Topic>> {
        let mut catalog = self.catalog.lock().await;
        let (partitions, config) = self.validate_new_topic(name, partitions, &configs)?;
        let id = Uuid::new_v4();
        let dir = self.config.data_dir.join("topics").join(id.to_string());
        let log_config = config.log_config(&self.config.topic_defaults);
        let logs = {
            let (dir, clock, flow) = (dir.clone(), Arc::clone(&self.clock), self.stats.topic(name));
            blocking(move || open_partitions(&dir, 0..partitions, &log_config, &clock, &flow)).await?
        };
        let event = Event::TopicCreated {
            id,
            name: name.to_owned(),
            partitions,
            configs,
            created_ms: self.clock.now_ms(),
        };
        if let Err(error) = catalog.append(event, self.clock.now_ms()).await {
            // Not recorded, so not created: remove what was opened.
            let _ = blocking(move || {
                drop(logs);
                fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))
            })
            .await;
            return Err(error);
        }
        let topic = Arc::new(Topic::new(id, name.to_owned(), dir, logs, config));
        self.topics.write().insert(name.to_owned(), Arc::clone(&topic));
        info!(topic = name, partitions, %id, "topic created");
        Ok(topic)
    }

    /// The topic, created with defaults if it does not exist and the broker
    /// auto-creates topics. `None` when it does not exist and may not be created.
    pub async fn topic_or_auto_create(&self, name: &str) -> Result<Option<Arc<Topic>>> {
        if let Some(topic) = self.topic(name) {
            return Ok(Some(topic));
        }
        if !self.config.auto_create_topics {
            return Ok(None);
        }
        match self.create_topic(name, None, BTreeMap::new()).await {
            Ok(topic) => Ok(Some(topic)),
            // Another request created it first.
            Err(CoreError::TopicExists(_)) => Ok(self.topic(name)),
            Err(error) => Err(error),
        }
    }

    /// Deletes a topic and all its data. Durable when it returns.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let topic = self.topic(name).ok_or_else(|| CoreError::UnknownTopic(name.to_owned()))?;
        catalog
            .append(
                Event::TopicDeleted {
                    id: topic.id,
                    name: name.to_owned(),
                },
                self.clock.now_ms(),
            )
            .await?;
        self.topics.write().remove(name);
        info!(topic = name, id = %topic.id, "topic deleted");
        // The deletion is recorded; if removing the files fails or the process
        // dies first, the next start removes them as orphans.
        blocking(move || {
            let dir = topic.dir().to_owned();
            for log in topic.partitions() {
                let _ = log.close();
            }
            drop(topic);
            fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))
        })
        .await
    }

    /// Grows a topic to `total` partitions (never shrinks, like Kafka).
    pub async fn create_partitions(&self, name: &str, total: u32) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let topic = self.validate_partition_count(name, total)?;
        let current = topic.partition_count();
        let log_config = topic.config().log_config(&self.config.topic_defaults);
        let logs = {
            let (dir, clock, flow) = (topic.dir().to_owned(), Arc::clone(&self.clock), self.stats.topic(name));
            blocking(move || open_partitions(&dir, current..total, &log_config, &clock, &flow)).await?
        };
        catalog
            .append(
                Event::PartitionsCreated {
                    id: topic.id,
                    name: name.to_owned(),
                    partitions: total,
                },
                self.clock.now_ms(),
            )
            .await?;
        topic.add_partitions(logs);
        info!(topic = name, from = current, to = total, "partitions created");
        Ok(())
    }

    /// The topic, if it exists and may grow to `total` partitions.
    pub fn validate_partition_count(&self, name: &str, total: u32) -> Result<Arc<Topic>> {
        let topic = self.topic(name).ok_or_else(|| CoreError::UnknownTopic(name.to_owned()))?;
        let current = topic.partition_count();
        if total <= current {
            return Err(CoreError::InvalidPartitions(format!(
                "topic {name:?} has {current} partitions; the new count must be larger, not {total}"
            )));
        }
        if total > PARTITIONS_MAX {
            return Err(CoreError::InvalidPartitions(format!("{total} (at most {PARTITIONS_MAX})")));
        }
        Ok(topic)
    }

    /// Applies config changes to a topic (`Some` sets, `None` resets to the
    /// default) and reconfigures its logs. With `replace`, keys not named are
    /// reset too (Kafka's non-incremental AlterConfigs).
    pub async fn alter_topic_config(
        &self,
        name: &str,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<TopicConfig> {
        let mut catalog = self.catalog.lock().await;
        let topic = self.topic(name).ok_or_else(|| CoreError::UnknownTopic(name.to_owned()))?;
        let base = if replace { TopicConfig::default() } else { topic.config() };
        let config = base.with_changes(&changes)?;
        if validate_only {
            return Ok(config);
        }
        catalog
            .append(
                Event::TopicConfigsSet {
                    id: topic.id,
                    name: name.to_owned(),
                    configs: config.overrides().clone(),
                },
                self.clock.now_ms(),
            )
            .await?;
        topic.set_config(config.clone());
        let log_config = config.log_config(&self.config.topic_defaults);
        let logs = topic.partitions();
        blocking(move || {
            for log in logs {
                log.set_config(log_config.clone())?;
            }
            Ok(())
        })
        .await?;
        Ok(config)
    }

    /// The virtual host named `name`, if it exists (`/` always does).
    pub fn vhost(&self, name: &str) -> Option<VirtualHost> {
        if name == vhost::DEFAULT_VHOST {
            return Some(VirtualHost::default());
        }
        self.vhosts.read().get(name).cloned()
    }

    /// Every virtual host, `/` first.
    pub fn vhosts(&self) -> Vec<VirtualHost> {
        std::iter::once(VirtualHost::default())
            .chain(self.vhosts.read().values().cloned())
            .collect()
    }

    /// Creates a virtual host with its predeclared exchanges; `false` if it
    /// existed. Durable when this returns.
    pub async fn create_vhost(&self, name: &str) -> Result<(VirtualHost, bool)> {
        let vhost = VirtualHost::new(name)?;
        let mut catalog = self.catalog.lock().await;
        if self.vhost(name).is_some() {
            return Ok((vhost, false));
        }
        catalog
            .append(Event::VhostCreated { name: name.to_owned() }, self.clock.now_ms())
            .await?;
        self.router.write().add_vhost(&vhost);
        self.vhosts.write().insert(name.to_owned(), vhost.clone());
        info!(vhost = name, "vhost created");
        Ok((vhost, true))
    }

    /// Deletes a virtual host with everything in it: its queues (and their
    /// messages), exchanges and bindings, as one catalog event. `/` cannot
    /// be deleted. Returns how many queues went with it.
    pub async fn delete_vhost(&self, name: &str) -> Result<usize> {
        let vhost = VirtualHost::new(name)?;
        if vhost.is_default() {
            return Err(VhostError::Undeletable(name.to_owned()).into());
        }
        let deleted: Vec<Arc<DeclaredQueue>> = {
            let mut catalog = self.catalog.lock().await;
            if self.vhost(name).is_none() {
                return Err(VhostError::NotFound(name.to_owned()).into());
            }
            catalog
                .append(Event::VhostDeleted { name: name.to_owned() }, self.clock.now_ms())
                .await?;
            self.vhosts.write().remove(name);
            self.connections.close_vhost(name);
            self.router.write().remove_vhost(&vhost);
            let mut queues = self.queues.write();
            let names: Vec<String> = queues.keys().filter(|queue| vhost.contains(queue)).cloned().collect();
            names.iter().filter_map(|queue| queues.remove(queue)).collect()
        };
        info!(vhost = name, queues = deleted.len(), "vhost deleted");
        let count = deleted.len();
        // The deletion is recorded; files left behind by a crash here are
        // removed as orphans on the next start.
        for declared in deleted {
            declared.notify_available();
            let dir = declared.queue.dir().to_owned();
            blocking(move || {
                let _ = declared.queue.close();
                fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))
            })
            .await?;
        }
        Ok(count)
    }

    /// Refuses a queue or exchange (broker-wide name) in a vhost that does
    /// not exist (any more: a connection may outlive its vhost).
    fn check_vhost_of(&self, resource: &str) -> Result<()> {
        let (name, _) = vhost::split(resource);
        match self.vhost(&name) {
            Some(_) => Ok(()),
            None => Err(VhostError::NotFound(name.into_owned()).into()),
        }
    }

    pub fn queue(&self, name: &str) -> Option<Arc<DeclaredQueue>> {
        self.queues.read().get(name).cloned()
    }

    pub fn queues(&self) -> Vec<Arc<DeclaredQueue>> {
        self.queues.read().values().cloned().collect()
    }

    /// Declares a queue: creates it, or returns the existing one if it was
    /// declared the same way (`false` then). Durable queues are recorded in
    /// the catalog (durable when this returns) and reopened after a restart;
    /// transient ones are not, and their data is removed on the next start.
    pub async fn declare_queue(&self, name: &str, definition: QueueDefinition) -> Result<(Arc<DeclaredQueue>, bool)> {
        let mut catalog = self.catalog.lock().await;
        if let Some(existing) = self.queue(name) {
            let current = existing.definition();
            if *current != definition {
                let reason = if current.durable != definition.durable {
                    format!("durable is {}, not {}", current.durable, definition.durable)
                } else if current.auto_delete != definition.auto_delete {
                    format!("auto_delete is {}, not {}", current.auto_delete, definition.auto_delete)
                } else {
                    format!("arguments are {:?}, not {:?}", current.arguments, definition.arguments)
                };
                return Err(CoreError::QueueMismatch {
                    name: name.to_owned(),
                    reason,
                });
            }
            existing.touch(self.clock.now_ms());
            return Ok((existing, false));
        }
        self.check_vhost_of(name)?;
        let policy = QueuePolicy::from_arguments(&definition.arguments).map_err(|reason| CoreError::InvalidQueueArgument {
            name: name.to_owned(),
            reason,
        })?;
        let id = Uuid::new_v4();
        let dir = queue_dir(&self.config.data_dir, id, definition.durable);
        let config = queue_config(&self.config, &definition, &policy);
        let queue = {
            let (dir, clock) = (dir.clone(), Arc::clone(&self.clock));
            blocking(move || Queue::open(dir, config, clock).map_err(CoreError::from)).await?
        };
        let created_ms = self.clock.now_ms();
        if definition.durable {
            let event = Event::QueueDeclared {
                id,
                name: name.to_owned(),
                definition: definition.clone(),
                created_ms,
            };
            if let Err(error) = catalog.append(event, self.clock.now_ms()).await {
                let _ = blocking(move || {
                    let _ = queue.close();
                    fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))
                })
                .await;
                return Err(error);
            }
        }
        let declared = Arc::new(DeclaredQueue::new(id, name.to_owned(), definition, policy, queue, created_ms));
        self.queues.write().insert(name.to_owned(), Arc::clone(&declared));
        info!(queue = name, durable = declared.definition().durable, %id, "queue declared");
        Ok((declared, true))
    }

    /// Replaces a queue's arguments with what `update` makes of its current
    /// definition (SQS SetQueueAttributes, TagQueue): checked as at
    /// declaration, recorded in the catalog for a durable queue (durable
    /// when this returns), then in effect for every later publish and
    /// acquisition. Concurrent updates apply one after the other, each to
    /// the result of the last. Whether the queue has message groups cannot
    /// change. `update`'s own error comes back as the inner one.
    pub async fn update_queue_arguments<E>(
        &self,
        name: &str,
        update: impl FnOnce(&QueueDefinition) -> std::result::Result<BTreeMap<String, String>, E>,
    ) -> Result<std::result::Result<Arc<DeclaredQueue>, E>> {
        let mut catalog = self.catalog.lock().await;
        let declared = self.queue(name).ok_or_else(|| CoreError::UnknownQueue(name.to_owned()))?;
        let arguments = match update(&declared.definition()) {
            Ok(arguments) => arguments,
            Err(error) => return Ok(Err(error)),
        };
        let policy = QueuePolicy::from_arguments(&arguments).map_err(|reason| CoreError::InvalidQueueArgument {
            name: name.to_owned(),
            reason,
        })?;
        // They decide what the queue's cursor keeps, fixed when it opens.
        use crate::queue::policy::arguments::{MAX_LENGTH_BYTES, MAX_PRIORITY, MESSAGE_GROUPS};
        let fixed = [
            (policy.message_groups != declared.policy().message_groups, MESSAGE_GROUPS),
            (policy.max_priority != declared.policy().max_priority, MAX_PRIORITY),
            (
                policy.max_length_bytes.is_some() != declared.policy().max_length_bytes.is_some(),
                MAX_LENGTH_BYTES,
            ),
        ];
        if let Some((_, argument)) = fixed.iter().find(|(changed, _)| *changed) {
            return Err(CoreError::InvalidQueueArgument {
                name: name.to_owned(),
                reason: format!("'{argument}' cannot change"),
            });
        }
        let mut definition = (*declared.definition()).clone();
        definition.arguments = arguments;
        if definition.durable {
            let event = Event::QueueArgumentsSet {
                id: declared.id,
                name: name.to_owned(),
                arguments: definition.arguments.clone(),
            };
            catalog.append(event, self.clock.now_ms()).await?;
        }
        declared.redefine(definition, policy);
        // A lower delivery limit or a new dead-letter route may concern
        // messages already waiting: let consumers look again.
        declared.notify_available();
        info!(queue = name, "queue arguments set");
        Ok(Ok(declared))
    }

    /// Deletes a queue and its messages (with `if_empty`, only when nothing
    /// is available or held). Returns how many messages it held.
    pub async fn delete_queue(&self, name: &str, if_empty: bool) -> Result<u64> {
        let mut catalog = self.catalog.lock().await;
        let declared = self.queue(name).ok_or_else(|| CoreError::UnknownQueue(name.to_owned()))?;
        let held = declared.queue.available_count() + declared.queue.acquired_count() as u64;
        if if_empty && held > 0 {
            return Err(CoreError::QueueInUse {
                name: name.to_owned(),
                reason: format!("holds {held} messages"),
            });
        }
        if declared.definition().durable {
            catalog
                .append(
                    Event::QueueDeleted {
                        id: declared.id,
                        name: name.to_owned(),
                    },
                    self.clock.now_ms(),
                )
                .await?;
        }
        self.queues.write().remove(name);
        self.router.write().remove_queue(name);
        declared.notify_available();
        let dir = declared.queue.dir().to_owned();
        blocking(move || {
            let _ = declared.queue.close();
            fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))
        })
        .await?;
        info!(queue = name, "queue deleted");
        Ok(held)
    }

    /// Where a message published to `exchange` goes.
    pub fn route(&self, exchange: &str, routing_key: &str, headers: &FieldTable) -> Result<RouteResult> {
        let mut routed = self.router.read().route(exchange, routing_key, headers)?;
        // The default exchange names queues without checking they exist.
        routed.queues.retain(|name| self.queue(name).is_some());
        Ok(routed)
    }

    pub fn exchange(&self, name: &str) -> Option<Exchange> {
        self.router.read().exchange(name).cloned()
    }

    /// Every exchange, the predeclared ones included, in name order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.router.read().exchanges().cloned().collect()
    }

    /// The bindings whose source is exchange `name`.
    pub fn bindings(&self, name: &str) -> Result<Vec<Binding>> {
        Ok(self.router.read().bindings(name)?)
    }

    /// Declares an exchange (no-op when it exists the same way). Durable
    /// exchanges are recorded in the catalog.
    pub async fn declare_exchange(&self, exchange: Exchange) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        self.check_vhost_of(&exchange.name)?;
        let mut candidate = self.router.read().clone();
        let created = candidate.declare_exchange(exchange.clone())?;
        if created && exchange.durable {
            catalog
                .append(
                    Event::ExchangeDeclared {
                        exchange: exchange.clone(),
                    },
                    self.clock.now_ms(),
                )
                .await?;
        }
        *self.router.write() = candidate;
        Ok(())
    }

    pub async fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let mut candidate = self.router.read().clone();
        let durable = candidate.exchange(name).is_some_and(|exchange| exchange.durable);
        if candidate.delete_exchange(name, if_unused)?.is_some() && durable {
            catalog
                .append(Event::ExchangeDeleted { name: name.to_owned() }, self.clock.now_ms())
                .await?;
        }
        *self.router.write() = candidate;
        Ok(())
    }

    /// Binds `binding.destination` to exchange `source`. The destination
    /// must exist (a queue, an exchange, or a Kafka topic).
    pub async fn bind(&self, source: &str, binding: Binding) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let mut candidate = self.router.read().clone();
        let destination_durable = match &binding.destination {
            Destination::Queue(name) => {
                self.queue(name)
                    .ok_or_else(|| CoreError::UnknownQueue(name.clone()))?
                    .definition()
                    .durable
            }
            Destination::Exchange(name) => candidate
                .exchange(name)
                .map(|exchange| exchange.durable || is_predeclared(name))
                .ok_or_else(|| CoreError::Exchange(ExchangeError::UnknownExchange(name.clone())))?,
            Destination::Topic(name) => {
                self.topic(name).ok_or_else(|| CoreError::UnknownTopic(name.clone()))?;
                true
            }
        };
        let source_durable = candidate
            .exchange(source)
            .is_some_and(|exchange| exchange.durable || is_predeclared(source));
        if candidate.bind(source, binding.clone())? && source_durable && destination_durable {
            catalog
                .append(
                    Event::BindingAdded {
                        source: source.to_owned(),
                        binding,
                    },
                    self.clock.now_ms(),
                )
                .await?;
        }
        *self.router.write() = candidate;
        Ok(())
    }

    pub async fn unbind(&self, source: &str, binding: Binding) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let mut candidate = self.router.read().clone();
        let removal = candidate.unbind(source, &binding)?;
        if !removal.bindings.is_empty()
            && catalog
                .state()
                .routing
                .bindings
                .iter()
                .any(|defined| defined.source == source && defined.binding == binding)
        {
            catalog
                .append(
                    Event::BindingRemoved {
                        source: source.to_owned(),
                        binding,
                    },
                    self.clock.now_ms(),
                )
                .await?;
        }
        *self.router.write() = candidate;
        Ok(())
    }

    /// Replaces an exchange's declaration (same kind), keeping its bindings;
    /// durable when this returns if the exchange is durable.
    pub async fn redefine_exchange(&self, exchange: Exchange) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let mut candidate = self.router.read().clone();
        candidate.redefine_exchange(exchange.clone())?;
        if exchange.durable {
            // Replaying a declaration of an existing exchange replaces it.
            catalog.append(Event::ExchangeDeclared { exchange }, self.clock.now_ms()).await?;
        }
        *self.router.write() = candidate;
        Ok(())
    }

    /// Replaces binding `old` of `source` with `new` (same destination) as
    /// one catalog event. Fails if `old` does not exist.
    pub async fn replace_binding(&self, source: &str, old: Binding, new: Binding) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let mut candidate = self.router.read().clone();
        if old.destination != new.destination {
            return Err(CoreError::Exchange(ExchangeError::InvalidArgument {
                exchange: source.to_owned(),
                reason: "a replaced binding keeps its destination".to_owned(),
            }));
        }
        if candidate.unbind(source, &old)?.bindings.is_empty() {
            return Err(CoreError::Exchange(ExchangeError::InvalidArgument {
                exchange: source.to_owned(),
                reason: "no such binding to replace".to_owned(),
            }));
        }
        candidate.bind(source, new.clone())?;
        let recorded = catalog
            .state()
            .routing
            .bindings
            .iter()
            .any(|defined| defined.source == source && defined.binding == old);
        if recorded {
            catalog
                .append(
                    Event::BindingReplaced {
                        source: source.to_owned(),
                        old,
                        new,
                    },
                    self.clock.now_ms(),
                )
                .await?;
        }
        *self.router.write() = candidate;
        Ok(())
    }

    /// Appends `record` to Kafka topic `name` (routed there by an exchange),
    /// in the partition a Kafka producer would pick for its key.
    pub fn publish_to_topic(&self, name: &str, record: Record) -> Result<PendingAppend> {
        let topic = self.topic(name).ok_or_else(|| CoreError::UnknownTopic(name.to_owned()))?;
        let partitions = topic.partition_count();
        let index = record
            .key
            .as_deref()
            .map_or(0, |key| partitioner::partition_for_key(key, partitions));
        let partition = topic.partition_handle(index).ok_or_else(|| CoreError::UnknownPartition {
            topic: name.to_owned(),
            partition: index,
        })?;
        let mut builder = BatchBuilder::new(self.clock.now_ms());
        builder.push(record);
        Ok(partition.append(builder.build()))
    }

    /// A producer id never handed out before (Kafka's InitProducerId).
    /// Reserves a block in the catalog when the current one is used up.
    pub async fn allocate_producer_id(&self) -> Result<i64> {
        loop {
            {
                let mut ids = self.producer_ids.lock();
                if ids.0 < ids.1 {
                    ids.0 += 1;
                    return Ok(ids.0 - 1);
                }
            }
            // Reserve the next block durably before handing any of it out.
            let mut catalog = self.catalog.lock().await;
            let exhausted = {
                let ids = self.producer_ids.lock();
                (ids.0 >= ids.1).then_some(ids.1)
            };
            if let Some(limit) = exhausted {
                let up_to = limit + PRODUCER_ID_BLOCK;
                catalog.append(Event::ProducerIdsReserved { up_to }, self.clock.now_ms()).await?;
                self.producer_ids.lock().1 = up_to;
            }
        }
    }

    /// The metadata catalog's log, unless a metadata change holds the
    /// catalog right now.
    pub(crate) fn catalog_log(&self) -> Option<Log> {
        self.catalog.try_lock().ok().map(|catalog| catalog.log().clone())
    }

    /// Closes every log and the catalog: everything acknowledged is on disk
    /// and the next open needs no recovery. Blocking.
    pub fn close(&self) -> Result<()> {
        let topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        let mut first_error = None;
        for topic in topics {
            for log in topic.partitions() {
                if let Err(error) = log.close() {
                    warn!(topic = topic.name, %error, "closing a partition log failed");
                    first_error.get_or_insert(CoreError::from(error));
                }
            }
        }
        for declared in self.queues() {
            if let Err(error) = declared.queue.close() {
                warn!(queue = declared.name, %error, "closing a queue failed");
                first_error.get_or_insert(CoreError::from(error));
            }
        }
        self.groups.shutdown();
        if let Err(error) = self.groups.offsets().close() {
            warn!(%error, "closing the consumer offsets log failed");
            first_error.get_or_insert(error);
        }
        // try_lock: close() runs after the front doors stopped, so nobody holds it.
        match self.catalog.try_lock() {
            Ok(mut catalog) => catalog.close()?,
            Err(_) => warn!("metadata catalog busy at close; it will replay its log on the next start"),
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Runs blocking file work off the async reactor.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| CoreError::Catalog(format!("blocking task failed: {error}")))?
}

fn open_partitions(
    topic_dir: &Path,
    partitions: std::ops::Range<u32>,
    config: &LogConfig,
    clock: &Arc<dyn Clock>,
    flow: &Arc<Flow>,
) -> Result<Vec<Partition>> {
    partitions
        .map(|partition| {
            let log = Log::open_with_clock(Topic::partition_dir(topic_dir, partition), config.clone(), Arc::clone(clock))?;
            Ok(Partition::new(log)?.with_flow(Arc::clone(flow)))
        })
        .collect()
}

/// Durable queues live under `queues/`, transient ones under
/// `queues-transient/`, which every start empties.
fn queue_dir(data_dir: &Path, id: Uuid, durable: bool) -> PathBuf {
    data_dir
        .join(if durable { "queues" } else { "queues-transient" })
        .join(id.to_string())
}

/// A queue's settings: the broker's log defaults (without retention: a
/// queue keeps a message until it is settled); transient queues never fsync.
fn queue_config(config: &BrokerConfig, definition: &QueueDefinition, policy: &QueuePolicy) -> QueueConfig {
    let mut queue = QueueConfig::default();
    queue.cursor.delivery_limit = policy.delivery_limit;
    queue.cursor.message_groups = policy.message_groups;
    queue.cursor.count_bytes = policy.max_length_bytes.is_some();
    queue.cursor.max_priority = policy.max_priority.unwrap_or(0);
    queue.log.durability = if definition.durable {
        config.topic_defaults.log.durability
    } else {
        Durability::Never
    };
    queue
}

/// Reopens every durable queue the catalog holds; removes transient queues
/// and the data of deleted ones. Blocking.
fn open_queues(
    data_dir: &Path,
    catalog: &Catalog,
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
) -> Result<BTreeMap<String, Arc<DeclaredQueue>>> {
    let transient = data_dir.join("queues-transient");
    if transient.exists() {
        fs::remove_dir_all(&transient).map_err(|error| CoreError::io(&transient, error))?;
    }
    let queues_dir = data_dir.join("queues");
    conveyor_log::index::create_dir_all(&queues_dir).map_err(|error| CoreError::io(&queues_dir, error))?;
    let mut queues = BTreeMap::new();
    for record in catalog.state().queues.values() {
        // Validated when declared; a policy that no longer parses is ignored, not fatal.
        let policy = QueuePolicy::from_arguments(&record.definition.arguments).unwrap_or_default();
        let queue = Queue::open(
            queue_dir(data_dir, record.id, true),
            queue_config(config, &record.definition, &policy),
            Arc::clone(clock),
        )?;
        let declared = DeclaredQueue::new(
            record.id,
            record.name.clone(),
            record.definition.clone(),
            policy,
            queue,
            record.created_ms,
        );
        declared.touch(clock.now_ms());
        // Only queues with message groups (SQS FIFO) deduplicate; the others
        // need not read their last five minutes.
        if declared.policy().message_groups {
            declared.restore_deduplication(clock.now_ms());
        }
        queues.insert(record.name.clone(), Arc::new(declared));
    }
    remove_orphans(
        &queues_dir,
        &queues.values().map(|queue: &Arc<DeclaredQueue>| queue.id.to_string()).collect(),
    );
    Ok(queues)
}

/// Reads the cluster id, or creates one (a UUID in Kafka's 22-character
/// URL-safe base64 form) the first time.
fn load_cluster_id(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(CoreError::io(path, error)),
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = Uuid::new_v4().as_u128();
    let id: String = (0..22)
        .map(|index| ALPHABET[((value >> (index * 6)) & 63) as usize] as char)
        .collect();
    conveyor_log::index::write_atomically(path, id.as_bytes()).map_err(|error| CoreError::io(path, error))?;
    Ok(id)
}

/// Takes the data directory's lock file, or explains who holds it.
fn lock_data_dir(data_dir: &Path) -> Result<File> {
    let path = data_dir.join(LOCK_FILE);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| CoreError::io(&path, error))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(CoreError::DataDirLocked {
                path: data_dir.to_owned(),
                holder,
            });
        }
        Err(fs::TryLockError::Error(error)) => return Err(CoreError::io(&path, error)),
    }
    // Record who holds it, for the message a second broker prints.
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| write!(file, "{}", std::process::id()))
        .and_then(|()| file.flush());
    written.map_err(|error| CoreError::io(&path, error))?;
    Ok(file)
}

/// Removes topic directories the catalog does not know: topics deleted (or
/// half-created) when the process died before their files were removed.
fn remove_orphans(topics_dir: &Path, known: &HashSet<String>) {
    let Ok(entries) = fs::read_dir(topics_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !known.contains(&name) {
            let path = entry.path();
            match fs::remove_dir_all(&path) {
                Ok(()) => info!(dir = %path.display(), "removed the data of a deleted topic or queue"),
                Err(error) => warn!(dir = %path.display(), %error, "could not remove the data of a deleted topic or queue"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::record::{BatchBuilder, Record};

    fn open(dir: &Path) -> Broker {
        Broker::open(BrokerConfig::new(dir)).expect("open broker")
    }

    fn one_record(value: &str) -> bytes::Bytes {
        let mut builder = BatchBuilder::new(1);
        builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
        builder.build()
    }

    #[tokio::test]
    async fn topics_and_their_data_survive_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        let topic = broker
            .create_topic("orders", Some(3), BTreeMap::from([("retention.ms".into(), "60000".into())]))
            .await
            .expect("create");
        topic
            .partition(2)
            .expect("partition")
            .append(one_record("hello"))
            .await
            .expect("append");
        let id = topic.id;
        drop(topic);
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        let topic = broker.topic("orders").expect("still there");
        assert_eq!((topic.id, topic.partition_count()), (id, 3));
        assert_eq!(topic.partition(2).expect("partition").high_watermark(), 1);
        assert_eq!(topic.config().overrides().get("retention.ms").map(String::as_str), Some("60000"));
    }

    #[tokio::test]
    async fn a_redefined_exchange_and_a_replaced_binding_survive_restart_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        broker
            .declare_queue(
                "q",
                QueueDefinition {
                    durable: true,
                    ..QueueDefinition::default()
                },
            )
            .await
            .expect("queue");
        let mut exchange = Exchange::new("fan", crate::exchange::ExchangeKind::Fanout);
        broker.declare_exchange(exchange.clone()).await.expect("declare");
        let old = Binding::new(Destination::Queue("q".to_owned()), "sub-1");
        broker.bind("fan", old.clone()).await.expect("bind");
        exchange.arguments.insert("k".to_owned(), "v".to_owned());
        broker.redefine_exchange(exchange.clone()).await.expect("redefine");
        let new = old.clone().with_arguments(FieldTable::from([(
            "a".to_owned(),
            crate::exchange::HeaderValue::String("b".to_owned()),
        )]));
        broker.replace_binding("fan", old.clone(), new.clone()).await.expect("replace");
        assert!(
            broker.replace_binding("fan", old.clone(), new.clone()).await.is_err(),
            "the old binding is gone"
        );
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        assert_eq!(broker.exchange("fan"), Some(exchange));
        assert_eq!(broker.bindings("fan").expect("bindings"), vec![new]);
    }

    #[tokio::test]
    async fn a_vhost_isolates_its_names_survives_restart_and_takes_its_queues_when_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        let durable = QueueDefinition {
            durable: true,
            ..QueueDefinition::default()
        };
        let (staging, created) = broker.create_vhost("staging").await.expect("create");
        assert!(created);
        assert!(!broker.create_vhost("staging").await.expect("again").1, "creating twice is a no-op");
        let queue = staging.resource("orders").expect("name");
        broker.declare_queue("orders", durable.clone()).await.expect("root queue");
        broker.declare_queue(&queue, durable.clone()).await.expect("staging queue");
        let routed = |exchange: &str, key: &str| broker.route(exchange, key, &FieldTable::new()).map(|routed| routed.queues);
        assert_eq!(routed("", "orders").expect("route"), ["orders".to_owned()].into());
        let default = staging.resource("").expect("name");
        assert_eq!(routed(&default, "orders").expect("route"), [queue.clone()].into());
        // An alternate exchange named as declared resolves within the vhost.
        let mut with_alternate = Exchange::new(staging.resource("events").expect("name"), crate::exchange::ExchangeKind::Direct);
        with_alternate.alternate_exchange = Some("amq.fanout".to_owned());
        broker.declare_exchange(with_alternate).await.expect("declare");
        let fanout = staging.resource("amq.fanout").expect("name");
        broker
            .bind(&fanout, Binding::new(Destination::Queue(queue.clone()), ""))
            .await
            .expect("bind");
        assert_eq!(
            routed(&staging.resource("events").expect("name"), "x").expect("route"),
            [queue.clone()].into()
        );
        assert!(
            routed("amq.fanout", "x").expect("route").is_empty(),
            "the root vhost's amq.fanout is another exchange"
        );

        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        assert_eq!(broker.vhosts().iter().map(VirtualHost::name).collect::<Vec<_>>(), ["/", "staging"]);
        assert!(broker.queue(&queue).is_some() && broker.queue("orders").is_some());
        assert_eq!(
            broker
                .route(&staging.resource("events").expect("name"), "x", &FieldTable::new())
                .expect("route")
                .queues,
            [queue.clone()].into()
        );

        assert_eq!(broker.delete_vhost("staging").await.expect("delete"), 1);
        assert!(broker.queue(&queue).is_none() && broker.queue("orders").is_some());
        assert!(broker.exchange(&fanout).is_none());
        assert!(matches!(
            broker.declare_queue(&queue, durable.clone()).await,
            Err(CoreError::Vhost(VhostError::NotFound(_)))
        ));
        assert!(matches!(
            broker.delete_vhost("/").await,
            Err(CoreError::Vhost(VhostError::Undeletable(_)))
        ));
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        assert_eq!(broker.vhosts().len(), 1);
        assert!(broker.queue(&queue).is_none() && broker.exchange(&fanout).is_none());
        assert_eq!(
            fs::read_dir(dir.path().join("queues")).expect("queues").count(),
            1,
            "the staging queue's files are gone"
        );
    }

    #[tokio::test]
    async fn invalid_requests_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        assert!(matches!(
            broker.create_topic("bad name", None, BTreeMap::new()).await,
            Err(CoreError::InvalidTopicName(_))
        ));
        assert!(matches!(
            broker.create_topic("t", Some(0), BTreeMap::new()).await,
            Err(CoreError::InvalidPartitions(_))
        ));
        let bad_config = BTreeMap::from([("retention.ms".into(), "x".into())]);
        assert!(matches!(
            broker.create_topic("t", None, bad_config).await,
            Err(CoreError::InvalidConfig(_))
        ));
        broker.create_topic("t", None, BTreeMap::new()).await.expect("create");
        assert!(matches!(
            broker.create_topic("t", None, BTreeMap::new()).await,
            Err(CoreError::TopicExists(_))
        ));
        assert!(matches!(
            broker.create_partitions("t", 1).await,
            Err(CoreError::InvalidPartitions(_))
        ));
        assert!(matches!(broker.delete_topic("missing").await, Err(CoreError::UnknownTopic(_))));
    }

    #[tokio::test]
    async fn deleting_a_topic_removes_its_data_and_the_name_can_be_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        let topic = broker.create_topic("t", Some(2), BTreeMap::new()).await.expect("create");
        topic.partition(0).expect("p0").append(one_record("old")).await.expect("append");
        let old_dir = topic.dir().to_owned();
        drop(topic);
        broker.delete_topic("t").await.expect("delete");
        assert!(!old_dir.exists());
        let again = broker.create_topic("t", Some(1), BTreeMap::new()).await.expect("recreate");
        assert_eq!(again.partition(0).expect("p0").high_watermark(), 0);
    }

    #[tokio::test]
    async fn partitions_grow_and_configs_change_durably() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        broker.create_topic("t", Some(1), BTreeMap::new()).await.expect("create");
        broker.create_partitions("t", 4).await.expect("grow");
        let changes = BTreeMap::from([("segment.bytes".to_owned(), Some("100000".to_owned()))]);
        broker.alter_topic_config("t", changes, false, false).await.expect("alter");
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        let topic = broker.topic("t").expect("exists");
        assert_eq!(topic.partition_count(), 4);
        assert_eq!(topic.config().overrides().get("segment.bytes").map(String::as_str), Some("100000"));
    }

    #[tokio::test]
    async fn producer_ids_are_never_handed_out_twice_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        let first = broker.allocate_producer_id().await.expect("id");
        let second = broker.allocate_producer_id().await.expect("id");
        assert_ne!(first, second);
        drop(broker);
        let broker = open(dir.path());
        let after_restart = broker.allocate_producer_id().await.expect("id");
        assert!(after_restart > second, "{after_restart} <= {second}");
    }

    #[test]
    fn a_second_broker_on_the_same_data_dir_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = open(dir.path());
        let second = Broker::open(BrokerConfig::new(dir.path()));
        match second {
            Err(CoreError::DataDirLocked { holder, .. }) => assert!(holder.contains(&std::process::id().to_string())),
            other => panic!("expected DataDirLocked, got {other:?}"),
        }
    }
}
