//! Identity and authorization: the user store (SCRAM credentials, tags, AWS
//! keys), RabbitMQ's permission entries and Kafka's ACLs — all catalog
//! state, changed by catalog events — and the one [`Authorizer`] every door
//! asks. Each door authenticates in its protocol's way (AMQP PLAIN, HTTP
//! Basic, later SASL and SigV4), turns its request into a principal, a
//! resource and an operation, and answers a refusal in its own words.
//! Nothing here knows a wire format.

pub mod acl;
pub mod authorizer;
pub mod failures;
mod operations;
pub mod permission;
pub mod policy;
pub mod rabbit_hash;
pub mod resource;
pub mod scram;
pub mod state;
pub mod user;

pub use acl::{Acl, AclFilter, AclOperation, AclPermissionType, AclResourceType, PatternFilter, PatternType};
pub use authorizer::{Authorizer, Denied};
pub use failures::{AuthFailures, FailureReason};
pub use operations::ConfiguredUser;
pub use permission::{Access, Permission};
pub use policy::{AnonymousAccess, AuthPolicy, MetricsAccess, is_loopback};
pub use rabbit_hash::{RabbitHashing, RabbitPasswordHash};
pub use resource::{Operation, Principal, Resource};
pub use scram::{ScramCredential, ScramMechanism};
pub use state::AuthState;
pub use user::{AwsAccessKey, Tag, User};

/// Refused changes to users and grants. No wire codes: doors map these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid user name {0:?}: 1 to 255 bytes, no control characters and no ':'")]
    InvalidUserName(String),
    #[error("no user {0:?}")]
    UnknownUser(String),
    #[error("unknown tag {0:?} (administrator, monitoring)")]
    UnknownTag(String),
    #[error("a password cannot be empty")]
    EmptyPassword,
    #[error("{iterations} iterations: SCRAM credentials take {min} to {max}")]
    Iterations { iterations: u32, min: u32, max: u32 },
    #[error("no randomness for a salt: {0}")]
    Random(String),
    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("invalid ACL: {0}")]
    InvalidAcl(String),
    #[error("AWS access key id {key:?} belongs to user {user:?}")]
    AccessKeyInUse { key: String, user: String },
    #[error("user {user:?} has no {mechanism} credential")]
    NoCredential { user: String, mechanism: &'static str },
    #[error("invalid password hash for {0}: base64 of a 4-byte salt and the digest")]
    InvalidPasswordHash(&'static str),
}
