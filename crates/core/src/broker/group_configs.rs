//! Kafka groups' own configs (IncrementalAlterConfigs on a GROUP resource):
//! changed as a catalog event, so they survive a restart, and read from the
//! views by the coordinators' callers. The keys, defaults and checks are
//! `group_config.rs`'s; this file knows where they are kept.

use std::collections::BTreeMap;

use super::Broker;
use super::metadata::run_to_completion;
use super::views::Opened;
use crate::catalog::Event;
use crate::error::Result;
use crate::group_config::{GroupConfigDefaults, GroupSettings};

impl Broker {
    /// The broker's defaults for every group (its `[limits]` and the
    /// share-group coordinator's settings).
    pub fn group_config_defaults(&self) -> GroupConfigDefaults {
        let limits = self.limits.config();
        let share = self.share_groups.config();
        GroupConfigDefaults {
            consumer_session_timeout_ms: i64::try_from(limits.group_consumer_session_timeout_ms).unwrap_or(i64::MAX),
            consumer_heartbeat_interval_ms: i64::try_from(limits.group_consumer_heartbeat_interval_ms).unwrap_or(i64::MAX),
            share_session_timeout_ms: self.share_groups.session_timeout_ms(),
            share_record_lock_duration_ms: share.record_lock_duration_ms,
            share_delivery_count_limit: i64::from(share.delivery_count_limit),
            share_partition_max_record_locks: i64::try_from(share.record_locks_max).unwrap_or(i64::MAX),
            ..GroupConfigDefaults::default()
        }
    }

    /// The configs `group` sets itself (none for most groups).
    pub fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.meta.current().group_configs.get(group).cloned().unwrap_or_default()
    }

    /// What `group` runs with: its own configs over the broker's defaults.
    pub fn group_settings(&self, group: &str) -> GroupSettings {
        let views = self.meta.current();
        let overrides = views.group_configs.get(group);
        self.group_config_defaults().settings(overrides.unwrap_or(&BTreeMap::new()))
    }

    /// Applies `changes` (`None` removes a key) to `group`'s configs once
    /// they pass Kafka's checks; durable when this returns. Nothing changes
    /// with `validate_only`.
    pub async fn alter_group_configs(&self, group: &str, changes: Vec<(String, Option<String>)>, validate_only: bool) -> Result<()> {
        let mut change = self.meta.change().await;
        let current = change.catalog().group_configs.get(group).cloned().unwrap_or_default();
        let configs = self.group_config_defaults().with_changes(&current, &changes)?;
        if validate_only || configs == current {
            return Ok(());
        }
        let event = Event::GroupConfigsSet {
            group: group.to_owned(),
            configs,
        };
        run_to_completion(async move { change.commit(event, true, Opened::Nothing).await.map(drop) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BrokerConfig;
    use crate::group_config::keys;
    use crate::share_group::IsolationLevel;

    #[tokio::test]
    async fn a_groups_configs_are_checked_kept_across_a_restart_and_deleted_back_to_the_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open broker");
        let set = |key: &str, value: &str| (key.to_owned(), Some(value.to_owned()));
        broker
            .alter_group_configs("g", vec![set(keys::SHARE_RECORD_LOCK_DURATION_MS, "100")], false)
            .await
            .expect_err("below the bound");
        broker
            .alter_group_configs("g", vec![set(keys::SHARE_ISOLATION_LEVEL, "read_committed")], true)
            .await
            .expect("valid");
        assert_eq!(broker.group_configs("g"), BTreeMap::new(), "validate_only changes nothing");
        broker
            .alter_group_configs(
                "g",
                vec![
                    set(keys::SHARE_ISOLATION_LEVEL, "read_committed"),
                    set(keys::CONSUMER_SESSION_TIMEOUT_MS, "50000"),
                ],
                false,
            )
            .await
            .expect("set");
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen broker");
        let settings = broker.group_settings("g");
        assert_eq!(
            (settings.share_isolation_level, settings.consumer_session_timeout_ms),
            (IsolationLevel::ReadCommitted, 50_000)
        );
        assert_eq!(
            broker.group_settings("other").share_isolation_level,
            IsolationLevel::ReadUncommitted
        );
        broker
            .alter_group_configs(
                "g",
                vec![
                    (keys::SHARE_ISOLATION_LEVEL.to_owned(), None),
                    (keys::CONSUMER_SESSION_TIMEOUT_MS.to_owned(), None),
                ],
                false,
            )
            .await
            .expect("delete");
        assert_eq!(broker.group_configs("g"), BTreeMap::new());
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .expect("join")
            .expect("close");
    }
}
