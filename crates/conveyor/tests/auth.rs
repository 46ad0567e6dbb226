//! Users, grants and logins end to end: pika against RabbitMQ permissions
//! set with the CLI, the admin API's HTTP Basic auth, tags and cross-site
//! refusals, the failure counters in /metrics, and users and grants
//! surviving a restart — all against a spawned `conveyor serve`.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use support::{Server, binary, run_script};

const CONFIG: &str = "[auth]\nanonymous = \"never\"\n\
[amqp]\nvhosts = [\"staging\"]\n\
[users.admin]\npassword = \"adminpw\"\ntags = [\"administrator\"]\n\
[users.watcher]\npassword = \"watchpw\"\ntags = [\"monitoring\"]\n\
[users.alice]\npassword = \"s3cret\"\n";

fn start(dir: &Path, config: &str) -> Server {
    let path = dir.join("conveyor.toml");
    std::fs::write(&path, config).expect("write config");
    let path = path.to_string_lossy().into_owned();
    Server::start_with(&dir.join("data"), &["--config", &path], &[])
}

/// Runs a client command of the binary against `server`; returns (success, stdout + stderr).
fn cli(server: &Server, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(binary())
        .args(args)
        .arg("--server")
        .arg(format!("http://{}", server.http_addr))
        .env_remove("CONVEYOR_USER")
        .env_remove("CONVEYOR_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("run the CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// One HTTP/1.1 request on a fresh connection; (status, headers and body as text).
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    support::http_exchange(addr, method, path, headers, body)
}

const ADMIN: (&str, &str) = ("authorization", "Basic YWRtaW46YWRtaW5wdw=="); // admin:adminpw
const WATCHER: (&str, &str) = ("authorization", "Basic d2F0Y2hlcjp3YXRjaHB3"); // watcher:watchpw

#[test]
fn pika_users_with_granted_permissions_work_denied_configure_and_vhosts_are_refused_and_grants_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), CONFIG);
    let admin = [("CONVEYOR_USER", "admin"), ("CONVEYOR_PASSWORD", "adminpw")];
    let (ok, text) = cli(&server, &["permission", "set", "alice", "", ".*", ".*"], &[]);
    assert!(!ok && text.contains("credentials are required"), "anonymous is never: {text}");
    let (ok, text) = cli(&server, &["permission", "set", "alice", "", ".*", ".*", "--vhost", "/"], &admin);
    assert!(ok, "{text}");
    let (ok, text) = cli(
        &server,
        &["user", "add", "carol", "--new-password", "c4rol", "--tag", "monitoring"],
        &admin,
    );
    assert!(ok, "{text}");
    let (ok, text) = cli(&server, &["permission", "list"], &admin);
    assert!(ok && text.contains("alice"), "{text}");
    let queue = format!("granted-{}", std::process::id());
    run_script(&server, "amqp/permissions_pika.py", &["before", &queue]);
    assert!(server.terminate().0.success(), "SIGTERM exits 0");

    let server = start(dir.path(), CONFIG);
    run_script(&server, "amqp/permissions_pika.py", &["after", &queue]);
    let carol = [("CONVEYOR_USER", "carol"), ("CONVEYOR_PASSWORD", "c4rol")];
    let (ok, text) = cli(&server, &["user", "list"], &carol);
    assert!(
        ok && text.contains("carol") && text.contains("monitoring"),
        "a user made at runtime survives: {text}"
    );
    let (ok, text) = cli(&server, &["user", "delete", "alice"], &carol);
    assert!(!ok && text.contains("administrator"), "monitoring may not change anything: {text}");
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("conveyor_auth_failures_total{protocol=\"amqp\",reason=\"bad_credentials\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("conveyor_authorization_denials_total{protocol=\"amqp\"} 2"),
        "{metrics}"
    );
}

#[test]
fn the_admin_api_needs_credentials_when_anonymous_is_never_a_tag_to_change_things_and_refuses_cross_site_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), CONFIG);
    let addr = server.http_addr;
    let (status, answer) = http(addr, "GET", "/api/v1/overview", &[], "");
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("www-authenticate: basic realm=\"conveyor\""),
        "{answer}"
    );
    assert!(answer.contains("\"unauthorized\""), "{answer}");
    let (status, _) = http(addr, "GET", "/api/v1/overview", &[("authorization", "Basic YWRtaW46bm9wZQ==")], "");
    assert_eq!(status, 401, "a wrong password");
    assert_eq!(http(addr, "GET", "/api/v1/overview", &[ADMIN], "").0, 200);
    assert_eq!(http(addr, "GET", "/api/v1/queues", &[WATCHER], "").0, 200, "monitoring reads");
    let create = r#"{"name": "orders", "partitions": 1}"#;
    let json = ("content-type", "application/json");
    let (status, answer) = http(addr, "POST", "/api/v1/topics", &[WATCHER, json], create);
    assert_eq!(status, 403, "monitoring does not change: {answer}");
    assert!(answer.contains("\"forbidden\""), "{answer}");
    // What a form on another site would send, with the browser's cached credentials.
    let form = ("content-type", "application/x-www-form-urlencoded");
    let evil = ("origin", "http://evil.example");
    let (status, answer) = http(addr, "POST", "/api/v1/queues/jobs/purge", &[ADMIN, form, evil], "x=1");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("cross-site"), "{answer}");
    let (status, answer) = http(addr, "POST", "/api/v1/queues/jobs/purge", &[ADMIN, form], "x=1");
    assert_eq!(status, 403, "a form body without a custom header: {answer}");
    let (status, answer) = http(addr, "POST", "/api/v1/topics", &[ADMIN, json, evil], create);
    assert_eq!(status, 403, "JSON from another origin: {answer}");
    let (status, answer) = http(addr, "POST", "/api/v1/topics", &[ADMIN, json], create);
    assert_eq!(status, 201, "{answer}");
    // /health and /metrics stay open.
    assert_eq!(http(addr, "GET", "/health", &[], "").0, 200);
    let (status, metrics) = http(addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("conveyor_auth_failures_total{protocol=\"http\",reason=\"bad_credentials\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("conveyor_authorization_denials_total{protocol=\"http\"} 1"),
        "{metrics}"
    );
}

#[test]
fn under_the_loopback_default_the_admin_api_and_metrics_need_no_credentials_and_monitoring_metrics_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        dir.path(),
        "[auth]\nmetrics = \"monitoring\"\n[users.watcher]\npassword = \"watchpw\"\ntags = [\"monitoring\"]\n[users.alice]\npassword = \"s3cret\"\n",
    );
    let addr = server.http_addr;
    let (status, answer) = http(addr, "GET", "/api/v1/whoami", &[], "");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"anonymous\":true"), "{answer}");
    assert_eq!(
        http(addr, "DELETE", "/api/v1/vhosts/nothing", &[], "").0,
        404,
        "anonymous may change things"
    );
    assert_eq!(http(addr, "GET", "/metrics", &[], "").0, 200, "the anonymous identity monitors");
    let alice = ("authorization", "Basic YWxpY2U6czNjcmV0"); // alice:s3cret
    assert_eq!(http(addr, "GET", "/metrics", &[alice], "").0, 403, "alice has no monitoring tag");
    assert_eq!(http(addr, "GET", "/metrics", &[WATCHER], "").0, 200);
}
