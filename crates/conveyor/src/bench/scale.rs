//! `conveyor bench scale`: starts its own broker, declares N durable
//! queues over AMQP and M partitions over Kafka, publishes one message to
//! each and consumes it back, restarts the broker, and reports its threads,
//! open files and memory (per queue and partition) at each step and the
//! start time after the restart. Knows the two protocols' clients and
//! `/proc`; not how the broker keeps its queues.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use conveyor_kafka::client::Client;
use conveyor_log::record::{BatchBuilder, Record};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{CreateTopicsRequest, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde::Serialize;

use super::amqp::{confirmed, persistent};
use super::report;
use super::spawned::{DataDir, ProcessSample, SpawnedBroker, mebibytes};

#[derive(Debug, Args)]
pub struct ScaleBenchArgs {
    /// Durable queues declared over AMQP.
    #[arg(long, default_value_t = 10_000)]
    pub queues: usize,
    /// Kafka partitions in all, in topics of --partitions-per-topic.
    #[arg(long, default_value_t = 2_000)]
    pub partitions: usize,
    #[arg(long, default_value_t = 100)]
    pub partitions_per_topic: usize,
    /// AMQP channels the queues are spread over, each working at once.
    #[arg(long, default_value_t = 32)]
    pub channels: usize,
    #[command(flatten)]
    pub dir: DataDir,
    #[command(flatten)]
    pub output: report::Output,
}

/// One step's figures.
#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    seconds: f64,
    #[serde(flatten)]
    process: ProcessSample,
}

#[derive(Debug, Serialize)]
struct ScaleReport {
    queues: usize,
    partitions: usize,
    steps: Vec<Step>,
    /// SIGTERM to exit, loaded.
    stop_seconds: f64,
    /// Start after the restart, to the ready line.
    restart_seconds: f64,
    /// RSS after the restart over that of the same broker started empty,
    /// per queue and partition (each idle, holding one message).
    idle_bytes_per_queue_or_partition: f64,
}

pub async fn run(args: &ScaleBenchArgs) -> anyhow::Result<()> {
    args.dir
        .run("scale", async |data_dir| print(args, &measure(args, data_dir).await?))
        .await
}

