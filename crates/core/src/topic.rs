//! A topic at run time: its id, its partitions' open logs and its config.
//! The catalog says what topics exist; this holds what they need while open.
//! A stream queue's log is also served as a one-partition topic of the
//! queue's name ([`Topic::of_stream`]): the same log, read and written by
//! Kafka clients, its definition and lifetime the queue's. After a clean
//! restart a partition opens on first use ([`PartitionSlot`]): the
//! accessors that hand out a log or a partition open it; the summaries
//! and counts never do.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use conveyor_log::Log;
use parking_lot::RwLock;
use uuid::Uuid;

use crate::catalog::{ArgumentVocabulary, QueueDefinition};
use crate::partition_slot::{Opening, PartitionSlot, PartitionSummary};
use crate::producer::Partition;
use crate::queue::{QueuePolicy, StreamRetention};
use crate::topic_config::{TopicConfig, keys};

#[derive(Debug)]
pub struct Topic {
    pub id: Uuid,
    pub name: String,
    dir: PathBuf,
    /// Index = partition number. Only ever grows (CreatePartitions).
    partitions: RwLock<Vec<Arc<PartitionSlot>>>,
    config: RwLock<TopicConfig>,
    /// Set while the config's cleanup policy has `compact`: the partitions
    /// then refuse records without a key (they share this flag).
    keys_required: Arc<AtomicBool>,
    /// The log of a stream queue, not a topic of the catalog: the queue
    /// owns it (created, changed and deleted as a queue).
    stream: bool,
}

impl Topic {
    pub(crate) fn new(id: Uuid, name: String, dir: PathBuf, partitions: Vec<Partition>, config: TopicConfig) -> Topic {
        Topic::with_openings(id, name, dir, partitions.into_iter().map(Opening::Open).collect(), config)
    }

    /// A topic some of whose partitions open on first use.
    pub(crate) fn with_openings(id: Uuid, name: String, dir: PathBuf, partitions: Vec<Opening>, config: TopicConfig) -> Topic {
        let keys_required = Arc::new(AtomicBool::new(config.cleanup_policy().compact));
        let partitions = partitions
            .into_iter()
            .map(|opening| {
                Arc::new(match opening {
                    Opening::Open(partition) => PartitionSlot::open(partition.with_keys_required(Arc::clone(&keys_required))),
                    Opening::Later(opener, stored) => PartitionSlot::unopened(opener, stored),
                })
            })
            .collect();
        Topic {
            id,
            name,
            dir,
            partitions: RwLock::new(partitions),
            config: RwLock::new(config),
            keys_required,
            stream: false,
        }
    }

    /// The one-partition topic a stream queue's log is to Kafka clients:
    /// same name, same offsets, the queue's id; its config says the
    /// stream's retention. Blocking (reads the log's tail for its
    /// producers' state).
    pub(crate) fn of_stream(id: Uuid, name: String, dir: PathBuf, log: Log, retention: StreamRetention) -> crate::error::Result<Topic> {
        Ok(Topic {
            id,
            name,
            dir,
            partitions: RwLock::new(vec![Arc::new(PartitionSlot::open(Partition::new(log)?))]),
            config: RwLock::new(stream_config(retention)),
            keys_required: Arc::default(),
            stream: true,
        })
    }

    /// Whether this is a stream queue's log (see [`Topic::of_stream`]).
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// The directory holding one sub-directory per partition.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log of one partition (for reads and plain appends), opened if
    /// this is its first use (blocking then).
    pub fn partition(&self, partition: u32) -> Option<Log> {
        self.partition_handle(partition).map(|handle| handle.log)
    }

    /// One partition with its producer state (for produce requests),
    /// opened if this is its first use (blocking then).
    pub fn partition_handle(&self, partition: u32) -> Option<Partition> {
        let slot = self.slot(partition)?;
        let keys_required = &self.keys_required;
        slot.get(|| self.config(), |opened| opened.with_keys_required(Arc::clone(keys_required)))
            .cloned()
    }

    fn slot(&self, partition: u32) -> Option<Arc<PartitionSlot>> {
        self.partitions.read().get(partition as usize).cloned()
    }

