//! Kafka's access control lists: a binding of a resource pattern (topic,
//! group, cluster or transactional id; a literal name, `*`, or a prefix) to
//! an entry (principal `User:NAME` or `User:*`, host, operation, allow or
//! deny), and the filters DescribeAcls and DeleteAcls match them with.
//! Knows Kafka's ACL model and its matching rules; not the wire (the Kafka
//! door's) nor how decisions are made from many ACLs (`authorizer.rs`).

use serde::{Deserialize, Serialize};

use super::AuthError;

/// Kafka's literal resource name that matches every name.
pub const WILDCARD: &str = "*";
/// Kafka's principal type of users.
pub const USER_PRINCIPAL_PREFIX: &str = "User:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AclResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatternType {
    /// The name exactly, or every name when it is `*`.
    Literal,
    /// Every name that starts with it.
    Prefixed,
}

/// Kafka's operations (`AclOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl AclOperation {
    /// Whether an ALLOW entry for `self` grants `asked`: ALL grants
    /// everything, and as in Kafka's authorizer READ, WRITE, DELETE and
    /// ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS.
    pub fn allows(self, asked: AclOperation) -> bool {
        self == AclOperation::All
            || self == asked
            || (asked == AclOperation::Describe
                && matches!(
                    self,
                    AclOperation::Read | AclOperation::Write | AclOperation::Delete | AclOperation::Alter
                ))
            || (asked == AclOperation::DescribeConfigs && self == AclOperation::AlterConfigs)
    }

    /// Whether a DENY entry for `self` refuses `asked`: no implication, as in Kafka.
    pub fn denies(self, asked: AclOperation) -> bool {
        self == AclOperation::All || self == asked
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AclPermissionType {
    Allow,
    Deny,
}

/// One ACL binding, as Kafka's `AclBinding`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    pub resource_type: AclResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:NAME`, or `User:*` for every user.
    pub principal: String,
    /// A client address, or `*` for every one.
    pub host: String,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

impl Acl {
    /// Refuses what Kafka refuses to create: an empty name or principal, a
    /// principal of another type, a cluster resource not named
    /// `kafka-cluster`, a prefixed `*`.
    pub fn validate(&self) -> Result<(), AuthError> {
        let invalid = |reason: &str| Err(AuthError::InvalidAcl(reason.to_owned()));
        if self.resource_name.is_empty() {
            return invalid("the resource name is empty");
        }
        if !self.principal.starts_with(USER_PRINCIPAL_PREFIX) || self.principal.len() == USER_PRINCIPAL_PREFIX.len() {
            return invalid("the principal must be User:NAME or User:*");
        }
        if self.host.is_empty() {
            return invalid("the host is empty (use * for every host)");
        }
        if self.resource_type == AclResourceType::Cluster && self.resource_name != "kafka-cluster" {
            return invalid("the cluster resource is named kafka-cluster");
        }
        if self.pattern_type == PatternType::Prefixed && self.resource_name == WILDCARD {
            return invalid("a prefixed pattern cannot be *");
        }
        Ok(())
    }

    /// Whether this binding's pattern covers the resource `name` of `resource_type`.
    pub fn covers(&self, resource_type: AclResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == WILDCARD || self.resource_name == name,
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }

    /// Whether this binding's entry speaks for `principal` (`User:NAME`) from `host`.
    pub fn applies_to(&self, principal: &str, host: Option<&str>) -> bool {
        let principal_matches = self.principal == principal || self.principal == "User:*";
        let host_matches = self.host == WILDCARD || host.is_some_and(|host| host == self.host);
        principal_matches && host_matches
    }
}

/// How a filter matches resource patterns (Kafka's `PatternType` in filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatternFilter {
    /// Any pattern type with exactly the filter's name.
    #[default]
    Any,
    /// Every binding that would apply to a resource of the filter's name:
    /// literal ones of that name or `*`, prefixed ones that start it.
    Match,
    Literal,
    Prefixed,
}

/// A filter of DescribeAcls and DeleteAcls: each `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    #[serde(default)]
    pub resource_type: Option<AclResourceType>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default)]
    pub pattern_type: PatternFilter,
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub operation: Option<AclOperation>,
    #[serde(default)]
    pub permission_type: Option<AclPermissionType>,
}

