//! The server's certificate chain and key, behind an `ArcSwap` so that a
//! reload replaces them for the next handshake while connections made with
//! the old ones go on. Knows PEM files and rustls' signing keys; not when
//! to reload (the binary's SIGHUP handler decides).

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// Resolves every handshake to the current certificate.
#[derive(Debug)]
pub(crate) struct ReloadableCertificate {
    current: ArcSwap<CertifiedKey>,
}

impl ReloadableCertificate {
    pub(crate) fn new(key: CertifiedKey) -> ReloadableCertificate {
        ReloadableCertificate {
            current: ArcSwap::from_pointee(key),
        }
    }

    /// Handshakes from now on present `key`.
    pub(crate) fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reads a PEM chain (leaf first) and its private key, and checks that they belong together.
pub(crate) fn load(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(cert_file)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_file.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| TlsError::Read {
        path: key_file.to_owned(),
        reason: error.to_string(),
    })?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|error| TlsError::Key {
        path: key_file.to_owned(),
        reason: error.to_string(),
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    // A mismatch would fail every handshake; refuse it where the operator sees it.
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(TlsError::KeyMismatch {
            cert: cert_file.to_owned(),
            key: key_file.to_owned(),
        }),
    }
}

/// Every certificate of a PEM file.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |reason: String| TlsError::Read {
        path: path.to_owned(),
        reason,
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|error| read_error(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| read_error(error.to_string()))
}
