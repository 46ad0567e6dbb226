//! Which of the broker's logs refuse appends, named by what they hold
//! (a topic partition, a queue's messages or cursor journal, the catalog,
//! the committed offsets, the transaction state), and reopening them without a restart: what
//! `/health`, `/metrics` and the admin API show and do. Knows the broker's
//! logs; nothing of why a disk fails or how a door reports it.

use std::fmt;
use std::path::PathBuf;

use conveyor_log::{Log, LogError, LogHealth};

use crate::broker::Broker;

/// What a log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRole {
    Partition {
        topic: String,
        partition: u32,
    },
    QueueMessages {
        queue: String,
    },
    QueueCursor {
        queue: String,
    },
    Catalog,
    ConsumerOffsets,
    /// The KIP-848 groups' journal.
    ConsumerGroups,
    /// The share groups' journal.
    ShareGroups,
    TransactionState,
}

impl fmt::Display for LogRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogRole::Partition { topic, partition } => write!(f, "topic {topic:?} partition {partition}"),
            LogRole::QueueMessages { queue } => write!(f, "queue {queue:?} messages"),
            LogRole::QueueCursor { queue } => write!(f, "queue {queue:?} cursor journal"),
            LogRole::Catalog => f.write_str("metadata catalog"),
            LogRole::ConsumerOffsets => f.write_str("consumer group offsets"),
            LogRole::ConsumerGroups => f.write_str("KIP-848 consumer groups"),
            LogRole::ShareGroups => f.write_str("KIP-932 share groups"),
            LogRole::TransactionState => f.write_str("transaction state"),
        }
    }
}

/// One log of the broker and its health.
#[derive(Debug, Clone)]
pub struct LogStatus {
    pub role: LogRole,
    pub dir: PathBuf,
    pub health: LogHealth,
}

/// The outcome of reopening one poisoned log.
#[derive(Debug)]
pub struct Reopened {
    pub role: LogRole,
    pub result: Result<(), LogError>,
}

impl Broker {
    /// Every log the broker writes, with what it holds. The catalog's is
    /// left out while a metadata change holds it (a poisoned catalog fails
    /// that change, which says so itself).
    fn logs(&self) -> Vec<(LogRole, Log)> {
        let mut logs = Vec::new();
        for topic in self.topics() {
            // A partition not opened since the start has no log open to be poisoned.
            for (partition, log) in topic.opened_partitions() {
                let role = LogRole::Partition {
                    topic: topic.name.clone(),
                    partition,
                };
                logs.push((role, log));
            }
        }
        // A queue not opened since the start has no log open to be poisoned.
        for declared in self.queues() {
            let Some(opened) = declared.opened() else { continue };
            let queue = declared.name.clone();
            logs.push((LogRole::QueueMessages { queue: queue.clone() }, opened.message_log().clone()));
            logs.push((LogRole::QueueCursor { queue }, opened.journal_log().clone()));
        }
        logs.push((LogRole::ConsumerOffsets, self.groups().offsets().log().clone()));
        logs.push((LogRole::ConsumerGroups, self.groups().consumer_group_store().log().clone()));
        logs.push((LogRole::ShareGroups, self.share_groups().store().log().clone()));
        logs.push((LogRole::TransactionState, self.transactions().log().clone()));
        if let Some(catalog) = self.catalog_log() {
            logs.push((LogRole::Catalog, catalog));
        }
        logs
    }

    /// Every log the broker writes and its health.
    pub fn log_statuses(&self) -> Vec<LogStatus> {
        self.logs()
            .into_iter()
            .map(|(role, log)| LogStatus {
                role,
                dir: log.dir().to_path_buf(),
                health: log.health(),
            })
            .collect()
    }

    /// The logs that refuse appends (poisoned by a failed write or fsync).
    pub fn degraded_logs(&self) -> Vec<LogStatus> {
        self.log_statuses()
            .into_iter()
            .filter(|status| !status.health.is_healthy())
            .collect()
    }

    /// Reopens every poisoned log in place ([`Log::reopen`]): each is
    /// recovered from its files and accepts appends again, or stays
    /// poisoned if the disk still fails. Blocking.
    pub fn reopen_poisoned_logs(&self) -> Vec<Reopened> {
        self.logs()
            .into_iter()
            .filter(|(_, log)| !log.health().is_healthy())
            .map(|(role, log)| {
                let result = log.reopen();
                match &result {
                    Ok(()) => tracing::info!(log = %role, "reopened a poisoned log"),
                    Err(error) => tracing::warn!(log = %role, %error, "a poisoned log could not be reopened"),
                }
                Reopened { role, result }
            })
            .collect()
    }
}
