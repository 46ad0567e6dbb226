//! Kafka authentication and authorization with real clients: SASL PLAIN
//! and SCRAM on the plain and TLS listeners against users of the config
//! file, KIP-554 credentials, and ACLs made with the AdminClient.

mod support;

use support::certs::{TestCa, start_with_tls};
use support::run_script;

/// An administrator: every right once authenticated.
const USERS: &str = "[users.alice]\npassword = \"s3cret\"\ntags = [\"administrator\"]\n";
/// A user without tags: nothing until ACLs grant it.
const PLAIN_USER: &str = "[users.alice]\npassword = \"s3cret\"\n";

#[test]
fn confluent_kafka_over_sasl_ssl_with_scram_sha_512_and_a_wrong_password_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("server", "conveyor-test");
    let config = format!("[auth]\nanonymous = \"never\"\n{USERS}");
    let server = start_with_tls(dir.path(), &certificate, None, &config);
    run_script(&server, "tls/sasl_confluent.py", &["alice", "s3cret"]);
    let logs = server.logs().join("\n");
    assert!(logs.contains("login refused"), "a failed login is logged:\n{logs}");
}

#[test]
fn kafka_python_with_scram_sha_256_on_sasl_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("server", "conveyor-test");
    let server = start_with_tls(dir.path(), &certificate, None, USERS);
    run_script(&server, "tls/sasl_kafka_python.py", &["alice", "s3cret"]);
}

#[test]
fn kafkajs_with_ssl_and_sasl_plain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("server", "conveyor-test");
    let server = start_with_tls(dir.path(), &certificate, None, USERS);
    run_script(&server, "tls/sasl_kafkajs.js", &["alice", "s3cret"]);
}

#[test]
fn a_user_created_with_alter_user_scram_credentials_logs_in() {
    let (_dir, server) = support::Server::start_in_tempdir();
    run_script(&server, "tls/scram_credentials_confluent.py", &[]);
}

#[test]
fn acls_from_the_admin_client_grant_a_prefix_and_refuse_other_topics_and_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conveyor.toml"), PLAIN_USER).expect("write config");
    let config = dir.path().join("conveyor.toml");
    let server = support::Server::start_with(&dir.path().join("data"), &["--config", config.to_str().expect("utf-8 path")], &[]);
    run_script(&server, "tls/acls_confluent.py", &["alice", "s3cret"]);
}

#[test]
fn transactional_requests_need_write_on_their_id_and_the_topics_and_groups_they_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conveyor.toml"), PLAIN_USER).expect("write config");
    let config = dir.path().join("conveyor.toml");
    let server = support::Server::start_with(&dir.path().join("data"), &["--config", config.to_str().expect("utf-8 path")], &[]);
    run_script(&server, "tls/transaction_acls_confluent.py", &["alice", "s3cret"]);
}

#[test]
fn a_client_certificate_without_sasl_makes_the_kafka_principal_its_common_name() {
    support::certs::run_with_client_certificates(
        "tls/mtls_kafka_confluent.py",
        "[auth]\nanonymous = \"never\"\n[users.carol]\ntags = [\"administrator\"]\n",
    );
}
