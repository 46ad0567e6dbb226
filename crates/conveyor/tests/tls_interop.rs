//! TLS listeners: Kafka (SSL), AMQP (amqps) and HTTPS served with a
//! certificate the test makes, to real clients; SIGHUP swaps the
//! certificate for the next connection without dropping open ones.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::certs::{TestCa, start_with_tls};
use support::{Server, run_script};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

const ALICE: &str = "[amqp.users]\nalice = \"s3cret\"\n";

#[test]
fn confluent_kafka_pika_and_boto3_work_over_the_tls_listeners() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("server", "conveyor-test");
    let server = start_with_tls(dir.path(), &certificate, None, ALICE);
    assert!(server.kafka_tls_addr.is_some() && server.amqp_tls_addr.is_some() && server.https_addr.is_some());
    run_script(&server, "tls/clients_over_tls.py", &["alice", "s3cret"]);
}

#[test]
fn amqplib_connects_with_an_amqps_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("server", "conveyor-test");
    let server = start_with_tls(dir.path(), &certificate, None, ALICE);
    run_script(&server, "tls/amqps_amqplib.js", &["alice", "s3cret"]);
}

#[test]
fn tls_listeners_are_off_unless_configured_and_named_in_the_ready_line() {
    let (_dir, server) = Server::start_in_tempdir();
    assert_eq!((server.kafka_tls_addr, server.amqp_tls_addr, server.https_addr), (None, None, None));
}

/// A TLS client that trusts only the test CA.
fn connector(ca: &TestCa) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&ca.ca_file).expect("read CA");
    for certificate in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(certificate.expect("CA PEM")).expect("add CA");
    }
    #[allow(deprecated, reason = "the broker uses ring too")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Opens a TLS connection to `addr` and returns it with the CN of the certificate the broker presented.
async fn open(connector: &TlsConnector, addr: std::net::SocketAddr) -> (tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("a certificate")
        .clone();
    let common_name = conveyor_tls::common_name(leaf.as_ref()).expect("a CN");
    (stream, common_name)
}

#[test]
fn sighup_serves_a_new_certificate_to_the_next_connection_and_keeps_open_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("server", "conveyor-before");
    let server = start_with_tls(dir.path(), &certificate, None, "");
    let amqp_tls = server.amqp_tls_addr.expect("amqps listener");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let connector = connector(&ca);
        let (mut before, common_name) = open(&connector, amqp_tls).await;
        assert_eq!(common_name, "conveyor-before");

        // Same file names, new contents: what a certificate renewal does.
        ca.server("server", "conveyor-after");
        support::send_signal(server.pid(), libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_after, common_name) = open(&connector, amqp_tls).await;
            if common_name == "conveyor-after" {
                break;
            }
            assert!(Instant::now() < deadline, "still served {common_name} after SIGHUP");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // The connection opened before the reload still speaks AMQP.
        before.write_all(b"AMQP\x00\x00\x09\x01").await.expect("protocol header");
        let mut frame_start = [0u8; 7];
        tokio::time::timeout(Duration::from_secs(5), before.read_exact(&mut frame_start))
            .await
            .expect("connection.start in time")
            .expect("read connection.start");
        assert_eq!(frame_start[0], 1, "a method frame (connection.start) on the old connection");
    });
}

#[test]
fn pika_logs_in_with_external_as_the_client_certificates_common_name() {
    support::certs::run_with_client_certificates("tls/external_pika.py", "[users.carol]\ntags = [\"administrator\"]\n");
}
