//! The broker's checks against `[limits]` before a change: partitions per
//! topic and in total, topics, queues, and the floors of topic configs
//! (`segment.bytes`, `segment.ms`). Each refusal is counted in `limits/`.
//! Knows what exists through the views; changes nothing.

use std::collections::BTreeMap;

use super::Broker;
use crate::error::{CoreError, Result};
use crate::limits::Limit;

impl Broker {
    /// A new topic of `partitions` partitions and `configs` fits the limits.
    pub(super) fn check_new_topic_limits(&self, name: &str, partitions: u32, configs: &BTreeMap<String, String>) -> Result<()> {
        self.check_partitions_per_topic(name, partitions)?;
        self.limits.check_topic_configs(configs.iter())?;
        let views = self.meta.views();
        let what = format!("topic {name:?}");
        self.limits.check_count(Limit::Topics, views.topics.len() as u64, 1, &what)?;
        let existing: u64 = views.topics.values().map(|topic| u64::from(topic.partition_count())).sum();
        self.limits
            .check_count(Limit::Partitions, existing, u64::from(partitions), &format!("{what}'s partitions"))?;
        Ok(())
    }

    /// Growing topic `name` from `current` to `total` partitions fits the limits.
    pub(super) fn check_grown_partitions(&self, name: &str, current: u32, total: u32) -> Result<()> {
        self.check_partitions_per_topic(name, total)?;
        let existing: u64 = self
            .meta
            .views()
            .topics
            .values()
            .map(|topic| u64::from(topic.partition_count()))
            .sum();
        self.limits.check_count(
            Limit::Partitions,
            existing,
            u64::from(total.saturating_sub(current)),
            &format!("topic {name:?}'s new partitions"),
        )?;
        Ok(())
    }

    /// The values a config change sets are above the floors.
    pub(super) fn check_topic_config_changes(&self, changes: &BTreeMap<String, Option<String>>) -> Result<()> {
        self.limits
            .check_topic_configs(changes.iter().filter_map(|(key, value)| value.as_ref().map(|value| (key, value))))?;
        Ok(())
    }

    /// One more queue fits `queues_max`.
    pub(super) fn check_new_queue(&self, name: &str) -> Result<()> {
        let existing = self.meta.views().queues.len() as u64;
        self.limits.check_count(Limit::Queues, existing, 1, &format!("queue {name:?}"))?;
        Ok(())
    }

    /// Refuses a partition count outside 1..=`partitions_per_topic_max`
    /// (Kafka's INVALID_PARTITIONS, not a count of what exists).
    fn check_partitions_per_topic(&self, name: &str, partitions: u32) -> Result<()> {
        let max = self.limits.config().partitions_per_topic_max;
        if partitions == 0 {
            return Err(CoreError::InvalidPartitions(format!("{partitions} (must be between 1 and {max})")));
        }
        if partitions > max {
            let reached = self.limits.reach(
                Limit::PartitionsPerTopic,
                format!("topic {name:?} asked for {partitions} partitions"),
            );
            return Err(CoreError::InvalidPartitions(format!(
                "{partitions} (must be between 1 and {max}): {reached}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::broker::{Broker, BrokerConfig};
    use crate::catalog::QueueDefinition;
    use crate::error::CoreError;
    use crate::limits::{Limit, LimitsConfig};

    #[tokio::test]
    async fn topics_partitions_and_queues_past_their_limits_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = BrokerConfig::new(dir.path());
        config.limits = LimitsConfig {
            topics_max: 2,
            partitions_per_topic_max: 8,
            partitions_max: 10,
            queues_max: 1,
            ..LimitsConfig::default()
        };
        let broker = Broker::open(config).expect("open");
        let too_many = broker.create_topic("wide", Some(9), BTreeMap::new()).await;
        assert!(matches!(too_many, Err(CoreError::InvalidPartitions(_))), "{too_many:?}");
        broker
            .create_topic("a", Some(8), BTreeMap::new())
            .await
            .expect("8 of 10 partitions");
        let over_total = broker.create_topic("b", Some(3), BTreeMap::new()).await;
        assert!(
            matches!(&over_total, Err(CoreError::LimitReached(reached)) if reached.limit == Limit::Partitions),
            "{over_total:?}"
        );
        broker
            .create_topic("b", Some(2), BTreeMap::new())
            .await
            .expect("10 of 10 partitions");
        let over_topics = broker.create_topic("c", Some(1), BTreeMap::new()).await;
        assert!(matches!(&over_topics, Err(CoreError::LimitReached(reached)) if reached.limit == Limit::Topics));
        let grown = broker.create_partitions("b", 3).await;
        assert!(matches!(&grown, Err(CoreError::LimitReached(reached)) if reached.limit == Limit::Partitions));
        let segment = BTreeMap::from([("segment.bytes".to_owned(), Some("14".to_owned()))]);
        let altered = broker.alter_topic_config("a", segment, false, false).await;
        assert!(matches!(altered, Err(CoreError::InvalidConfig(_))), "{altered:?}");
        let definition = QueueDefinition::default();
        broker.declare_queue("q1", definition.clone()).await.expect("first queue");
        broker
            .declare_queue("q1", definition.clone())
            .await
            .expect("redeclaring is not a new queue");
        let over_queues = broker.declare_queue("q2", definition).await;
        assert!(matches!(&over_queues, Err(CoreError::LimitReached(reached)) if reached.limit == Limit::Queues));
        let limits = broker.limits();
        assert_eq!(limits.reached_total(Limit::PartitionsPerTopic), 1);
        assert_eq!(limits.reached_total(Limit::Partitions), 2);
        assert_eq!(limits.reached_total(Limit::Topics), 1);
        assert_eq!(limits.reached_total(Limit::SegmentBytes), 1);
        assert_eq!(limits.reached_total(Limit::Queues), 1);
    }
}
