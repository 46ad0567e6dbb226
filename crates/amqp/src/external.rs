//! The AMQP EXTERNAL mechanism (RabbitMQ's `rabbit_auth_mechanism_ssl`):
//! offered in `connection.start` only to a client that presented a
//! verified TLS certificate, it logs the client in as the certificate's CN
//! (RabbitMQ's default `ssl_cert_login_from = common_name`), which must be
//! a user the broker knows; no password is asked. Knows nothing of TLS
//! itself: the listener hands it the verified CN.

use conveyor_core::Broker;
use conveyor_core::auth::{FailureReason, Principal};

use crate::login::{self, Refused};

/// The mechanism's name on the wire.
pub const MECHANISM: &str = "EXTERNAL";

/// The mechanisms `connection.start` offers: EXTERNAL last, and only with a certificate.
pub fn mechanisms(client_common_name: Option<&str>) -> String {
    let mut offered: Vec<&str> = login::MECHANISMS.to_vec();
    if client_common_name.is_some() {
        offered.push(MECHANISM);
    }
    offered.join(" ")
}

/// Who a client logging in with EXTERNAL is: the user its certificate names.
pub fn login(broker: &Broker, client_common_name: Option<&str>) -> Result<(Principal, String), Refused> {
    let Some(common_name) = client_common_name else {
        // Not offered without a certificate: as any mechanism not offered.
        return Err(Refused {
            reason: FailureReason::BadMechanism,
            user: String::new(),
        });
    };
    if broker.authorizer().user(common_name).is_none() {
        return Err(Refused {
            reason: FailureReason::UnknownUser,
            user: common_name.to_owned(),
        });
    }
    Ok((Principal::User(common_name.to_owned()), common_name.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use conveyor_core::BrokerConfig;

    use super::*;

    #[tokio::test]
    async fn external_is_offered_with_a_certificate_and_logs_in_a_known_common_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("broker");
        broker.put_user("carol", None, BTreeSet::new(), None).await.expect("user");
        assert_eq!(mechanisms(None), "PLAIN AMQPLAIN");
        assert_eq!(mechanisms(Some("carol")), "PLAIN AMQPLAIN EXTERNAL");
        assert_eq!(
            login(&broker, Some("carol")).map(|(principal, _)| principal),
            Ok(Principal::User("carol".into()))
        );
        assert_eq!(
            login(&broker, Some("mallory")).map_err(|refused| refused.reason),
            Err(FailureReason::UnknownUser)
        );
        assert_eq!(
            login(&broker, None).map_err(|refused| refused.reason),
            Err(FailureReason::BadMechanism)
        );
    }
}
