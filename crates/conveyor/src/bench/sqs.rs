//! `conveyor bench sqs`: send, receive-and-delete throughput with batches
//! and concurrent clients, and long-polling receive latency, against any
//! SQS-compatible endpoint speaking the AWS JSON 1.0 protocol.
//!
//! Each simulated client is one HTTP/1.1 keep-alive connection with one
//! request in flight, as an AWS SDK client with one outstanding call is.
//! Requests are not signed (Conveyor accepts any credentials); they carry an
//! `Authorization` header of SigV4's shape for servers that only check it is
//! there. Every phase uses a fresh standard queue that the bench creates and
//! deletes. Each body starts with the time it was sent (ns since the bench
//! started) and its sequence number, so the receiving side measures latency
//! in the same process and clock and checks that every message came back
//! exactly once. Knows nothing about Conveyor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header;
use indicatif::ProgressBar;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::report::{self, Phase, latency_histogram};

/// Bounds every phase, so that a stuck server ends the bench with an error.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// A receive-and-delete phase that makes no progress for this long gives up.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// SQS's limits on a batch and on one receive.
const BATCH_ENTRIES_MAX: usize = 10;
/// The long poll of the throughput phase's receivers: short, so that
/// receivers left without messages at the end of the phase stop soon.
const DRAIN_WAIT_SECONDS: u64 = 1;
/// The long poll of the latency phase's receiver: SQS's maximum.
const LATENCY_WAIT_SECONDS: u64 = 20;
/// The send time and the sequence number that open every body.
const STAMP_BYTES: usize = 20 + 1 + 12 + 1;
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// SigV4's shape with a dummy key and signature; Conveyor ignores it.
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=conveyorbench/20260101/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Args)]
pub struct SqsBenchArgs {
    /// SQS endpoint (http://host:port); any server speaking SQS's AWS JSON 1.0 protocol works.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "CONVEYOR_BENCH_SQS")]
    pub endpoint: String,
    /// Messages in the send phase (all of them are then received and deleted).
    #[arg(long, default_value_t = 200_000)]
    pub messages: u64,
    /// The send phase stops after this many seconds even if fewer messages were sent.
    #[arg(long, default_value_t = 60)]
    pub max_seconds: u64,
    /// Size of each message body in bytes (at least 34: the send time and a sequence number).
    #[arg(long, default_value_t = 1024)]
    pub message_bytes: usize,
    /// Entries per SendMessageBatch / DeleteMessageBatch and MaxNumberOfMessages per receive (1 to 10).
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Concurrent clients (one connection each) in the send and the receive-and-delete phases.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Messages per second, sent one SendMessage at a time, in the long-poll latency phase (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub latency_rate: u64,
    /// Length of the latency phase in seconds.
    #[arg(long, default_value_t = 10)]
    pub latency_seconds: u64,
    /// Measure the disk's latency floor (the same paced messages appended
    /// with write + fdatasync, no broker) in this directory after the latency
    /// phase, and give the long-poll p99 as a ratio of it. Use a directory on
    /// the broker's data disk.
    #[arg(long)]
    pub baseline_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub output: report::Output,
}

pub async fn run(args: &SqsBenchArgs) -> anyhow::Result<()> {
    if args.message_bytes < STAMP_BYTES {
        bail!("--message-bytes must be at least {STAMP_BYTES} (the send time and a sequence number)");
    }
    if !(1..=BATCH_ENTRIES_MAX).contains(&args.batch) {
        bail!("--batch must be between 1 and {BATCH_ENTRIES_MAX}, as in SQS");
    }
    if args.clients == 0 || args.messages == 0 || args.max_seconds == 0 {
        bail!("--messages, --clients and --max-seconds must be at least 1");
    }
    let endpoint = Arc::new(Endpoint::parse(&args.endpoint)?);
    let epoch = Instant::now();
    let prefix = format!("conveyor-bench-{}-{}", std::process::id(), crate::bench::unique_suffix());
    let mut admin = SqsClient::connect(&endpoint).await?;
    let mut phases = Vec::new();

    let queue_url = create_queue(&mut admin, &format!("{prefix}-throughput")).await?;
    let send = tokio::time::timeout(PHASE_TIMEOUT, send_phase(args, &endpoint, &queue_url, epoch)).await??;
    let sent = send.messages;
    phases.push(send);
    let (receive, checked) = tokio::time::timeout(PHASE_TIMEOUT, receive_phase(args, &endpoint, &queue_url, sent)).await??;
    phases.push(receive);
    let left = approximate_messages(&mut admin, &queue_url).await?;
    if left != 0 {
        bail!("{left} messages are still in the queue after every sent message was received and deleted");
    }
    delete_queue(&mut admin, &queue_url).await?;

    if args.latency_rate > 0 && args.latency_seconds > 0 {
        let queue_url = create_queue(&mut admin, &format!("{prefix}-latency")).await?;
        let mut latency = tokio::time::timeout(PHASE_TIMEOUT, latency_phase(args, &endpoint, &queue_url, epoch)).await??;
        delete_queue(&mut admin, &queue_url).await?;
        if let Some(dir) = args.baseline_dir.clone() {
            let disk = crate::bench::disk::paced_baseline_for(
                &mut latency,
                dir,
                args.latency_rate,
                args.latency_seconds,
                args.messages,
                args.message_bytes,
            )
            .await?;
            phases.push(disk);
        }
        phases.push(latency);
    }

    if !args.output.json {
        crate::cli::render::out!("\nall {checked} sent messages were received and deleted exactly once; the queue was empty afterwards");
    }
    report::print(
        &format!(
            "conveyor bench sqs: {} msgs of {} B, batches of {}, {} client(s), long poll at {}/s for {} s, endpoint {}",
            args.messages, args.message_bytes, args.batch, args.clients, args.latency_rate, args.latency_seconds, args.endpoint
        ),
        &phases,
        args.output.json,
    );
    Ok(())
}

/// Where requests go: `host:port` to connect to and send as `Host`, and the path to post to.
#[derive(Debug)]
struct Endpoint {
    authority: String,
    path: String,
}

impl Endpoint {
    fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("--endpoint must be an http:// URL (TLS is not supported by the bench): {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("--endpoint has no host: {url}");
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            authority,
            path: path.to_owned(),
        })
    }
}

