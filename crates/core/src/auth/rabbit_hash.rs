//! A password hash as RabbitMQ keeps it (`rabbit_password_hashing_sha256`,
//! `_sha512`, `_md5`): base64 of a 4-byte salt followed by the digest of
//! salt ‖ password. Users imported from a RabbitMQ definitions file arrive
//! with one; it cannot become SCRAM credentials (SCRAM needs PBKDF2 of the
//! password), so it checks PLAIN logins until the user's password is set
//! again. Knows the format and the check; nothing of users or protocols.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::AuthError;

/// Bytes of RabbitMQ's salt, in front of the digest.
const SALT_BYTES: usize = 4;

/// RabbitMQ's password hashing modules, by their names in definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RabbitHashing {
    #[serde(rename = "rabbit_password_hashing_sha256")]
    Sha256,
    #[serde(rename = "rabbit_password_hashing_sha512")]
    Sha512,
    #[serde(rename = "rabbit_password_hashing_md5")]
    Md5,
}

impl RabbitHashing {
    const ALL: [RabbitHashing; 3] = [RabbitHashing::Sha256, RabbitHashing::Sha512, RabbitHashing::Md5];

    /// RabbitMQ's default, assumed when a definitions file names none.
    pub const DEFAULT: RabbitHashing = RabbitHashing::Sha256;

    pub fn name(self) -> &'static str {
        match self {
            RabbitHashing::Sha256 => "rabbit_password_hashing_sha256",
            RabbitHashing::Sha512 => "rabbit_password_hashing_sha512",
            RabbitHashing::Md5 => "rabbit_password_hashing_md5",
        }
    }

    pub fn from_name(name: &str) -> Option<RabbitHashing> {
        RabbitHashing::ALL.into_iter().find(|hashing| hashing.name() == name)
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            RabbitHashing::Sha256 => Sha256::new().chain_update(salt).chain_update(password).finalize().to_vec(),
            RabbitHashing::Sha512 => Sha512::new().chain_update(salt).chain_update(password).finalize().to_vec(),
            RabbitHashing::Md5 => Md5::new().chain_update(salt).chain_update(password).finalize().to_vec(),
        }
    }

    fn digest_bytes(self) -> usize {
        match self {
            RabbitHashing::Sha256 => 32,
            RabbitHashing::Sha512 => 64,
            RabbitHashing::Md5 => 16,
        }
    }
}

/// A salted hash of a password, as RabbitMQ exported it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RabbitPasswordHash {
    pub hashing: RabbitHashing,
    /// The salt followed by the digest, decoded from the export's base64.
    #[serde(with = "super::scram::base64_bytes")]
    pub salted_digest: Vec<u8>,
}

impl std::fmt::Debug for RabbitPasswordHash {
    /// The hash stays out of logs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RabbitPasswordHash")
            .field("hashing", &self.hashing)
            .finish_non_exhaustive()
    }
}

impl RabbitPasswordHash {
    /// Reads a definitions file's `password_hash` (base64) hashed by
    /// `hashing`; refuses one whose length does not fit the algorithm.
    pub fn parse(hashing: RabbitHashing, base64: &str) -> Result<RabbitPasswordHash, AuthError> {
        let invalid = || AuthError::InvalidPasswordHash(hashing.name());
        let salted_digest = STANDARD.decode(base64.trim()).map_err(|_| invalid())?;
        if salted_digest.len() != SALT_BYTES + hashing.digest_bytes() {
            return Err(invalid());
        }
        Ok(RabbitPasswordHash { hashing, salted_digest })
    }

    /// The hash RabbitMQ would compute for `password` with this `salt`
    /// (the broker only checks imported hashes; tests make them).
    #[cfg(test)]
    pub fn compute(hashing: RabbitHashing, salt: [u8; SALT_BYTES], password: &str) -> RabbitPasswordHash {
        let mut salted_digest = salt.to_vec();
        salted_digest.extend(hashing.digest(&salt, password.as_bytes()));
        RabbitPasswordHash { hashing, salted_digest }
    }

    /// As a definitions file writes it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.salted_digest)
    }

    /// Whether `password` is the one hashed; compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        let (salt, digest) = self.salted_digest.split_at(SALT_BYTES.min(self.salted_digest.len()));
        bool::from(self.hashing.digest(salt, password.as_bytes()).ct_eq(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RabbitMQ's own documentation example ("Computing Password Hash"):
    /// salt 908DC60A, password "test12", SHA-256.
    #[test]
    fn sha256_matches_rabbitmqs_documented_example() {
        let hash = RabbitPasswordHash::parse(RabbitHashing::Sha256, "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR").expect("hash");
        assert!(hash.verify("test12"));
        assert!(!hash.verify("test1"));
        assert_eq!(
            RabbitPasswordHash::compute(RabbitHashing::Sha256, [0x90, 0x8D, 0xC6, 0x0A], "test12"),
            hash
        );
    }

    #[test]
    fn every_algorithm_round_trips_and_wrong_lengths_are_refused() {
        for hashing in RabbitHashing::ALL {
            let hash = RabbitPasswordHash::compute(hashing, [1, 2, 3, 4], "s3cret");
            let parsed = RabbitPasswordHash::parse(hashing, &hash.to_base64()).expect("parse");
            assert!(parsed.verify("s3cret") && !parsed.verify("s3cre"));
            assert_eq!(RabbitHashing::from_name(hashing.name()), Some(hashing));
            let json = serde_json::to_string(&parsed).expect("json");
            assert_eq!(serde_json::from_str::<RabbitPasswordHash>(&json).expect("back"), parsed);
        }
        let sha512 = RabbitPasswordHash::compute(RabbitHashing::Sha512, [1, 2, 3, 4], "x").to_base64();
        assert!(RabbitPasswordHash::parse(RabbitHashing::Sha256, &sha512).is_err());
        assert!(RabbitPasswordHash::parse(RabbitHashing::Sha256, "not base64!").is_err());
        assert!(RabbitPasswordHash::parse(RabbitHashing::Sha256, "").is_err());
    }
}
