//! A user of the broker: a name, SCRAM credentials (one per mechanism),
//! tags that grant the admin API (`administrator`, `monitoring`) and an
//! optional AWS access key for SigV4. Knows what a user is made of; not
//! what it may do (the authorizer's) nor how a door asks for it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::AuthError;
use super::rabbit_hash::RabbitPasswordHash;
use super::scram::{ITERATIONS_DEFAULT, ScramCredential, ScramMechanism};

/// Longest user name accepted (RabbitMQ's and SASL's practical limit).
pub const USER_NAME_BYTES_MAX: usize = 255;

/// What a tag lets a user do on the admin API and console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tag {
    /// Everything: every right on every door, and changes through the admin API.
    Administrator,
    /// Reading the admin API, the console and (when so configured) `/metrics`.
    Monitoring,
}

impl Tag {
    pub fn name(self) -> &'static str {
        match self {
            Tag::Administrator => "administrator",
            Tag::Monitoring => "monitoring",
        }
    }
}

impl std::str::FromStr for Tag {
    type Err = AuthError;

    fn from_str(text: &str) -> Result<Tag, AuthError> {
        match text.trim() {
            "administrator" => Ok(Tag::Administrator),
            "monitoring" => Ok(Tag::Monitoring),
            other => Err(AuthError::UnknownTag(other.to_owned())),
        }
    }
}

/// An AWS access key: the id names the user in a SigV4 request, the secret
/// verifies its signature (so, unlike a password, it must be kept as given).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsAccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AwsAccessKey {
    /// The secret stays out of logs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AwsAccessKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// At most one per mechanism.
    #[serde(default)]
    pub credentials: Vec<ScramCredential>,
    #[serde(default)]
    pub tags: BTreeSet<Tag>,
    #[serde(default)]
    pub aws_access_key: Option<AwsAccessKey>,
    /// A password hash imported from RabbitMQ's definitions: checks PLAIN
    /// logins while the user has no SCRAM credentials; setting a password
    /// (any way) drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbit_password_hash: Option<RabbitPasswordHash>,
}

impl User {
    /// A user without credentials, tags or keys.
    pub fn new(name: &str) -> Result<User, AuthError> {
        validate_user_name(name)?;
        Ok(User {
            name: name.to_owned(),
            credentials: Vec::new(),
            tags: BTreeSet::new(),
            aws_access_key: None,
            rabbit_password_hash: None,
        })
    }

    /// Replaces every credential with SCRAM-SHA-256 and SCRAM-SHA-512 ones
    /// computed from `password` (fresh salts).
    pub fn set_password(&mut self, password: &str) -> Result<(), AuthError> {
        if password.is_empty() {
            return Err(AuthError::EmptyPassword);
        }
        self.credentials = ScramMechanism::ALL
            .into_iter()
            .map(|mechanism| ScramCredential::from_password(mechanism, password, ITERATIONS_DEFAULT))
            .collect::<Result<_, _>>()?;
        self.rabbit_password_hash = None;
        Ok(())
    }

    /// Adds or replaces the credential of its mechanism.
    pub fn set_credential(&mut self, credential: ScramCredential) {
        self.credentials.retain(|existing| existing.mechanism != credential.mechanism);
        self.credentials.push(credential);
        self.credentials.sort_by_key(|credential| credential.mechanism);
        self.rabbit_password_hash = None;
    }

    pub fn credential(&self, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.credentials.iter().find(|credential| credential.mechanism == mechanism)
    }

    /// Whether `password` is this user's, checked against its first
    /// credential in constant time (or, without one, its imported RabbitMQ
    /// hash); false for a user without either.
    pub fn verify_password(&self, password: &str) -> bool {
        match (self.credentials.first(), &self.rabbit_password_hash) {
            (Some(credential), _) => credential.verify(password),
            (None, Some(hash)) => hash.verify(password),
            (None, None) => {
                // As long as a user with a credential, so timing tells nothing.
                let _ = ScramCredential::decoy().verify(password);
                false
            }
        }
    }

    /// Whether some password logs this user in (SCRAM credentials or an
    /// imported RabbitMQ hash).
    pub fn has_password(&self) -> bool {
        !self.credentials.is_empty() || self.rabbit_password_hash.is_some()
    }

    pub fn is_administrator(&self) -> bool {
        self.tags.contains(&Tag::Administrator)
    }

    /// Administrators monitor too.
    pub fn is_monitoring(&self) -> bool {
        self.is_administrator() || self.tags.contains(&Tag::Monitoring)
    }
}

/// 1 to 255 bytes, no control characters, no `:` (HTTP Basic and Kafka's
/// `User:NAME` principals split on it).
pub fn validate_user_name(name: &str) -> Result<(), AuthError> {
    if name.is_empty() || name.len() > USER_NAME_BYTES_MAX || name.chars().any(|c| c.is_control() || c == ':') {
        return Err(AuthError::InvalidUserName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_gives_both_scram_credentials_and_is_never_kept() {
        let mut user = User::new("alice").expect("user");
        user.set_password("s3cret").expect("password");
        assert!(user.credential(ScramMechanism::Sha256).is_some());
        assert!(user.credential(ScramMechanism::Sha512).is_some());
        assert!(user.verify_password("s3cret"));
        assert!(!user.verify_password("S3cret"));
        user.aws_access_key = Some(AwsAccessKey {
            access_key_id: "AKIAALICE".into(),
            secret_access_key: "hidden-secret".into(),
        });
        assert!(!format!("{user:?}").contains("hidden-secret"));
        let json = serde_json::to_string(&user).expect("json");
        assert!(!json.contains("s3cret"));
        assert_eq!(serde_json::from_str::<User>(&json).expect("parse"), user);
    }

    #[test]
    fn an_imported_rabbitmq_hash_logs_in_until_a_password_is_set() {
        use crate::auth::rabbit_hash::{RabbitHashing, RabbitPasswordHash};
        let mut user = User::new("alice").expect("user");
        user.rabbit_password_hash = Some(RabbitPasswordHash::compute(RabbitHashing::Sha256, [9, 8, 7, 6], "from-rabbit"));
        assert!(user.has_password());
        assert!(user.verify_password("from-rabbit") && !user.verify_password("other"));
        let json = serde_json::to_string(&user).expect("json");
        assert_eq!(serde_json::from_str::<User>(&json).expect("parse"), user, "the hash replays");
        user.set_password("new").expect("password");
        assert!(user.rabbit_password_hash.is_none(), "a password set here replaces the hash");
        assert!(user.verify_password("new") && !user.verify_password("from-rabbit"));
    }

    #[test]
    fn names_and_tags_are_checked() {
        assert!(User::new("").is_err());
        assert!(User::new("a:b").is_err());
        assert!(User::new(&"x".repeat(256)).is_err());
        assert_eq!("monitoring".parse::<Tag>().expect("tag"), Tag::Monitoring);
        assert!("root".parse::<Tag>().is_err());
        let mut user = User::new("bob").expect("user");
        assert!(!user.verify_password(""), "no credential, no login");
        user.tags.insert(Tag::Administrator);
        assert!(user.is_monitoring());
    }
}
