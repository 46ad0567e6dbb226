//! The data directory: its lock file, the cluster id, where topics and
//! queues keep their files, opening them at start (a partition or queue
//! whose counts the last clean shutdown stored only on first use, unless a
//! timer needs it) and removing the files of those the catalog no longer
//! names. Knows paths and files; what exists comes from the catalog.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conveyor_log::clock::Clock;
use conveyor_log::{Durability, Log, LogConfig};
use tracing::{info, warn};
use uuid::Uuid;

use super::BrokerConfig;
use super::views::QueueMap;
use crate::catalog::{CatalogState, QueueDefinition, QueueRecord, TopicRecord};
use crate::error::{CoreError, Result};
use crate::partition_slot::{Opening, PartitionOpener, PartitionSummary};
use crate::producer::Partition;
use crate::queue::{CursorStart, DeclaredQueue, Queue, QueueConfig, QueuePolicy, QueueType, StoredCounts};
use crate::stats::{Flow, Stats};
use crate::topic::Topic;
use crate::topic_config::TopicConfig;

const LOCK_FILE: &str = ".lock";

/// Opens every topic the catalog holds; removes the data of deleted ones.
/// A partition with figures in `stored` (the last clean shutdown's) is
/// opened on its first use instead, unless a timer needs it
/// ([`PartitionSummary::needs_timers`]). Blocking.
pub(crate) fn open_topics(
    data_dir: &Path,
    catalog: &CatalogState,
    stored: Option<&HashMap<Uuid, Vec<PartitionSummary>>>,
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
    stats: &Stats,
) -> Result<BTreeMap<String, Arc<Topic>>> {
    let topics_dir = data_dir.join("topics");
    conveyor_log::index::create_dir_all(&topics_dir).map_err(|error| CoreError::io(&topics_dir, error))?;
    let records: Vec<_> = catalog.topics.values().collect();
    let opened = open_each(&records, |record| {
        let stored = stored.and_then(|stored| stored.get(&record.id)).map(Vec::as_slice);
        open_topic_lazily(&topics_dir, record, stored.unwrap_or_default(), config, clock, stats)
    })?;
    let topics: BTreeMap<String, Arc<Topic>> = opened.into_iter().map(|topic| (topic.name.clone(), topic)).collect();
    let unopened: usize = topics
        .values()
        .map(|topic| topic.partition_count() as usize - topic.opened_partitions().len())
        .sum();
    info!(unopened, "partitions to open on first use");
    remove_orphans(
        &topics_dir,
        &topics.values().map(|topic: &Arc<Topic>| topic.id.to_string()).collect(),
    );
    Ok(topics)
}

/// Opens one topic the catalog records, under `topics_dir`: at start, and
/// on a cluster node for a topic another node created. Blocking.
pub(crate) fn open_topic(
    topics_dir: &Path,
    record: &TopicRecord,
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
    stats: &Stats,
) -> Result<Arc<Topic>> {
    open_topic_lazily(topics_dir, record, &[], config, clock, stats)
}

