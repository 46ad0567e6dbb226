//! A real `conveyor serve` whose disk fills up or fails: on a small tmpfs
//! the test mounts (and unmounts in a drop guard), appends fail while the
//! file system is full, consumers drain throughout, appends succeed again
//! once space is freed, with no restart, and SIGTERM still exits 0; under a
//! file-size limit (`prlimit --fsize`, which makes writes fail with EFBIG, a
//! failure that is not a full disk) a partition log is poisoned, shows in
//! `/health`, `/metrics` and the admin API, and is reopened in place once the
//! limit is lifted; an AMQP ack whose journal append fails closes the
//! connection with 541 (a connection exception, as in RabbitMQ). Needs root (mount) and util-linux (`prlimit`); the
//! Kafka part drives kafka-python (`tests/interop/kafka/disk_full_kafka_python.py`).
//! At a disk floor (`disk_free_min_bytes`) on a small tmpfs, a Kafka producer
//! (kafka-python), an AMQP publisher with confirms (lapin) and an SQS sender
//! (boto3) are all held before the file system fills, reads go on, and all
//! three continue once space is freed; an admin API publish held at the
//! floor past the HTTP door's wait is refused with 503 and stores nothing.

mod support;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lapin::message::DeliveryResult;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use serde_json::{Value, json};
use support::lapin_client::{confirming_channel, declare, url};
use support::{Server, eventually, forward_lines, run_script, spawn_script};

/// How long the AMQP consumer waits for its next delivery before it
/// concludes the broker stopped delivering.
const DELIVERY_WAIT: Duration = Duration::from_secs(5);
const TMPFS_BYTES: u64 = 24 * 1024 * 1024;

/// A tmpfs mounted on a temporary directory for the test's lifetime.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_bytes: u64) -> Tmpfs {
        Tmpfs::try_mount(size_bytes).expect("mount -t tmpfs failed: this test needs root")
    }

    /// None if this process may not mount (not root, or in a container without the capability).
    fn try_mount(size_bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        status.success().then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system under `dir` with one file until a write fails for
/// want of space; returns the file's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::create(&path).expect("create the filler");
    let chunk = vec![0xa5u8; 64 * 1024];
    // Bounded by the file system's size.
    for _ in 0..(TMPFS_BYTES / chunk.len() as u64 + 16) {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => return path,
            Err(error) => panic!("filling the file system: {error}"),
        }
    }
    panic!("the file system never filled up");
}

/// The admin API of one broker, through a blocking client.
struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    fn new(server: &Server) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Api {
            agent,
            base: format!("http://{}/api/v1", server.http_addr),
        }
    }

    fn answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
        let mut response = result.expect("the admin API answers");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("read the body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("a JSON body")
        };
        (status, body)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        Api::answer(self.agent.get(format!("{}{path}", self.base)).call())
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Api::answer(self.agent.post(format!("{}{path}", self.base)).send_json(body))
    }
}

/// An AMQP connection and channel (in confirm mode) to `server`, and a
/// durable queue `name` declared on it.
async fn durable_queue(server: &Server, name: &str) -> (Connection, lapin::Channel) {
    let (connection, channel) = confirming_channel(&url(server)).await;
    declare(&channel, name, true).await;
    (connection, channel)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime")
}

/// A config file that turns the free-disk alarm off: these tests fill the
/// disk on purpose, and publishers must see the refusals, not be blocked.
fn config_file(dir: &Path) -> PathBuf {
    let path = dir.join("conveyor.toml");
    fs::write(&path, "[limits]\ndisk_free_min_bytes = 0\n").expect("write the config");
    path
}

