//! The AMQP login: the SASL mechanisms offered in `connection.start`
//! (PLAIN and AMQPLAIN; a mechanism is one entry of [`MECHANISMS`] and one
//! arm of [`credentials`]), and who the `connection.start-ok` response
//! proves the client to be — a user of the core's store, or the anonymous
//! identity for guest/guest where `[auth] anonymous` lets the client in.
//! The password is checked by the core (constant time); this file only
//! reads the response and applies RabbitMQ's guest rules.

use std::net::SocketAddr;

use amq_protocol::types::AMQPValue;
use conveyor_core::Broker;
use conveyor_core::auth::{FailureReason, Principal, is_loopback};

/// Offered in `connection.start`, in order of preference.
pub const MECHANISMS: &[&str] = &["PLAIN", "AMQPLAIN"];

/// RabbitMQ's default user: with guest's password, the anonymous identity.
const GUEST: &str = "guest";

/// A login the broker refused, and the user name the client gave (if any) for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: FailureReason,
    pub user: String,
}

/// Who the client is, from its mechanism and response.
pub fn login(broker: &Broker, peer: SocketAddr, mechanism: &str, response: &[u8]) -> Result<(Principal, String), Refused> {
    let Some((user, password)) = credentials(mechanism, response) else {
        return Err(Refused {
            reason: FailureReason::BadMechanism,
            user: String::new(),
        });
    };
    let refused = |reason| Refused {
        reason,
        user: user.clone(),
    };
    let authorizer = broker.authorizer();
    let stored_guest = authorizer.user(GUEST).is_some();
    if user == GUEST && stored_guest && !is_loopback(peer.ip()) {
        // RabbitMQ's loopback_users: a guest user logs in from loopback only.
        return Err(refused(FailureReason::LoopbackOnly));
    }
    if user == GUEST && password == GUEST && !stored_guest {
        return if authorizer.anonymous_allowed(peer.ip()) {
            Ok((Principal::Anonymous, user))
        } else if is_loopback(peer.ip()) {
            Err(refused(FailureReason::AnonymousRefused))
        } else {
            Err(refused(FailureReason::LoopbackOnly))
        };
    }
    match authorizer.authenticate(&user, &password) {
        Ok(principal) => Ok((principal, user)),
        Err(reason) => Err(refused(reason)),
    }
}

/// (user, password) from a mechanism's response.
fn credentials(mechanism: &str, response: &[u8]) -> Option<(String, String)> {
    match mechanism {
        "PLAIN" => plain_credentials(response),
        "AMQPLAIN" => amqplain_credentials(response),
        _ => None,
    }
}

/// PLAIN (RFC 4616): "authzid\0user\0password".
fn plain_credentials(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|byte| *byte == 0);
    let _authzid = parts.next()?;
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let password = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((user, password))
}

/// AMQPLAIN: a field table without its length prefix, with LOGIN and PASSWORD.
fn amqplain_credentials(response: &[u8]) -> Option<(String, String)> {
    let mut framed = Vec::with_capacity(response.len() + 4);
    framed.extend_from_slice(&u32::try_from(response.len()).ok()?.to_be_bytes());
    framed.extend_from_slice(response);
    crate::nesting::check_table(&framed).ok()?;
    let (_, table) = amq_protocol::types::parsing::parse_field_table(framed.as_slice()).ok()?;
    let text = |key: &str| match table.inner().get(key) {
        Some(AMQPValue::LongString(value)) => String::from_utf8(value.as_bytes().to_vec()).ok(),
        Some(AMQPValue::ShortString(value)) => Some(value.to_string()),
        _ => None,
    };
    Some((text("LOGIN")?, text("PASSWORD")?))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use conveyor_core::BrokerConfig;
    use conveyor_core::auth::AnonymousAccess;

    use super::*;

    #[test]
    fn plain_credentials_split_on_nul() {
        assert_eq!(plain_credentials(b"\0guest\0guest"), Some(("guest".into(), "guest".into())));
        assert_eq!(plain_credentials(b"guest"), None);
        assert_eq!(credentials("EXTERNAL", b"\0guest\0guest"), None);
    }

    #[tokio::test]
    async fn guest_is_the_anonymous_identity_from_loopback_only_and_users_need_their_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("broker");
        broker.put_user("alice", Some("s3cret"), BTreeSet::new(), None).await.expect("user");
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let remote: SocketAddr = "10.0.0.9:5000".parse().expect("addr");
        let plain = |user: &str, password: &str| format!("\0{user}\0{password}").into_bytes();
        let reason =
            |result: Result<(Principal, String), Refused>| result.map(|(principal, _)| principal).map_err(|refused| refused.reason);
        assert_eq!(
            reason(login(&broker, local, "PLAIN", &plain("guest", "guest"))),
            Ok(Principal::Anonymous)
        );
        assert_eq!(
            reason(login(&broker, remote, "PLAIN", &plain("guest", "guest"))),
            Err(FailureReason::LoopbackOnly)
        );
        assert_eq!(
            reason(login(&broker, remote, "PLAIN", &plain("alice", "s3cret"))),
            Ok(Principal::User("alice".into()))
        );
        assert_eq!(
            reason(login(&broker, local, "PLAIN", &plain("alice", "nope"))),
            Err(FailureReason::BadCredentials)
        );
        assert_eq!(
            reason(login(&broker, local, "PLAIN", &plain("mallory", "x"))),
            Err(FailureReason::UnknownUser)
        );
        broker.authorizer().set_policy(conveyor_core::auth::AuthPolicy {
            anonymous: AnonymousAccess::Never,
            ..Default::default()
        });
        assert_eq!(
            reason(login(&broker, local, "PLAIN", &plain("guest", "guest"))),
            Err(FailureReason::AnonymousRefused)
        );
        broker.authorizer().set_policy(conveyor_core::auth::AuthPolicy {
            anonymous: AnonymousAccess::Always,
            ..Default::default()
        });
        assert_eq!(
            reason(login(&broker, remote, "PLAIN", &plain("guest", "guest"))),
            Ok(Principal::Anonymous)
        );
    }
}
