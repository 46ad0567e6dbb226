//! `conveyor bench backlog`: starts its own broker and fills a Kafka topic,
//! then an AMQP queue, with nobody consuming, up to a size given on the
//! command line, reporting the broker's memory as the backlog grows: a
//! backlog must live on disk, not in the broker's memory. Knows the two
//! protocols' clients and `/proc`; not how the broker stores messages.

use std::collections::VecDeque;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use conveyor_kafka::client::Client;
use conveyor_log::record::{BatchBuilder, Record};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{CreateTopicsRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde::Serialize;

use super::amqp::{confirmed, persistent};
use super::report;
use super::spawned::{DataDir, ProcessSample, SpawnedBroker, mebibytes};

#[derive(Debug, Args)]
pub struct BacklogBenchArgs {
    /// Bytes of message bodies to store in each of the topic and the queue,
    /// in MiB (the target is 10 GiB, 10240).
    #[arg(long, default_value_t = 10_240)]
    pub mebibytes: u64,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub message_bytes: usize,
    /// Samples of the broker's memory per backlog.
    #[arg(long, default_value_t = 10)]
    pub samples: u64,
    #[command(flatten)]
    pub dir: DataDir,
    #[command(flatten)]
    pub output: report::Output,
}

/// The broker's memory with so much stored.
#[derive(Debug, Serialize)]
struct Sample {
    backlog: &'static str,
    stored_bytes: u64,
    seconds: f64,
    #[serde(flatten)]
    process: ProcessSample,
}

/// Kafka batches of this many bytes (about) per Produce request: under a
/// topic's default `max.message.bytes` (1,048,588) with its overhead.
const BATCH_BYTES: usize = 512 << 10;
/// Unconfirmed AMQP publishes outstanding.
const IN_FLIGHT: usize = 256;

pub async fn run(args: &BacklogBenchArgs) -> anyhow::Result<()> {
    if args.message_bytes == 0 || args.samples == 0 {
        bail!("--message-bytes and --samples must be at least 1");
    }
    args.dir
        .run("backlog", async |data_dir| {
            std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
            print(args, &fill(args, data_dir).await?)
        })
        .await
}

fn print(args: &BacklogBenchArgs, samples: &[Sample]) -> anyhow::Result<()> {
    if args.output.json {
        crate::cli::render::out!("{}", serde_json::to_string_pretty(samples)?);
        return Ok(());
    }
    crate::cli::render::out!(
        "\nbacklog: {} MiB in a Kafka topic, then in an AMQP queue, no consumers",
        args.mebibytes
    );
    crate::cli::render::out!(
        "{:<8} {:>12} {:>9} {:>9} {:>13} {:>8}",
        "backlog",
        "stored MiB",
        "seconds",
        "RSS MiB",
        "RssAnon MiB",
        "threads"
    );
    for sample in samples {
        crate::cli::render::out!(
            "{:<8} {:>12.0} {:>9.1} {:>9.1} {:>13.1} {:>8}",
            sample.backlog,
            mebibytes(sample.stored_bytes),
            sample.seconds,
            mebibytes(sample.process.rss_bytes),
            mebibytes(sample.process.rss_anon_bytes),
            sample.process.threads
        );
    }
    if let Some(max) = samples.iter().map(|sample| sample.process.rss_anon_bytes).max() {
        crate::cli::render::out!("largest RssAnon (page cache excluded): {:.1} MiB", mebibytes(max));
    }
    Ok(())
}

async fn fill(args: &BacklogBenchArgs, data_dir: &std::path::Path) -> anyhow::Result<Vec<Sample>> {
    let target = args.mebibytes << 20;
    let every = (target / args.samples).max(1);
    let broker = SpawnedBroker::start(data_dir, None)?;
    let mut samples = vec![Sample {
        backlog: "none",
        stored_bytes: 0,
        seconds: 0.0,
        process: broker.sample()?,
    }];

    let topic = TopicName(StrBytes::from_static_str("bench-backlog"));
    let mut client = Client::connect(broker.kafka).await.context("connecting to Kafka")?;
    let request = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(topic.clone())
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let response = client.send(&request, 5).await.context("CreateTopics")?;
    if let Some(failed) = response.topics.iter().find(|topic| topic.error_code != 0) {
        bail!("creating the topic: error {} {:?}", failed.error_code, failed.error_message);
    }
    let body = vec![b'k'; args.message_bytes];
    let per_batch = (BATCH_BYTES / args.message_bytes).max(1);
    let started = Instant::now();
    let (mut stored, mut next_sample) = (0u64, every);
    // Bounded by the target: every round stores at least one message.
    while stored < target {
        let mut batch = BatchBuilder::new(super::now_ms());
        for _ in 0..per_batch {
            batch.push(Record::new(None, Some(body.clone())));
        }
        let request = ProduceRequest::default().with_acks(1).with_timeout_ms(30_000).with_topic_data(vec![
            TopicProduceData::default().with_name(topic.clone()).with_partition_data(vec![
                PartitionProduceData::default().with_index(0).with_records(Some(batch.build())),
            ]),
        ]);
        let response = client.send(&request, 9).await.context("Produce")?;
        if let Some(failed) = response
            .responses
            .iter()
            .flat_map(|topic| &topic.partition_responses)
            .find(|partition| partition.error_code != 0)
        {
            bail!("producing: error {}", failed.error_code);
        }
        stored += (per_batch * args.message_bytes) as u64;
        if stored >= next_sample {
            samples.push(sample("kafka", stored, started, &broker)?);
            next_sample += every;
        }
    }

    let (connection, channels) = broker.amqp_channels(1).await?;
    let channel = &channels[0];
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare("bench-backlog".into(), options, FieldTable::default())
        .await?;
    let started = Instant::now();
    let (mut stored, mut next_sample) = (0u64, every);
    let mut pending = VecDeque::with_capacity(IN_FLIGHT);
    while stored < target {
        let confirm = channel
            .basic_publish(
                "".into(),
                "bench-backlog".into(),
                BasicPublishOptions::default(),
                &body,
                persistent(),
            )
            .await?;
        pending.push_back(confirm);
        if pending.len() >= IN_FLIGHT
            && let Some(oldest) = pending.pop_front()
        {
            confirmed(oldest).await?;
        }
        stored += args.message_bytes as u64;
        if stored >= next_sample {
            samples.push(sample("amqp", stored, started, &broker)?);
            next_sample += every;
        }
    }
    while let Some(oldest) = pending.pop_front() {
        confirmed(oldest).await?;
    }
    let _ = connection.close(200, "bench done".into()).await;
    broker.stop()?;
    Ok(samples)
}

fn sample(backlog: &'static str, stored_bytes: u64, started: Instant, broker: &SpawnedBroker) -> anyhow::Result<Sample> {
    Ok(Sample {
        backlog,
        stored_bytes,
        seconds: started.elapsed().as_secs_f64(),
        process: broker.sample()?,
    })
}
