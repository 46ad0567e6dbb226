//! RabbitMQ's definitions document, as `rabbitmqctl export_definitions`,
//! `rabbitmqadmin export` and `GET /api/definitions` write it: vhosts,
//! users, permissions, queues, exchanges and bindings, plus the parts
//! Conveyor reads only to say it skipped them (policies, parameters, topic
//! permissions). Plain serde types; what importing means is `mod.rs`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The vhost of an object that names none (a single-vhost export).
fn default_vhost() -> String {
    conveyor_core::vhost::DEFAULT_VHOST.to_owned()
}

fn yes() -> bool {
    true
}

/// A whole definitions document. Unknown fields are ignored, as RabbitMQ
/// ignores them, so exports of other versions import.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Definitions {
    /// Set by RabbitMQ's exports; Conveyor writes its own product instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    #[serde(default)]
    pub users: Vec<UserDefinition>,
    #[serde(default)]
    pub vhosts: Vec<VhostDefinition>,
    #[serde(default)]
    pub permissions: Vec<PermissionDefinition>,
    /// Not imported (reported as skipped).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub topic_permissions: Vec<Value>,
    /// Not imported (reported as skipped).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub parameters: Vec<Value>,
    /// Not imported (RabbitMQ's cluster name and id; nothing to report).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub global_parameters: Vec<Value>,
    /// Not imported (reported as skipped): set their `x-…` arguments on the queues instead.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<Value>,
    #[serde(default)]
    pub queues: Vec<QueueDefinition>,
    #[serde(default)]
    pub exchanges: Vec<ExchangeDefinition>,
    #[serde(default)]
    pub bindings: Vec<BindingDefinition>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserDefinition {
    pub name: String,
    /// RabbitMQ's salted hash (base64 of a 4-byte salt and the digest of
    /// salt + password). Imported, it checks the user's PLAIN logins until
    /// its password is set in Conveyor; exported as imported, or `""` for
    /// a user whose password was set in Conveyor (SCRAM credentials cannot
    /// become a RabbitMQ hash).
    #[serde(default)]
    pub password_hash: String,
    /// `rabbit_password_hashing_sha256` (RabbitMQ's default), `_sha512` or `_md5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// A list, or (in older exports) one comma-separated string.
    #[serde(default)]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub limits: Option<Value>,
}

/// A user's tags as either form of RabbitMQ's exports writes them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Tags {
    List(Vec<String>),
    Text(String),
}

impl Default for Tags {
    fn default() -> Tags {
        Tags::List(Vec::new())
    }
}

impl Tags {
    pub fn names(&self) -> Vec<String> {
        match self {
            Tags::List(tags) => tags.iter().map(|tag| tag.trim().to_owned()).filter(|tag| !tag.is_empty()).collect(),
            Tags::Text(text) => text
                .split(',')
                .map(|tag| tag.trim().to_owned())
                .filter(|tag| !tag.is_empty())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VhostDefinition {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PermissionDefinition {
    pub user: String,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueDefinition {
    pub name: String,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    /// JSON values as AMQP types (an integer is a `long`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExchangeDefinition {
    pub name: String,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    /// `direct`, `fanout`, `topic` or `headers`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    /// `alternate-exchange` is kept; other exchange arguments are ignored, as the AMQP door ignores them.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BindingDefinition {
    pub source: String,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub destination: String,
    /// `queue` or `exchange` (RabbitMQ's), or `topic` (a Kafka topic; Conveyor's own).
    pub destination_type: String,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: Map<String, Value>,
}

/// What an import did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Imported {
    /// Objects of each kind the broker now has as the document defines
    /// them (created, or there already the same way).
    pub vhosts: u64,
    pub users: u64,
    pub permissions: u64,
    pub exchanges: u64,
    pub queues: u64,
    pub bindings: u64,
    /// Users whose password hash could not be used: they have no password
    /// (and cannot log in) until one is set (`conveyor user passwd`).
    pub users_without_password: Vec<String>,
    /// What the document holds that Conveyor did not import, and why.
    pub skipped: Vec<Skipped>,
    /// Counts of skipped objects by kind, for a summary.
    pub skipped_by_kind: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Skipped {
    /// `policy`, `parameter`, `topic_permission`, `exchange`, `user_tag`, …
    pub kind: String,
    pub name: String,
    pub vhost: Option<String>,
    pub reason: String,
}
