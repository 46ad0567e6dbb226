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
    bench_against(args, &|| server.logs().join("\n"))
}

/// [`bench`] against any server; `server_log` says what it logged, for failures.
fn bench_against(args: &[&str], server_log: &dyn Fn() -> String) -> Vec<Value> {
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
            "conveyor bench {args:?} ended with {other:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
            server_log()
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

/// The names of the broker's topics, from the admin API.
fn topic_names(server: &Server) -> Vec<String> {
    let (status, body) = server.http_get("/api/v1/topics");
    assert_eq!(status, 200, "{body}");
    let topics: Value = serde_json::from_str(&body).expect("topics JSON");
    topics
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|topic| topic["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn bench_kafka_sized_by_messages_stays_that_small_and_deletes_its_topic_unless_kept() {
    let (_dir, server) = Server::start_in_tempdir();
    let brokers = server.kafka_addr.to_string();
    // The latency phase would send 1,000/s for 10 s: --messages caps it.
    let args = ["kafka", "--brokers", &brokers, "--messages", "300", "--latency-rate", "1000"];
    let phases = bench(&server, &args);
    let latency = phase(&phases, "e2e @ 1000/s");
    assert_eq!(latency["messages"], 300, "{latency}");
    assert_eq!(latency["latency_ms"]["samples"], 300, "{latency}");
    assert!(
        !topic_names(&server).iter().any(|name| name.starts_with("conveyor-bench-")),
        "the bench left its topic behind: {:?}",
        topic_names(&server)
    );
    let kept: Vec<&str> = args.iter().copied().chain(["--keep"]).collect();
    bench(&server, &kept);
    assert_eq!(
        topic_names(&server)
            .iter()
            .filter(|name| name.starts_with("conveyor-bench-"))
            .count(),
        1,
        "--keep keeps the topic"
    );
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

#[test]
fn bench_amqp_publishes_consumes_and_drains_every_message_and_measures_latency() {
    let (_dir, server) = Server::start_in_tempdir();
    let url = format!("amqp://guest:guest@{}/%2f", server.amqp_addr);
    let phases = bench(
        &server,
        &[
            "amqp",
            "--url",
            &url,
            "--messages",
            "300",
            "--message-bytes",
            "100",
            "--in-flight",
            "50",
            "--consumers",
            "2",
            "--latency-rate",
            "100",
            "--latency-seconds",
            "1",
        ],
    );
    // The bench fails unless every publish is confirmed and every message consumed.
    assert_eq!(phase(&phases, "publish")["messages"], 300);
    assert_eq!(phase(&phases, "consume")["messages"], 300);
    assert_eq!(phase(&phases, "work queue x2")["messages"], 300);
    let latency = phase(&phases, "e2e @ 100/s");
    assert_eq!(latency["latency_ms"]["samples"], 100);
}

#[test]
fn bench_kafka_and_amqp_run_over_tls_trusting_the_ca_they_are_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = support::certs::TestCa::new(dir.path());
    let certificate = ca.server("server", "localhost");
    let server = support::certs::start_with_tls(dir.path(), &certificate, None, "");
    let ca_file = ca.ca_file.to_str().expect("utf-8 path");
    // A plain client on a TLS port gets no answer it can read: success means TLS.
    let kafka = format!("localhost:{}", server.kafka_tls_addr.expect("Kafka TLS listener").port());
    let phases = bench(
        &server,
        &[
            "kafka",
            "--brokers",
            &kafka,
            "--tls-ca-file",
            ca_file,
            "--messages",
            "300",
            "--latency-rate",
            "0",
        ],
    );
    assert_eq!(phase(&phases, "produce")["messages"], 300);
    assert_eq!(phase(&phases, "consume")["messages"], 300);
    let amqp = format!(
        "amqps://guest:guest@localhost:{}/%2f",
        server.amqp_tls_addr.expect("AMQP TLS listener").port()
    );
    let phases = bench(
        &server,
        &[
            "amqp",
            "--url",
            &amqp,
            "--tls-ca-file",
            ca_file,
            "--messages",
            "300",
            "--publish-only",
        ],
    );
    assert_eq!(phase(&phases, "publish")["messages"], 300);
}

#[test]
fn bench_amqp_publish_only_runs_against_the_no_op_sink_which_confirms_every_publish() {
    let port = support::free_port();
    let mut sink = Stopped(
        Command::new(binary())
            .args(["bench", "amqp-sink", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn conveyor bench amqp-sink"),
    );
    let sink_stdout = forward_lines(sink.0.stdout.take().expect("stdout"));
    let sink_stderr = forward_lines(sink.0.stderr.take().expect("stderr"));
    // Bounded: the sink listens within seconds or the test fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the sink did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let logs = || {
        let lines: Vec<String> = sink_stdout.try_iter().chain(sink_stderr.try_iter()).collect();
        lines.join("\n")
    };
    let phases = bench_against(
        &["amqp", "--url", &url, "--messages", "2000", "--in-flight", "100", "--publish-only"],
        &logs,
    );
    drop(sink);
    assert_eq!(phases.len(), 1, "only the publish phase: {phases:?}");
    assert_eq!(phase(&phases, "publish")["messages"], 2000);
}

/// A child process killed (and reaped) when dropped, even by a failing test.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bench_kafka_compaction_measures_produce_while_the_cleaner_compacts_against_produce_without() {
    let (_dir, server) = support::start_with_config("[log_cleaner]\nbackoff_ms = 100\n");
    let brokers = server.kafka_addr.to_string();
    let args = [
        "kafka",
        "--brokers",
        &brokers,
        "--messages",
        "2000",
        "--latency-rate",
        "0",
        "--compaction",
        "--compaction-keys",
        "10",
    ];
    let phases = bench(&server, &args);
    let without = phase(&phases, "produce keyed, no compaction");
    let during = phase(&phases, "produce keyed, while compacting");
    assert_eq!(
        (without["messages"].as_u64(), during["messages"].as_u64()),
        (Some(2000), Some(2000))
    );
    let ratio = &during["ratio_to_phase"];
    assert_eq!(ratio[0], "produce keyed, no compaction", "{during}");
    assert!(ratio[1].as_f64().is_some_and(|ratio| ratio > 0.0), "{during}");
    assert!(
        !topic_names(&server).iter().any(|name| name.starts_with("conveyor-bench-")),
        "the bench left its topics behind: {:?}",
        topic_names(&server)
    );
}

#[test]
fn bench_kafka_and_amqp_latency_only_run_the_latency_phase_alone_with_the_broker_cpu() {
    let (_dir, server) = Server::start_in_tempdir();
    let (brokers, url) = (
        server.kafka_addr.to_string(),
        format!("amqp://guest:guest@{}/%2f", server.amqp_addr),
    );
    let pid = server.pid().to_string();
    let runs = [
        ("kafka", vec!["kafka", "--brokers", &brokers, "--messages", "200"]),
        ("amqp", vec!["amqp", "--url", &url, "--messages", "200", "--message-bytes", "100"]),
    ];
    for (protocol, mut args) in runs {
        args.extend([
            "--latency-rate",
            "200",
            "--latency-seconds",
            "1",
            "--latency-only",
            "--broker-pid",
            &pid,
        ]);
        let phases = bench(&server, &args);
        assert_eq!(phases.len(), 1, "{protocol}: only the latency phase: {phases:?}");
        let latency = phase(&phases, "e2e @ 200/s");
        assert_eq!(latency["latency_ms"]["samples"], 200, "{protocol}: {latency}");
        assert!(latency["broker_cpu_seconds_per_100k"].is_number(), "{protocol}: {latency}");
    }
}
