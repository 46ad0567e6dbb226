//! The broker: the data directory (held with a lock file), what exists (the
//! catalog and the views derived from it, `metadata.rs`) and the consumer
//! groups. Front doors call its operations, grouped by what they change:
//! `topics.rs`, `queues.rs`, `routing.rs`, `vhosts.rs`, `group_listing.rs`;
//! none of them knows a wire format.
//!
//! Every change to what exists is one [`metadata::Change`]: an event, checked
//! against the views, journaled in the catalog when it is durable, applied
//! to the catalog's state and the views in the same step, and run to its
//! end even if its caller goes away.

mod data_dir;
mod replication;
pub use replication::Replication;
mod partition_replication;
pub use partition_replication::{KafkaNode, PartitionReplication, Placement, REPLICATED_WRITE_TIMEOUT};
mod declarations;
pub use declarations::{ArgumentComparison, ArgumentDifference, Redeclaration, every_argument};
mod group_configs;
mod group_listing;
mod identity;
mod limited;
mod metadata;
mod queues;
mod routing;
mod share_offsets;
pub use share_offsets::{ShareOffsetError, ShareTopicResult};
mod stored_counts;
pub use routing::{FannedOut, RouteTarget};
mod topics;
mod transactions;
pub use transactions::TransactionalCommitter;
mod vhosts;
mod views;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use conveyor_log::clock::{Clock, system_clock};
use tracing::{info, warn};

use self::metadata::Metadata;
use self::views::Views;
use crate::alarms::ResourceAlarms;
use crate::catalog::{ArgumentVocabulary, Catalog};
use crate::connections::Connections;
use crate::error::{CoreError, Result};
use crate::group::{ConsumerGroupStore, GroupConfig, GroupCoordinator, OffsetStore};
use crate::limits::{Limits, LimitsConfig};
use crate::redrive_tasks::RedriveTasks;
use crate::stats::Stats;
use crate::topic_config::TopicDefaults;
use crate::transaction::TransactionCoordinator;

/// Settings of the core, filled by the binary from flags, env and TOML.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    /// Create a topic when a client produces to or asks metadata of an unknown one (Kafka's `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of a topic created without a count (Kafka's `num.partitions`).
    pub default_partitions: u32,
    pub topic_defaults: TopicDefaults,
    /// `[limits]`: counts, sizes and timeouts (`limits/`).
    pub limits: LimitsConfig,
    /// Kafka's `log.cleaner.*`: when and how fast compacted topics are cleaned.
    pub log_cleaner: crate::log_cleaner::LogCleanerConfig,
    /// The words queue arguments are declared in (RabbitMQ's: the binary
    /// gives `conveyor_rabbit_args::VOCABULARY`), for what the core cannot
    /// read itself ([`ArgumentVocabulary`]).
    pub argument_vocabulary: Option<ArgumentVocabulary>,
}

impl BrokerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> BrokerConfig {
        BrokerConfig {
            data_dir: data_dir.into(),
            auto_create_topics: true,
            default_partitions: 1,
            topic_defaults: TopicDefaults::default(),
            limits: LimitsConfig::default(),
            log_cleaner: crate::log_cleaner::LogCleanerConfig::default(),
            argument_vocabulary: None,
        }
    }
}

/// Threads that close partitions and queues at shutdown.
const CLOSING_THREADS: usize = 16;

#[derive(Debug)]
pub struct Broker {
    /// What exists, and the one way to change it.
    meta: Arc<Metadata>,
    /// Held (locked) for the broker's lifetime; the OS releases it if the process dies.
    _lock: File,
    /// This data directory's cluster id (`meta/cluster.id`): the one
    /// clients see on a single node (`identity.rs`).
    local_cluster_id: String,
    groups: Arc<GroupCoordinator>,
    /// Share groups (KIP-932): members and share-partitions.
    share_groups: Arc<crate::share_group::ShareGroupCoordinator>,
    /// Transactional ids and their transactions.
    transactions: Arc<TransactionCoordinator>,
    /// Disk and memory alarms: while one is on, publishers wait.
    alarms: Arc<ResourceAlarms>,
    /// Redrives running in the background (SQS message move tasks).
    redrive_tasks: RedriveTasks,
    /// What may exist and how often a limit was reached; not state.
    limits: Arc<Limits>,
    /// Consumers of direct replies (RabbitMQ's Direct Reply-to), by token.
    direct_replies: Arc<crate::direct_reply::DirectReplies>,
    /// Set on a cluster node: the replication of Kafka partitions
    /// (`partition_replication.rs`).
    partition_replication: std::sync::OnceLock<Arc<dyn PartitionReplication>>,
}

