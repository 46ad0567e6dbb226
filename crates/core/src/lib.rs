//! Conveyor's core: what exists (the metadata catalog) and the operations
//! every front door calls — topics and their partitions today; queues,
//! consumer groups and exchanges as their issues land. Knows no wire format.

pub mod alarms;
pub mod append_condition;
pub mod auth;
pub mod broker;
pub mod catalog;
pub mod connection_budget;
pub mod connections;
pub mod direct_reply;
pub mod envelope;
pub mod error;
pub mod exchange;
pub mod group;
pub mod group_config;
pub mod journal;
pub mod key_index;
pub mod limits;
pub mod log_cleaner;
pub mod log_health;
pub mod messaging;
pub mod open_once;
pub mod partition_slot;
pub mod partition_write;
pub mod partitioner;
pub mod producer;
pub mod queue;
mod queue_expiry;
mod record_batches;
pub mod redrive;
pub mod redrive_tasks;
pub mod share_group;
pub mod stats;
pub mod topic;
pub mod topic_config;
pub mod topic_name;
pub mod transaction;
pub mod vhost;

pub use broker::{Broker, BrokerConfig};
pub use error::{CoreError, Result};
pub use topic::Topic;
pub use topic_config::{TopicConfig, TopicDefaults};
pub use vhost::VirtualHost;