#[test]
fn a_full_file_system_refuses_appends_until_space_is_freed_while_consumers_drain() {
    let tmpfs = Tmpfs::mount(TMPFS_BYTES);
    let outside = tempfile::tempdir().expect("tempdir");
    let config = config_file(outside.path());
    let data = tmpfs.path().join("data");
    let mut server = Server::start_with(&data, &["--config", config.to_str().expect("utf-8 path")], &[]);
    let api = Api::new(&server);
    let (status, body) = api.post("/topics", json!({"name": "events", "partitions": 1}));
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.post("/topics/events/messages", json!({"value": "stored before the disk filled"}));
    assert_eq!(status, 201, "{body}");
    let big = "x".repeat(256 * 1024);
    runtime().block_on(async {
        let (connection, channel) = durable_queue(&server, "drain").await;
        for index in 0..40 {
            let (status, body) = api.post("/queues/drain/messages", json!({"value": format!("before {index}")}));
            assert_eq!(status, 201, "{body}");
        }

        let filler = fill(tmpfs.path());
        let (status, body) = api.post("/queues/drain/messages", json!({"value": big}));
        assert_eq!(status, 507, "a queue append on a full disk is refused: {body}");
        let (status, body) = api.post("/topics/events/messages", json!({"value": big}));
        assert_eq!(status, 507, "a partition append on a full disk is refused: {body}");
        // An AMQP publisher under confirms hears basic.nack.
        let publisher = connection.create_channel().await.expect("channel");
        publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let confirmation = publisher
            .basic_publish(
                "".into(),
                "drain".into(),
                BasicPublishOptions::default(),
                big.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("a confirmation");
        assert!(confirmation.is_nack(), "a publish on a full disk is nacked: {confirmation:?}");
        let refused = run_script(&server, "kafka/disk_full_kafka_python.py", &["refused", "events"]);
        assert!(refused.stdout.contains("KAFKA_STORAGE_ERROR"), "{}", refused.stdout);
        assert!(refused.stdout.contains("committed on a full disk"), "{}", refused.stdout);
        let (status, health) = server.http_get("/health");
        assert_eq!((status, health.as_str()), (200, "ok\n"), "a full disk poisons no log");

        // Consumers drain the queue on the full disk: receives and acks are
        // journaled in room the journal keeps reserved.
        for index in 0..40 {
            let message = channel
                .basic_get("drain".into(), BasicGetOptions::default())
                .await
                .expect("basic.get on a full disk")
                .unwrap_or_else(|| panic!("message {index} is there"));
            assert_eq!(message.delivery.data, format!("before {index}").into_bytes());
            message.delivery.ack(BasicAckOptions::default()).await.expect("ack on a full disk");
        }
        // A synchronous method after the acks: they were all stored.
        let empty = channel
            .basic_get("drain".into(), BasicGetOptions::default())
            .await
            .expect("basic.get");
        assert!(empty.is_none(), "the queue is drained");

        fs::remove_file(&filler).expect("free the space");
        let (status, body) = api.post("/queues/drain/messages", json!({"value": big}));
        assert_eq!(status, 201, "appends succeed once space is free, without a restart: {body}");
        let (status, body) = api.post("/topics/events/messages", json!({"value": "after"}));
        assert_eq!(status, 201, "{body}");
        run_script(&server, "kafka/disk_full_kafka_python.py", &["accepted", "events"]);
        let message = channel
            .basic_get("drain".into(), BasicGetOptions::default())
            .await
            .expect("basic.get")
            .expect("the message published after the space was freed");
        assert_eq!(message.delivery.data.len(), big.len());
        message.delivery.ack(BasicAckOptions::default()).await.expect("ack");
        channel.close(200, "done".into()).await.expect("close the channel");
        connection.close(200, "done".into()).await.expect("close the connection");
    });

    // Full again, and then a clean stop.
    let _filler = fill(tmpfs.path());
    let (status, _) = server.terminate();
    assert!(status.success(), "SIGTERM on a full disk exits 0, not {status}");
}

/// `sh` ignores SIGXFSZ (inherited through `exec`) so that a write past the
/// file-size limit fails with EFBIG instead of killing the broker; `prlimit`
/// sets the soft limit and leaves the hard one unlimited, so the test can
/// lift it later.
fn size_limited(limit_bytes: u64) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "trap '' XFSZ; exec \"$@\"".into(),
        "sh".into(),
        "prlimit".into(),
        format!("--fsize={limit_bytes}:unlimited"),
        "--".into(),
    ]
}

fn lift_size_limit(server: &Server) {
    let status = Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), "--fsize=unlimited:unlimited"])
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit --pid failed: {status}");
}

