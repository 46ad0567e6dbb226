//! The `conveyor` client commands as a user runs them: the built binary
//! against a spawned `conveyor serve`, lines piped into its stdin, its
//! tables read and its `--json` parsed. A topic's round trip (create,
//! produce, consume with a group, lag, reset offsets), a dead letter peeked
//! and redriven, a DLX-backed queue declared, bound, rejected into and
//! redriven in a vhost, errors, and shell completions.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, binary, free_port, wait_bounded};

/// Longest one command may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a test waits for the broker to reach a state.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `conveyor args…` against `server` with `stdin` piped in; killed past [`RUN_TIMEOUT`].
fn conveyor_at(server_url: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(binary())
        .args(args)
        .env("CONVEYOR_SERVER", server_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn conveyor");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        // A command that fails early closes its stdin; that is its answer, not the test's.
        let _ = input.write_all(stdin.as_bytes());
    });
    let stdout = read_all(child.stdout.take().expect("stdout"));
    let stderr = read_all(child.stderr.take().expect("stderr"));
    let Some(status) = wait_bounded(&mut child, RUN_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("conveyor {args:?} did not finish within {RUN_TIMEOUT:?}");
    };
    let _ = writer.join();
    Run {
        status,
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    }
}

/// All of `stream`, read on its own thread so neither pipe fills up.
fn read_all(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

fn conveyor(server: &Server, args: &[&str], stdin: &str) -> Run {
    conveyor_at(&format!("http://{}", server.http_addr), args, stdin)
}

/// Runs a command that must succeed; its stdout.
fn ok(server: &Server, args: &[&str], stdin: &str) -> String {
    let run = conveyor(server, args, stdin);
    assert!(run.status.success(), "conveyor {args:?} failed: {run:?}");
    run.stdout
}

/// Runs a command with `--json`; its parsed stdout.
fn json_of(server: &Server, args: &[&str], stdin: &str) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let stdout = ok(server, &args, stdin);
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("conveyor {args:?} printed no JSON ({error}): {stdout}"))
}

/// Every line of `text`, sorted (messages of different partitions interleave).
fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn a_topic_round_trip_produces_consumes_with_a_group_shows_its_lag_and_resets_it() {
    let (_dir, server) = Server::start_in_tempdir();

    let created = ok(&server, &["topic", "create", "orders", "--partitions", "2"], "");
    assert_eq!(created.trim(), "created topic orders with 2 partitions");
    let topics = json_of(&server, &["topic", "list"], "");
    assert!(
        topics
            .as_array()
            .expect("array")
            .iter()
            .any(|topic| topic["name"] == "orders" && topic["partitions"] == 2),
        "{topics}"
    );

    // kcat -K: a key before the delimiter; every line gets the header.
    let produced = json_of(
        &server,
        &["produce", "orders", "--key-delimiter", ":", "--header", "source=cli"],
        "k1:one\nk2:two\nk3:three\n",
    );
    assert_eq!(produced["messages"], 3, "{produced}");
    let consumed = ok(
        &server,
        &["consume", "orders", "--group", "billing", "--exit", "--format", "%k=%s %h\\n"],
        "",
    );
    assert_eq!(
        sorted_lines(&consumed),
        ["k1=one source=cli", "k2=two source=cli", "k3=three source=cli"]
    );

    // Everything read is committed: no lag on either partition.
    let group = json_of(&server, &["group", "describe", "billing"], "");
    assert_eq!(group["lag"], 0, "{group}");
    assert_eq!(group["offsets"].as_array().expect("offsets").len(), 2, "{group}");
    let table = ok(&server, &["group", "describe", "billing"], "");
    assert!(table.contains("group billing") && table.contains("LAG"), "{table}");

    // Two more (keyless: partition 0) are the group's lag until it reads them.
    let produced = ok(&server, &["produce", "orders"], "late-1\nlate-2\n");
    assert!(produced.starts_with("produced 2 messages to orders"), "{produced}");
    let group = json_of(&server, &["group", "describe", "billing"], "");
    assert_eq!(group["lag"], 2, "{group}");
    let listed = json_of(&server, &["group", "list"], "");
    assert_eq!(
        (&listed[0]["group_id"], &listed[0]["members"], &listed[0]["lag"]),
        (&json!("billing"), &json!(0), &json!(2))
    );
    let consumed = ok(&server, &["consume", "orders", "--group", "billing", "--exit"], "");
    assert_eq!(consumed, "late-1\nlate-2\n");
    assert_eq!(json_of(&server, &["group", "describe", "billing"], "")["lag"], 0);

    // Back to the start: the group reads all five again, as JSON lines.
    let reset = json_of(
        &server,
        &["group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest"],
        "",
    );
    let committed: Vec<&Value> = reset["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|offset| &offset["committed_offset"])
        .collect();
    assert_eq!(committed, [&json!(0), &json!(0)], "{reset}");
    let lines = ok(&server, &["consume", "orders", "--group", "billing", "--exit", "--json"], "");
    let mut values: Vec<String> = lines
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line).expect("a JSON line");
            assert_eq!(message["topic"], "orders", "{message}");
            message["value"].as_str().expect("value").to_owned()
        })
        .collect();
    values.sort();
    assert_eq!(values, ["late-1", "late-2", "one", "three", "two"]);

    // kcat's -o -N and -c N, without a group.
    let last = ok(&server, &["consume", "orders", "--partition", "0", "--offset", "-1", "--exit"], "");
    assert_eq!(last, "late-2\n");
    let first = ok(&server, &["consume", "orders", "--count", "1", "--format", "%p:%o:%s\\n"], "");
    assert_eq!(first.lines().count(), 1, "{first}");

    // Configs: set one, see it in describe, reset it.
    let configs = json_of(&server, &["topic", "config", "orders", "--set", "retention.ms=3600000"], "");
    let retention = configs
        .as_array()
        .expect("configs")
        .iter()
        .find(|config| config["name"] == "retention.ms")
        .expect("retention.ms");
    assert_eq!((&retention["value"], &retention["is_default"]), (&json!("3600000"), &json!(false)));
    let described = ok(&server, &["topic", "describe", "orders"], "");
    assert!(
        described.contains("retention.ms=3600000") && described.contains("PARTITION"),
        "{described}"
    );
    let table = ok(&server, &["topic", "config", "orders", "--reset", "retention.ms"], "");
    assert!(table.contains("retention.ms") && !table.contains("3600000"), "{table}");

    assert_eq!(ok(&server, &["topic", "delete", "orders"], "").trim(), "deleted topic orders");
    assert_eq!(json_of(&server, &["topic", "list"], ""), json!([]));
}