/// [`open_topic`], but partition `n` opens on first use if `stored[n]`
/// says what it holds and no timer needs it before. Blocking.
fn open_topic_lazily(
    topics_dir: &Path,
    record: &TopicRecord,
    stored: &[PartitionSummary],
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
    stats: &Stats,
) -> Result<Arc<Topic>> {
    let config_of_topic = TopicConfig::new(record.configs.clone())?;
    let log_config = config_of_topic.log_config(&config.topic_defaults);
    let dir = topics_dir.join(record.id.to_string());
    let flow = stats.topic(&record.name);
    let openings = (0..record.partitions)
        .map(|partition| {
            let later = stored
                .get(partition as usize)
                .filter(|summary| !summary.needs_timers(&config_of_topic, &config.topic_defaults));
            match later {
                Some(summary) => Ok(Opening::Later(
                    partition_opener(&dir, partition, &config.topic_defaults, clock, &flow),
                    *summary,
                )),
                None => open_partitions(&dir, partition..partition + 1, &log_config, clock, &flow)
                    .map(|mut opened| Opening::Open(opened.remove(0))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Topic::with_openings(
        record.id,
        record.name.clone(),
        dir,
        openings,
        config_of_topic,
    )))
}

/// Opens partition `partition` of the topic in `topic_dir` on its first
/// use, with the topic's config as it is then.
fn partition_opener(
    topic_dir: &Path,
    partition: u32,
    defaults: &crate::topic_config::TopicDefaults,
    clock: &Arc<dyn Clock>,
    flow: &Arc<Flow>,
) -> PartitionOpener {
    let (topic_dir, defaults, clock, flow) = (topic_dir.to_owned(), defaults.clone(), Arc::clone(clock), Arc::clone(flow));
    Box::new(move |config: &TopicConfig| {
        let mut opened = open_partitions(&topic_dir, partition..partition + 1, &config.log_config(&defaults), &clock, &flow)?;
        Ok(opened.remove(0))
    })
}

pub(crate) fn open_partitions(
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

/// Threads that open topics and queues at start.
const OPENING_THREADS: usize = 16;

/// Opens what `records` name on [`OPENING_THREADS`] threads at once, so
/// the file system groups their reads and syncs (a start with thousands of
/// queues is bound by waiting for the disk, not by the CPU); results in
/// the order of `records`. The first failure fails the start. Blocking.
fn open_each<T: Sync, R: Send>(records: &[T], open: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let opened: parking_lot::Mutex<Vec<(usize, Result<R>)>> = parking_lot::Mutex::new(Vec::with_capacity(records.len()));
    std::thread::scope(|scope| {
        for _ in 0..OPENING_THREADS.min(records.len()) {
            scope.spawn(|| {
                // Bounded by the number of records: each index is taken once.
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(record) = records.get(index) else { break };
                    let result = open(record);
                    let failed = result.is_err();
                    opened.lock().push((index, result));
                    if failed {
                        // The others stop at their next record.
                        next.store(records.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut opened = opened.into_inner();
    opened.sort_by_key(|(index, _)| *index);
    opened.into_iter().map(|(_, result)| result).collect()
}

/// Durable queues live under `queues/`, transient ones under
/// `queues-transient/`, which every start empties.
pub(crate) fn queue_dir(data_dir: &Path, id: Uuid, durable: bool) -> PathBuf {
    data_dir
        .join(if durable { "queues" } else { "queues-transient" })
        .join(id.to_string())
}

/// A queue's settings: the broker's log defaults (without retention: a
/// queue keeps a message until it is settled); transient queues never fsync.
pub(crate) fn queue_config(config: &BrokerConfig, definition: &QueueDefinition, policy: &QueuePolicy) -> QueueConfig {
    queue_config_of(config.topic_defaults.log.durability, definition, policy)
}

/// [`queue_config`] with the broker's default durability.
pub(crate) fn queue_config_of(durability: Durability, definition: &QueueDefinition, policy: &QueuePolicy) -> QueueConfig {
    let mut queue = QueueConfig::default();
    queue.cursor.delivery_limit = policy.delivery_limit;
    queue.cursor.message_groups = policy.message_groups;
    queue.cursor.delays = policy.message_delays;
    queue.cursor.count_bytes = policy.max_length_bytes.is_some();
    queue.cursor.max_priority = policy.max_priority.unwrap_or(0);
    let retention = policy.stream_retention;
    queue.log.retention_bytes = retention.max_bytes.or(queue.log.retention_bytes);
    queue.log.retention_ms = retention.max_age_ms.or(queue.log.retention_ms);
    if let Some(segment_bytes) = retention.segment_bytes_max {
        queue.log.segment_bytes = segment_bytes;
    }
    queue.log.durability = if definition.durable { durability } else { Durability::Never };
    queue
}

/// The topics the streams among `queues` are to Kafka clients
/// ([`Topic::of_stream`]); a stream over a Kafka topic's log has that
/// topic. Blocking.
pub(crate) fn stream_topics(queues: &QueueMap) -> Result<BTreeMap<String, Arc<Topic>>> {
    let mut streams = BTreeMap::new();
    for (name, declared) in queues {
        if let Some(topic) = stream_topic(declared)? {
            streams.insert(name.clone(), topic);
        }
    }
    Ok(streams)
}

/// The topic a stream queue is to Kafka clients, if it is one (a stream
/// over a Kafka topic's log has that topic). Blocking.
pub(crate) fn stream_topic(declared: &DeclaredQueue) -> Result<Option<Arc<Topic>>> {
    if !super::queues::served_to_kafka(&declared.name, &declared.policy()) || !declared.owns_messages() {
        return Ok(None);
    }
    let topic = Topic::of_stream(
        declared.id,
        declared.name.clone(),
        declared.dir().to_owned(),
        declared.queue()?.message_log().clone(),
        declared.policy().stream_retention,
    )?;
    Ok(Some(Arc::new(topic)))
}

/// Reopens every durable queue the catalog holds (a stream named as one of
/// `topics` over that topic's log); removes transient queues and the data
/// of deleted ones. A queue with counts in `stored` (the last clean
/// shutdown's) is opened on its first use instead, unless something must
/// run on it before any use ([`opens_at_start`]). Blocking.
pub(crate) fn open_queues(
    data_dir: &Path,
    catalog: &CatalogState,
    topics: &BTreeMap<String, Arc<Topic>>,
    stored: Option<&HashMap<Uuid, StoredCounts>>,
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
) -> Result<QueueMap> {
    let transient = data_dir.join("queues-transient");
    if transient.exists() {
        fs::remove_dir_all(&transient).map_err(|error| CoreError::io(&transient, error))?;
    }
    let queues_dir = data_dir.join("queues");
    conveyor_log::index::create_dir_all(&queues_dir).map_err(|error| CoreError::io(&queues_dir, error))?;
    let mut queues = QueueMap::default();
    let mut records = Vec::new();
    for record in catalog.queues.values() {
        match stored.and_then(|stored| unopened_queue(data_dir, record, stored.get(&record.id)?, config, clock)) {
            Some(unopened) => {
                queues.insert(unopened.name.clone(), unopened);
            }
            None => records.push(record),
        }
    }
    info!(opened = records.len(), unopened = queues.len(), "opening queues");
    let opened = open_each(&records, |record| open_queue(data_dir, record, topics, config, clock))?;
    queues.extend(opened.into_iter().map(|queue| (queue.name.clone(), queue)));
    remove_orphans(
        &queues_dir,
        &queues.values().map(|queue: &Arc<DeclaredQueue>| queue.id.to_string()).collect(),
    );
    Ok(queues)
}

/// Whether a queue with `policy` and `counts` must open at start rather
/// than on first use: a stream (its log is a topic to Kafka clients, and
/// its retention runs on the open log), and a queue holding messages that
/// a timer may have to dead-letter or remove before anyone uses it (a
/// message TTL, its own or the queue's; retention).
fn opens_at_start(policy: &QueuePolicy, counts: &StoredCounts) -> bool {
    let retained = policy.stream_retention.max_bytes.is_some() || policy.stream_retention.max_age_ms.is_some();
    policy.queue_type == QueueType::Stream
        || (counts.messages > 0 && (policy.message_ttl_ms.is_some() || counts.may_hold_own_ttls || retained))
}

/// A durable queue the catalog records, to be opened on its first use,
/// answering `counts` until then; `None` if it must open at start
/// ([`opens_at_start`]).
fn unopened_queue(
    data_dir: &Path,
    record: &QueueRecord,
    counts: &StoredCounts,
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
) -> Option<Arc<DeclaredQueue>> {
    if opens_at_start(&record.definition.policy, counts) {
        return None;
    }
    let dir = queue_dir(data_dir, record.id, true);
    // Settings from the definition the queue has when it opens (its
    // arguments may change before), so the closure keeps only what the
    // definition does not say.
    let (opening_dir, durability, opening_clock) = (dir.clone(), config.topic_defaults.log.durability, Arc::clone(clock));
    let opener = Box::new(move |definition: &QueueDefinition, policy: &QueuePolicy| {
        Queue::open(
            opening_dir.clone(),
            queue_config_of(durability, definition, policy),
            Arc::clone(&opening_clock),
        )
    });
    let declared = DeclaredQueue::unopened(
        record.id,
        record.name.clone(),
        record.definition.clone(),
        dir,
        opener,
        *counts,
        record.created_ms,
    );
    declared.touch(clock.now_ms());
    Some(Arc::new(declared))
}

/// Opens one durable queue the catalog records (a stream named as one of
/// `topics` over that topic's log): at start, and on a cluster node for a
/// queue another node declared. Blocking.
pub(crate) fn open_queue(
    data_dir: &Path,
    record: &QueueRecord,
    topics: &BTreeMap<String, Arc<Topic>>,
    config: &BrokerConfig,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<DeclaredQueue>> {
    let policy = &record.definition.policy;
    let (dir, queue_config) = (
        queue_dir(data_dir, record.id, true),
        queue_config(config, &record.definition, policy),
    );
    let over_topic = topics
        .get(&record.name)
        .filter(|_| super::queues::served_to_kafka(&record.name, policy))
        .and_then(|topic| topic.partition(0));
    let queue = match over_topic {
        Some(log) => Queue::open_over(dir, log, CursorStart::Earliest, queue_config, Arc::clone(clock))?,
        None => Queue::open(dir, queue_config, Arc::clone(clock))?,
    };
    let declared = DeclaredQueue::new(record.id, record.name.clone(), record.definition.clone(), queue, record.created_ms);
    declared.touch(clock.now_ms());
    // Only queues with message groups (SQS FIFO) deduplicate; the others
    // need not read their last five minutes.
    if declared.policy().message_groups
        && let Some(queue) = declared.opened()
    {
        declared.restore_deduplication(queue, clock.now_ms());
    }
    Ok(Arc::new(declared))
}

/// Reads the cluster id, or creates one (a UUID in Kafka's 22-character
/// URL-safe base64 form) the first time.
pub(crate) fn load_cluster_id(path: &Path) -> Result<String> {
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
pub(crate) fn lock_data_dir(data_dir: &Path) -> Result<File> {
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
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use conveyor_log::record::Record;

    use crate::queue::DeclaredQueue;

    use crate::broker::{Broker, BrokerConfig};
    use crate::catalog::QueueDefinition;

    fn durable(message_ttl_ms: Option<i64>) -> QueueDefinition {
        let policy = crate::queue::QueuePolicy {
            message_ttl_ms,
            ..Default::default()
        };
        QueueDefinition::of_policy(true, policy)
    }

    async fn publish(broker: &Arc<Broker>, declared: &Arc<DeclaredQueue>, value: &str) {
        for append in broker
            .publish_to_queue(declared, Record::new(None, Some(value.as_bytes().to_vec())))
            .appends
        {
            append.await.expect("durable");
        }
    }

    fn opened(broker: &Broker) -> Vec<String> {
        broker
            .queues()
            .into_iter()
            .filter(|declared| declared.opened().is_some())
            .map(|declared| declared.name.clone())
            .collect()
    }

    #[tokio::test]
    async fn after_a_clean_restart_queues_open_on_first_use_and_answer_their_stored_counts_until_then() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("open"));
        for index in 0..20 {
            let (declared, _) = broker.declare_queue(&format!("q{index:02}"), durable(None)).await.expect("declare");
            for message in 0..index % 3 {
                publish(&broker, &declared, &format!("q{index:02}/{message}")).await;
            }
        }
        let (ttl, _) = broker.declare_queue("with-ttl", durable(Some(600_000))).await.expect("declare");
        publish(&broker, &ttl, "expires one day").await;
        let size_bytes = broker.queue("q02").expect("q02").size_bytes();
        broker.close().expect("close");
        drop(broker);

        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("reopen"));
        assert_eq!(opened(&broker), ["with-ttl"], "only the queue a timer needs is open");
        for index in 0..20 {
            let declared = broker.queue(&format!("q{index:02}")).expect("still declared");
            assert_eq!(declared.available_count(), index % 3, "q{index:02}'s stored count");
            assert_eq!(declared.acquired_count(), 0);
        }
        assert_eq!(broker.queue("q02").expect("q02").size_bytes(), size_bytes);
        assert_eq!(opened(&broker), ["with-ttl"], "answering counts opened nothing");

        // Two first uses at once open the queue once, and both see its messages.
        let q02 = broker.queue("q02").expect("q02");
        let (first, second) = std::thread::scope(|scope| {
            let first = scope.spawn(|| q02.queue().map(|queue| std::ptr::from_ref(queue) as usize));
            let second = scope.spawn(|| q02.queue().map(|queue| std::ptr::from_ref(queue) as usize));
            (first.join().expect("first"), second.join().expect("second"))
        });
        assert_eq!(first.expect("opened"), second.expect("opened"), "one queue, opened once");
        let live = broker
            .acquire_live(&q02, q02.new_consumer(), 10, 1000, crate::queue::Visibility::Durable)
            .expect("acquire");
        let values: Vec<_> = live.messages.iter().filter_map(|delivery| delivery.record.value.clone()).collect();
        assert_eq!(values, [b"q02/0".to_vec(), b"q02/1".to_vec()]);
        let q04 = broker.queue("q04").expect("q04");
        publish(&broker, &q04, "after the restart").await;
        assert_eq!(q04.available_count(), 2, "a publish opens the queue and lands after what it held");
        let mut now_open = opened(&broker);
        now_open.sort();
        assert_eq!(now_open, ["q02", "q04", "with-ttl"]);

        // A queue used in this run stores its new counts; the others keep theirs.
        broker.close().expect("close");
        drop(broker);
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen");
        assert_eq!(broker.queue("q04").expect("q04").available_count(), 2);
        assert_eq!(broker.queue("q05").expect("q05").available_count(), 2);
        assert_eq!(
            broker.queue("q02").expect("q02").available_count(),
            2,
            "acquired, not settled: back on the shelf"
        );
        assert_eq!(opened(&broker), ["with-ttl"]);
    }

    fn opened_partitions(broker: &Broker) -> Vec<String> {
        let mut opened: Vec<String> = broker
            .topics()
            .into_iter()
            .flat_map(|topic| {
                topic
                    .opened_partitions()
                    .into_iter()
                    .map(move |(partition, _)| format!("{}/{partition}", topic.name))
            })
            .collect();
        opened.sort();
        opened
    }

    fn one_record(value: &str) -> bytes::Bytes {
        let mut builder = conveyor_log::record::BatchBuilder::new(1);
        builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
        builder.build()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_clean_restart_partitions_open_on_first_use_unless_retention_needs_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("open"));
        let plain = broker.create_topic("plain", Some(4), BTreeMap::new()).await.expect("create");
        for partition in 0..3 {
            for record in 0..=partition {
                let log = plain.partition(partition).expect("partition");
                log.append(one_record(&format!("plain/{partition}/{record}")))
                    .await
                    .expect("append");
            }
        }
        let retained_config = BTreeMap::from([("retention.ms".to_owned(), "600000".to_owned())]);
        let retained = broker.create_topic("retained", Some(2), retained_config).await.expect("create");
        for partition in 0..2 {
            let log = retained.partition(partition).expect("partition");
            log.append(one_record("first")).await.expect("append");
            if partition == 0 {
                // A sealed segment: retention owes it a check.
                log.roll().expect("roll");
                log.append(one_record("second")).await.expect("append");
            }
        }
        let summaries = plain.partition_summaries();
        broker.close().expect("close");
        drop((broker, plain, retained));

        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("reopen"));
        assert_eq!(
            opened_partitions(&broker),
            ["retained/0"],
            "only the partition retention needs is open"
        );
        let plain = broker.topic("plain").expect("plain");
        assert_eq!(plain.partition_count(), 4, "Metadata's count needs no log");
        assert_eq!(plain.partition_summaries(), summaries, "the stored figures, exact");
        assert_eq!(plain.high_watermark(2), Some(3));
        assert_eq!(opened_partitions(&broker), ["retained/0"], "answering figures opened nothing");

        // The first use opens the partition (off this worker), with its records.
        let log = plain.partition(2).expect("partition 2");
        for offset in 0..3 {
            // Each record is a batch of its own: the first batch read is it.
            let read = log.read(offset, 1, true).expect("read");
            let records = conveyor_log::record::decode_records(&read.bytes).expect("records");
            let values: Vec<_> = records.into_iter().map(|record| record.value).collect();
            assert_eq!(values, [Some(format!("plain/2/{offset}").into_bytes())]);
        }
        log.append(one_record("after the restart")).await.expect("append");
        assert_eq!(plain.high_watermark(2), Some(4));
        assert_eq!(opened_partitions(&broker), ["plain/2", "retained/0"]);
        broker.close().expect("close");
        drop((broker, plain, log));

        // A used partition stores its new figures; this start takes them and
        // a crash follows, so the next start opens every partition.
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen");
        assert_eq!(broker.topic("plain").expect("plain").high_watermark(2), Some(4));
        assert_eq!(opened_partitions(&broker), ["retained/0"]);
        drop(broker);
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen after a crash");
        assert_eq!(
            opened_partitions(&broker).len(),
            6,
            "no figures to trust: every partition opened at start"
        );
        assert_eq!(broker.topic("plain").expect("plain").high_watermark(2), Some(4));
    }

    #[tokio::test]
    async fn a_start_without_a_clean_shutdown_before_it_opens_every_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("open"));
        let (declared, _) = broker.declare_queue("kept", durable(None)).await.expect("declare");
        publish(&broker, &declared, "one").await;
        broker.close().expect("close");
        drop((broker, declared));

        // This start takes the stored counts; a crash (no close) follows.
        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("reopen"));
        let kept = broker.queue("kept").expect("kept");
        assert!(kept.opened().is_none());
        publish(&broker, &kept, "two").await;
        drop((broker, kept));

        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen after a crash");
        let kept = broker.queue("kept").expect("kept");
        assert!(kept.opened().is_some(), "no counts to trust: opened at start");
        assert_eq!(kept.available_count(), 2);
    }
}
