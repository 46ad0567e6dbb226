//! The `conveyor bench` load generators against a spawned `conveyor serve`,
//! with tiny workloads: they must keep working as the broker changes, and
//! their reports must account for every message.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Server, binary, forward_lines, wait_bounded};

const BENCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `conveyor bench <args> --json --quiet` and returns its phases by name.
fn bench(server: &Server, args: &[&str]) -> Vec<Value> {
    let mut child = Command::new(binary())
        .arg("bench")
        .args(args)
        .args(["--json", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn conveyor bench");
    let stdout = forward_lines(child.stdout.take().expect("stdout"));
    let stderr = forward_lines(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, BENCH_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout: String = stdout.iter().collect::<Vec<_>>().join("\n");
    let stderr: String = stderr.iter().collect::<Vec<_>>().join("\n");
    match status {
        Some(status) if status.success() => {}
        other => panic!(
            "conveyor bench {args:?} ended with {other:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- broker log\n{}",
            server.logs().join("\n")
        ),
    }
    let phases: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("bench JSON: {error}: {stdout}"));
    phases.as_array().expect("a list of phases").clone()
}

fn phase<'a>(phases: &'a [Value], prefix: &str) -> &'a Value {
    phases
        .iter()
        .find(|phase| phase["name"].as_str().is_some_and(|name| name.starts_with(prefix)))
        .unwrap_or_else(|| panic!("no phase {prefix:?} in {phases:?}"))
}

#[test]
fn bench_sqs_sends_receives_and_deletes_every_message_and_measures_long_poll_latency() {
    let (_dir, server) = Server::start_in_tempdir();
    let endpoint = format!("http://{}", server.http_addr);
    let phases = bench(
        &server,
        &[
            "sqs",
            "--endpoint",
            &endpoint,
            "--messages",
            "205",
            "--clients",
            "3",
            "--message-bytes",
            "100",
            "--latency-rate",
            "50",
            "--latency-seconds",
            "1",
        ],
    );
    // The bench itself fails unless every message came back exactly once and
    // the queue was empty afterwards; the report must say so too.
    assert_eq!(phase(&phases, "send x3")["messages"], 205);
    assert_eq!(phase(&phases, "receive+delete x3")["messages"], 205);
    let latency = phase(&phases, "long poll @ 50/s");
    assert_eq!(latency["messages"], 50);
    assert_eq!(latency["latency_ms"]["samples"], 50);
    assert!(latency["latency_ms"]["p99"].as_f64().is_some_and(|p99| p99 > 0.0));
}
