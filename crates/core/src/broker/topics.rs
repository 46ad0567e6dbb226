//! The broker's Kafka topics: finding them, creating, growing, reconfiguring
//! and deleting them (each a catalog event through `metadata.rs`), appending
//! what an exchange routes to one.

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_log::Log;
use conveyor_log::record::{BatchBuilder, Record};
use tracing::info;
use uuid::Uuid;

use super::Broker;
use super::data_dir::open_partitions;
use super::metadata::{blocking, run_to_completion};
use super::views::Opened;
use crate::catalog::{Event, QueueDefinition};
use crate::error::{CoreError, Result};
use crate::partition_write::{PartitionWrite, Reach};
use crate::partitioner;
use crate::producer::PendingAppend;
use crate::topic::{Topic, stream_config, stream_redefined};
use crate::topic_config::TopicConfig;
use crate::topic_name::validate_new_topic_name;

impl Broker {
    /// A Kafka topic, or the log of a stream queue of `/` by that name
    /// ([`Topic::is_stream`]).
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        let views = self.meta.current();
        views.topics.get(name).or_else(|| views.streams.get(name)).cloned()
    }

    /// Every topic, by name: Kafka topics and the logs of stream queues.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let views = self.meta.views();
        let mut topics: Vec<Arc<Topic>> = views.topics.values().chain(views.streams.values()).cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        let views = self.meta.views();
        views
            .topics
            .values()
            .chain(views.streams.values())
            .find(|topic| topic.id == id)
            .cloned()
    }

    /// A topic of the catalog, for what changes one: a stream's log is
    /// changed as its queue.
    fn catalog_topic(&self, name: &str) -> Result<Arc<Topic>> {
        match self.topic(name) {
            Some(topic) if topic.is_stream() => Err(CoreError::StreamTopic(name.to_owned())),
            Some(topic) => Ok(topic),
            None => Err(CoreError::UnknownTopic(name.to_owned())),
        }
    }

    /// A topic of the catalog that keeps its one partition: none a stream
    /// queue reads (see `queues::stream_over`).
    fn catalog_topic_unread(&self, name: &str) -> Result<Arc<Topic>> {
        let topic = self.catalog_topic(name)?;
        match self.queue(name) {
            Some(declared) if super::queues::reads_topic(&declared, &topic) => Err(CoreError::TopicReadAsStream(name.to_owned())),
            _ => Ok(topic),
        }
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
        {
            let views = self.meta.current();
            let existing = views.topics.keys().chain(views.streams.keys()).map(String::as_str);
            validate_new_topic_name(name, existing)?;
        }
        let partitions = partitions.unwrap_or(self.config().default_partitions);
        let config = TopicConfig::new(configs.clone())?;
        if self.topic(name).is_some() {
            return Err(CoreError::TopicExists(name.to_owned()));
        }
        self.check_new_topic_limits(name, partitions, configs)?;
        Ok((partitions, config))
    }

    /// Creates a topic with `partitions` partitions (the broker default when
    /// `None`) and explicit configs. Durable when it returns.
    pub async fn create_topic(&self, name: &str, partitions: Option<u32>, configs: BTreeMap<String, String>) -> Result<Arc<Topic>> {
        self.create_topic_with_replicas(name, partitions, configs, None).await
    }

    /// [`Broker::create_topic`] with a replication factor (`None`: the
    /// default, which on a cluster node is the cluster's).
    pub async fn create_topic_with_replicas(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: BTreeMap<String, String>,
        replication_factor: Option<u16>,
    ) -> Result<Arc<Topic>> {
        let replication_factor = self.replication_factor_for(replication_factor)?;
        let mut change = self.meta.change().await;
        let (partitions, config) = self.validate_new_topic(name, partitions, &configs)?;
        let name = name.to_owned();
        run_to_completion(async move {
            let meta = Arc::clone(change.meta());
            let id = Uuid::new_v4();
            let dir = meta.config.data_dir.join("topics").join(id.to_string());
            let log_config = config.log_config(&meta.config.topic_defaults);
            let logs = {
                let (dir, clock, flow) = (dir.clone(), Arc::clone(&meta.clock), meta.stats.topic(&name));
                blocking(move || open_partitions(&dir, 0..partitions, &log_config, &clock, &flow)).await?
            };
            let topic = Arc::new(Topic::new(id, name.clone(), dir.clone(), logs, config));
            let event = Event::TopicCreated {
                id,
                name: name.clone(),
                partitions,
                configs,
                created_ms: meta.clock.now_ms(),
                replication_factor,
            };
            if let Err(error) = change.commit(event, true, Opened::Topic(Arc::clone(&topic))).await {
                // Not recorded, so not created: remove what was opened.
                let _ = blocking(move || {
                    drop(topic);
                    std::fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))
                })
                .await;
                return Err(error);
            }
            info!(topic = name, partitions, %id, "topic created");
            Ok(topic)
        })
        .await
    }

    /// The topic, created with defaults if it does not exist and the broker
    /// auto-creates topics. `None` when it does not exist and may not be created.
    pub async fn topic_or_auto_create(&self, name: &str) -> Result<Option<Arc<Topic>>> {
        if let Some(topic) = self.topic(name) {
            return Ok(Some(topic));
        }
        if !self.config().auto_create_topics {
            return Ok(None);
        }
        match self.create_topic(name, None, BTreeMap::new()).await {
            Ok(topic) => Ok(Some(topic)),
            // Another request created it first.
            Err(CoreError::TopicExists(_)) => Ok(self.topic(name)),
            Err(error) => Err(error),
        }
    }

    /// Deletes a topic and all its data. Durable when it returns; once its
    /// event is durable it finishes even if the caller goes away.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let mut change = self.meta.change().await;
        let topic = self.catalog_topic_unread(name)?;
        let event = Event::TopicDeleted {
            id: topic.id,
            name: name.to_owned(),
        };
        let name = name.to_owned();
        let share_groups = Arc::clone(&self.share_groups);
        run_to_completion(async move {
            let applied = change.commit(event, true, Opened::Nothing).await?;
            drop(change);
            info!(topic = name, id = %topic.id, "topic deleted");
            let id = topic.id;
            drop(topic);
            remove_topics(applied.removed_topics).await?;
            // Share groups' state over it goes too (KIP-932: a deleted topic's share-partitions are deleted).
            blocking(move || {
                share_groups.forget_topic(id);
                Ok(())
            })
            .await
        })
        .await
    }

    /// Grows a topic to `total` partitions (never shrinks, like Kafka).
    pub async fn create_partitions(&self, name: &str, total: u32) -> Result<()> {
        let mut change = self.meta.change().await;
        let topic = self.validate_partition_count(name, total)?;
        let name = name.to_owned();
        run_to_completion(async move {
            let meta = Arc::clone(change.meta());
            let current = topic.partition_count();
            let log_config = topic.config().log_config(&meta.config.topic_defaults);
            let logs = {
                let (dir, clock, flow) = (topic.dir().to_owned(), Arc::clone(&meta.clock), meta.stats.topic(&name));
                blocking(move || open_partitions(&dir, current..total, &log_config, &clock, &flow)).await?
            };
            let event = Event::PartitionsCreated {
                id: topic.id,
                name: name.clone(),
                partitions: total,
            };
            change.commit(event, true, Opened::Partitions(logs)).await?;
            info!(topic = name, from = current, to = total, "partitions created");
            Ok(())
        })
        .await
    }

    /// The topic, if it exists and may grow to `total` partitions.
    pub fn validate_partition_count(&self, name: &str, total: u32) -> Result<Arc<Topic>> {
        let topic = self.catalog_topic_unread(name)?;
        let current = topic.partition_count();
        if total <= current {
            return Err(CoreError::InvalidPartitions(format!(
                "topic {name:?} has {current} partitions; the new count must be larger, not {total}"
            )));
        }
        self.check_grown_partitions(name, current, total)?;
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
        if let Some(topic) = self.topic(name).filter(|topic| topic.is_stream()) {
            return self.alter_stream_config(&topic, changes, replace, validate_only).await;
        }
        let mut change = self.meta.change().await;
        let topic = self.catalog_topic(name)?;
        let base = if replace { TopicConfig::default() } else { topic.config() };
        let config = base.with_changes(&changes)?;
        self.check_topic_config_changes(&changes)?;
        if validate_only {
            return Ok(config);
        }
        let event = Event::TopicConfigsSet {
            id: topic.id,
            name: name.to_owned(),
            configs: config.overrides().clone(),
        };
        run_to_completion(async move {
            change.commit(event, true, Opened::Nothing).await?;
            Ok(config)
        })
        .await
    }

    /// A config change to the topic a stream is to Kafka clients: its
    /// retention keys change the stream's arguments (a queue event), in
    /// effect at once on its log; any other key is refused, as the topic
    /// is changed as its queue.
    async fn alter_stream_config(
        &self,
        topic: &Topic,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<TopicConfig> {
        let name = topic.name.as_str();
        self.check_topic_config_changes(&changes)?;
        let vocabulary = self.config().argument_vocabulary;
        let redefined = |definition: &QueueDefinition| stream_redefined(name, definition, &changes, replace, vocabulary.as_ref());
        if validate_only {
            let declared = self.queue(name).ok_or_else(|| CoreError::UnknownQueue(name.to_owned()))?;
            return Ok(stream_config(redefined(&declared.definition())?.policy.stream_retention));
        }
        self.redefine_queue(name, redefined).await??;
        Ok(topic.config())
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
        let mut builder = BatchBuilder::new(self.clock().now_ms());
        builder.push(record);
        let batch = builder.build();
        self.check_batch_bytes(&topic, batch.len())?;
        // Any node: one that does not lead the partition sends it on.
        Ok(self.write_partition(&topic, index, PartitionWrite::records(batch), Reach::AnyNode))
    }

    /// Kafka's `max.message.bytes`: a batch (its size on disk) larger than
    /// the topic takes is refused, whichever door it comes through.
    pub fn check_batch_bytes(&self, topic: &Topic, batch_bytes: usize) -> Result<()> {
        let max_bytes = topic.config().max_message_bytes(&self.config().topic_defaults);
        let bytes = batch_bytes as u64;
        if bytes > max_bytes {
            return Err(CoreError::RecordTooLarge {
                topic: topic.name.clone(),
                bytes,
                max_bytes,
            });
        }
        Ok(())
    }
}

