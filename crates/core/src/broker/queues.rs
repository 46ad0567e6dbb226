//! The broker's queues: finding them, declaring, redefining and deleting
//! them. A durable queue's changes are catalog events; a transient queue's
//! are the same events applied to the views only (`metadata.rs`), so it is
//! gone after a restart, as in RabbitMQ.

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_log::Log;
use conveyor_log::record::Record;
use tracing::info;
use uuid::Uuid;

use super::Broker;
use super::data_dir::{queue_config, queue_dir};
use super::declarations::{ArgumentComparison, Declarations, QueueDeclaration, Redeclaration, already_declared, every_argument};
use super::metadata::{blocking, run_to_completion};
use super::views::Opened;
use crate::catalog::{Event, QueueDefinition};
use crate::error::{CoreError, Result};
use crate::queue::{CursorStart, DeclaredQueue, Queue, QueueError, QueuePolicy, QueueType, StreamRetention};
use crate::topic::Topic;
use crate::topic_name::validate_topic_name;
use crate::vhost;

/// Whether queue `name` with `policy` is also served to Kafka clients as a
/// one-partition topic ([`Topic::of_stream`]): a stream of `/` whose name
/// Kafka accepts. Kafka topics have no vhost, so the other vhosts' streams
/// stay theirs.
pub(crate) fn served_to_kafka(name: &str, policy: &QueuePolicy) -> bool {
    policy.queue_type == QueueType::Stream && vhost::split(name).0 == vhost::DEFAULT_VHOST && validate_topic_name(name).is_ok()
}

/// The log a stream of `name` with `policy` reads and writes when a Kafka
/// topic has its name: the topic's one partition. The topic stays Kafka's
/// (created, configured and retained as a topic; deleted only once no
/// stream reads it), so its retention is the topic's, not the stream's
/// arguments'.
fn stream_over(name: &str, topic: &Topic, policy: &QueuePolicy) -> Result<Log> {
    let refused = |reason: String| CoreError::InvalidQueueArgument {
        name: name.to_owned(),
        reason,
    };
    let partitions = topic.partition_count();
    if partitions != 1 {
        return Err(refused(format!(
            "is the name of a Kafka topic of {partitions} partitions: a stream reads one log"
        )));
    }
    if policy.stream_retention != StreamRetention::default() {
        return Err(refused(
            "is the name of a Kafka topic, whose retention is the topic's (retention.ms, retention.bytes, segment.bytes): \
             x-max-age, x-max-length-bytes and x-stream-max-segment-size-bytes do not apply"
                .to_owned(),
        ));
    }
    topic
        .partition(0)
        .ok_or_else(|| refused("is the name of a Kafka topic without a partition".to_owned()))
}

