//! `conveyor bench amqp`: publish throughput with publisher confirms, consume
//! throughput with manual acks, a competing-consumer work queue and
//! end-to-end latency at a fixed rate, against any AMQP 0-9-1 broker.
//!
//! Every phase uses a fresh durable queue that the bench declares and deletes.
//! Messages are persistent (`delivery_mode` 2) and each body starts with the
//! time it was sent (ns since the bench started), so the consumer side
//! measures end-to-end latency in the same process and clock. Knows nothing
//! about Conveyor: the same client and workload run against RabbitMQ.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use lapin::message::DeliveryResult;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, DefaultConnectionBuilder, PublisherConfirm};
use tokio::sync::mpsc;

use super::broker_cpu::BrokerProcess;
use super::report::{self, Phase, latency_histogram};

/// Bounds every phase, so that a stuck broker ends the bench with an error.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Args)]
pub struct AmqpBenchArgs {
    /// Broker URL; any AMQP 0-9-1 broker works.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", env = "CONVEYOR_BENCH_AMQP")]
    pub url: String,
    /// Messages in the publish, consume and work-queue phases.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Size of each message body in bytes (at least 8).
    #[arg(long, default_value_t = 1024)]
    pub message_bytes: usize,
    /// Unconfirmed publishes outstanding per publisher connection.
    #[arg(long, default_value_t = 1000)]
    pub in_flight: usize,
    /// Publisher connections in the publish phase (and to fill the work queue).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Prefetch (basic.qos, per consumer) of every consumer.
    #[arg(long, default_value_t = 1000)]
    pub prefetch: u16,
    /// Competing consumers in the work-queue phase, each on its own connection (0 skips it).
    #[arg(long, default_value_t = 4)]
    pub consumers: usize,
    /// Messages per second in the latency phase (0 skips it); it sends at
    /// most --messages.
    #[arg(long, default_value_t = 5000)]
    pub latency_rate: u64,
    /// Length of the latency phase in seconds.
    #[arg(long, default_value_t = 10)]
    pub latency_seconds: u64,
    /// For an `amqps://` URL: trust the certificates in this PEM file (the
    /// CA that signed the broker's certificate) rather than the system's.
    #[arg(long, value_name = "PEM")]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Only the publish phase (what `conveyor bench amqp-sink`, the no-op server, can serve).
    #[arg(long)]
    pub publish_only: bool,
    /// Only the latency phase, e.g. to profile the broker at a steady modest rate.
    #[arg(long, conflicts_with = "publish_only")]
    pub latency_only: bool,
    #[command(flatten)]
    pub broker: BrokerProcess,
    #[command(flatten)]
    pub output: report::Output,
}

pub async fn run(args: &AmqpBenchArgs) -> anyhow::Result<()> {
    if args.message_bytes < 8 {
        bail!("--message-bytes must be at least 8 (the send timestamp)");
    }
    if args.publishers == 0 || args.in_flight == 0 || args.prefetch == 0 || args.messages == 0 {
        bail!("--messages, --publishers, --in-flight and --prefetch must be at least 1");
    }
    let epoch = Instant::now();
    let prefix = format!("conveyor-bench-{}-{}", std::process::id(), crate::bench::unique_suffix());
    let admin = connect(args).await?;
    let admin_channel = admin.create_channel().await?;
    let mut phases = Vec::new();

    if !args.latency_only {
        throughput_phases(args, &admin_channel, &prefix, epoch, &mut phases).await?;
        if args.publish_only {
            close(&admin).await;
            report::print(&summary(args), &phases, args.output.json);
            return Ok(());
        }
    }
    if args.latency_rate > 0 && args.latency_seconds > 0 {
        let queue = format!("{prefix}-latency");
        declare(&admin_channel, &queue).await?;
        let latency = args
            .broker
            .measure(async { tokio::time::timeout(PHASE_TIMEOUT, latency_phase(args, &queue, epoch)).await? })
            .await?;
        phases.push(latency);
        delete(&admin_channel, &queue).await?;
    }
    close(&admin).await;
    report::print(&summary(args), &phases, args.output.json);
    Ok(())
}

/// The publish, consume and work-queue phases (only publish with `--publish-only`).
async fn throughput_phases(
    args: &AmqpBenchArgs,
    admin_channel: &Channel,
    prefix: &str,
    epoch: Instant,
    phases: &mut Vec<Phase>,
) -> anyhow::Result<()> {
    // Publish, then consume the same messages.
    let queue = format!("{prefix}-throughput");
    declare(admin_channel, &queue).await?;
    let published = args
        .broker
        .measure(async { tokio::time::timeout(PHASE_TIMEOUT, publish(args, &queue, epoch, "publish")).await? })
        .await?;
    let published_count = published.messages;
    phases.push(published);
    if args.publish_only {
        delete(admin_channel, &queue).await?;
        return Ok(());
    }
    let consumed = args
        .broker
        .measure(async { tokio::time::timeout(PHASE_TIMEOUT, consume(args, &queue, 1, published_count, "consume")).await? })
        .await?;
    phases.push(consumed);
    delete(admin_channel, &queue).await?;

    // The work queue: pre-filled (not timed), then drained by competing consumers.
    if args.consumers > 0 {
        let queue = format!("{prefix}-work");
        declare(admin_channel, &queue).await?;
        let filled = tokio::time::timeout(PHASE_TIMEOUT, publish(args, &queue, epoch, "fill")).await??;
        let name = format!("work queue x{}", args.consumers);
        let drained = args
            .broker
            .measure(async { tokio::time::timeout(PHASE_TIMEOUT, consume(args, &queue, args.consumers, filled.messages, &name)).await? })
            .await?;
        phases.push(drained);
        delete(admin_channel, &queue).await?;
    }
    Ok(())
}

