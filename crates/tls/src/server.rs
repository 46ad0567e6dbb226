//! The TLS server settings every TLS listener shares: protocol versions
//! and cipher suites (rustls' safe defaults, ring's implementations), the
//! reloadable certificate, and — when a client CA is configured — client
//! certificates verified against it. A client without a certificate is
//! still let in (Kafka's `ssl.client.auth=requested`): it authenticates
//! in its protocol instead, and a door decides what it may do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::TlsError;
use crate::certificate::{self, ReloadableCertificate};

/// `[tls]` of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates are verified against.
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ServerTls {
    files: TlsFiles,
    certificate: Arc<ReloadableCertificate>,
    config: Arc<ServerConfig>,
}

impl ServerTls {
    /// Reads the files and builds the settings; any unreadable or
    /// mismatched file is an error here rather than at the first handshake.
    pub fn load(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let certificate = Arc::new(ReloadableCertificate::new(certificate::load(&files.cert_file, &files.key_file)?));
        // ring rather than aws-lc-rs: no C toolchain or cmake in the build, and
        // it is already in the tree. It offers no post-quantum key exchange yet.
        #[allow(deprecated, reason = "ring is chosen for the build; see above")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Config(error.to_string()))?;
        let builder = match &files.client_ca_file {
            Some(path) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(path)?), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|error| TlsError::ClientCa {
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_cert_resolver(Arc::clone(&certificate) as Arc<_>);
        Ok(ServerTls {
            files,
            certificate,
            config: Arc::new(config),
        })
    }

    /// Re-reads the certificate and key: the next handshake presents them,
    /// open connections keep theirs. On error the old ones stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = certificate::load(&self.files.cert_file, &self.files.key_file)?;
        self.certificate.replace(key);
        info!(cert_file = %self.files.cert_file.display(), "TLS certificate reloaded");
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether client certificates are verified (and so may name the client).
    pub fn verifies_clients(&self) -> bool {
        self.files.client_ca_file.is_some()
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }
}

/// The certificates of a PEM file, as roots of trust.
pub(crate) fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificate::certificates(path)? {
        roots.add(certificate).map_err(|error| TlsError::ClientCa {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(roots)
}