/// Every value stored in partition 0 of `topic`.
fn partition_values(api: &Api, topic: &str) -> Vec<String> {
    let (status, body) = api.get(&format!("/topics/{topic}/partitions/0/messages?offset=0&count=1000"));
    assert_eq!(status, 200, "{body}");
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["value"].as_str().expect("a UTF-8 value").to_owned())
        .collect()
}

#[test]
fn a_poisoned_partition_log_shows_in_health_metrics_and_admin_api_and_reopens_without_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let launcher = size_limited(256 * 1024);
    let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
    let mut server = Server::start_launched(data.path(), &launcher, &[], &[]);
    let api = Api::new(&server);
    let (status, body) = api.post("/topics", json!({"name": "orders", "partitions": 1}));
    assert_eq!(status, 201, "{body}");
    let filler = "y".repeat(8 * 1024);
    let mut stored = Vec::new();
    let mut failed = None;
    // The segment reaches the limit within about 32 appends.
    for index in 0..100 {
        let value = format!("{index} {filler}");
        let (status, body) = api.post("/topics/orders/messages", json!({"value": value}));
        if status == 201 {
            stored.push(value);
        } else {
            assert_eq!(status, 500, "{body}");
            failed = Some(value);
            break;
        }
    }
    let failed = failed.expect("an append past the file-size limit failed");

    let (status, health) = server.http_get("/health");
    assert_eq!(status, 200, "a degraded broker still serves: {health}");
    assert!(health.starts_with("degraded"), "{health}");
    assert!(health.contains("topic \"orders\" partition 0"), "{health}");
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("conveyor_partition_log_poisoned{topic=\"orders\",partition=\"0\"} 1"),
        "{metrics}"
    );
    let (status, poisoned) = api.get("/logs/poisoned");
    assert_eq!(status, 200);
    assert_eq!(
        poisoned[0]["log"],
        json!({"kind": "partition", "topic": "orders", "partition": 0}),
        "{poisoned}"
    );
    assert_eq!(poisoned[0]["failed_tail_removed"], true, "{poisoned}");
    assert!(
        poisoned[0]["reason"].as_str().expect("a reason").contains("File too large"),
        "{poisoned}"
    );
    let (status, _) = api.post("/topics/orders/messages", json!({"value": "small"}));
    assert_eq!(status, 500, "a poisoned log refuses even what would fit");

    lift_size_limit(&server);
    let (status, reopened) = api.post("/logs/reopen", json!({}));
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened[0]["reopened"], true, "{reopened}");
    assert_eq!(server.http_get("/health"), (200, "ok\n".to_owned()));
    let (status, body) = api.post("/topics/orders/messages", json!({"value": "after reopen"}));
    assert_eq!(status, 201, "{body}");
    stored.push("after reopen".to_owned());
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("conveyor_partition_log_poisoned{topic=\"orders\",partition=\"0\"} 0"),
        "{metrics}"
    );
    assert_eq!(partition_values(&api, "orders"), stored);

    // After a restart too, exactly the acknowledged appends are there.
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
    let server = Server::start(data.path());
    let api = Api::new(&server);
    let values = partition_values(&api, "orders");
    assert_eq!(values, stored);
    assert!(!values.contains(&failed));
}

