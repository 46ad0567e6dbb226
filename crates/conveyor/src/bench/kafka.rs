//! `conveyor bench kafka`: produce throughput, consume throughput and
//! end-to-end latency at a fixed rate, against any Kafka-protocol broker.
//!
//! Producers send uncompressed batches of `--batch` records over their own
//! connections with up to `--in-flight` requests pipelined, round-robin over
//! the partitions. Consumers fetch with their own connections. Each record's
//! value starts with the time it was sent (ns since the bench started), so the
//! consumer side measures end-to-end latency in the same process and clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use conveyor_kafka::client::Client;
use conveyor_log::batch::{BatchHeader, LOG_OVERHEAD};
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_tls::{ServerName, TlsConnector};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::broker_cpu::BrokerProcess;
use super::kafka_producer::{Delivery, ProducerSession};
use super::report::{self, Phase, latency_histogram};

const PRODUCE_VERSION: i16 = 7;
const FETCH_VERSION: i16 = 11;
const METADATA_VERSION: i16 = 9;
const LIST_OFFSETS_VERSION: i16 = 3;
const CREATE_TOPICS_VERSION: i16 = 5;
const DELETE_TOPICS_VERSION: i16 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// acks=0: no reply.
    #[value(name = "0")]
    None,
    /// acks=1.
    #[value(name = "1")]
    Leader,
    /// acks=all (-1).
    All,
}

impl Acks {
    fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

#[derive(Debug, Args)]
pub struct KafkaBenchArgs {
    /// Bootstrap broker (host:port); any Kafka-protocol broker works.
    #[arg(long, default_value = "127.0.0.1:9092", env = "CONVEYOR_BENCH_KAFKA")]
    pub brokers: String,
    /// Topic to use; created if missing. Default: a fresh topic per run.
    #[arg(long)]
    pub topic: Option<String>,
    /// Partitions of a topic the bench creates.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Messages to produce in the throughput phase.
    #[arg(long, default_value_t = 200_000)]
    pub messages: u64,
    /// Size of each message value in bytes (at least 8).
    #[arg(long, default_value_t = 1024)]
    pub message_bytes: usize,
    /// Records per produce batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Producer connections.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumer connections in the consume phase.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Produce requests in flight per producer connection.
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// Messages per second in the latency phase (0 skips it); it sends at
    /// most --messages.
    #[arg(long, default_value_t = 5000)]
    pub latency_rate: u64,
    /// Length of the latency phase in seconds.
    #[arg(long, default_value_t = 10)]
    pub latency_seconds: u64,
    /// Only the latency phase (with its disk baseline), e.g. to profile the
    /// broker at a steady modest rate.
    #[arg(long)]
    pub latency_only: bool,
    /// Measure the disk's raw baseline (1 MiB write + fdatasync) in this
    /// directory right before and after the produce phase, and give produce
    /// MB/s as a ratio of it. Use a directory on the broker's data disk.
    #[arg(long)]
    pub baseline_dir: Option<std::path::PathBuf>,
    /// Connect over TLS (Kafka's SSL), trusting the certificates in this
    /// PEM file; the broker's certificate must name --brokers' host.
    #[arg(long, value_name = "PEM")]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Keep the topic the bench created (it is deleted at the end otherwise;
    /// a topic named with --topic that existed before is always kept).
    #[arg(long)]
    pub keep: bool,
    /// Also measure produce into a compacted topic (`cleanup.policy=compact`)
    /// while the broker's cleaner compacts it, next to the same produce into
    /// a plain topic: both with keyed records (`--compaction-keys` keys), the
    /// compacted topic first filled with `--messages` records so the cleaner
    /// has work all along. Run the broker with a short `[log_cleaner]
    /// backoff_ms` (e.g. 100) so the cleaner starts at once.
    #[arg(long)]
    pub compaction: bool,
    /// Distinct keys of the compaction phases' records.
    #[arg(long, default_value_t = 1000)]
    pub compaction_keys: u64,
    /// `segment.bytes` of both topics of the compaction phases (smaller
    /// segments seal sooner, so the cleaner has more to do while the
    /// measured produce runs).
    #[arg(long, default_value_t = 8 << 20)]
    pub compaction_segment_bytes: u64,
    /// Also measure transactional produce (a commit every
    /// `--commit-interval-ms`) next to idempotent produce, each into a fresh
    /// topic; the transactional rate is given as a ratio of the idempotent
    /// one. The bootstrap broker must coordinate transactions (true of a
    /// one-node cluster).
    #[arg(long)]
    pub transactions: bool,
    /// How old a transaction of `--transactions` is when it commits.
    #[arg(long, default_value_t = 100)]
    pub commit_interval_ms: u64,
    #[command(flatten)]
    pub broker: BrokerProcess,
    #[command(flatten)]
    pub output: report::Output,
}

/// The bootstrap broker and how to reach it.
struct Endpoint {
    brokers: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Endpoint {
    fn new(args: &KafkaBenchArgs) -> anyhow::Result<Endpoint> {
        let tls = match &args.tls_ca_file {
            Some(path) => {
                let host = args.brokers.rsplit_once(':').map_or(args.brokers.as_str(), |(host, _)| host);
                let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                    .with_context(|| format!("{host} as a TLS server name"))?;
                Some((conveyor_tls::connector(path)?, name))
            }
            None => None,
        };
        Ok(Endpoint {
            brokers: args.brokers.clone(),
            tls,
        })
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        let client = match &self.tls {
            Some((connector, name)) => Client::connect_tls(&self.brokers, connector, name.clone()).await,
            None => Client::connect(&self.brokers).await,
        };
        client.with_context(|| format!("connecting to {}", self.brokers))
    }
}

/// Where partitions live: this bench talks to the bootstrap broker only,
/// which is every partition's leader on a one-node cluster.
struct Target {
    endpoint: Endpoint,
    topic: String,
    partitions: u32,
    /// This run created the topic (it did not exist before).
    created: bool,
}

pub async fn run(args: &KafkaBenchArgs) -> anyhow::Result<()> {
    if args.message_bytes < 8 {
        bail!("--message-bytes must be at least 8 (the send timestamp)");
    }
    if args.batch == 0 || args.producers == 0 || args.consumers == 0 || args.in_flight == 0 {
        bail!("--batch, --producers, --consumers and --in-flight must be at least 1");
    }
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| format!("conveyor-bench-{}-{}", std::process::id(), crate::bench::unique_suffix()));
    let target = Arc::new(prepare(Endpoint::new(args)?, &topic, args.partitions, &[]).await?);
    let epoch = Instant::now();
    let mut phases = Vec::new();