/// One simulated SQS client: a keep-alive HTTP/1.1 connection, one call at a time.
struct SqsClient {
    sender: SendRequest<Full<Bytes>>,
    endpoint: Arc<Endpoint>,
}

impl SqsClient {
    async fn connect(endpoint: &Arc<Endpoint>) -> anyhow::Result<SqsClient> {
        let stream = TcpStream::connect(&endpoint.authority)
            .await
            .with_context(|| format!("connecting to {}", endpoint.authority))?;
        // Requests are small and answered one at a time: no Nagle delay.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        // Ends when the sender is dropped or the server closes the connection.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "bench SQS connection ended");
            }
        });
        Ok(SqsClient {
            sender,
            endpoint: Arc::clone(endpoint),
        })
    }

    /// Calls `action` with `input`; an AWS error answer is an error naming its `__type`.
    async fn call(&mut self, action: &str, input: &Value) -> anyhow::Result<Value> {
        let request = hyper::Request::post(self.endpoint.path.as_str())
            .header(header::HOST, self.endpoint.authority.as_str())
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .header(header::AUTHORIZATION, AUTHORIZATION)
            .body(Full::new(Bytes::from(serde_json::to_vec(input)?)))?;
        self.sender.ready().await.with_context(|| format!("{action}: connection lost"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("{action}: request failed"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&body).with_context(|| {
            format!(
                "{action}: HTTP {status} with a body that is not JSON: {}",
                String::from_utf8_lossy(&body)
            )
        })?;
        if !status.is_success() {
            bail!("{action}: HTTP {status}: {} {}", value["__type"], value["message"]);
        }
        Ok(value)
    }
}

async fn create_queue(client: &mut SqsClient, name: &str) -> anyhow::Result<String> {
    let answer = client.call("CreateQueue", &json!({ "QueueName": name })).await?;
    answer["QueueUrl"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("CreateQueue answered without a QueueUrl: {answer}"))
}

async fn delete_queue(client: &mut SqsClient, queue_url: &str) -> anyhow::Result<()> {
    client.call("DeleteQueue", &json!({ "QueueUrl": queue_url })).await?;
    Ok(())
}

/// Visible plus in-flight messages, as GetQueueAttributes reports them.
async fn approximate_messages(client: &mut SqsClient, queue_url: &str) -> anyhow::Result<u64> {
    let names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"];
    let answer = client
        .call("GetQueueAttributes", &json!({ "QueueUrl": queue_url, "AttributeNames": names }))
        .await?;
    let mut total = 0;
    for name in names {
        let value = answer["Attributes"][name]
            .as_str()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("GetQueueAttributes answered without {name}: {answer}"))?;
        total += value;
    }
    Ok(total)
}