#[test]
fn an_ack_that_cannot_be_journaled_closes_the_connection_with_internal_error() {
    let data = tempfile::tempdir().expect("tempdir");
    // Small messages, so that the queue's cursor journal (a delivery and an
    // ack event per message) reaches the limit long before its message log.
    let launcher = size_limited(48 * 1024);
    let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
    let server = Server::start_launched(data.path(), &launcher, &[], &[]);
    let api = Api::new(&server);
    runtime().block_on(async {
        let (_connection, channel) = durable_queue(&server, "acks").await;
        for index in 0..400 {
            let (status, body) = api.post("/queues/acks/messages", json!({"value": format!("{index}")}));
            assert_eq!(status, 201, "message {index}: {body}");
        }
        channel.basic_qos(1, BasicQosOptions::default()).await.expect("qos");
        let consumer = channel
            .basic_consume("acks".into(), "c".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .expect("consume");
        let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
        consumer.set_delegate(move |delivery: DeliveryResult| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(delivery.map_err(|error| error.to_string()));
            }
        });
        let mut closed = None;
        // Each pass acks one delivery; the journal passes the limit within 400.
        for _ in 0..400 {
            // Once the journal fails the broker may stop delivering too.
            let Ok(next) = tokio::time::timeout(DELIVERY_WAIT, received.recv()).await else {
                break;
            };
            match next {
                Some(Ok(Some(delivery))) => {
                    if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
                        closed = Some(error.to_string());
                        break;
                    }
                }
                Some(Err(error)) => {
                    closed = Some(error);
                    break;
                }
                Some(Ok(None)) | None => break,
            }
        }
        // The channel was closed by the broker, or is about to be: a
        // synchronous method (one that writes nothing itself) settles the
        // pending acks first.
        let closed = match closed {
            Some(reason) => reason,
            None => channel
                .basic_qos(1, BasicQosOptions::default())
                .await
                .expect_err("the channel was closed")
                .to_string(),
        };
        eprintln!("channel closed: {closed}");
        // `Server::logs` hands out each line once: keep what it gave.
        let early_logs = server.logs().join("\n");
        if closed.contains("invalid channel state") || closed.contains("invalid connection state") {
            // lapin ended the consumer's stream (or errored the channel) on
            // the broker's connection.close and keeps no reason: the
            // broker's log says why, and with which code, it closed it.
            let logs = &early_logs;
            assert!(
                logs.contains("an acknowledgement could not be stored; closing the connection"),
                "the connection closed for another reason:\n{logs}"
            );
            assert!(
                logs.lines()
                    .any(|line| line.contains("closing an AMQP connection") && line.contains("541")),
                "no connection.close with 541:\n{logs}"
            );
        } else {
            let upper = closed.to_uppercase();
            assert!(upper.contains("541") || upper.contains("INTERNAL"), "{closed}");
            assert!(closed.contains("an acknowledgement could not be stored"), "{closed}");
        }
        let (status, health) = server.http_get("/health");
        assert_eq!(status, 200);
        assert!(
            health.starts_with("degraded") && health.contains("queue \"acks\" cursor journal"),
            "{health}"
        );
        let (_, metrics) = server.http_get("/metrics");
        assert!(
            metrics.contains("conveyor_queue_log_poisoned{queue=\"acks\",log=\"cursor\"} 1"),
            "{metrics}"
        );
        let logs = format!("{early_logs}\n{}", server.logs().join("\n"));
        assert!(logs.contains("an acknowledgement could not be stored"), "{logs}");
    });
}

const FLOOR_TMPFS_BYTES: u64 = 64 * 1024 * 1024;
const FLOOR_BYTES: u64 = 24 * 1024 * 1024;
/// Taken before the broker starts and freed to let the held producers go on.
const FLOOR_FILLER_BYTES: usize = 8 * 1024 * 1024;
/// How long the producers may take to reach the floor and be held, and to
/// go on once space is freed.
const HOLD_WAIT: Duration = Duration::from_secs(120);
/// A publish not confirmed for this long is held.
const CONFIRM_WAIT: Duration = Duration::from_secs(3);

/// Bytes an unprivileged writer can still use under `path`.
fn free_bytes(path: &Path) -> u64 {
    let stats = rustix::fs::statvfs(path).expect("statvfs");
    stats.f_bavail.saturating_mul(stats.f_frsize)
}

/// Samples the free space under a path every 5 ms on a thread, until
/// stopped or for at most ten minutes; keeps the least seen.
struct FreeSpaceWatch {
    stop: Arc<AtomicBool>,
    least: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl FreeSpaceWatch {
    fn start(path: &Path) -> FreeSpaceWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let least = Arc::new(AtomicU64::new(free_bytes(path)));
        let (path, stopping, lowest) = (path.to_path_buf(), Arc::clone(&stop), Arc::clone(&least));
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
                lowest.fetch_min(free_bytes(&path), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        FreeSpaceWatch {
            stop,
            least,
            thread: Some(thread),
        }
    }

    fn least_bytes(&self) -> u64 {
        self.least.load(Ordering::SeqCst)
    }
}

impl Drop for FreeSpaceWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client script the test talks to line by line; killed (by its PID) if the test ends early.
struct Script {
    child: Child,
    name: &'static str,
    lines: mpsc::Receiver<String>,
    errors: mpsc::Receiver<String>,
}

impl Script {
    fn spawn(server: &Server, name: &'static str, args: &[&str]) -> Script {
        let mut child = spawn_script(server, name, args);
        let lines = forward_lines(child.stdout.take().expect("stdout"));
        let errors = forward_lines(child.stderr.take().expect("stderr"));
        Script {
            child,
            name,
            lines,
            errors,
        }
    }