    /// Every partition's log, each opened if need be (blocking then): for
    /// what must reach every log, which little does.
    pub fn partitions(&self) -> Vec<Log> {
        (0..self.partition_count())
            .filter_map(|partition| self.partition(partition))
            .collect()
    }

    /// The partitions whose logs are open, by number; opens none.
    pub fn opened_partitions(&self) -> Vec<(u32, Log)> {
        (0u32..)
            .zip(self.partitions.read().iter())
            .filter_map(|(index, slot)| slot.opened().map(|opened| (index, opened.log.clone())))
            .collect()
    }

    /// Every partition's figures (start offset, high watermark, size),
    /// from its open log or as stored at the last clean shutdown; opens none.
    pub fn partition_summaries(&self) -> Vec<PartitionSummary> {
        self.partitions.read().iter().map(|slot| slot.summary()).collect()
    }

    /// One partition's high watermark; opens nothing.
    pub fn high_watermark(&self, partition: u32) -> Option<u64> {
        self.partitions.read().get(partition as usize).map(|slot| slot.high_watermark())
    }

    /// Stops every partition from opening from now on and returns the logs
    /// that are open, for the caller to close (shutdown, deletion).
    pub(crate) fn seal_partitions(&self) -> Vec<Log> {
        self.partitions.read().iter().filter_map(|slot| slot.seal()).collect()
    }

    /// The logs open now plus those of unopened partitions a timer needs
    /// under the topic's config (opened now, blocking): after a config
    /// change, what retention and the cleaner must reach.
    pub(crate) fn partitions_for_timers(&self, defaults: &crate::topic_config::TopicDefaults) -> Vec<Log> {
        let config = self.config();
        let slots: Vec<_> = self.partitions.read().iter().cloned().collect();
        (0u32..)
            .zip(slots)
            .filter(|(_, slot)| slot.opened().is_some() || slot.summary().needs_timers(&config, defaults))
            .filter_map(|(index, _)| self.partition(index))
            .collect()
    }

    pub fn partition_count(&self) -> u32 {
        self.partitions.read().len() as u32
    }

    pub fn config(&self) -> TopicConfig {
        self.config.read().clone()
    }

    pub(crate) fn set_config(&self, config: TopicConfig) {
        self.keys_required.store(config.cleanup_policy().compact, Ordering::Release);
        *self.config.write() = config;
    }

    pub(crate) fn add_partitions(&self, partitions: Vec<Partition>) {
        let keys_required = &self.keys_required;
        self.partitions.write().extend(
            partitions
                .into_iter()
                .map(|partition| Arc::new(PartitionSlot::open(partition.with_keys_required(Arc::clone(keys_required))))),
        );
    }

    /// Where partition `partition` of the topic with id `id` lives.
    pub(crate) fn partition_dir(topic_dir: &Path, partition: u32) -> PathBuf {
        topic_dir.join(partition.to_string())
    }
}

/// What a stream's retention (`x-max-age`, `x-max-length-bytes`,
/// `x-stream-max-segment-size-bytes`) is in Kafka's words. A stream keeps
/// everything unless told otherwise, unlike a topic's default retention.
pub(crate) fn stream_config(retention: StreamRetention) -> TopicConfig {
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert(keys::RETENTION_MS.to_owned(), retention.max_age_ms.unwrap_or(-1).to_string());
    let max_bytes = retention.max_bytes.and_then(|bytes| i64::try_from(bytes).ok()).unwrap_or(-1);
    overrides.insert(keys::RETENTION_BYTES.to_owned(), max_bytes.to_string());
    if let Some(segment_bytes) = retention.segment_bytes_max {
        overrides.insert(keys::SEGMENT_BYTES.to_owned(), segment_bytes.to_string());
    }
    TopicConfig::new(overrides).unwrap_or_default()
}