impl Broker {
    /// Opens the data directory: takes its lock, loads the catalog, opens and
    /// recovers every partition log and queue, removes data of deleted ones,
    /// and derives the views from the catalog's state. Blocking.
    pub fn open(config: BrokerConfig) -> Result<Broker> {
        Broker::open_with_clock(config, system_clock())
    }

    pub fn open_with_clock(config: BrokerConfig, clock: Arc<dyn Clock>) -> Result<Broker> {
        let data_dir = config.data_dir.clone();
        conveyor_log::index::create_dir_all(&data_dir).map_err(|error| CoreError::io(&data_dir, error))?;
        let lock = data_dir::lock_data_dir(&data_dir)?;
        let catalog = Catalog::open(&data_dir.join("meta"), Arc::clone(&clock), config.argument_vocabulary.as_ref())?;
        let local_cluster_id = data_dir::load_cluster_id(&data_dir.join("meta").join("cluster.id"))?;
        let offsets = OffsetStore::open(&data_dir.join("groups").join("offsets"), Arc::clone(&clock))?;
        let limits = Arc::new(Limits::new(config.limits.clone()));
        let group_config = GroupConfig {
            limits: Arc::clone(&limits),
            ..GroupConfig::default()
        };
        let consumer_groups = ConsumerGroupStore::open(&data_dir.join("groups").join("consumer-groups"), Arc::clone(&clock))?;
        let groups = Arc::new(GroupCoordinator::new(offsets, consumer_groups, Arc::clone(&clock), group_config));
        let transactions = TransactionCoordinator::open(&data_dir.join("transactions"), Arc::clone(&clock))?;
        let share_group_store =
            crate::share_group::ShareGroupStore::open(&data_dir.join("groups").join("share-groups"), Arc::clone(&clock))?;
        let share_groups = Arc::new(crate::share_group::ShareGroupCoordinator::new(
            data_dir.join("share-groups"),
            share_group_store,
            Arc::clone(&clock),
            crate::share_group::SharePartitionConfig::default(),
            crate::share_group::SESSION_TIMEOUT_MS_DEFAULT,
        ));
        let stats = Arc::new(Stats::default());
        let state = catalog.state();
        let mut views = Views::of_catalog(state)?;
        // Taken before anything changes: what a partition and a queue held
        // at the last clean shutdown, for those opened on first use.
        let stored_partitions = stored_counts::take(&data_dir, stored_counts::PARTITIONS)?;
        views.topics = data_dir::open_topics(&data_dir, state, stored_partitions.as_ref(), &config, &clock, &stats)?;
        let stored_counts = stored_counts::take(&data_dir, stored_counts::QUEUES)?;
        views.queues = data_dir::open_queues(&data_dir, state, &views.topics, stored_counts.as_ref(), &config, &clock)?;
        views.streams = data_dir::stream_topics(&views.queues)?;
        info!(data_dir = %data_dir.display(), topics = views.topics.len(), queues = views.queues.len(), "broker state opened");
        let alarms = Arc::new(ResourceAlarms::new(&data_dir));
        Ok(Broker {
            meta: Arc::new(Metadata::new(config, clock, stats, catalog, views)),
            _lock: lock,
            local_cluster_id,
            groups,
            share_groups,
            transactions: Arc::new(transactions),
            redrive_tasks: RedriveTasks::default(),
            alarms,
            limits,
            direct_replies: Arc::default(),
            partition_replication: std::sync::OnceLock::new(),
        })
    }

    /// A change to users and grants: the metadata lock, for `auth/operations.rs`.
    pub(crate) async fn auth_change(&self) -> metadata::Change {
        self.meta.change().await
    }

    /// The metadata catalog's log, unless a metadata change holds it now.
    pub(crate) fn catalog_log(&self) -> Option<conveyor_log::Log> {
        self.meta.catalog_log()
    }

    /// The authorizer, whose view the metadata change path keeps current.
    pub(crate) fn authorizer_view(&self) -> &crate::auth::Authorizer {
        &self.meta.authorizer
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.meta.config
    }

