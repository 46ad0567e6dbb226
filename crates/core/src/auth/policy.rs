//! The broker-wide authentication settings (`[auth]` in the config file):
//! who may come without credentials, and who may read `/metrics`. Knows the
//! rule about loopback addresses; nothing of users or doors.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// `[auth] anonymous`: when a client without credentials (Kafka without
/// SASL, AMQP guest/guest, SQS/SNS with a key not in the store, the admin
/// API without a login) is the anonymous identity, which has every right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousAccess {
    /// From loopback addresses only (the default: the quick start needs no credentials).
    #[default]
    Loopback,
    /// Never: credentials everywhere.
    Never,
    /// From every address (`serve` warns when a listener is not on loopback).
    Always,
}

impl AnonymousAccess {
    /// Whether a client at `peer` without credentials is let in.
    pub fn allows(self, peer: IpAddr) -> bool {
        match self {
            AnonymousAccess::Loopback => is_loopback(peer),
            AnonymousAccess::Never => false,
            AnonymousAccess::Always => true,
        }
    }
}

/// `[auth] metrics`: who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone (Prometheus scrapes without credentials).
    #[default]
    Anonymous,
    /// Users tagged `monitoring` or `administrator` (and the anonymous identity where it is allowed).
    Monitoring,
}

/// Both settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthPolicy {
    pub anonymous: AnonymousAccess,
    pub metrics: MetricsAccess,
}

/// 127.0.0.0/8, ::1, and IPv4-mapped loopback (`::ffff:127.0.0.1`, what a
/// dual-stack listener sees).
pub fn is_loopback(peer: IpAddr) -> bool {
    match peer {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_means_loopback_addresses_only() {
        let local: IpAddr = "127.0.0.5".parse().expect("ip");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        let remote: IpAddr = "10.1.2.3".parse().expect("ip");
        assert!(AnonymousAccess::Loopback.allows(local));
        assert!(AnonymousAccess::Loopback.allows(mapped));
        assert!(AnonymousAccess::Loopback.allows("::1".parse().expect("ip")));
        assert!(!AnonymousAccess::Loopback.allows(remote));
        assert!(!AnonymousAccess::Never.allows(local));
        assert!(AnonymousAccess::Always.allows(remote));
    }
}
