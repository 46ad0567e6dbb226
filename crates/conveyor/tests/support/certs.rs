//! Certificates the TLS tests make for themselves: one CA, server
//! certificates for `localhost` and 127.0.0.1 it signs, and client
//! certificates whose CN names a user. PEM files in a directory of the test's.

use std::path::{Path, PathBuf};

use super::Server;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// A test CA and the files it wrote.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    /// The CA certificate (what clients trust, and `client_ca_file`).
    pub ca_file: PathBuf,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = name("Conveyor Test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA certificate");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, issuer.pem()).expect("write CA");
        TestCa {
            issuer,
            dir: dir.to_owned(),
            ca_file,
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 whose subject CN is `common_name`.
    pub fn server(&self, file_stem: &str, common_name: &str) -> CertFiles {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name = name(common_name);
        self.sign(file_stem, params)
    }

    /// A client certificate whose subject CN is `user`.
    pub fn client(&self, user: &str) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name = name(user);
        self.sign(&format!("client-{user}"), params)
    }

    fn sign(&self, file_stem: &str, params: CertificateParams) -> CertFiles {
        let key = KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.issuer).expect("sign");
        let files = CertFiles {
            cert_file: self.dir.join(format!("{file_stem}.pem")),
            key_file: self.dir.join(format!("{file_stem}.key")),
        };
        // Written to a temporary name and renamed, so a reload never reads half a file.
        for (path, text) in [(&files.key_file, key.serialize_pem()), (&files.cert_file, certificate.pem())] {
            let partial = path.with_extension("partial");
            std::fs::write(&partial, text).expect("write PEM");
            std::fs::rename(&partial, path).expect("rename PEM");
        }
        files
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes a config file with `[tls]` (client certificates verified against
/// `client_ca` when given) and `extra` TOML, and starts a broker with every
/// TLS listener on a free loopback port. Scripts get the CA in `CONVEYOR_TEST_CA`.
pub fn start_with_tls(dir: &Path, certificate: &CertFiles, client_ca: Option<&Path>, extra: &str) -> Server {
    let mut config = format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        certificate.cert_file, certificate.key_file
    );
    if let Some(ca) = client_ca {
        config.push_str(&format!("client_ca_file = {ca:?}\n"));
    }
    config.push_str(extra);
    let config_file = dir.join("conveyor.toml");
    std::fs::write(&config_file, config).expect("write config");
    let data_dir = dir.join("data");
    let config_arg = config_file.to_str().expect("utf-8 path");
    let mut server = Server::start_with(
        &data_dir,
        &[
            "--config",
            config_arg,
            "--kafka-tls-addr",
            "127.0.0.1:0",
            "--amqp-tls-addr",
            "127.0.0.1:0",
            "--https-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    let ca_file = dir.join("ca.pem");
    server.script_env.push(("CONVEYOR_TEST_CA".into(), ca_file.display().to_string()));
    server
}

/// Starts a broker that verifies client certificates (with `extra` TOML)
/// and runs `script` with the certificate and key of `carol` and of
/// `mallory`, both signed by the test CA, as its four arguments.
pub fn run_with_client_certificates(script: &str, extra: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("server", "conveyor-test");
    let carol = ca.client("carol");
    let mallory = ca.client("mallory");
    let server = start_with_tls(dir.path(), &certificate, Some(&ca.ca_file), extra);
    let path = |file: &Path| file.display().to_string();
    super::run_script(
        &server,
        script,
        &[
            &path(&carol.cert_file),
            &path(&carol.key_file),
            &path(&mallory.cert_file),
            &path(&mallory.key_file),
        ],
    );
}