    if !args.latency_only {
        let start_offsets = end_offsets(&target).await?;
        let before = baseline(args).await?;
        let mut produced = args.broker.measure(produce_phase(&target, args, epoch)).await?;
        let after = baseline(args).await?;
        if let (Some(before), Some(after)) = (before, after) {
            let disk = crate::bench::disk::combine(before, after);
            produced.ratio_to_baseline = Some(produced.megabytes_per_second / disk.megabytes_per_second.max(1e-9));
            phases.push(disk);
        }
        phases.push(produced);

        let consumed = args.broker.measure(consume_phase(&target, args, &start_offsets)).await?;
        phases.push(consumed);
    }

    if args.latency_rate > 0 && args.latency_seconds > 0 {
        let mut latency = args.broker.measure(latency_phase(&target, args, epoch)).await?;
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
    if args.compaction {
        phases.extend(compaction_phases(args, &topic, epoch).await?);
    }
    if args.transactions {
        phases.extend(transaction_phases(args, &topic, epoch).await?);
    }
    if target.created && !args.keep {
        delete_topic(&target).await?;
    }
    report::print(
        &format!(
            "conveyor bench kafka: {} msgs of {} B, batches of {}, {} producer(s), {} consumer(s), acks={}, {} partition(s), broker {}{}",
            args.messages,
            args.message_bytes,
            args.batch,
            args.producers,
            args.consumers,
            args.acks.code(),
            target.partitions,
            args.brokers,
            if target.endpoint.tls.is_some() { " over TLS" } else { "" }
        ),
        &phases,
        args.output.json,
    );
    Ok(())
}

/// The disk baseline, when `--baseline-dir` asks for it: 1.5 s or 512 MiB.
async fn baseline(args: &KafkaBenchArgs) -> anyhow::Result<Option<Phase>> {
    let Some(dir) = args.baseline_dir.clone() else { return Ok(None) };
    let phase = tokio::task::spawn_blocking(move || {
        crate::bench::disk::fdatasync_baseline(&dir, std::time::Duration::from_millis(1500), 512 << 20)
            .with_context(|| format!("disk baseline in {}", dir.display()))
    })
    .await??;
    Ok(Some(phase))
}

async fn prepare(endpoint: Endpoint, topic: &str, partitions: u32, configs: &[(&str, String)]) -> anyhow::Result<Target> {
    let mut client = endpoint.connect().await?;
    let name = TopicName(StrBytes::from_string(topic.to_owned()));
    let configs = configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string((*key).to_owned()))
                .with_value(Some(StrBytes::from_string(value.clone())))
        })
        .collect();
    let create = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(name.clone())
            .with_num_partitions(partitions as i32)
            .with_replication_factor(1)
            .with_configs(configs),
    ]);
    let answer = client.send(&create, CREATE_TOPICS_VERSION).await?;
    let error_code = answer.topics.first().map_or(0, |result| result.error_code);
    if error_code != 0 && error_code != ResponseError::TopicAlreadyExists.code() {
        bail!("creating topic {topic}: error code {error_code}");
    }
    let created = error_code == 0;
    // Wait (bounded) until metadata shows the partitions with leaders.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metadata = client
            .send(
                &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name.clone()))])),
                METADATA_VERSION,
            )
            .await?;
        if let Some(found) = metadata.topics.first()
            && found.error_code == 0
            && !found.partitions.is_empty()
            && found.partitions.iter().all(|partition| partition.leader_id.0 >= 0)
        {
            return Ok(Target {
                endpoint,
                topic: topic.to_owned(),
                partitions: found.partitions.len() as u32,
                created,
            });
        }
        if Instant::now() >= deadline {
            bail!("topic {topic} has no leaders after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes the topic the run created, with its messages.
async fn delete_topic(target: &Target) -> anyhow::Result<()> {
    let mut client = target.endpoint.connect().await?;
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topic_names(vec![topic_name(target)]);
    let answer = client.send(&request, DELETE_TOPICS_VERSION).await?;
    match answer.responses.first().map_or(0, |result| result.error_code) {
        0 => Ok(()),
        code => bail!("deleting topic {}: error code {code} (--keep keeps it)", target.topic),
    }
}

fn topic_name(target: &Target) -> TopicName {
    TopicName(StrBytes::from_string(target.topic.clone()))
}

/// The latest offset of every partition.
async fn end_offsets(target: &Target) -> anyhow::Result<Vec<i64>> {
    let mut client = target.endpoint.connect().await?;
    let partitions = (0..target.partitions as i32)
        .map(|index| ListOffsetsPartition::default().with_partition_index(index).with_timestamp(-1))
        .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(target))
                .with_partitions(partitions),
        ]);
    let reply = client.send(&request, LIST_OFFSETS_VERSION).await?;
    let mut offsets = vec![0; target.partitions as usize];
    for partition in reply.topics.iter().flat_map(|topic| &topic.partitions) {
        if partition.error_code != 0 {
            bail!(
                "ListOffsets partition {}: error {}",
                partition.partition_index,
                partition.error_code
            );
        }
        if let Some(slot) = offsets.get_mut(partition.partition_index as usize) {
            *slot = partition.offset;
        }
    }
    Ok(offsets)
}