/// Whether `declared`, a stream of `name` served to Kafka, may stand next
/// to `topics`: a stream over a Kafka topic's log only while that topic is
/// there, any other stream only while no topic has its name.
pub(crate) fn check_stream_over_topic(topics: &BTreeMap<String, Arc<Topic>>, name: &str, declared: &DeclaredQueue) -> Result<()> {
    let refused = |reason: &str| CoreError::InvalidQueueArgument {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    match topics.get(name) {
        Some(topic) if reads_topic(declared, topic) => Ok(()),
        Some(_) => Err(refused("is the name of a Kafka topic created meanwhile")),
        None if !declared.owns_messages() => Err(refused("names a Kafka topic deleted meanwhile")),
        None => Ok(()),
    }
}

/// Whether `declared` is a stream over `topic`'s log.
pub(crate) fn reads_topic(declared: &DeclaredQueue, topic: &Topic) -> bool {
    !declared.owns_messages()
        && topic
            .partition(0)
            .is_some_and(|log| declared.opened().is_some_and(|queue| log.dir() == queue.message_log().dir()))
}

/// Queues whose files concurrent declarations create at once (each on a
/// blocking thread, so this bounds the threads they take).
pub(crate) const QUEUE_OPENS_CONCURRENT_MAX: usize = 16;

impl Broker {
    pub fn queue(&self, name: &str) -> Option<Arc<DeclaredQueue>> {
        self.meta.current().queues.get(name).cloned()
    }

    /// Up to `max_records` records of stream `declared` from `offset` on,
    /// as its consumers get them. A stream that is also a Kafka topic (a
    /// stream of `/`, or one declared over a topic) is read as Kafka's
    /// `read_committed` consumers read the partition: up to its last
    /// stable offset and without the records of aborted transactions, so a
    /// transactional producer's aborted or still open records never reach
    /// a stream consumer. Any other stream (of another vhost, or named as
    /// Kafka refuses) is no topic: only its queue's publishes write it,
    /// never transactionally, so it is read whole, which is what the filter
    /// would leave of it. Blocking (reads the log).
    pub fn read_stream(&self, declared: &DeclaredQueue, offset: u64, max_records: usize) -> std::result::Result<Vec<Record>, QueueError> {
        let partition = served_to_kafka(&declared.name, &declared.policy())
            .then(|| self.topic(&declared.name).and_then(|topic| topic.partition_handle(0)))
            .flatten();
        match partition {
            Some(partition) => declared
                .queue()?
                .read_stream_committed(offset, max_records, &partition.committed_view(offset)),
            None => declared.queue()?.read_stream(offset, max_records),
        }
    }

    pub fn queues(&self) -> Vec<Arc<DeclaredQueue>> {
        self.meta.views().queues.values().cloned().collect()
    }

    /// The queues `wanted` picks, without copying the others.
    pub fn queues_where(&self, wanted: impl Fn(&DeclaredQueue) -> bool) -> Vec<Arc<DeclaredQueue>> {
        self.meta
            .current()
            .queues
            .values()
            .filter(|declared| wanted(declared))
            .cloned()
            .collect()
    }

    /// Declares a queue: creates it, or returns the existing one if it was
    /// declared the same way (`false` then). Durable queues are recorded in
    /// the catalog (durable when this returns) and reopened after a restart;
    /// transient ones are not, and their data is removed on the next start.
    ///
    /// A new queue's files (its directories, each created durably, and its
    /// two logs) are made before the metadata lock is taken, so concurrent
    /// declares create theirs side by side (at most
    /// [`QUEUE_OPENS_CONCURRENT_MAX`] at once) and hold the lock only for
    /// their catalog event. Files whose event never comes (a refusal, a
    /// crash) belong to no queue: they are removed then, or as orphans on
    /// the next start.
    ///
    /// An existing queue is compared with it by [`every_argument`]; a door
    /// with rules of its own gives them to [`Broker::declare_queue_compared`].
    pub async fn declare_queue(&self, name: &str, definition: QueueDefinition) -> Result<(Arc<DeclaredQueue>, bool)> {
        self.declare_queue_compared(name, definition, every_argument).await
    }

    /// [`Broker::declare_queue`], an existing queue compared with it by
    /// `compare` (the declaring door's rule).
    pub async fn declare_queue_compared(
        &self,
        name: &str,
        definition: QueueDefinition,
        compare: ArgumentComparison,
    ) -> Result<(Arc<DeclaredQueue>, bool)> {
        if let Some(redeclared) = self.redeclare_queue(name, &Redeclaration::of(&definition, compare)) {
            return redeclared.map(|existing| (existing, false));
        }
        let (policy, over_topic) = self.check_declaration(name, &definition)?;
        let meta = Arc::clone(&self.meta);
        let id = Uuid::new_v4();
        let dir = queue_dir(&meta.config.data_dir, id, definition.durable);
        let config = queue_config(&meta.config, &definition, &policy);
        let created_ms = meta.clock.now_ms();
        let opened = {
            let _opening = meta
                .queue_opens
                .acquire()
                .await
                .map_err(|_| CoreError::Catalog("the broker is shutting down".to_owned()))?;
            let (name, definition, clock) = (name.to_owned(), definition.clone(), Arc::clone(&meta.clock));
            let served_to_kafka = served_to_kafka(&name, &policy);
            let retention = policy.stream_retention;
            // In a task of its own: a caller going away mid-open leaves no
            // open queue behind (the guard discards it).
            run_to_completion(async move {
                blocking(move || {
                    let queue = match over_topic {
                        Some(log) => Queue::open_over(&dir, log, CursorStart::Earliest, config, clock),
                        None => Queue::open(&dir, config, clock),
                    }
                    .map_err(CoreError::from)?;
                    let topic = if served_to_kafka && queue.owns_messages() {
                        Some(Arc::new(Topic::of_stream(
                            id,
                            name.clone(),
                            dir,
                            queue.message_log().clone(),
                            retention,
                        )?))
                    } else {
                        None
                    };
                    let declared = DeclaredQueue::new(id, name, definition, queue, created_ms);
                    // New and empty: nothing in it has a TTL of its own yet.
                    declared.set_may_hold_own_ttls(false);
                    Ok((Unclaimed(Some(Arc::new(declared))), topic))
                })
                .await
            })
            .await?
        };
        let (opened, topic) = opened;
        let declaration = QueueDeclaration {
            id,
            name: name.to_owned(),
            definition,
            created_ms,
            opened,
            topic,
            compare,
        };
        // Committed with the declarations that wait for the lock with it
        // (one catalog fsync for all), in a task of its own so a caller
        // going away stops no declaration midway.
        let limits = Arc::clone(&self.limits);
        run_to_completion(async move { Ok(Declarations::declare(&meta, &limits, declaration).await) }).await?
    }

    /// RabbitMQ's first step of a declaration: if queue `name` exists,
    /// itself when `redeclaration` is equivalent (a use of it), else why not;
    /// `None` if there is no such queue. A door calls it before it checks the
    /// declaration's arguments, which RabbitMQ checks only for a new queue
    /// (then [`Broker::declare_queue`], which compares again with a queue
    /// declared meanwhile).
    pub fn redeclare_queue(&self, name: &str, redeclaration: &Redeclaration) -> Option<Result<Arc<DeclaredQueue>>> {
        let existing = self.queue(name)?;
        Some(already_declared(&existing, redeclaration, self.clock().now_ms()))
    }

    /// Whether a queue that does not exist may be declared so: its vhost
    /// exists, the queue limit is not reached and its arguments make a
    /// policy its type accepts; with the log of the Kafka topic a stream is
    /// declared over ([`check_stream_over_topic`]). Reads the views only.
    fn check_declaration(&self, name: &str, definition: &QueueDefinition) -> Result<(QueuePolicy, Option<Log>)> {
        self.check_vhost_of(name)?;
        self.check_new_queue(name)?;
        let policy = definition.policy.clone();
        // Exclusivity is a front door's (AMQP's) to check, with its owner.
        if let Some(property) = policy
            .queue_type
            .refused_property(definition.durable, false, definition.auto_delete)
        {
            return Err(CoreError::InvalidQueueArgument {
                name: name.to_owned(),
                reason: format!("invalid property '{property}' for a {} queue", policy.queue_type.as_str()),
            });
        }
        let over_topic = match self.meta.current().topics.get(name) {
            Some(topic) if served_to_kafka(name, &policy) => Some(stream_over(name, topic, &policy)?),
            _ => None,
        };
        Ok((policy, over_topic))
    }

    /// Replaces a queue's arguments and policy with what `update` makes of
    /// its current definition (SQS SetQueueAttributes, TagQueue, a Kafka
    /// config change to a stream; its flags stay): checked as at
    /// declaration, recorded in the catalog for a durable queue (durable
    /// when this returns), then in effect for every later publish and
    /// acquisition. Concurrent updates apply one after the other, each to
    /// the result of the last. Whether the queue has message groups, its
    /// priorities and whether it counts bytes cannot change. `update`'s own
    /// error comes back as the inner one.
    pub async fn redefine_queue<E>(
        &self,
        name: &str,
        update: impl FnOnce(&QueueDefinition) -> std::result::Result<QueueDefinition, E>,
    ) -> Result<std::result::Result<Arc<DeclaredQueue>, E>> {
        let mut change = self.meta.change().await;
        let declared = self.queue(name).ok_or_else(|| CoreError::UnknownQueue(name.to_owned()))?;
        let QueueDefinition { arguments, policy, .. } = match update(&declared.definition()) {
            Ok(definition) => definition,
            Err(error) => return Ok(Err(error)),
        };
        // They decide what the queue's cursor keeps, fixed when it opens.
        let current = declared.policy();
        let fixed = [
            (policy.message_groups != current.message_groups, "message groups"),
            (policy.max_priority != current.max_priority, "the maximum priority"),
            (
                policy.max_length_bytes.is_some() != current.max_length_bytes.is_some(),
                "whether it has a byte limit",
            ),
        ];
        if let Some((_, what)) = fixed.iter().find(|(changed, _)| *changed) {
            return Err(CoreError::InvalidQueueArgument {
                name: name.to_owned(),
                reason: format!("{what} cannot change"),
            });
        }
        let event = Event::QueueArgumentsSet {
            id: declared.id,
            name: name.to_owned(),
            arguments,
            policy: Some(policy),
        };
        let durable = declared.definition().durable;
        let name = name.to_owned();
        run_to_completion(async move {
            change.commit(event, durable, Opened::Nothing).await?;
            info!(queue = name, "queue arguments set");
            Ok(())
        })
        .await?;
        Ok(Ok(declared))
    }

    /// Deletes a queue and its messages (with `if_empty`, only when nothing
    /// is available or held). Returns how many messages it held. Once its
    /// event is durable it finishes even if the caller goes away.
    pub async fn delete_queue(&self, name: &str, if_empty: bool) -> Result<u64> {
        let mut change = self.meta.change().await;
        let declared = self.queue(name).ok_or_else(|| CoreError::UnknownQueue(name.to_owned()))?;
        let held = declared.available_count() + declared.acquired_count() as u64;
        if if_empty && held > 0 {
            return Err(CoreError::QueueInUse {
                name: name.to_owned(),
                reason: format!("holds {held} messages"),
            });
        }
        let event = Event::QueueDeleted {
            id: declared.id,
            name: name.to_owned(),
        };
        let durable = declared.definition().durable;
        drop(declared);
        let name = name.to_owned();
        run_to_completion(async move {
            let applied = change.commit(event, durable, Opened::Nothing).await?;
            drop(change);
            remove_queues(applied.removed_queues).await?;
            info!(queue = name, "queue deleted");
            Ok(held)
        })
        .await
    }
}

/// A queue opened for a declaration whose event is not committed yet: if
/// the declaration ends without claiming it (a refusal, a caller gone),
/// dropping the guard closes it and removes its files on a blocking thread.
#[derive(Debug)]
pub(crate) struct Unclaimed(pub(super) Option<Arc<DeclaredQueue>>);

impl Unclaimed {
    pub(super) fn claim(&mut self) -> Option<Arc<DeclaredQueue>> {
        self.0.take()
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(declared) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn_blocking(move || discard_now(&declared));
        }
    }
}

