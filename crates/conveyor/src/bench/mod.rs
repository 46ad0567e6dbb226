//! `conveyor bench …`: load generators that talk to any broker speaking the
//! protocol, so Conveyor can be compared with Kafka, RabbitMQ or SQS on the
//! same machine with the same client.

pub mod amqp;
pub mod amqp_sink;
pub mod backlog;
pub mod broker_cpu;
pub mod disk;
pub mod kafka;
pub mod kafka_producer;
pub mod report;
pub mod scale;
pub mod spawned;
pub mod sqs;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Kafka producer and consumer throughput and end-to-end latency against any Kafka-protocol broker.
    Kafka(kafka::KafkaBenchArgs),
    /// AMQP 0-9-1 publish (with confirms), consume, work-queue throughput and end-to-end latency against any AMQP 0-9-1 broker.
    Amqp(amqp::AmqpBenchArgs),
    /// A no-op AMQP 0-9-1 server that confirms every publish at once: the ceiling of `bench amqp --publish-only` on this machine.
    AmqpSink(amqp_sink::AmqpSinkArgs),
    /// SQS send and receive-and-delete throughput with batches and concurrent clients, and long-polling receive latency, against any SQS-compatible endpoint.
    Sqs(sqs::SqsBenchArgs),
    /// Starts its own broker: N durable queues and M partitions, one message each, consumed after a restart; reports threads, open files, memory per queue and the start time.
    Scale(scale::ScaleBenchArgs),
    /// Starts its own broker: fills a Kafka topic and an AMQP queue without consumers up to --mebibytes each, reporting the broker's memory as the backlog grows.
    Backlog(backlog::BacklogBenchArgs),
}

impl BenchCommand {
    /// The output flags of this benchmark (the sink prints no report).
    pub fn output_mut(&mut self) -> Option<&mut report::Output> {
        match self {
            BenchCommand::Kafka(args) => Some(&mut args.output),
            BenchCommand::Amqp(args) => Some(&mut args.output),
            BenchCommand::Sqs(args) => Some(&mut args.output),
            BenchCommand::Scale(args) => Some(&mut args.output),
            BenchCommand::Backlog(args) => Some(&mut args.output),
            BenchCommand::AmqpSink(_) => None,
        }
    }
}

pub fn run(command: &BenchCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match command {
        BenchCommand::Kafka(args) => runtime.block_on(kafka::run(args)),
        BenchCommand::Amqp(args) => runtime.block_on(amqp::run(args)),
        BenchCommand::AmqpSink(args) => runtime.block_on(amqp_sink::run(args)),
        BenchCommand::Sqs(args) => runtime.block_on(sqs::run(args)),
        BenchCommand::Scale(args) => runtime.block_on(scale::run(args)),
        BenchCommand::Backlog(args) => runtime.block_on(backlog::run(args)),
    }
}

/// Messages the fixed-rate latency phase sends: `rate` a second for
/// `seconds`, but never more than the run's `--messages`, so a small run
/// stays small.
pub fn latency_messages(rate: u64, seconds: u64, messages: u64) -> u64 {
    rate.saturating_mul(seconds).min(messages)
}

/// How long that phase runs, in whole seconds (for the paced disk baseline
/// that runs as long).
pub fn latency_seconds(rate: u64, seconds: u64, messages: u64) -> u64 {
    latency_messages(rate, seconds, messages).div_ceil(rate.max(1))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// A short suffix that differs between runs, for resource names.
pub fn unique_suffix() -> String {
    format!("{:x}", now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_phase_never_sends_more_than_the_run_asks_for() {
        assert_eq!(latency_messages(5000, 10, 200_000), 50_000);
        assert_eq!(latency_messages(5000, 10, 5000), 5000);
        assert_eq!(latency_messages(u64::MAX, 10, 7), 7);
    }
}