/// A stream's definition after Kafka config `changes` to its topic
/// (AlterConfigs, IncrementalAlterConfigs): `retention.ms`,
/// `retention.bytes` and `segment.bytes` are its policy's retention by age
/// (in whole seconds, as RabbitMQ's `x-max-age` says it), by bytes and
/// its segment size; -1 or a deletion removes the limit, and `replace`
/// (AlterConfigs) removes those `changes` do not name. Its arguments say
/// the same to the clients that read them, in `vocabulary`'s words. Any
/// other key is no stream's: the topic is changed as its queue.
pub(crate) fn stream_redefined(
    name: &str,
    definition: &QueueDefinition,
    changes: &std::collections::BTreeMap<String, Option<String>>,
    replace: bool,
    vocabulary: Option<&ArgumentVocabulary>,
) -> crate::error::Result<QueueDefinition> {
    let before = definition.policy.stream_retention;
    let mut retention = if replace { StreamRetention::default() } else { before };
    for (key, value) in changes {
        if ![keys::RETENTION_MS, keys::RETENTION_BYTES, keys::SEGMENT_BYTES].contains(&key.as_str()) {
            return Err(crate::error::CoreError::StreamTopic(name.to_owned()));
        }
        let limit = match value {
            None => None,
            Some(value) => {
                let invalid = |reason: &str| crate::topic_config::ConfigError::InvalidValue {
                    key: key.clone(),
                    value: value.clone(),
                    reason: reason.to_owned(),
                };
                match (key.as_str(), value.trim().parse::<i64>().map_err(|_| invalid("not an integer"))?) {
                    (keys::RETENTION_MS | keys::RETENTION_BYTES, -1) => None,
                    (keys::RETENTION_MS, ms) if ms > 0 && ms % 1000 == 0 => Some(ms),
                    (keys::RETENTION_MS, _) => {
                        return Err(invalid("a stream's x-max-age is a positive number of whole seconds, or -1").into());
                    }
                    (_, bytes) if bytes > 0 => Some(bytes),
                    _ => return Err(invalid("a stream's byte limits are positive, or -1 for retention.bytes").into()),
                }
            }
        };
        match key.as_str() {
            keys::RETENTION_MS => retention.max_age_ms = limit,
            keys::RETENTION_BYTES => retention.max_bytes = limit.map(|bytes| bytes as u64),
            _ => retention.segment_bytes_max = limit.map(|bytes| bytes as u64),
        }
    }
    let arguments = match vocabulary {
        Some(vocabulary) => (vocabulary.stream_retention_shown)(&definition.arguments, &before, &retention),
        None => definition.arguments.clone(),
    };
    Ok(QueueDefinition {
        arguments,
        policy: QueuePolicy {
            stream_retention: retention,
            ..definition.policy.clone()
        },
        ..definition.clone()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn changes(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn a_kafka_config_change_to_a_stream_sets_its_policys_retention() {
        let stream = QueueDefinition {
            durable: true,
            policy: QueuePolicy {
                queue_type: crate::queue::QueueType::Stream,
                stream_retention: StreamRetention {
                    max_age_ms: Some(7 * 86_400_000),
                    max_bytes: Some(5000),
                    segment_bytes_max: None,
                },
                ..QueuePolicy::default()
            },
            ..QueueDefinition::default()
        };
        let altered = stream_redefined(
            "s",
            &stream,
            &changes(&[("retention.ms", Some("3600000")), ("retention.bytes", Some("-1"))]),
            false,
            None,
        )
        .expect("valid");
        assert_eq!(
            altered.policy.stream_retention,
            StreamRetention {
                max_age_ms: Some(3_600_000),
                max_bytes: None,
                segment_bytes_max: None,
            }
        );
        let replaced = stream_redefined("s", &altered, &changes(&[("segment.bytes", Some("1048576"))]), true, None).expect("valid");
        assert_eq!(
            replaced.policy.stream_retention,
            StreamRetention {
                segment_bytes_max: Some(1_048_576),
                ..StreamRetention::default()
            },
            "AlterConfigs replaces: the age limit goes"
        );
        assert!(stream_redefined("s", &stream, &changes(&[("retention.ms", Some("1500"))]), false, None).is_err());
        assert!(stream_redefined("s", &stream, &changes(&[("cleanup.policy", Some("compact"))]), false, None).is_err());
    }
}
