//! The client side, for Conveyor's own clients (`conveyor bench`): a rustls
//! connector that trusts the certificates of one PEM file (the CA that
//! signed the broker's certificate). Knows nothing of any protocol.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::TlsError;
use crate::server::roots;

/// A connector that trusts the certificates in `ca_file`, with rustls's
/// ring provider as the listeners use.
pub fn connector(ca_file: &Path) -> Result<TlsConnector, TlsError> {
    let roots = roots(ca_file)?;
    #[allow(deprecated, reason = "ring, as the listeners use (server.rs)")]
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