/// A batch of `count` records whose values start with the send time.
fn batch(count: usize, message_bytes: usize, epoch: Instant) -> Bytes {
    keyed_builder(count, message_bytes, epoch, None).build()
}

/// [`batch`]'s records, keyed `key-<n>` with `n` cycling through `keys.1`
/// keys from `keys.0` when `keys` is given, not yet encoded.
fn keyed_builder(count: usize, message_bytes: usize, epoch: Instant, keys: Option<(u64, u64)>) -> BatchBuilder {
    let mut builder = BatchBuilder::new(crate::bench::now_ms());
    let sent_ns = epoch.elapsed().as_nanos() as u64;
    for index in 0..count {
        let mut value = vec![b'x'; message_bytes];
        value[..8].copy_from_slice(&sent_ns.to_be_bytes());
        let key = keys.map(|(first, keys)| format!("key-{}", (first + index as u64) % keys.max(1)).into_bytes());
        builder.push(Record::new(key, Some(value)));
    }
    builder
}

fn produce_request(target: &Target, partition: u32, acks: Acks, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks.code())
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default().with_name(topic_name(target)).with_partition_data(
            vec![PartitionProduceData::default().with_index(partition as i32).with_records(Some(records))],
        )])
}

fn check_produced(reply: &ProduceResponse) -> anyhow::Result<()> {
    for partition in reply.responses.iter().flat_map(|topic| &topic.partition_responses) {
        if partition.error_code != 0 {
            return Err(anyhow!(
                "produce to partition {} failed with error code {}",
                partition.index,
                partition.error_code
            ));
        }
    }
    Ok(())
}