/// Closes deleted topics and removes their files. The deletion is
/// recorded; if removing the files fails or the process dies first, the
/// next start removes them as orphans.
pub(crate) async fn remove_topics(topics: Vec<Arc<Topic>>) -> Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    blocking(move || {
        for topic in topics {
            let dir = topic.dir().to_owned();
            // Appends after this fail: nothing acknowledges a write to it,
            // and no partition opens (which would make its files again).
            for log in topic.seal_partitions() {
                let _ = log.close();
            }
            drop(topic);
            std::fs::remove_dir_all(&dir).map_err(|error| CoreError::io(&dir, error))?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::BrokerConfig;
    use crate::queue::CursorStart;

    #[tokio::test]
    async fn deleting_a_topic_removes_every_share_groups_state_over_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open broker");
        let topic = broker.create_topic("orders", Some(1), BTreeMap::new()).await.expect("create");
        let coordinator = Arc::clone(broker.share_groups());
        let opened = Arc::clone(&topic);
        tokio::task::spawn_blocking(move || coordinator.share_partition("g", &opened, 0, CursorStart::Earliest))
            .await
            .expect("join")
            .expect("open")
            .expect("a partition");
        let state = dir.path().join("share-groups").join("67").join(topic.id.to_string());
        assert!(state.exists(), "the share-partition's directory: {}", state.display());
        drop(topic);
        broker.delete_topic("orders").await.expect("delete");
        assert!(!state.exists(), "removed with the topic");
        let again = broker.create_topic("orders", Some(1), BTreeMap::new()).await.expect("create again");
        let coordinator = Arc::clone(broker.share_groups());
        let share = tokio::task::spawn_blocking(move || coordinator.share_partition("g", &again, 0, CursorStart::Latest))
            .await
            .expect("join")
            .expect("open")
            .expect("a partition");
        assert_eq!(share.start_offset(), 0, "a new share-partition over the new topic");
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
    }
}