fn print(args: &ScaleBenchArgs, report: &ScaleReport) -> anyhow::Result<()> {
    if args.output.json {
        crate::cli::render::out!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    crate::cli::render::out!("\nscale: {} durable queues, {} partitions", report.queues, report.partitions);
    crate::cli::render::out!(
        "{:<26} {:>9} {:>8} {:>11} {:>9} {:>13}",
        "step",
        "seconds",
        "threads",
        "open files",
        "RSS MiB",
        "RssAnon MiB"
    );
    for step in &report.steps {
        crate::cli::render::out!(
            "{:<26} {:>9.2} {:>8} {:>11} {:>9.1} {:>13.1}",
            step.step,
            step.seconds,
            step.process.threads,
            step.process.open_files,
            mebibytes(step.process.rss_bytes),
            mebibytes(step.process.rss_anon_bytes)
        );
    }
    crate::cli::render::out!(
        "stop (SIGTERM, loaded): {:.2} s; start after the restart: {:.2} s",
        report.stop_seconds,
        report.restart_seconds
    );
    crate::cli::render::out!(
        "RSS per idle queue or partition after the restart: {:.1} KiB (over the empty broker's, same run)",
        report.idle_bytes_per_queue_or_partition / 1024.0
    );
    Ok(())
}

async fn measure(args: &ScaleBenchArgs, data_dir: &std::path::Path) -> anyhow::Result<ScaleReport> {
    if args.partitions_per_topic == 0 || args.channels == 0 {
        bail!("--partitions-per-topic and --channels must be at least 1");
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mut steps = Vec::new();
    let broker = SpawnedBroker::start(data_dir, None)?;
    let empty = broker.sample()?;
    steps.push(Step {
        step: "started empty",
        seconds: broker.started_in.as_secs_f64(),
        process: empty,
    });

    let started = Instant::now();
    let (connection, channels) = broker.amqp_channels(args.channels).await?;
    each_queue(args, &channels, |channel, queue| async move {
        let options = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel.queue_declare(queue.as_str().into(), options, FieldTable::default()).await?;
        Ok(())
    })
    .await?;
    steps.push(step("queues declared", started, &broker)?);

    let started = Instant::now();
    let mut kafka = Client::connect(broker.kafka).await.context("connecting to Kafka")?;
    let topics = topics(args);
    create_topics(&mut kafka, &topics).await?;
    steps.push(step("partitions created", started, &broker)?);

    let started = Instant::now();
    each_queue(args, &channels, |channel, queue| async move {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                queue.as_bytes(),
                persistent(),
            )
            .await?;
        confirmed(confirm).await
    })
    .await?;
    produce(&mut kafka, &topics).await?;
    steps.push(step("one message each", started, &broker)?);
    let _ = connection.close(200, "bench done".into()).await;
    drop(kafka);

    let stopped_in = broker.stop()?;
    let broker = SpawnedBroker::start(data_dir, None)?;
    let restarted = broker.sample()?;
    let broker_restart_seconds = broker.started_in.as_secs_f64();
    steps.push(Step {
        step: "restarted",
        seconds: broker.started_in.as_secs_f64(),
        process: restarted,
    });

    let started = Instant::now();
    let (connection, channels) = broker.amqp_channels(args.channels).await?;
    each_queue(args, &channels, |channel, queue| async move {
        let Some(message) = channel.basic_get(queue.as_str().into(), BasicGetOptions::default()).await? else {
            bail!("queue {queue} lost its message across the restart");
        };
        message.delivery.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    })
    .await?;
    let mut kafka = Client::connect(broker.kafka).await.context("connecting to Kafka")?;
    fetch_every_record(&mut kafka, &topics).await?;
    steps.push(step("consumed after restart", started, &broker)?);
    let _ = connection.close(200, "bench done".into()).await;
    broker.stop()?;

    let count = (args.queues + args.partitions).max(1) as f64;
    Ok(ScaleReport {
        queues: args.queues,
        partitions: args.partitions,
        stop_seconds: stopped_in.as_secs_f64(),
        restart_seconds: broker_restart_seconds,
        idle_bytes_per_queue_or_partition: (restarted.rss_bytes as f64 - empty.rss_bytes as f64) / count,
        steps,
    })
}

fn step(name: &'static str, started: Instant, broker: &SpawnedBroker) -> anyhow::Result<Step> {
    Ok(Step {
        step: name,
        seconds: started.elapsed().as_secs_f64(),
        process: broker.sample()?,
    })
}

fn queue_name(index: usize) -> String {
    format!("bench-scale-q{index:06}")
}

/// Runs `work` once for every queue, the channels taking the next queue
/// as each finishes its last.
async fn each_queue<F, Fut>(args: &ScaleBenchArgs, channels: &[Channel], work: F) -> anyhow::Result<()>
where
    F: Fn(Channel, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let total = args.queues;
    let mut tasks = Vec::with_capacity(channels.len());
    for channel in channels {
        let (channel, next, work) = (channel.clone(), Arc::clone(&next), work.clone());
        tasks.push(tokio::spawn(async move {
            // Bounded: each index is taken once.
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return anyhow::Ok(());
                }
                work(channel.clone(), queue_name(index)).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_owned()))
}

/// Topic names and their partition counts, adding up to --partitions.
fn topics(args: &ScaleBenchArgs) -> Vec<(String, i32)> {
    let mut left = args.partitions;
    let mut topics = Vec::new();
    while left > 0 {
        let partitions = left.min(args.partitions_per_topic);
        topics.push((format!("bench-scale-t{:04}", topics.len()), partitions as i32));
        left -= partitions;
    }
    topics
}

async fn create_topics(client: &mut Client, topics: &[(String, i32)]) -> anyhow::Result<()> {
    let request = CreateTopicsRequest::default().with_timeout_ms(60_000).with_topics(
        topics
            .iter()
            .map(|(topic, partitions)| {
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(*partitions)
                    .with_replication_factor(1)
            })
            .collect(),
    );
    let response = client.send(&request, 5).await.context("CreateTopics")?;
    for topic in &response.topics {
        if topic.error_code != 0 {
            bail!("creating {:?}: error {} {:?}", topic.name, topic.error_code, topic.error_message);
        }
    }
    Ok(())
}

async fn produce(client: &mut Client, topics: &[(String, i32)]) -> anyhow::Result<()> {
    for (topic, partitions) in topics {
        let data = (0..*partitions)
            .map(|partition| {
                let mut batch = BatchBuilder::new(super::now_ms());
                batch.push(Record::new(None, Some(format!("{topic}/{partition}").into_bytes())));
                PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch.build()))
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default().with_name(name(topic)).with_partition_data(data)]);
        let response = client.send(&request, 9).await.context("Produce")?;
        for partition in response.responses.iter().flat_map(|topic| &topic.partition_responses) {
            if partition.error_code != 0 {
                bail!("producing to {topic}/{}: error {}", partition.index, partition.error_code);
            }
        }
    }
    Ok(())
}

/// Every partition gives back its one record.
async fn fetch_every_record(client: &mut Client, topics: &[(String, i32)]) -> anyhow::Result<()> {
    for (topic, partitions) in topics {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(64 << 20)
            .with_topics(vec![
                FetchTopic::default().with_topic(name(topic)).with_partitions(
                    (0..*partitions)
                        .map(|partition| {
                            FetchPartition::default()
                                .with_partition(partition)
                                .with_fetch_offset(0)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                ),
            ]);
        let response = client.send(&request, 11).await.context("Fetch")?;
        for partition in response.responses.iter().flat_map(|topic| &topic.partitions) {
            if partition.error_code != 0 || partition.high_watermark != 1 {
                bail!(
                    "{topic}/{}: error {}, high watermark {} (1 expected)",
                    partition.partition_index,
                    partition.error_code,
                    partition.high_watermark
                );
            }
        }
    }
    Ok(())
}
