//! SCRAM credentials (RFC 5802, RFC 7677): what the broker keeps of a
//! password so that it can check one (AMQP PLAIN, HTTP Basic) or run a
//! SCRAM exchange (Kafka SASL) — salt, iteration count, stored key and
//! server key, never the password itself. Knows hashes and HMACs (RustCrypto's);
//! nothing of users, protocols or grants.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::AuthError;

/// Fewest PBKDF2 iterations a credential may have (RFC 7677's minimum, Kafka's too).
pub const ITERATIONS_MIN: u32 = 4096;
/// Iterations of the credentials the broker computes from a password.
pub const ITERATIONS_DEFAULT: u32 = 4096;
/// Most iterations accepted: bounds the CPU one login can cost (Kafka's maximum).
pub const ITERATIONS_MAX: u32 = 16_384;
/// Bytes of the random salt of a credential computed here.
const SALT_BYTES: usize = 32;

/// The SCRAM mechanisms, by their SASL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|mechanism| mechanism.name().eq_ignore_ascii_case(name))
    }

    /// PBKDF2-HMAC of the password: RFC 5802's SaltedPassword.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            ScramMechanism::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }

    /// HMAC(key, message) with this mechanism's hash.
    pub fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => hmac_with::<Hmac<Sha256>>(key, message),
            ScramMechanism::Sha512 => hmac_with::<Hmac<Sha512>>(key, message),
        }
    }

    /// H(message) with this mechanism's hash.
    pub fn hash(self, message: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(message).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

fn hmac_with<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// One mechanism's credential of a user, as RFC 5802 §3 has the server keep it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    pub iterations: u32,
    /// H(HMAC(SaltedPassword, "Client Key")).
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    /// Keys stay out of logs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// A credential for `password` with a fresh random salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: u32) -> Result<ScramCredential, AuthError> {
        let mut salt = vec![0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|error| AuthError::Random(error.to_string()))?;
        let salted = mechanism.salted_password(password.as_bytes(), &salt, checked_iterations(iterations)?);
        Ok(ScramCredential::from_salted_password(mechanism, salt, iterations, &salted))
    }

    /// A credential from a salted password computed elsewhere (Kafka's
    /// AlterUserScramCredentials sends it, never the password).
    pub fn from_salted_password(mechanism: ScramMechanism, salt: Vec<u8>, iterations: u32, salted_password: &[u8]) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            mechanism,
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        }
    }

    /// Whether `password` is the one this credential was made from. The
    /// keys are compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        let Ok(iterations) = checked_iterations(self.iterations) else {
            return false;
        };
        let salted = self.mechanism.salted_password(password.as_bytes(), &self.salt, iterations);
        let client_key = self.mechanism.hmac(&salted, b"Client Key");
        let stored_key = self.mechanism.hash(&client_key);
        bool::from(stored_key.ct_eq(&self.stored_key))
    }

    /// A credential nobody's password matches, checked against when a user
    /// does not exist so that the answer takes as long as for one that does.
    pub fn decoy() -> ScramCredential {
        ScramCredential::from_salted_password(ScramMechanism::Sha256, vec![0; SALT_BYTES], ITERATIONS_DEFAULT, &[0; 32])
    }
}

/// Refuses an iteration count outside RFC 7677's minimum and our maximum.
pub fn checked_iterations(iterations: u32) -> Result<u32, AuthError> {
    if (ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
        Ok(iterations)
    } else {
        Err(AuthError::Iterations {
            iterations,
            min: ITERATIONS_MIN,
            max: ITERATIONS_MAX,
        })
    }
}

/// Bytes as standard base64 in the catalog's JSON.
pub(super) mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    /// RFC 7677 §3's example: user "user", password "pencil", salt
    /// W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations; its ServerSignature
    /// proves the server key.
    #[test]
    fn sha256_keys_match_rfc_7677() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        let credential = ScramCredential::from_salted_password(ScramMechanism::Sha256, salt, 4096, &salted);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = ScramMechanism::Sha256.hmac(&credential.server_key, auth_message.as_bytes());
        assert_eq!(STANDARD.encode(signature), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // The client proof of the example, XORed with the client signature, gives the client key whose hash is the stored key.
        let proof = STANDARD.decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").expect("proof");
        let client_signature = ScramMechanism::Sha256.hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        assert_eq!(ScramMechanism::Sha256.hash(&client_key), credential.stored_key);
        assert!(credential.verify("pencil"));
        assert!(!credential.verify("pencil "));
    }

    #[test]
    fn credentials_from_a_password_verify_it_and_nothing_else() {
        for mechanism in ScramMechanism::ALL {
            let first = ScramCredential::from_password(mechanism, "s3cret", ITERATIONS_DEFAULT).expect("credential");
            let second = ScramCredential::from_password(mechanism, "s3cret", ITERATIONS_DEFAULT).expect("credential");
            assert_ne!(first.salt, second.salt, "every credential gets its own salt");
            assert!(first.verify("s3cret") && second.verify("s3cret"));
            assert!(!first.verify("s3cre") && !first.verify(""));
            let json = serde_json::to_string(&first).expect("json");
            assert!(!json.contains("s3cret"), "the password is never kept: {json}");
            assert_eq!(serde_json::from_str::<ScramCredential>(&json).expect("parse"), first);
        }
        assert!(!ScramCredential::decoy().verify(""));
    }

    #[test]
    fn iteration_counts_outside_the_bounds_are_refused() {
        assert!(ScramCredential::from_password(ScramMechanism::Sha256, "x", 4095).is_err());
        assert!(ScramCredential::from_password(ScramMechanism::Sha256, "x", ITERATIONS_MAX + 1).is_err());
        assert_eq!(ScramMechanism::from_name("scram-sha-512"), Some(ScramMechanism::Sha512));
    }
}