impl AclFilter {
    pub fn matches(&self, acl: &Acl) -> bool {
        let name_matches = match (&self.resource_name, self.pattern_type) {
            (None, PatternFilter::Any | PatternFilter::Match) => true,
            (None, PatternFilter::Literal) => acl.pattern_type == PatternType::Literal,
            (None, PatternFilter::Prefixed) => acl.pattern_type == PatternType::Prefixed,
            (Some(name), PatternFilter::Any) => acl.resource_name == *name,
            (Some(name), PatternFilter::Literal) => acl.pattern_type == PatternType::Literal && acl.resource_name == *name,
            (Some(name), PatternFilter::Prefixed) => acl.pattern_type == PatternType::Prefixed && acl.resource_name == *name,
            (Some(name), PatternFilter::Match) => acl.covers(acl.resource_type, name),
        };
        name_matches
            && self.resource_type.is_none_or(|wanted| wanted == acl.resource_type)
            && self.principal.as_ref().is_none_or(|wanted| *wanted == acl.principal)
            && self.host.as_ref().is_none_or(|wanted| *wanted == acl.host)
            && self.operation.is_none_or(|wanted| wanted == acl.operation)
            && self.permission_type.is_none_or(|wanted| wanted == acl.permission_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(name: &str, pattern_type: PatternType, operation: AclOperation) -> Acl {
        Acl {
            resource_type: AclResourceType::Topic,
            resource_name: name.into(),
            pattern_type,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission_type: AclPermissionType::Allow,
        }
    }

    #[test]
    fn patterns_cover_names_as_kafka_matches_them() {
        let prefixed = acl("orders.", PatternType::Prefixed, AclOperation::Write);
        assert!(prefixed.covers(AclResourceType::Topic, "orders.eu"));
        assert!(!prefixed.covers(AclResourceType::Topic, "payments"));
        assert!(!prefixed.covers(AclResourceType::Group, "orders.eu"));
        let wildcard = acl("*", PatternType::Literal, AclOperation::Read);
        assert!(wildcard.covers(AclResourceType::Topic, "anything"));
        assert!(acl("a", PatternType::Literal, AclOperation::Read).covers(AclResourceType::Topic, "a"));
        assert!(!acl("a", PatternType::Literal, AclOperation::Read).covers(AclResourceType::Topic, "ab"));
    }

    #[test]
    fn describe_is_implied_by_read_write_delete_and_alter_only() {
        for implying in [
            AclOperation::Read,
            AclOperation::Write,
            AclOperation::Delete,
            AclOperation::Alter,
            AclOperation::All,
        ] {
            assert!(implying.allows(AclOperation::Describe), "{implying:?}");
        }
        assert!(!AclOperation::Create.allows(AclOperation::Describe));
        assert!(!AclOperation::Describe.allows(AclOperation::Read));
        assert!(AclOperation::AlterConfigs.allows(AclOperation::DescribeConfigs));
        assert!(!AclOperation::Read.denies(AclOperation::Describe));
    }

    #[test]
    fn filters_match_as_describe_and_delete_acls_do() {
        let prefixed = acl("orders.", PatternType::Prefixed, AclOperation::Write);
        let match_filter = AclFilter {
            resource_name: Some("orders.eu".into()),
            pattern_type: PatternFilter::Match,
            ..AclFilter::default()
        };
        assert!(match_filter.matches(&prefixed));
        let any_filter = AclFilter {
            resource_name: Some("orders.eu".into()),
            ..AclFilter::default()
        };
        assert!(!any_filter.matches(&prefixed));
        assert!(AclFilter::default().matches(&prefixed));
        let wrong_operation = AclFilter {
            operation: Some(AclOperation::Read),
            ..AclFilter::default()
        };
        assert!(!wrong_operation.matches(&prefixed));
    }

    #[test]
    fn invalid_bindings_are_refused() {
        let mut binding = acl("orders", PatternType::Literal, AclOperation::Read);
        assert!(binding.validate().is_ok());
        binding.principal = "Group:x".into();
        assert!(binding.validate().is_err());
        let mut cluster = acl("orders", PatternType::Literal, AclOperation::Alter);
        cluster.resource_type = AclResourceType::Cluster;
        assert!(cluster.validate().is_err());
    }
}