/// The report's title: the workload and the broker.
fn summary(args: &AmqpBenchArgs) -> String {
    format!(
        "conveyor bench amqp: {} persistent msgs of {} B, confirms with {} in flight x {} publisher(s), prefetch {}, per-message acks, {} work-queue consumer(s){}, broker {}",
        args.messages,
        args.message_bytes,
        args.in_flight,
        args.publishers,
        args.prefetch,
        args.consumers,
        if args.publish_only { ", publish only" } else { "" },
        redacted(&args.url)
    )
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Closes a connection whose work is done. Best effort: the figures are
/// already measured, and lapin reports a close that races the broker's own
/// channel teardown as an error ("invalid channel state: Closing").
async fn close(connection: &Connection) {
    if let Err(error) = connection.close(200, "bench done".into()).await {
        tracing::debug!(%error, "closing a bench connection");
    }
}

async fn declare(channel: &Channel, queue: &str) -> anyhow::Result<()> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .with_context(|| format!("declaring queue {queue}"))?;
    Ok(())
}

async fn delete(channel: &Channel, queue: &str) -> anyhow::Result<()> {
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .with_context(|| format!("deleting queue {queue}"))?;
    Ok(())
}

fn progress(args: &AmqpBenchArgs, total: u64, label: &str) -> ProgressBar {
    args.output.progress(total, label)
}

