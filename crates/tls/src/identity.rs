//! Who a client certificate names: the common name (CN) of its subject,
//! the user RabbitMQ's EXTERNAL mechanism and Kafka's mTLS principal take.
//! Only reads a certificate rustls has already verified.

use x509_parser::prelude::{FromDer, X509Certificate};

/// The first CN of the certificate's subject, if it has one in a string type.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let name = certificate.subject().iter_common_name().next()?.as_str().ok()?.to_owned();
    Some(name)
}
