//! The authorizer's vocabulary: who asks (a [`Principal`]), about what (a
//! [`Resource`]: vhost, queue, exchange, topic, group, transactional id,
//! cluster) and to do what (an [`Operation`]). Every door turns its
//! requests into these terms; nothing here knows a wire format.

use super::acl::{AclOperation, AclResourceType};
use super::permission::Access;

/// Who a connection or request speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The built-in identity of clients without credentials where the
    /// `anonymous` setting allows them: every right.
    Anonymous,
    /// A user of the store, by name.
    User(String),
}

impl Principal {
    /// The name shown to people and in refusal texts (`guest` for the
    /// anonymous identity, as RabbitMQ's default user).
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "guest",
            Principal::User(name) => name,
        }
    }

    /// Kafka's principal string, `User:NAME` (`User:ANONYMOUS` for the anonymous identity, as Kafka's).
    pub fn kafka_principal(&self) -> String {
        match self {
            Principal::Anonymous => "User:ANONYMOUS".to_owned(),
            Principal::User(name) => format!("User:{name}"),
        }
    }
}

/// What a request is about. Queue and exchange names are as the client
/// names them in their vhost (the default exchange is `amq.default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Vhost(&'a str),
    Queue { vhost: &'a str, name: &'a str },
    Exchange { vhost: &'a str, name: &'a str },
    Topic(&'a str),
    Group(&'a str),
    TransactionalId(&'a str),
    Cluster,
}

impl Resource<'_> {
    /// The Kafka resource type and name, for ACLs.
    pub(crate) fn kafka(&self) -> Option<(AclResourceType, &str)> {
        match *self {
            Resource::Topic(name) => Some((AclResourceType::Topic, name)),
            Resource::Group(name) => Some((AclResourceType::Group, name)),
            Resource::TransactionalId(name) => Some((AclResourceType::TransactionalId, name)),
            Resource::Cluster => Some((AclResourceType::Cluster, "kafka-cluster")),
            Resource::Vhost(_) | Resource::Queue { .. } | Resource::Exchange { .. } => None,
        }
    }

    /// RabbitMQ's description in refusal texts: `queue 'q' in vhost '/'`.
    pub fn describe(&self) -> String {
        match *self {
            Resource::Vhost(name) => format!("vhost '{name}'"),
            Resource::Queue { vhost, name } => format!("queue '{name}' in vhost '{vhost}'"),
            Resource::Exchange { vhost, name } => format!("exchange '{name}' in vhost '{vhost}'"),
            Resource::Topic(name) => format!("topic '{name}'"),
            Resource::Group(name) => format!("group '{name}'"),
            Resource::TransactionalId(name) => format!("transactional id '{name}'"),
            Resource::Cluster => "the cluster".to_owned(),
        }
    }
}

/// What is asked: RabbitMQ's kinds for vhost resources, Kafka's operations
/// for Kafka resources, and `Access` to open a vhost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Open a vhost (needs a permission entry for it).
    Access,
    Configure,
    Write,
    Read,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl Operation {
    /// The RabbitMQ permission kind this asks for on a queue or exchange.
    pub(crate) fn access(self) -> Option<Access> {
        match self {
            Operation::Configure => Some(Access::Configure),
            Operation::Write => Some(Access::Write),
            Operation::Read => Some(Access::Read),
            _ => None,
        }
    }

    /// The Kafka operation this asks for on a Kafka resource.
    pub(crate) fn kafka(self) -> Option<AclOperation> {
        Some(match self {
            Operation::Read => AclOperation::Read,
            Operation::Write => AclOperation::Write,
            Operation::Create => AclOperation::Create,
            Operation::Delete => AclOperation::Delete,
            Operation::Alter => AclOperation::Alter,
            Operation::Describe => AclOperation::Describe,
            Operation::ClusterAction => AclOperation::ClusterAction,
            Operation::DescribeConfigs => AclOperation::DescribeConfigs,
            Operation::AlterConfigs => AclOperation::AlterConfigs,
            Operation::IdempotentWrite => AclOperation::IdempotentWrite,
            Operation::Access | Operation::Configure => return None,
        })
    }

    /// The word in refusal texts (RabbitMQ's `configure`, Kafka's `DESCRIBE_CONFIGS` in lower case).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Access => "access",
            Operation::Configure => "configure",
            Operation::Write => "write",
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Alter => "alter",
            Operation::Describe => "describe",
            Operation::ClusterAction => "cluster_action",
            Operation::DescribeConfigs => "describe_configs",
            Operation::AlterConfigs => "alter_configs",
            Operation::IdempotentWrite => "idempotent_write",
        }
    }
}