fn progress(args: &SqsBenchArgs, total: u64, label: &str) -> ProgressBar {
    args.output.progress(total, label)
}

/// A body of `message_bytes` that starts with the send time and `sequence`.
fn body(message_bytes: usize, epoch: Instant, sequence: u64) -> String {
    let mut body = format!("{:020} {sequence:012} ", epoch.elapsed().as_nanos() as u64);
    body.extend(std::iter::repeat_n('x', message_bytes.saturating_sub(body.len())));
    body
}

/// The send time (ns since the bench started) and sequence number a body starts with.
fn stamp(body: &str) -> anyhow::Result<(u64, u64)> {
    let mut fields = body.splitn(3, ' ');
    let mut number = || fields.next().and_then(|field| field.parse::<u64>().ok());
    match (number(), number()) {
        (Some(sent_ns), Some(sequence)) => Ok((sent_ns, sequence)),
        _ => Err(anyhow!("a received body does not start with the bench's stamp: {body:.40}")),
    }
}

/// A received message: its receipt handle and its body's stamp.
struct Received {
    receipt_handle: String,
    sent_ns: u64,
    sequence: u64,
}

/// The messages of a ReceiveMessage answer.
fn received(answer: &Value) -> anyhow::Result<Vec<Received>> {
    let Some(messages) = answer.get("Messages") else {
        return Ok(Vec::new());
    };
    let messages = messages
        .as_array()
        .ok_or_else(|| anyhow!("ReceiveMessage answered Messages that is not a list"))?;
    messages
        .iter()
        .map(|message| {
            let body = message["Body"].as_str().ok_or_else(|| anyhow!("a received message has no Body"))?;
            let receipt_handle = message["ReceiptHandle"]
                .as_str()
                .ok_or_else(|| anyhow!("a received message has no ReceiptHandle"))?;
            let (sent_ns, sequence) = stamp(body)?;
            Ok(Received {
                receipt_handle: receipt_handle.to_owned(),
                sent_ns,
                sequence,
            })
        })
        .collect()
}

/// Deletes the messages with one DeleteMessageBatch; every entry must succeed.
async fn delete_batch(client: &mut SqsClient, queue_url: &str, handles: &[String]) -> anyhow::Result<()> {
    let entries: Vec<Value> = handles
        .iter()
        .enumerate()
        .map(|(index, handle)| json!({ "Id": index.to_string(), "ReceiptHandle": handle }))
        .collect();
    let answer = client
        .call("DeleteMessageBatch", &json!({ "QueueUrl": queue_url, "Entries": entries }))
        .await?;
    let failed = answer["Failed"].as_array().map_or(0, Vec::len);
    let successful = answer["Successful"].as_array().map_or(0, Vec::len);
    if failed > 0 || successful != handles.len() {
        bail!("DeleteMessageBatch: {successful} of {} deleted: {answer}", handles.len());
    }
    Ok(())
}

