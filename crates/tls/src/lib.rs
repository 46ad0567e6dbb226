//! TLS for the broker's listeners, with rustls: the server settings built
//! from PEM files (`[tls]`: certificate chain, key, optional client CA),
//! a certificate and key that can be re-read while connections stay open
//! (`ServerTls::reload`, on SIGHUP), a listener that runs handshakes
//! concurrently and yields plain or TLS streams alike, and the common name
//! of a verified client certificate; and a client connector for Conveyor's
//! own clients. Knows nothing of Kafka, AMQP or HTTP: a door gets a byte
//! stream, its peer and the client's common name.

mod certificate;
mod client;
mod identity;
mod listener;
mod server;
mod stream;

use std::path::PathBuf;

pub use client::connector;
pub use identity::common_name;
pub use listener::{Accepted, HANDSHAKE_TIMEOUT, Listener};
pub use rustls_pki_types::ServerName;
pub use server::{ServerTls, TlsFiles};
pub use stream::Stream;
pub use tokio_rustls::TlsConnector;

/// Why TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("the private key in {path} cannot sign: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("client CA file {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
    #[error("TLS settings: {0}")]
    Config(String),
}