fn progress(args: &KafkaBenchArgs, total: u64, label: &str) -> ProgressBar {
    args.output.progress(total, label)
}

async fn produce_phase(target: &Arc<Target>, args: &KafkaBenchArgs, epoch: Instant) -> anyhow::Result<Phase> {
    produce_into(target, args, epoch, "produce", None, Delivery::Plain).await
}

/// Produces `--messages` records into `target`, keyed when `keys` gives
/// how many distinct keys, as plain, idempotent or transactional producers.
async fn produce_into(
    target: &Arc<Target>,
    args: &KafkaBenchArgs,
    epoch: Instant,
    name: &str,
    keys: Option<u64>,
    delivery: Delivery,
) -> anyhow::Result<Phase> {
    let batches_total = args.messages.div_ceil(args.batch as u64);
    let next_batch = Arc::new(AtomicU64::new(0));
    let bar = progress(args, args.messages, name);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for producer in 0..args.producers {
        let (target, next_batch, bar) = (Arc::clone(target), Arc::clone(&next_batch), bar.clone());
        let (acks, batch_size, message_bytes, in_flight, messages) =
            (args.acks, args.batch, args.message_bytes, args.in_flight, args.messages);
        let transactional_id = format!("{}-producer-{producer}", target.topic);
        tasks.push(tokio::spawn(async move {
            let mut client = target.endpoint.connect().await?;
            let mut session = ProducerSession::start(&mut client, delivery, &transactional_id).await?;
            let mut pending = std::collections::VecDeque::new();
            let mut sent = 0u64;
            loop {
                let index = next_batch.fetch_add(1, Ordering::Relaxed);
                if index >= batches_total {
                    break;
                }
                let count = (messages - index * batch_size as u64).min(batch_size as u64) as usize;
                let partition = (index % u64::from(target.partitions)) as u32;
                let first_key = index * batch_size as u64;
                session.begin(&mut client, &topic_name(&target), target.partitions).await?;
                let builder = keyed_builder(count, message_bytes, epoch, keys.map(|keys| (first_key, keys)));
                let records = session.stamp(partition, count, builder).build();
                let request = produce_request(&target, partition, acks, records).with_transactional_id(session.transactional_id());
                let correlation_id = client.write(&request, PRODUCE_VERSION).await?;
                if acks != Acks::None {
                    pending.push_back((correlation_id, count));
                    await_acks(&mut client, &mut pending, in_flight - 1, &bar).await?;
                } else {
                    bar.inc(count as u64);
                }
                sent += count as u64;
                if session.commit_due() {
                    await_acks(&mut client, &mut pending, 0, &bar).await?;
                    session.commit(&mut client).await?;
                }
            }
            await_acks(&mut client, &mut pending, 0, &bar).await?;
            session.commit(&mut client).await?;
            anyhow::Ok((sent, session.committed_transactions()))
        }));
    }
    let (mut sent, mut transactions) = (0, 0);
    for task in tasks {
        let (messages, committed) = task.await??;
        sent += messages;
        transactions += committed;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let name = match delivery {
        Delivery::Transactional { .. } => format!("{name} ({transactions} commits)"),
        _ => name.to_owned(),
    };
    Ok(Phase::new(&name, sent, sent * args.message_bytes as u64, elapsed))
}

/// Reads produce replies, oldest first, until at most `keep` are pending.
async fn await_acks(
    client: &mut Client,
    pending: &mut std::collections::VecDeque<(i32, usize)>,
    keep: usize,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    while pending.len() > keep
        && let Some((correlation_id, count)) = pending.pop_front()
    {
        check_produced(&client.read::<ProduceRequest>(PRODUCE_VERSION, correlation_id).await?)?;
        bar.inc(count as u64);
    }
    Ok(())
}

/// The transaction phases (`--transactions`): idempotent produce, then the
/// same as a transactional producer committing every
/// `--commit-interval-ms`, each into a fresh topic; the second's rate is
/// given as a ratio of the first's.
async fn transaction_phases(args: &KafkaBenchArgs, topic: &str, epoch: Instant) -> anyhow::Result<Vec<Phase>> {
    let commit_every = Duration::from_millis(args.commit_interval_ms);
    let idempotent_target = Arc::new(prepare(Endpoint::new(args)?, &format!("{topic}-idempotent"), args.partitions, &[]).await?);
    let idempotent = args
        .broker
        .measure(produce_into(
            &idempotent_target,
            args,
            epoch,
            "produce idempotent",
            None,
            Delivery::Idempotent,
        ))
        .await?;
    let transactional_target = Arc::new(prepare(Endpoint::new(args)?, &format!("{topic}-transactional"), args.partitions, &[]).await?);
    let mut transactional = args
        .broker
        .measure(produce_into(
            &transactional_target,
            args,
            epoch,
            "produce transactional",
            None,
            Delivery::Transactional { commit_every },
        ))
        .await?;
    transactional.ratio_to_phase = Some((
        idempotent.name.clone(),
        transactional.messages_per_second / idempotent.messages_per_second.max(1e-9),
    ));
    for target in [&idempotent_target, &transactional_target] {
        if target.created && !args.keep {
            delete_topic(target).await?;
        }
    }
    Ok(vec![idempotent, transactional])
}

/// The compaction phases (`--compaction`): keyed produce into a plain
/// topic, then into a compacted topic the cleaner is compacting (filled
/// first, unmeasured); the second's rate is given as a ratio of the first's.
async fn compaction_phases(args: &KafkaBenchArgs, topic: &str, epoch: Instant) -> anyhow::Result<Vec<Phase>> {
    let keys = Some(args.compaction_keys);
    // The same segment size for both: rolls cost fsyncs, and only the
    // cleaner should differ.
    let plain_configs = [("segment.bytes", args.compaction_segment_bytes.to_string())];
    let plain = Arc::new(prepare(Endpoint::new(args)?, &format!("{topic}-keyed"), args.partitions, &plain_configs).await?);
    let without = produce_into(&plain, args, epoch, "produce keyed, no compaction", keys, Delivery::Plain).await?;
    let compacted_configs = [
        ("cleanup.policy", "compact".to_owned()),
        ("segment.bytes", args.compaction_segment_bytes.to_string()),
        ("min.cleanable.dirty.ratio", "0.01".to_owned()),
    ];
    let compacted = Arc::new(
        prepare(
            Endpoint::new(args)?,
            &format!("{topic}-compacted"),
            args.partitions,
            &compacted_configs,
        )
        .await?,
    );
    let fill = produce_into(&compacted, args, epoch, "fill the compacted topic", keys, Delivery::Plain).await?;
    let mut during = produce_into(&compacted, args, epoch, "produce keyed, while compacting", keys, Delivery::Plain).await?;
    during.ratio_to_phase = Some((
        without.name.clone(),
        during.messages_per_second / without.messages_per_second.max(1e-9),
    ));
    for target in [&plain, &compacted] {
        if target.created && !args.keep {
            delete_topic(target).await?;
        }
    }
    Ok(vec![without, fill, during])
}

/// Reads back everything produced, from `start_offsets`, with `--consumers`
/// connections splitting the partitions.
async fn consume_phase(target: &Arc<Target>, args: &KafkaBenchArgs, start_offsets: &[i64]) -> anyhow::Result<Phase> {
    let end = end_offsets(target).await?;
    let total: u64 = end.iter().zip(start_offsets).map(|(end, start)| (end - start).max(0) as u64).sum();
    let bar = progress(args, total, "consume");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for consumer in 0..args.consumers {
        let owned: Vec<u32> = (0..target.partitions)
            .filter(|partition| *partition as usize % args.consumers == consumer)
            .collect();
        if owned.is_empty() {
            continue;
        }
        let (target, bar) = (Arc::clone(target), bar.clone());
        let positions: Vec<(u32, i64, i64)> = owned.iter().map(|&p| (p, start_offsets[p as usize], end[p as usize])).collect();
        tasks.push(tokio::spawn(async move {
            let mut client = target.endpoint.connect().await?;
            let mut positions = positions;
            let (mut messages, mut bytes) = (0u64, 0u64);
            let deadline = Instant::now() + Duration::from_secs(600);
            while positions.iter().any(|(_, position, end)| position < end) {
                if Instant::now() >= deadline {
                    bail!("consume phase did not finish within 10 minutes");
                }
                let partitions = positions
                    .iter()
                    .filter(|(_, position, end)| position < end)
                    .map(|(partition, position, _)| {
                        FetchPartition::default()
                            .with_partition(*partition as i32)
                            .with_fetch_offset(*position)
                            .with_partition_max_bytes(16 << 20)
                    })
                    .collect();
                let request = FetchRequest::default()
                    .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                    .with_max_wait_ms(500)
                    .with_min_bytes(1)
                    .with_max_bytes(64 << 20)
                    .with_topics(vec![
                        FetchTopic::default().with_topic(topic_name(&target)).with_partitions(partitions),
                    ]);
                let reply = client.send(&request, FETCH_VERSION).await?;
                for partition in reply.responses.iter().flat_map(|topic| &topic.partitions) {
                    if partition.error_code != 0 {
                        bail!("fetch partition {}: error code {}", partition.partition_index, partition.error_code);
                    }
                    let records = partition.records.clone().unwrap_or_default();
                    let (count, last, size) = walk_batches(&records);
                    if let Some(slot) = positions.iter_mut().find(|(p, _, _)| *p as i32 == partition.partition_index)
                        && let Some(last) = last
                    {
                        let from = slot.1;
                        slot.1 = last + 1;
                        let counted = count.min((slot.1 - from).max(0) as u64);
                        messages += counted;
                        bytes += size;
                        bar.inc(counted);
                    }
                }
            }
            anyhow::Ok((messages, bytes))
        }));
    }
    let (mut messages, mut bytes) = (0, 0);
    for task in tasks {
        let (m, b) = task.await??;
        messages += m;
        bytes += b;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    // MB/s counts payload bytes, like the produce phase; the batch framing
    // read on top of it is reported separately.
    let mut phase = Phase::new("consume", messages, messages * args.message_bytes as u64, elapsed);
    phase.wire_bytes = Some(bytes);
    Ok(phase)
}

/// Records, last offset and bytes of the whole batches in a fetch reply.
fn walk_batches(records: &[u8]) -> (u64, Option<i64>, u64) {
    let (mut count, mut last, mut position) = (0u64, None, 0usize);
    while let Some(header) = BatchHeader::parse(&records[position..]) {
        let size = LOG_OVERHEAD + header.batch_length.max(0) as usize;
        if position + size > records.len() {
            break;
        }
        count += header.records_count.max(0) as u64;
        last = Some(header.last_offset());
        position += size;
    }
    (count, last, position as u64)
}

/// A producer at a fixed rate and a long-polling consumer on one partition;
/// measures send-to-receive time of every record.
async fn latency_phase(target: &Arc<Target>, args: &KafkaBenchArgs, epoch: Instant) -> anyhow::Result<Phase> {
    let start = end_offsets(target).await?;
    let total = crate::bench::latency_messages(args.latency_rate, args.latency_seconds, args.messages);
    let bar = progress(args, total, "latency");
    let consumer = {
        let (target, bar) = (Arc::clone(target), bar.clone());
        let mut position = start[0];
        tokio::spawn(async move {
            let mut client = target.endpoint.connect().await?;
            let mut histogram: Histogram<u64> = latency_histogram();
            let deadline = Instant::now() + Duration::from_secs(120);
            while histogram.len() < total {
                if Instant::now() >= deadline {
                    bail!("latency phase consumer saw {} of {total} records within 120 s", histogram.len());
                }
                let request = FetchRequest::default()
                    .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                    .with_max_wait_ms(500)
                    .with_min_bytes(1)
                    .with_max_bytes(8 << 20)
                    .with_topics(vec![FetchTopic::default().with_topic(topic_name(&target)).with_partitions(vec![
                        FetchPartition::default().with_partition(0).with_fetch_offset(position).with_partition_max_bytes(8 << 20),
                    ])]);
                let reply = client.send(&request, FETCH_VERSION).await?;
                let received_ns = epoch.elapsed().as_nanos() as u64;
                for partition in reply.responses.iter().flat_map(|topic| &topic.partitions) {
                    let records = partition.records.clone().unwrap_or_default();
                    let mut at = 0;
                    while let Some(header) = BatchHeader::parse(&records[at..]) {
                        let size = LOG_OVERHEAD + header.batch_length.max(0) as usize;
                        if at + size > records.len() {
                            break;
                        }
                        for record in decode_records(&records[at..at + size]).map_err(|error| anyhow!("{error}"))? {
                            let offset = record.offset.unwrap_or_default();
                            if offset < position {
                                continue;
                            }
                            let value = record.value.unwrap_or_default();
                            if value.len() >= 8 {
                                let sent_ns = u64::from_be_bytes(value[..8].try_into().unwrap_or_default());
                                let micros = received_ns.saturating_sub(sent_ns) / 1000;
                                let _ = histogram.record(micros.max(1));
                            }
                            position = offset + 1;
                            bar.inc(1);
                        }
                        at += size;
                    }
                }
            }
            anyhow::Ok(histogram)
        })
    };
    let started = Instant::now();
    let mut client = target.endpoint.connect().await?;
    let interval = Duration::from_secs_f64(1.0 / args.latency_rate as f64);
    let mut next = tokio::time::Instant::now();
    // Pipelined so that the send rate holds while acknowledgements (fsyncs) are pending.
    let window = args.in_flight.max(64);
    let mut pending = std::collections::VecDeque::with_capacity(window);
    for _ in 0..total {
        tokio::time::sleep_until(next).await;
        next += interval;
        let request = produce_request(target, 0, args.acks, batch(1, args.message_bytes, epoch));
        let correlation_id = client.write(&request, PRODUCE_VERSION).await?;
        if args.acks != Acks::None {
            pending.push_back(correlation_id);
            if pending.len() >= window
                && let Some(correlation_id) = pending.pop_front()
            {
                check_produced(&client.read::<ProduceRequest>(PRODUCE_VERSION, correlation_id).await?)?;
            }
        }
    }
    while let Some(correlation_id) = pending.pop_front() {
        check_produced(&client.read::<ProduceRequest>(PRODUCE_VERSION, correlation_id).await?)?;
    }
    let histogram = consumer.await??;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(Phase::end_to_end(args.latency_rate, total, args.message_bytes, elapsed, &histogram))
}
