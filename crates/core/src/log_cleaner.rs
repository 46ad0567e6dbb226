//! The broker's log cleaner: a background task that, every
//! `log.cleaner.backoff.ms`, walks the compacted topics (`cleanup.policy`
//! with `compact`) and asks each partition's log to clean itself
//! (`conveyor_log::Log::clean`) on a blocking thread, one log at a time
//! (Kafka's `log.cleaner.threads=1`), within one I/O budget. Knows topics and
//! their configs; the log knows how to clean, this only when and what.

use std::sync::Arc;
use std::time::Duration;

use conveyor_log::CleanerSettings;
use conveyor_log::throttle::Throttle;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::broker::Broker;

/// Kafka's default `log.cleaner.backoff.ms`.
pub const BACKOFF_MS_DEFAULT: u64 = 15_000;

/// The cleaner's broker settings (Kafka's `log.cleaner.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCleanerConfig {
    /// `log.cleaner.enable`.
    pub enabled: bool,
    /// `log.cleaner.backoff.ms`: the pause between passes.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size` and `log.cleaner.io.max.bytes.per.second`.
    pub settings: CleanerSettings,
}

impl Default for LogCleanerConfig {
    fn default() -> LogCleanerConfig {
        LogCleanerConfig {
            enabled: true,
            backoff_ms: BACKOFF_MS_DEFAULT,
            settings: CleanerSettings::default(),
        }
    }
}

impl Broker {
    /// Runs the cleaner until `shutdown` turns true.
    pub async fn run_log_cleaner(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let config = self.config().log_cleaner;
        if !config.enabled {
            return;
        }
        let backoff = Duration::from_millis(config.backoff_ms.max(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
            let broker = Arc::clone(&self);
            let stopping = shutdown.clone();
            let pass = tokio::task::spawn_blocking(move || broker.clean_compacted_logs(&|| *stopping.borrow()));
            if let Err(error) = pass.await {
                warn!(%error, "a log cleaner pass failed");
            }
        }
    }

    /// One pass over every compacted topic's partitions; returns how many
    /// logs were cleaned. Blocking. Stops early once `stop` says so.
    pub fn clean_compacted_logs(&self, stop: &dyn Fn() -> bool) -> usize {
        let config = self.config().log_cleaner;
        let defaults = &self.config().topic_defaults;
        let mut throttle = Throttle::new(config.settings.io_bytes_per_second_max);
        let mut cleaned = 0;
        for topic in self.topics() {
            let Some(compaction) = topic.config().compaction(defaults) else {
                continue;
            };
            // An unopened partition has nothing to clean: a compacted one
            // with sealed segments opens at start or when compaction is set.
            for (partition, log) in topic.opened_partitions() {
                if stop() {
                    return cleaned;
                }
                match log.clean(&compaction, &config.settings, &mut throttle, self.clock().now_ms()) {
                    Ok(Some(stats)) => {
                        cleaned += 1;
                        info!(
                            topic = %topic.name,
                            partition,
                            segments = stats.segments_rewritten,
                            records_removed = stats.records_removed,
                            bytes_before = stats.bytes_before,
                            bytes_after = stats.bytes_after,
                            cleaned_to_offset = stats.cleaned_to_offset,
                            "compacted a partition"
                        );
                    }
                    Ok(None) => {}
                    Err(error) => warn!(topic = %topic.name, partition, %error, "compacting a partition failed"),
                }
            }
        }
        cleaned
    }
}
