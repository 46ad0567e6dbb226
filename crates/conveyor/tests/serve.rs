//! The process contract of `conveyor serve`: health, signals, restart, the
//! data-directory lock, configuration sources, --version and --help.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Server, binary};

/// Every listener on a free port, so tests pass while a broker runs on the defaults.
const EPHEMERAL_PORTS: [&str; 6] = [
    "--http-addr",
    "127.0.0.1:0",
    "--kafka-addr",
    "127.0.0.1:0",
    "--amqp-addr",
    "127.0.0.1:0",
];

#[test]
fn a_busy_port_names_the_flag_to_change_and_leaves_no_data_dir_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_addr = busy.local_addr().expect("addr").to_string();
    let data_dir = dir.path().join("data");
    let output = Command::new(binary())
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--kafka-addr",
            "127.0.0.1:0",
            "--amqp-addr",
            &busy_addr,
        ])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&busy_addr), "names the address: {stderr}");
    assert!(
        stderr.contains("--amqp-addr") && stderr.contains("CONVEYOR_AMQP_ADDR"),
        "names the flag and variable: {stderr}"
    );
    assert!(!data_dir.exists(), "a failed start creates no data directory");
}

#[test]
fn health_answers_200_and_sigterm_exits_zero_then_a_restart_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path());
    assert_eq!(server.http_get("/health").0, 200);
    let (status, elapsed) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?} to stop");
    let mut again = Server::start(dir.path());
    assert_eq!(again.http_get("/health").0, 200);
    assert!(again.signal_and_wait(libc::SIGINT).0.success(), "SIGINT exits 0 too");
}

#[test]
fn a_second_serve_on_the_same_data_dir_fails_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Server::start(dir.path());
    let output = Command::new(binary())
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(EPHEMERAL_PORTS)
        .output()
        .expect("run second serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another conveyor process"), "stderr: {stderr}");
    assert!(stderr.contains(&first.pid().to_string()), "names the holder's pid: {stderr}");
    // The first broker is unharmed.
    assert_eq!(first.http_get("/health").0, 200);
}

#[test]
fn a_killed_broker_restarts_on_its_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path());
    server.kill();
    let again = Server::start(dir.path());
    assert_eq!(again.http_get("/health").0, 200);
}

#[test]
fn environment_variables_and_the_config_file_are_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from_file = dir.path().join("from-file");
    // The harness always passes --data-dir, so the file's data_dir is checked
    // with a plain run and the variables through settings the harness leaves alone.
    let config = dir.path().join("conveyor.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[topics]\ndurability = \"never\"\n",
            from_file.display().to_string()
        ),
    )
    .expect("write config");
    let output = Command::new(binary())
        .arg("serve")
        .args(EPHEMERAL_PORTS)
        .env("CONVEYOR_CONFIG", &config)
        .env("CONVEYOR_DURABILITY", "sometimes")
        .output()
        .expect("run");
    assert!(!output.status.success(), "an invalid CONVEYOR_DURABILITY is refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid durability"));
    let mut child = Command::new(binary())
        .arg("serve")
        .args(EPHEMERAL_PORTS)
        .env("CONVEYOR_CONFIG", &config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let ready = support::forward_lines(child.stdout.take().expect("stdout"));
    let line = ready.recv_timeout(support::START_TIMEOUT).expect("ready line");
    assert!(
        line.contains(&from_file.display().to_string()),
        "serves the file's data_dir: {line}"
    );
    assert!(from_file.join("meta").exists(), "data written where the file said");
    support::send_signal(child.id() as i32, libc::SIGTERM);
    assert!(support::wait_bounded(&mut child, support::STOP_TIMEOUT).expect("exits").success());
}

#[test]
fn version_and_help_describe_the_binary() {
    let output = Command::new(binary()).arg("--version").output().expect("run");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("conveyor {}", env!("CARGO_PKG_VERSION"))
    );
    let output = Command::new(binary()).args(["serve", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--data-dir",
        "--kafka-addr",
        "--amqp-addr",
        "--http-addr",
        "--config",
        "CONVEYOR_DATA_DIR",
        "Examples:",
    ] {
        assert!(help.contains(needle), "help lacks {needle}: {help}");
    }
    let output = Command::new(binary()).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    for door in ["Kafka", "AMQP", "SQS", "SNS", "admin API", "console", "/metrics", "/health"] {
        assert!(help.contains(door), "help does not name {door}: {help}");
    }
}