/// `--messages` messages in SendMessageBatch calls of `--batch` entries from
/// `--clients` concurrent clients, at most `--max-seconds`. Timed from the
/// first send to the last answer (connections are opened before).
async fn send_phase(args: &SqsBenchArgs, endpoint: &Arc<Endpoint>, queue_url: &str, epoch: Instant) -> anyhow::Result<Phase> {
    let label = format!("send x{}", args.clients);
    let bar = progress(args, args.messages, &label);
    let next = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        clients.push(SqsClient::connect(endpoint).await?);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut tasks = Vec::new();
    for mut client in clients {
        let (next, bar, queue_url) = (Arc::clone(&next), bar.clone(), queue_url.to_owned());
        let (total, batch, message_bytes) = (args.messages, args.batch as u64, args.message_bytes);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let entries: Vec<Value> = (first..(first + batch).min(total))
                    .map(|sequence| json!({ "Id": sequence.to_string(), "MessageBody": body(message_bytes, epoch, sequence) }))
                    .collect();
                let count = entries.len();
                let answer = client
                    .call("SendMessageBatch", &json!({ "QueueUrl": queue_url, "Entries": entries }))
                    .await?;
                let successful = answer["Successful"].as_array().map_or(0, Vec::len);
                if successful != count {
                    bail!("SendMessageBatch: {successful} of {count} sent: {answer}");
                }
                sent += count as u64;
                bar.inc(count as u64);
            }
            anyhow::Ok(sent)
        }));
    }
    let mut sent = 0;
    for task in tasks {
        sent += task.await??;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(Phase::new(&label, sent, sent * args.message_bytes as u64, elapsed))
}

/// `--clients` concurrent clients each receive up to `--batch` messages
/// (long polling briefly) and delete them with one DeleteMessageBatch, until
/// all `total` are deleted. Timed from the first receive to the last
/// delete's answer. Returns the phase and the number of distinct messages
/// received, which must be `total`: none lost, none received twice.
async fn receive_phase(args: &SqsBenchArgs, endpoint: &Arc<Endpoint>, queue_url: &str, total: u64) -> anyhow::Result<(Phase, u64)> {
    let label = format!("receive+delete x{}", args.clients);
    let bar = progress(args, total, &label);
    let deleted = Arc::new(AtomicU64::new(0));
    // Milliseconds since `started` of the last successful delete, for a stall check.
    let progressed_ms = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        clients.push(SqsClient::connect(endpoint).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut client in clients {
        let (deleted, progressed_ms, bar, queue_url) =
            (Arc::clone(&deleted), Arc::clone(&progressed_ms), bar.clone(), queue_url.to_owned());
        let batch = args.batch;
        tasks.push(tokio::spawn(async move {
            let mut sequences = Vec::new();
            let mut last_delete = None;
            let request = json!({ "QueueUrl": queue_url, "MaxNumberOfMessages": batch, "WaitTimeSeconds": DRAIN_WAIT_SECONDS });
            while deleted.load(Ordering::Relaxed) < total {
                let since_progress = started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(progressed_ms.load(Ordering::Relaxed)));
                if since_progress > STALL_TIMEOUT {
                    bail!(
                        "no message was received for {STALL_TIMEOUT:?} with {} of {total} deleted",
                        deleted.load(Ordering::Relaxed)
                    );
                }
                let messages = received(&client.call("ReceiveMessage", &request).await?)?;
                if messages.is_empty() {
                    continue;
                }
                let handles: Vec<String> = messages.iter().map(|message| message.receipt_handle.clone()).collect();
                delete_batch(&mut client, &queue_url, &handles).await?;
                last_delete = Some(started.elapsed());
                progressed_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                deleted.fetch_add(handles.len() as u64, Ordering::Relaxed);
                bar.inc(handles.len() as u64);
                sequences.extend(messages.iter().map(|message| message.sequence));
            }
            anyhow::Ok((sequences, last_delete))
        }));
    }
    let mut sequences = Vec::with_capacity(total as usize);
    let mut elapsed = Duration::ZERO;
    for task in tasks {
        let (received, last_delete) = task.await??;
        sequences.extend(received);
        elapsed = elapsed.max(last_delete.unwrap_or_default());
    }
    bar.finish_and_clear();
    let count = sequences.len() as u64;
    sequences.sort_unstable();
    sequences.dedup();
    let distinct = sequences.len() as u64;
    if distinct != total || count != total {
        bail!("{label}: {count} messages received, {distinct} distinct, of {total} sent");
    }
    Ok((Phase::new(&label, count, count * args.message_bytes as u64, elapsed), distinct))
}