    /// Traffic counters: messages and bytes in and out per topic and queue, request latencies.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.meta.stats
    }

    pub fn alarms(&self) -> &Arc<ResourceAlarms> {
        &self.alarms
    }

    /// The limits in force, and how often each was reached.
    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// The open client connections (Kafka, AMQP): list them, close one.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.meta.connections
    }

    /// Background redrives, the latest few per source queue.
    pub fn redrive_tasks(&self) -> &RedriveTasks {
        &self.redrive_tasks
    }

    /// Consumers of direct replies: a message to one of their tokens goes
    /// straight to its consumer, not through a queue.
    pub fn direct_replies(&self) -> &Arc<crate::direct_reply::DirectReplies> {
        &self.direct_replies
    }

    /// The consumer group coordinator (membership and committed offsets).
    pub fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.groups
    }

    /// Share groups (KIP-932).
    pub fn share_groups(&self) -> &Arc<crate::share_group::ShareGroupCoordinator> {
        &self.share_groups
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.meta.clock
    }

    /// Closes every log and the catalog: everything acknowledged is on disk
    /// and the next open needs no recovery. Blocking. Partitions and queues
    /// close on [`CLOSING_THREADS`] threads side by side, so the file
    /// system groups their fsyncs rather than taking them one at a time.
    pub fn close(&self) -> Result<()> {
        self.share_groups.close();
        let views = self.meta.views();
        enum Closing<'a> {
            Partition(&'a str, conveyor_log::Log),
            Queue(&'a crate::queue::DeclaredQueue),
        }
        let closings: Vec<Closing<'_>> = views
            .topics
            .values()
            .flat_map(|topic| {
                topic
                    .seal_partitions()
                    .into_iter()
                    .map(move |log| Closing::Partition(topic.name.as_str(), log))
            })
            .chain(views.queues.values().map(|declared| Closing::Queue(declared)))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let first_error: parking_lot::Mutex<Option<CoreError>> = parking_lot::Mutex::new(None);
        // What each durable queue answers after the next start until it is used.
        let counts = parking_lot::Mutex::new(std::collections::HashMap::new());
        std::thread::scope(|scope| {
            for _ in 0..CLOSING_THREADS.min(closings.len()) {
                scope.spawn(|| {
                    // Bounded by the number of logs: each index is taken once.
                    while let Some(closing) = closings.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                        let failed = match closing {
                            Closing::Partition(topic, log) => log.close().map_err(|error| {
                                warn!(topic, %error, "closing a partition log failed");
                                CoreError::from(error)
                            }),
                            Closing::Queue(declared) => {
                                if declared.definition().durable {
                                    counts.lock().insert(declared.id, declared.counts_to_store());
                                }
                                declared.close().map_err(|error| {
                                    warn!(queue = declared.name, %error, "closing a queue failed");
                                    CoreError::from(error)
                                })
                            }
                        };
                        if let Err(error) = failed {
                            first_error.lock().get_or_insert(error);
                        }
                    }
                });
            }
        });
        let mut first_error = first_error.into_inner();
        // Only when every log closed: their counts are then what they hold.
        if first_error.is_none() {
            let data_dir = &self.meta.config.data_dir;
            if let Err(error) = stored_counts::store(data_dir, stored_counts::QUEUES, &counts.into_inner()) {
                warn!(%error, "could not store the queue counts: the next start opens every queue");
            }
            // Topics of the catalog only: a stream's log is its queue's.
            let partitions: std::collections::HashMap<_, _> =
                views.topics.values().map(|topic| (topic.id, topic.partition_summaries())).collect();
            if let Err(error) = stored_counts::store(data_dir, stored_counts::PARTITIONS, &partitions) {
                warn!(%error, "could not store the partition counts: the next start opens every partition");
            }
        }
        self.groups.shutdown();
        if let Err(error) = self.groups.offsets().close() {
            warn!(%error, "closing the consumer offsets log failed");
            first_error.get_or_insert(error);
        }
        if let Err(error) = self.groups.consumer_group_store().close() {
            warn!(%error, "closing the KIP-848 consumer groups' log failed");
            first_error.get_or_insert(error);
        }
        if let Err(error) = self.transactions.close() {
            warn!(%error, "closing the transaction state log failed");
            first_error.get_or_insert(error.into());
        }
        // The front doors have stopped, so no change holds the metadata lock.
        self.meta.close()?;
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::catalog::QueueDefinition;
    use crate::exchange::{Binding, Destination, Exchange, FieldTable};
    use crate::vhost::{VhostError, VirtualHost};
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

    /// Polls `future` once (far enough for a change to take the metadata
    /// lock and start), then drops it, as a front door drops a request whose
    /// client went away.
    fn poll_once_then_drop<F: std::future::Future>(future: F) {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            future.as_mut().poll(&mut context).is_pending(),
            "the change waits for its journal append"
        );
    }

    /// Waits (bounded) until `condition` holds.
    async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !condition() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_durable_declares_share_catalog_fsyncs_and_all_survive_a_restart() {
        const DECLARES: usize = 64;
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Arc::new(open(dir.path()));
        let catalog = broker.catalog_log().expect("the catalog log");
        let syncs_before = catalog.group_syncs_total();
        let durable = QueueDefinition {
            durable: true,
            ..QueueDefinition::default()
        };
        let declares: Vec<_> = (0..DECLARES)
            .map(|index| {
                let (broker, durable) = (Arc::clone(&broker), durable.clone());
                tokio::spawn(async move { broker.declare_queue(&format!("q{index}"), durable).await })
            })
            .collect();
        // The same name declared at the same time: one creates it, the
        // others get that queue.
        let twins: Vec<_> = (0..4)
            .map(|_| {
                let (broker, durable) = (Arc::clone(&broker), durable.clone());
                tokio::spawn(async move { broker.declare_queue("twin", durable).await })
            })
            .collect();
        for declare in declares {
            let (_, created) = declare.await.expect("join").expect("declare");
            assert!(created);
        }
        let mut twin_ids = std::collections::BTreeSet::new();
        let mut created = 0;
        for twin in twins {
            let (queue, new) = twin.await.expect("join").expect("declare");
            twin_ids.insert(queue.id);
            created += usize::from(new);
        }
        assert_eq!((twin_ids.len(), created), (1, 1), "one twin created the queue, the others found it");
        // Each declare was acknowledged after its event was durable, and
        // declares waiting for the metadata lock shared a fsync.
        let syncs = catalog.group_syncs_total() - syncs_before;
        assert!(syncs < DECLARES as u64, "{syncs} catalog fsyncs for {} declares", DECLARES + 4);
        let twin_id = *twin_ids.first().expect("the twin");
        drop(catalog);
        let broker = Arc::into_inner(broker).expect("the only handle");
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        for index in 0..DECLARES {
            assert!(broker.queue(&format!("q{index}")).is_some(), "q{index} after the restart");
        }
        assert_eq!(broker.queue("twin").map(|queue| queue.id), Some(twin_id));
        assert_eq!(broker.queues().len(), DECLARES + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delete_whose_caller_goes_away_finishes_and_stays_finished_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        let durable = QueueDefinition {
            durable: true,
            ..QueueDefinition::default()
        };
        let topic = broker.create_topic("t", Some(2), BTreeMap::new()).await.expect("create");
        let (queue, _) = broker.declare_queue("q", durable.clone()).await.expect("declare");
        let partition = topic.partition(0).expect("p0");
        drop(topic);
        // Each is dropped once it holds the metadata lock and started; a
        // change dropped while it waits for the lock never starts.
        poll_once_then_drop(broker.delete_topic("t"));
        eventually("the topic is gone", || broker.topic("t").is_none()).await;
        poll_once_then_drop(broker.delete_queue("q", false));
        eventually("the queue is gone", || broker.queue("q").is_none()).await;
        let topics_dir = dir.path().join("topics");
        eventually("their files are removed", || {
            fs::read_dir(&topics_dir).expect("topics").count() == 0 && !queue.queue().expect("open").dir().exists()
        })
        .await;
        assert!(
            partition.append(one_record("late")).await.is_err(),
            "a deleted topic acknowledges no write"
        );
        assert!(
            queue
                .queue()
                .expect("open")
                .publish(vec![Record::new(None, Some(b"late".to_vec()))])
                .await
                .is_err(),
            "nor does a deleted queue"
        );
        drop((partition, queue));
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        assert!(
            broker.topic("t").is_none() && broker.queue("q").is_none(),
            "still gone after a restart"
        );
        broker
            .create_topic("t", Some(1), BTreeMap::new())
            .await
            .expect("the name is free again");
    }

    /// What a restart must rebuild: the topics, the queues, the exchanges
    /// and their bindings, and the vhosts.
    fn observed(broker: &Broker) -> String {
        let topics: Vec<_> = broker
            .topics()
            .iter()
            .map(|topic| {
                (
                    topic.name.clone(),
                    topic.id,
                    topic.partition_count(),
                    topic.config().overrides().clone(),
                )
            })
            .collect();
        let queues: Vec<_> = broker
            .queues()
            .iter()
            .map(|queue| (queue.name.clone(), queue.id, (*queue.definition()).clone()))
            .collect();
        let exchanges: Vec<_> = broker
            .exchanges()
            .into_iter()
            .map(|exchange| {
                let bindings = broker.bindings(&exchange.name).expect("bindings");
                (exchange, bindings)
            })
            .collect();
        let vhosts: Vec<_> = broker.vhosts().iter().map(|vhost| vhost.name().to_owned()).collect();
        format!("{topics:#?}\n{queues:#?}\n{exchanges:#?}\n{vhosts:#?}")
    }

    #[tokio::test]
    async fn a_restart_rebuilds_the_views_the_live_changes_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        let durable = QueueDefinition {
            durable: true,
            ..QueueDefinition::default()
        };
        broker.create_topic("orders", Some(1), BTreeMap::new()).await.expect("create");
        broker.create_partitions("orders", 3).await.expect("grow");
        let changes = BTreeMap::from([("retention.ms".to_owned(), Some("60000".to_owned()))]);
        broker.alter_topic_config("orders", changes, false, false).await.expect("alter");
        broker.create_topic("gone", None, BTreeMap::new()).await.expect("create");
        broker.delete_topic("gone").await.expect("delete");
        broker.declare_queue("tasks", durable.clone()).await.expect("queue");
        broker.declare_queue("dropped", durable.clone()).await.expect("queue");
        broker
            .redefine_queue("tasks", |_| {
                let policy = crate::queue::QueuePolicy {
                    message_ttl_ms: Some(1000),
                    ..Default::default()
                };
                Ok::<_, CoreError>(QueueDefinition::of_policy(true, policy))
            })
            .await
            .expect("update")
            .expect("accepted");
        let mut events = Exchange::new("events", crate::exchange::ExchangeKind::Topic);
        broker.declare_exchange(events.clone()).await.expect("exchange");
        events.arguments.insert("k".to_owned(), "v".to_owned());
        broker.redefine_exchange(events).await.expect("redefine");
        broker
            .bind("events", Binding::new(Destination::Queue("tasks".to_owned()), "a.*"))
            .await
            .expect("bind");
        broker
            .bind("events", Binding::new(Destination::Queue("dropped".to_owned()), "#"))
            .await
            .expect("bind");
        broker
            .bind("events", Binding::new(Destination::Topic("orders".to_owned()), "b.#"))
            .await
            .expect("bind");
        broker
            .unbind("events", Binding::new(Destination::Topic("orders".to_owned()), "b.#"))
            .await
            .expect("unbind");
        broker.delete_queue("dropped", false).await.expect("delete queue");
        let (staging, _) = broker.create_vhost("staging").await.expect("vhost");
        broker
            .declare_queue(&staging.resource("q").expect("name"), durable.clone())
            .await
            .expect("staging queue");
        broker.create_vhost("scratch").await.expect("vhost");
        broker.delete_vhost("scratch").await.expect("delete vhost");
        let before = observed(&broker);
        // Transient things are in the views but not in the catalog.
        broker
            .declare_queue("transient", QueueDefinition::default())
            .await
            .expect("transient queue");
        broker
            .bind("events", Binding::new(Destination::Queue("transient".to_owned()), "t"))
            .await
            .expect("transient binding");
        broker
            .declare_exchange(Exchange {
                durable: false,
                ..Exchange::new("fleeting", crate::exchange::ExchangeKind::Fanout)
            })
            .await
            .expect("transient exchange");
        assert!(broker.queue("transient").is_some() && broker.exchange("fleeting").is_some());
        // Dropped without a close: no snapshot, the journal alone is replayed.
        drop(broker);
        assert!(!dir.path().join("meta").join("snapshot.json").exists());
        let broker = open(dir.path());
        assert_eq!(observed(&broker), before);
        // Once more from the snapshot a clean close writes.
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        assert!(dir.path().join("meta").join("snapshot.json").exists());
        let broker = open(dir.path());
        assert_eq!(observed(&broker), before);
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
            broker
                .bind("amq.fanout", Binding::new(Destination::Queue(queue.clone()), ""))
                .await
                .is_err(),
            "an exchange of / cannot be bound to a queue of staging"
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
        let changes = BTreeMap::from([("segment.bytes".to_owned(), Some("2000000".to_owned()))]);
        broker.alter_topic_config("t", changes, false, false).await.expect("alter");
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = open(dir.path());
        let topic = broker.topic("t").expect("exists");
        assert_eq!(topic.partition_count(), 4);
        assert_eq!(topic.config().overrides().get("segment.bytes").map(String::as_str), Some("2000000"));
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