/// One call of the SQS JSON API on the broker's HTTP listener.
fn sqs(server: &Server, action: &str, body: Value) -> Value {
    let mut response = ureq::post(&format!("http://{}/", server.http_addr))
        .header("X-Amz-Target", format!("AmazonSQS.{action}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .send(body.to_string())
        .unwrap_or_else(|error| panic!("SQS {action}: {error}"));
    response.body_mut().read_json().expect("SQS JSON")
}

#[test]
fn a_dead_letter_is_peeked_and_redriven_back_to_its_source_or_to_another_queue() {
    let (_dir, server) = Server::start_in_tempdir();
    // Over SQS (HTTP only): a message received more than once dies into jobs-dlq.
    sqs(&server, "CreateQueue", json!({"QueueName": "jobs-dlq"}));
    let policy = json!({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:jobs-dlq", "maxReceiveCount": 1});
    let jobs = sqs(
        &server,
        "CreateQueue",
        json!({"QueueName": "jobs", "Attributes": {"RedrivePolicy": policy.to_string(), "VisibilityTimeout": "0"}}),
    );
    sqs(&server, "CreateQueue", json!({"QueueName": "parking"}));
    let published = ureq::post(&format!("http://{}/api/v1/queues/jobs/messages", server.http_addr))
        .send_json(json!({"value": "job-1"}))
        .expect("publish to jobs");
    assert_eq!(published.status(), 201);
    let deadline = Instant::now() + WAIT;
    loop {
        sqs(
            &server,
            "ReceiveMessage",
            json!({"QueueUrl": jobs["QueueUrl"], "MaxNumberOfMessages": 10}),
        );
        let dlq = json_of(&server, &["queue", "describe", "jobs-dlq"], "");
        if dlq["messages_ready"] == 1 {
            assert_eq!(dlq["dead_letter_sources"], json!(["jobs"]), "{dlq}");
            break;
        }
        assert!(Instant::now() < deadline, "the message was not dead-lettered: {dlq}");
    }

    let queues = ok(&server, &["queue", "list"], "");
    assert!(queues.contains("jobs-dlq") && queues.contains("READY"), "{queues}");
    let described = ok(&server, &["queue", "describe", "jobs"], "");
    assert!(
        described.contains("delivery limit") && described.contains("jobs-dlq"),
        "{described}"
    );
    let peeked = ok(&server, &["dlq", "peek", "jobs-dlq"], "");
    assert!(
        peeked.contains("job-1") && peeked.contains("FROM") && peeked.contains("jobs"),
        "{peeked}"
    );
    let peeked = json_of(&server, &["dlq", "peek", "jobs-dlq"], "");
    assert_eq!(peeked["messages"][0]["value"], "job-1", "{peeked}");

    // Back where it died, then on to a queue named by --to.
    let redriven = json_of(&server, &["dlq", "redrive", "jobs-dlq"], "");
    assert_eq!(redriven, json!({"moved": 1, "skipped": 0, "destinations": {"jobs": 1}}));
    assert_eq!(json_of(&server, &["queue", "describe", "jobs"], "")["messages_ready"], 1);
    // A second message, so `--max 1` leaves one behind and says so.
    let published = ureq::post(&format!("http://{}/api/v1/queues/jobs/messages", server.http_addr))
        .send_json(json!({"value": "job-2"}))
        .expect("publish to jobs");
    assert_eq!(published.status(), 201);
    let moved = ok(&server, &["dlq", "redrive", "jobs", "--to", "parking", "--max", "1"], "");
    assert_eq!(moved.trim(), "moved 1 message (parking: 1); 1 left in jobs");
    let moved = ok(&server, &["dlq", "redrive", "jobs", "--to", "parking"], "");
    assert_eq!(moved.trim(), "moved 1 message (parking: 1); 0 left in jobs");

    assert_eq!(
        ok(&server, &["queue", "purge", "parking"], "").trim(),
        "purged 2 messages from parking"
    );
    assert_eq!(
        json_of(&server, &["queue", "delete", "parking", "--if-empty"], ""),
        json!({"messages_deleted": 0})
    );
    let exchanges = ok(&server, &["exchange", "list"], "");
    assert!(exchanges.contains("(default)") && exchanges.contains("amq.topic"), "{exchanges}");
}

#[test]
fn a_dlx_backed_queue_is_declared_published_rejected_and_redriven_from_the_cli_alone() {
    let (_dir, server) = Server::start_in_tempdir();
    let vhost = ["--vhost", "staging"];
    let run = |args: &[&str]| ok(&server, &[args, &vhost[..]].concat(), "");
    let json = |args: &[&str]| json_of(&server, &[args, &vhost[..]].concat(), "");
    assert_eq!(ok(&server, &["vhost", "create", "staging"], "").trim(), "vhost staging created");
    assert_eq!(
        run(&["exchange", "declare", "jobs.dlx", "--type", "fanout"]).trim(),
        "declared fanout exchange jobs.dlx"
    );
    assert_eq!(run(&["queue", "declare", "jobs.dlq"]).trim(), "declared queue jobs.dlq");
    run(&["binding", "add", "jobs.dlx", "jobs.dlq"]);
    let declare = [
        "queue",
        "declare",
        "jobs",
        "--dead-letter-exchange",
        "jobs.dlx",
        "--message-ttl",
        "60000",
        "--max-length",
        "100",
    ];
    assert_eq!(run(&declare).trim(), "declared queue jobs");
    assert_eq!(run(&declare).trim(), "queue jobs exists, declared the same way");
    let described = json(&["queue", "describe", "jobs"]);
    assert_eq!(
        (
            described["vhost"].as_str(),
            described["dead_letter_exchange"].as_str(),
            described["max_length"].as_u64()
        ),
        (Some("staging"), Some("jobs.dlx"), Some(100)),
        "{described}"
    );
    assert_eq!(described["dead_letter_queues"], json!(["jobs.dlq"]), "{described}");
    // The AMQP door's refusal, word for word: a priority must be an integer.
    let refused = conveyor(
        &server,
        &["queue", "declare", "urgent", "-a", "x-max-priority=\"9\"", "--vhost", "staging"],
        "",
    );
    assert!(!refused.status.success());
    assert_eq!(
        refused.stderr,
        "conveyor: error: invalid arg 'x-max-priority' for queue 'urgent' in vhost 'staging': \"expected integer, got longstr\"\n"
    );
    // The vhost keeps them apart: `/` has no such queue.
    assert!(!conveyor(&server, &["queue", "describe", "jobs"], "").status.success());
    // `--vhost` is global: before the command name as well as after it.
    let listed = ok(&server, &["--vhost", "staging", "queue", "list"], "");
    assert!(listed.contains("jobs.dlq"), "{listed}");
    assert!(!ok(&server, &["--vhost", "/", "queue", "list"], "").contains("jobs.dlq"));

    assert_eq!(run(&["queue", "publish", "jobs", "job-1"]).trim(), "published to jobs");
    let rejected = json(&["queue", "get", "jobs", "--ackmode", "reject_requeue_false"]);
    assert_eq!(rejected["messages"][0]["value"], "job-1", "{rejected}");
    assert_eq!(json(&["queue", "describe", "jobs"])["messages_ready"], 0);
    let peeked = run(&["dlq", "peek", "jobs.dlq"]);
    assert!(peeked.contains("job-1") && peeked.contains("rejected"), "{peeked}");
    assert_eq!(
        run(&["dlq", "redrive", "jobs.dlq"]).trim(),
        "moved 1 message (jobs: 1); 0 left in jobs.dlq"
    );
    let acked = json(&["queue", "get", "jobs", "--ackmode", "ack_requeue_false"]);
    assert_eq!(acked["messages"][0]["value"], "job-1", "{acked}");
    assert_eq!(json(&["queue", "describe", "jobs"])["messages_ready"], 0);

    let bindings = run(&["binding", "list"]);
    assert!(bindings.contains("jobs.dlx") && bindings.contains("jobs.dlq"), "{bindings}");
    run(&["binding", "remove", "jobs.dlx", "jobs.dlq"]);
    let bindings = json(&["binding", "list"]);
    assert!(
        bindings
            .as_array()
            .is_some_and(|all| all.iter().all(|binding| binding["source"] != "jobs.dlx")),
        "{bindings}"
    );
    assert_eq!(run(&["exchange", "delete", "jobs.dlx"]).trim(), "deleted exchange jobs.dlx");
    let exchanges = run(&["exchange", "list"]);
    assert!(!exchanges.contains("jobs.dlx") && exchanges.contains("staging"), "{exchanges}");
}

#[test]
fn errors_print_the_api_message_and_exit_non_zero() {
    let (_dir, server) = Server::start_in_tempdir();
    let run = conveyor(&server, &["topic", "describe", "missing"], "");
    assert!(!run.status.success());
    assert_eq!(run.stderr, "conveyor: error: topic \"missing\" does not exist\n");
    let run = conveyor(&server, &["produce", "missing"], "lost\n");
    assert!(!run.status.success());
    assert_eq!(run.stderr, "conveyor: error: topic \"missing\" does not exist\n");
    let run = conveyor(&server, &["group", "reset-offsets", "nobody", "--to-latest"], "");
    assert!(
        !run.status.success() && run.stderr.contains("group \"nobody\" does not exist"),
        "{run:?}"
    );

    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let run = conveyor_at(&nowhere, &["topic", "list"], "");
    assert!(!run.status.success());
    assert!(
        run.stderr
            .starts_with(&format!("conveyor: error: could not reach the Conveyor server at {nowhere}")),
        "{run:?}"
    );
}

#[test]
fn flags_before_the_command_work_like_flags_after_it() {
    let (_dir, server) = Server::start_in_tempdir();
    ok(&server, &["topic", "create", "flags"], "");
    let url = format!("http://{}", server.http_addr);
    // The harness's CONVEYOR_SERVER points elsewhere: the flag must win.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let run = conveyor_at(&nowhere, &["--json", "--server", &url, "topic", "list"], "");
    assert!(run.status.success(), "{run:?}");
    let topics: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert!(render_names(&topics).contains(&"flags".to_owned()), "{topics}");
    let run = conveyor_at(&nowhere, &["topic", "list", "--server", &url, "--json"], "");
    assert!(run.status.success(), "{run:?}");
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).expect("JSON"), topics);
}

fn render_names(topics: &Value) -> Vec<String> {
    topics
        .as_array()
        .map(|topics| {
            topics
                .iter()
                .filter_map(|topic| topic["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn completions_survive_a_reader_that_stops_after_one_line() {
    let mut child = Command::new(binary())
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    assert!(first.starts_with("_conveyor"), "{first}");
    // Like `| head -1`: the reader goes away with the rest unread.
    drop(stdout);
    let stderr = read_all(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, RUN_TIMEOUT).expect("exits");
    assert!(status.success(), "{status:?}: {}", stderr.join().expect("stderr"));
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(binary()).args(["completions", shell]).output().expect("run");
        assert!(output.status.success(), "{output:?}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains("consume") && script.contains("reset-offsets"), "{shell}: {script}");
    }
}