/// A body of `message_bytes` that starts with the send time.
fn body(message_bytes: usize, epoch: Instant) -> Vec<u8> {
    let mut body = vec![b'x'; message_bytes];
    body[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
    body
}

pub(crate) fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

pub(crate) async fn confirmed(confirm: PublisherConfirm) -> anyhow::Result<()> {
    let confirmation = confirm.await?;
    if !confirmation.is_ack() {
        bail!("the broker did not confirm a publish: {confirmation:?}");
    }
    Ok(())
}

/// A connection to `--url`, over TLS with `--tls-ca-file`'s roots when given.
async fn connect(args: &AmqpBenchArgs) -> anyhow::Result<Connection> {
    let mut builder = DefaultConnectionBuilder::new()?
        .with_uri_str(args.url.clone())
        .with_properties(ConnectionProperties::default());
    if let Some(path) = &args.tls_ca_file {
        let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        builder = builder.with_tls_config(OwnedTLSConfig {
            identity: None,
            cert_chain: Some(pem),
        });
    }
    builder
        .connect()
        .await
        .with_context(|| format!("connecting to {}", redacted(&args.url)))
}

/// Confirm mode on a fresh connection's channel.
async fn publisher(args: &AmqpBenchArgs) -> anyhow::Result<(Connection, Channel)> {
    let connection = connect(args).await?;
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok((connection, channel))
}

/// `--messages` persistent publishes over `--publishers` connections, each
/// keeping `--in-flight` unconfirmed publishes outstanding and waiting on the
/// oldest confirm when the window is full. Timed from the first publish to
/// the last confirm.
async fn publish(args: &AmqpBenchArgs, queue: &str, epoch: Instant, label: &str) -> anyhow::Result<Phase> {
    let bar = progress(args, args.messages, label);
    let next = Arc::new(AtomicU64::new(0));
    let mut connections = Vec::new();
    for _ in 0..args.publishers {
        connections.push(publisher(args).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (connection, channel) in connections {
        let (next, bar, queue) = (Arc::clone(&next), bar.clone(), queue.to_owned());
        let (total, in_flight, message_bytes) = (args.messages, args.in_flight, args.message_bytes);
        tasks.push(tokio::spawn(async move {
            let mut pending = VecDeque::with_capacity(in_flight);
            let mut sent = 0u64;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let confirm = channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &body(message_bytes, epoch),
                        persistent(),
                    )
                    .await?;
                pending.push_back(confirm);
                sent += 1;
                if pending.len() >= in_flight
                    && let Some(oldest) = pending.pop_front()
                {
                    confirmed(oldest).await?;
                    bar.inc(1);
                }
            }
            while let Some(oldest) = pending.pop_front() {
                confirmed(oldest).await?;
                bar.inc(1);
            }
            anyhow::Ok((sent, connection))
        }));
    }
    let mut sent = 0;
    let mut connections = Vec::new();
    for task in tasks {
        let (count, connection) = task.await??;
        sent += count;
        connections.push(connection);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    for connection in connections {
        close(&connection).await;
    }
    Ok(Phase::new(label, sent, sent * args.message_bytes as u64, elapsed))
}

/// A consumer's own connection and channel, with prefetch `prefetch`.
async fn consumer_channel(args: &AmqpBenchArgs, prefetch: u16) -> anyhow::Result<(Connection, Channel)> {
    let connection = connect(args).await?;
    let channel = connection.create_channel().await?;
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    Ok((connection, channel))
}

/// Starts a consumer on a channel from [`consumer_channel`] whose deliveries are acknowledged one by one (`multiple=false`) and
/// reported on `received` with their send time.
async fn subscribe(
    (connection, channel): (Connection, Channel),
    queue: &str,
    received: mpsc::UnboundedSender<u64>,
) -> anyhow::Result<(Connection, Channel)> {
    let consumer = channel
        .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    consumer.set_delegate(move |delivery: DeliveryResult| {
        let received = received.clone();
        async move {
            if let Ok(Some(delivery)) = delivery {
                let sent_ns = delivery
                    .data
                    .get(..8)
                    .and_then(|prefix| prefix.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                // An ack that fails ends the phase by timeout; the error is the broker's to report.
                if delivery.acker.ack(BasicAckOptions::default()).await.is_ok() {
                    let _ = received.send(sent_ns);
                }
            }
        }
    });
    Ok((connection, channel))
}

/// `consumers` consumers drain `total` messages from `queue`. Connections are
/// opened first; timed from the first basic.consume to the answer of a
/// synchronous method sent on every consumer channel after its last ack, so
/// the acks' processing is included.
async fn consume(args: &AmqpBenchArgs, queue: &str, consumers: usize, total: u64, label: &str) -> anyhow::Result<Phase> {
    let bar = progress(args, total, label);
    let (sender, mut received) = mpsc::unbounded_channel();
    let mut channels = Vec::new();
    for _ in 0..consumers {
        channels.push(consumer_channel(args, args.prefetch).await?);
    }
    let started = Instant::now();
    let mut subscribed = Vec::new();
    for channel in channels {
        subscribed.push(subscribe(channel, queue, sender.clone()).await?);
    }
    drop(sender);
    let mut count = 0u64;
    while count < total {
        match received.recv().await {
            Some(_) => {
                count += 1;
                bar.inc(1);
            }
            None => bail!("{label}: consumers stopped after {count} of {total} messages"),
        }
    }
    for (_, channel) in &subscribed {
        channel.basic_qos(args.prefetch, BasicQosOptions::default()).await?;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    for (connection, _) in subscribed {
        close(&connection).await;
    }
    Ok(Phase::new(label, count, count * args.message_bytes as u64, elapsed))
}

/// One publisher at `--latency-rate` msgs/s with confirms (pipelined, so the
/// rate holds while confirms are pending) and one consumer; measures the
/// publish-to-delivery time of every message.
async fn latency_phase(args: &AmqpBenchArgs, queue: &str, epoch: Instant) -> anyhow::Result<Phase> {
    let total = crate::bench::latency_messages(args.latency_rate, args.latency_seconds, args.messages);
    let bar = progress(args, total, "latency");
    let (sender, mut received) = mpsc::unbounded_channel();
    let (consumer_connection, _consumer_channel) = subscribe(consumer_channel(args, args.prefetch).await?, queue, sender).await?;
    let collector = {
        let bar = bar.clone();
        tokio::spawn(async move {
            let mut histogram: Histogram<u64> = latency_histogram();
            while histogram.len() < total {
                let Some(sent_ns) = received.recv().await else {
                    bail!("latency consumer stopped after {} of {total} messages", histogram.len());
                };
                let micros = (epoch.elapsed().as_nanos() as u64).saturating_sub(sent_ns) / 1000;
                let _ = histogram.record(micros.max(1));
                bar.inc(1);
            }
            anyhow::Ok(histogram)
        })
    };
    let (connection, channel) = publisher(args).await?;
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.latency_rate as f64);
    let mut next = tokio::time::Instant::now();
    let mut pending = VecDeque::with_capacity(args.in_flight);
    for _ in 0..total {
        tokio::time::sleep_until(next).await;
        next += interval;
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body(args.message_bytes, epoch),
                persistent(),
            )
            .await?;
        pending.push_back(confirm);
        if pending.len() >= args.in_flight
            && let Some(oldest) = pending.pop_front()
        {
            confirmed(oldest).await?;
        }
    }
    while let Some(oldest) = pending.pop_front() {
        confirmed(oldest).await?;
    }
    let histogram = collector.await??;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    close(&connection).await;
    close(&consumer_connection).await;
    Ok(Phase::end_to_end(args.latency_rate, total, args.message_bytes, elapsed, &histogram))
}
