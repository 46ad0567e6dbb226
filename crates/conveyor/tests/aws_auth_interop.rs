//! SigV4 on the SQS and SNS doors with boto3 and the AWS SDK v3: keys from
//! the config file's users, a wrong secret, an unknown key with and without
//! anonymous access, a user without the right.

mod support;

use support::{Server, run_script};

const USERS: &str = "[users.alice]\npassword = \"s3cret\"\ntags = [\"administrator\"]\naws_access_key_id = \"AKIAALICE0000000000\"\naws_secret_access_key = \"alice-secret\"\n\n[users.bob]\naws_access_key_id = \"AKIABOB000000000000\"\naws_secret_access_key = \"bob-secret\"\n";

fn server(dir: &tempfile::TempDir, extra: &str) -> Server {
    let config = dir.path().join("conveyor.toml");
    std::fs::write(&config, format!("{extra}{USERS}")).expect("write config");
    Server::start_with(&dir.path().join("data"), &["--config", config.to_str().expect("utf-8 path")], &[])
}

#[test]
fn boto3_signs_with_store_keys_and_wrong_secrets_and_missing_rights_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&dir, "");
    run_script(&server, "tls/sigv4_boto3.py", &["loopback"]);
}

#[test]
fn boto3_with_an_unknown_key_gets_invalid_client_token_id_when_anonymous_is_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&dir, "[auth]\nanonymous = \"never\"\n");
    run_script(&server, "tls/sigv4_boto3.py", &["never"]);
}

#[test]
fn aws_sdk_v3_signs_with_store_keys_and_a_wrong_secret_is_signature_does_not_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&dir, "");
    run_script(&server, "tls/sigv4_sdk_v3.js", &[]);
}