    /// The first line that starts with `prefix`, within `timeout`.
    fn expect_line(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        let errors: Vec<String> = self.errors.try_iter().collect();
        panic!(
            "{} printed no {prefix:?} line within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.name,
            seen.join("\n"),
            errors.join("\n")
        );
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the script");
        stdin.flush().expect("flush");
    }

    fn finish(mut self) {
        let status = support::wait_bounded(&mut self.child, Duration::from_secs(30));
        assert!(status.is_some_and(|status| status.success()), "{} ended with {status:?}", self.name);
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn producers_on_all_three_doors_are_held_at_the_disk_floor_and_free_space_never_reaches_zero() {
    let Some(tmpfs) = Tmpfs::try_mount(FLOOR_TMPFS_BYTES) else {
        eprintln!("SKIPPED: mount -t tmpfs is not permitted here (this test needs root)");
        return;
    };
    let filler = tmpfs.path().join("filler");
    fs::write(&filler, vec![0x5au8; FLOOR_FILLER_BYTES]).expect("write the filler");
    let outside = tempfile::tempdir().expect("tempdir");
    let config = outside.path().join("conveyor.toml");
    fs::write(&config, format!("[limits]\ndisk_free_min_bytes = {FLOOR_BYTES}\n")).expect("write the config");
    let server = Server::start_with(&tmpfs.path().join("data"), &["--config", config.to_str().expect("utf-8 path")], &[]);
    let api = Api::new(&server);
    let (status, body) = api.post("/topics", json!({"name": "floor-kafka", "partitions": 1}));
    assert_eq!(status, 201, "{body}");
    let watch = FreeSpaceWatch::start(tmpfs.path());

    let mut kafka = Script::spawn(&server, "kafka/disk_floor_kafka_python.py", &["floor-kafka"]);
    let mut sqs = Script::spawn(&server, "sqs/disk_floor_boto3.py", &["floor-sqs"]);
    runtime().block_on(async {
        let (publishing, channel) = durable_queue(&server, "floor-amqp").await;
        // Publishes 64 KiB messages one at a time, each confirmed, until told to stop.
        let confirmed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counting, stopping) = (Arc::clone(&confirmed), Arc::clone(&stop));
        kafka.expect_line("ready", HOLD_WAIT);
        sqs.expect_line("ready", HOLD_WAIT);
        kafka.send_line("start");
        sqs.send_line("start");
        let publisher = tokio::spawn(async move {
            let body = vec![b'a'; 64 * 1024];
            // Bounded: the file system holds far fewer.
            for _ in 0..2000 {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let confirmation = channel
                    .basic_publish(
                        "".into(),
                        "floor-amqp".into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("a confirmation");
                assert!(
                    confirmation.is_ack(),
                    "a publish at the floor is held, not refused: {confirmation:?}"
                );
                counting.fetch_add(1, Ordering::SeqCst);
            }
            channel
        });

        // All three are held: the scripts say so, and the AMQP publisher makes no progress.
        let kafka_held = kafka.expect_line("held", HOLD_WAIT);
        let sqs_held = sqs.expect_line("held", HOLD_WAIT);
        let deadline = Instant::now() + HOLD_WAIT;
        let amqp_held = loop {
            let before = confirmed.load(Ordering::SeqCst);
            tokio::time::sleep(CONFIRM_WAIT).await;
            let after = confirmed.load(Ordering::SeqCst);
            if after == before && after > 0 {
                break after;
            }
            assert!(Instant::now() < deadline, "the AMQP publisher was never held ({after} confirmed)");
        };
        assert!(!publisher.is_finished(), "the AMQP publisher waits for its confirmation");
        // Held at the floor, not before it: less than a few messages above it
        // are free. (The alarm itself goes off at each measurement until a
        // held write is tried again, so it is not asserted.)
        let (status, alarms) = api.get("/alarms");
        assert_eq!(status, 200, "{alarms}");
        let free = free_bytes(tmpfs.path());
        assert!(free < FLOOR_BYTES + 4 * 64 * 1024, "held with {free} bytes free: {alarms}");
        assert!(watch.least_bytes() > 0, "free space reached zero");
        eprintln!(
            "held at the floor: kafka {kafka_held}, sqs {sqs_held}, amqp {amqp_held}; least free {} bytes",
            watch.least_bytes()
        );

        // Reads are served meanwhile: health, the admin API, an AMQP consumer.
        assert_eq!(server.http_get("/health"), (200, "ok\n".to_owned()));
        let (status, topic) = api.get("/topics/floor-kafka");
        assert_eq!(status, 200, "{topic}");
        let stored: u64 = kafka_held["held ".len()..].parse().expect("a count");
        assert_eq!(
            topic["partitions"][0]["end_offset"],
            json!(stored),
            "the held record is not stored: {topic}"
        );
        let (consuming, reader) = durable_queue(&server, "floor-amqp").await;
        let first = tokio::time::timeout(CONFIRM_WAIT, reader.basic_get("floor-amqp".into(), BasicGetOptions::default()))
            .await
            .expect("basic.get is answered at the floor")
            .expect("basic.get")
            .expect("a message");
        assert_eq!(first.delivery.data.len(), 64 * 1024);
        first.delivery.ack(BasicAckOptions::default()).await.expect("ack at the floor");

        // Freeing space lets all three go on.
        stop.store(true, Ordering::SeqCst);
        fs::remove_file(&filler).expect("free the space");
        kafka.send_line("go");
        sqs.send_line("go");
        let channel = tokio::time::timeout(HOLD_WAIT, publisher)
            .await
            .expect("the held AMQP publish is confirmed once space is freed")
            .expect("the publisher");
        assert_eq!(confirmed.load(Ordering::SeqCst), amqp_held + 1);
        let confirmation = tokio::time::timeout(
            HOLD_WAIT,
            channel
                .basic_publish(
                    "".into(),
                    "floor-amqp".into(),
                    BasicPublishOptions::default(),
                    b"after",
                    BasicProperties::default(),
                )
                .await
                .expect("publish"),
        )
        .await
        .expect("confirmed")
        .expect("a confirmation");
        assert!(confirmation.is_ack());
        kafka.expect_line("released", HOLD_WAIT);
        sqs.expect_line("released", HOLD_WAIT);
        consuming.close(200, "done".into()).await.expect("close");
        publishing.close(200, "done".into()).await.expect("close");
    });
    kafka.finish();
    sqs.finish();
    let least = watch.least_bytes();
    drop(watch);
    assert!(least > 0, "free space reached zero");
    // The floor itself holds, give or take index and journal overhead.
    assert!(least > FLOOR_BYTES / 2, "free space fell to {least} bytes, far below the floor");
    eprintln!("least free space seen: {least} bytes (floor {FLOOR_BYTES})");
    assert!(
        eventually(Duration::from_secs(5), || server.http_get("/health").0 == 200),
        "the broker serves on"
    );
}

#[test]
fn an_admin_publish_held_past_the_wait_at_the_disk_floor_is_refused_with_a_503_and_stores_nothing() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    let (status, body) = api.post("/topics", json!({"name": "held", "partitions": 1}));
    assert_eq!(status, 201, "{body}");
    let (status, body) = support::http_send(
        server.http_addr,
        "PUT",
        "/api/v1/alarms",
        r#"{"disk_free_min_bytes": 18446744073709551615}"#,
    );
    assert_eq!(status, 200, "{body}");

    let started = Instant::now();
    let (status, body) = api.post("/topics/held/messages", json!({"value": "at the floor"}));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "it was held first, for {:?}",
        started.elapsed()
    );
    let (_, topic) = api.get("/topics/held");
    assert_eq!(topic["partitions"][0]["end_offset"], 0, "nothing was stored: {topic}");

    let (status, body) = support::http_send(server.http_addr, "PUT", "/api/v1/alarms", r#"{"disk_free_min_bytes": 0}"#);
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post("/topics/held/messages", json!({"value": "below the floor again"}));
    assert_eq!(status, 201, "{body}");
}