/// Closes a queue no event names and removes its files, off the reactor.
/// If that fails, the next start removes them as orphans.
pub(super) async fn discard(declared: Arc<DeclaredQueue>) {
    let _ = blocking(move || {
        discard_now(&declared);
        Ok(())
    })
    .await;
}

/// [`discard`], blocking.
fn discard_now(declared: &DeclaredQueue) {
    let _ = declared.close();
    let dir = declared.dir();
    if let Err(error) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), %error, "could not remove the files of a queue not declared; the next start removes them");
    }
}

/// Closes queues taken out of the views and removes their files. Consumers
/// parked on them wake up and find them gone; publishes after the close
/// fail, so nothing acknowledges a write to a deleted queue. If removing
/// fails or the process dies first, the next start removes the files as
/// orphans.
pub(crate) async fn remove_queues(queues: Vec<Arc<DeclaredQueue>>) -> Result<()> {
    for declared in queues {
        declared.mark_deleted();
        declared.notify_available();
        let dir = declared.dir().to_owned();
        blocking(move || {
            let _ = declared.close();
            std::fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use conveyor_log::record::Record;

    use super::*;
    use crate::BrokerConfig;

    fn stream() -> QueueDefinition {
        stream_with(StreamRetention::default())
    }

    /// A stream kept by `retention`.
    fn stream_with(retention: StreamRetention) -> QueueDefinition {
        let policy = QueuePolicy {
            queue_type: QueueType::Stream,
            stream_retention: retention,
            ..QueuePolicy::default()
        };
        QueueDefinition::of_policy(true, policy)
    }

    #[tokio::test]
    async fn a_stream_of_the_default_vhost_is_a_one_partition_topic_of_its_log_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open");
            let (declared, _) = broker.declare_queue("events", stream()).await.expect("declare");
            declared
                .queue()
                .expect("open")
                .publish(vec![Record::new(None, Some(b"a".to_vec()))])
                .await
                .expect("stored");
            let topic = broker.topic("events").expect("the stream as a topic");
            assert!(topic.is_stream());
            assert_eq!(topic.partition_count(), 1);
            assert_eq!(topic.partition(0).expect("partition 0").high_watermark(), 1, "the queue's log");
            broker.declare_queue("work", QueueDefinition::default()).await.expect("declare");
            assert!(broker.topic("work").is_none(), "a classic queue is no topic");
            assert!(matches!(broker.delete_topic("events").await, Err(CoreError::StreamTopic(_))));
            assert!(matches!(
                broker.create_topic("events", Some(1), BTreeMap::new()).await,
                Err(CoreError::TopicExists(_))
            ));
            broker.create_topic("orders", Some(2), BTreeMap::new()).await.expect("topic");
            assert!(
                matches!(
                    broker.declare_queue("orders", stream()).await,
                    Err(CoreError::InvalidQueueArgument { .. })
                ),
                "a stream reads one partition"
            );
            broker.close().expect("close");
        }
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen");
        let topic = broker.topic("events").expect("still a topic after a restart");
        assert_eq!(topic.partition(0).expect("partition 0").high_watermark(), 1);
        broker.delete_queue("events", false).await.expect("delete");
        assert!(broker.topic("events").is_none(), "gone with its queue");
    }

    #[tokio::test]
    async fn a_kafka_config_change_to_a_streams_topic_is_its_retention_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open");
        let small_segments = stream_with(StreamRetention {
            segment_bytes_max: Some(1 << 20),
            ..StreamRetention::default()
        });
        let (declared, _) = broker.declare_queue("events", small_segments).await.expect("declare");
        let queue = declared.queue().expect("open");
        for _ in 0..30 {
            queue
                .publish(vec![Record::new(None, Some(vec![b'x'; 100 << 10]))])
                .await
                .expect("stored");
        }
        let log = queue.message_log().clone();
        assert_eq!(log.start_offset(), 0, "a stream keeps everything unless told otherwise");
        let change = |key: &str, value: Option<&str>| BTreeMap::from([(key.to_owned(), value.map(str::to_owned))]);

        let config = broker
            .alter_topic_config("events", change("retention.bytes", Some("1")), false, true)
            .await
            .expect("validated");
        assert_eq!(config.overrides().get("retention.bytes").map(String::as_str), Some("1"));
        assert_eq!(log.start_offset(), 0, "validate_only changes nothing");

        let config = broker
            .alter_topic_config("events", change("retention.bytes", Some("1")), false, false)
            .await
            .expect("altered");
        assert_eq!(config.overrides().get("retention.bytes").map(String::as_str), Some("1"));
        assert!(log.start_offset() > 0, "the sealed segments went at once, not at the next open");
        assert_eq!(declared.policy().stream_retention.max_bytes, Some(1), "the stream's own retention");

        broker
            .alter_topic_config("events", change("retention.ms", Some("3600000")), false, false)
            .await
            .expect("altered");
        assert_eq!(declared.policy().stream_retention.max_age_ms, Some(3_600_000));
        broker
            .alter_topic_config("events", change("retention.bytes", None), false, false)
            .await
            .expect("deleted");
        assert_eq!(declared.policy().stream_retention.max_bytes, None);
        let topic = broker.topic("events").expect("topic");
        assert_eq!(topic.config().overrides().get("retention.bytes").map(String::as_str), Some("-1"));
        assert_eq!(topic.config().overrides().get("retention.ms").map(String::as_str), Some("3600000"));

        assert!(matches!(
            broker
                .alter_topic_config("events", change("retention.ms", Some("1500")), false, false)
                .await,
            Err(CoreError::InvalidConfig(_))
        ));
        assert!(matches!(
            broker
                .alter_topic_config("events", change("cleanup.policy", Some("compact")), false, false)
                .await,
            Err(CoreError::StreamTopic(_))
        ));
        broker.close().expect("close");
    }

    /// Why `Broker::read_stream` reads these streams without the
    /// `read_committed` filter: no Kafka client can name them, so their log
    /// is written by the queue's publishes alone, which are never
    /// transactional; the filter would keep everything.
    #[tokio::test]
    async fn a_stream_no_kafka_client_can_name_is_no_topic_and_its_queue_alone_writes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open");
        let (staging, _) = broker.create_vhost("staging").await.expect("vhost");
        let in_vhost = staging.resource("events").expect("name");
        for name in [in_vhost.as_str(), "events of /, a name Kafka refuses"] {
            let (declared, _) = broker.declare_queue(name, stream()).await.expect("declare");
            assert!(!served_to_kafka(name, &declared.policy()));
            assert!(validate_topic_name(name).is_err(), "{name:?}: no Kafka client can produce to it");
            assert!(broker.topic(name).is_none(), "{name:?}: no topic over its log");
            let queue = declared.queue().expect("open");
            for value in ["a", "b"] {
                queue
                    .publish(vec![Record::new(None, Some(value.as_bytes().to_vec()))])
                    .await
                    .expect("stored");
            }
            let headers = queue.message_log().tail_batch_headers(1 << 20).expect("headers");
            assert!(
                headers.iter().all(|header| !header.is_transactional() && !header.is_control()),
                "{name:?}: a queue's publishes are never transactional"
            );
            let read = broker.read_stream(&declared, 0, 10).expect("read");
            assert_eq!(values(&read), ["a", "b"]);
        }
        broker.close().expect("close");
    }

    fn one_record(value: &str) -> bytes::Bytes {
        let mut builder = conveyor_log::record::BatchBuilder::new(1);
        builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
        builder.build()
    }

    fn values(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|record| String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_stream_declared_with_a_one_partition_topics_name_reads_and_writes_that_topics_log_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open");
            let topic = broker.create_topic("clicks", Some(1), BTreeMap::new()).await.expect("topic");
            let partition = topic.partition(0).expect("partition 0");
            partition.append(one_record("from kafka")).await.expect("append");
            let retained = stream_with(StreamRetention {
                max_age_ms: Some(3_600_000),
                ..StreamRetention::default()
            });
            assert!(
                matches!(
                    broker.declare_queue("clicks", retained).await,
                    Err(CoreError::InvalidQueueArgument { .. })
                ),
                "the topic's retention is the topic's"
            );
            let (declared, created) = broker.declare_queue("clicks", stream()).await.expect("a stream over the topic");
            assert!(created);
            assert_eq!(
                values(&declared.queue().expect("open").read_stream(0, 10).expect("read")),
                ["from kafka"]
            );
            declared
                .queue()
                .expect("open")
                .publish(vec![Record::new(None, Some(b"from amqp".to_vec()))])
                .await
                .expect("stored");
            assert_eq!(partition.high_watermark(), 2, "one log: the topic's");
            let same = broker.topic("clicks").expect("the topic");
            assert!(!same.is_stream(), "still a Kafka topic");
            assert_eq!(same.id, topic.id);
            assert!(matches!(broker.delete_topic("clicks").await, Err(CoreError::TopicReadAsStream(_))));
            assert!(matches!(
                broker.create_partitions("clicks", 2).await,
                Err(CoreError::TopicReadAsStream(_))
            ));
            broker.close().expect("close");
        }
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen");
        let declared = broker.queue("clicks").expect("the stream after a restart");
        assert_eq!(
            values(&declared.queue().expect("open").read_stream(0, 10).expect("read")),
            ["from kafka", "from amqp"]
        );
        broker.delete_queue("clicks", false).await.expect("delete the stream");
        let topic = broker.topic("clicks").expect("the topic outlives its stream");
        assert_eq!(topic.partition(0).expect("partition 0").high_watermark(), 2, "with its records");
        broker.delete_topic("clicks").await.expect("no stream reads it now");
    }
}