/// One receiver parked in a `WaitTimeSeconds` 20 long poll (its deletes
/// done by a second client, so that it is back in its long poll at once) and
/// one sender sending one message at a time at `--latency-rate`. A message's
/// latency is from just before its SendMessage to when its ReceiveMessage
/// answer arrived, so it includes the send's own round trip.
async fn latency_phase(args: &SqsBenchArgs, endpoint: &Arc<Endpoint>, queue_url: &str, epoch: Instant) -> anyhow::Result<Phase> {
    let total = crate::bench::latency_messages(args.latency_rate, args.latency_seconds, args.messages);
    let label = format!("long poll @ {}/s", args.latency_rate);
    let bar = progress(args, total, &label);
    let (handles_tx, mut handles_rx) = mpsc::unbounded_channel::<String>();
    let mut deleter_client = SqsClient::connect(endpoint).await?;
    let deleter = {
        let queue_url = queue_url.to_owned();
        tokio::spawn(async move {
            let mut handles = Vec::with_capacity(BATCH_ENTRIES_MAX);
            while handles_rx.recv_many(&mut handles, BATCH_ENTRIES_MAX).await > 0 {
                delete_batch(&mut deleter_client, &queue_url, &handles).await?;
                handles.clear();
            }
            anyhow::Ok(())
        })
    };
    let mut receiver_client = SqsClient::connect(endpoint).await?;
    let receiver = {
        let (queue_url, bar) = (queue_url.to_owned(), bar.clone());
        tokio::spawn(async move {
            let mut histogram: Histogram<u64> = latency_histogram();
            let request =
                json!({ "QueueUrl": queue_url, "MaxNumberOfMessages": BATCH_ENTRIES_MAX, "WaitTimeSeconds": LATENCY_WAIT_SECONDS });
            while histogram.len() < total {
                let answer = receiver_client.call("ReceiveMessage", &request).await?;
                let now_ns = epoch.elapsed().as_nanos() as u64;
                for message in received(&answer)? {
                    let micros = now_ns.saturating_sub(message.sent_ns) / 1000;
                    let _ = histogram.record(micros.max(1));
                    bar.inc(1);
                    // The deleter outlives the receiver; a failed delete is its error to report.
                    let _ = handles_tx.send(message.receipt_handle);
                }
            }
            anyhow::Ok(histogram)
        })
    };
    let mut sender = SqsClient::connect(endpoint).await?;
    // Not a synchronization: the first messages would otherwise measure
    // the receiver's first request still on its way, not a parked long poll.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.latency_rate as f64);
    let mut next = tokio::time::Instant::now();
    for sequence in 0..total {
        tokio::time::sleep_until(next).await;
        next += interval;
        let input = json!({ "QueueUrl": queue_url, "MessageBody": body(args.message_bytes, epoch, sequence) });
        sender.call("SendMessage", &input).await?;
    }
    let histogram = receiver.await??;
    let elapsed = started.elapsed();
    deleter.await??;
    bar.finish_and_clear();
    Ok(Phase::new(&label, total, total * args.message_bytes as u64, elapsed).with_latency(&histogram))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_their_stamp_and_have_the_requested_size() {
        let epoch = Instant::now();
        let text = body(64, epoch, 42);
        assert_eq!(text.len(), 64);
        let (sent_ns, sequence) = stamp(&text).expect("stamp");
        assert_eq!(sequence, 42);
        assert!(sent_ns <= epoch.elapsed().as_nanos() as u64);
        assert!(stamp("hello world").is_err());
    }

    #[test]
    fn endpoints_are_http_urls_with_an_optional_port_and_path() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8080").expect("parse");
        assert_eq!((endpoint.authority.as_str(), endpoint.path.as_str()), ("127.0.0.1:8080", "/"));
        let endpoint = Endpoint::parse("http://sqs.local/queue/").expect("parse");
        assert_eq!((endpoint.authority.as_str(), endpoint.path.as_str()), ("sqs.local:80", "/queue/"));
        assert!(Endpoint::parse("https://sqs.us-east-1.amazonaws.com").is_err());
        assert!(Endpoint::parse("http:///").is_err());
    }
}
