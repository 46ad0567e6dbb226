//! `GET /metrics`: the broker's state in the Prometheus text exposition
//! format (version 0.0.4), computed from the core on each scrape — log sizes
//! and offsets per partition and queue, consumer-group lag per partition,
//! queue depth by state and consumers per queue, the core's traffic
//! counters per topic and queue (`stats.rs`), open connections and channels
//! per protocol (`connections.rs`), how often each limit was reached
//! (`limits/`), request latency histograms per protocol and API, the log
//! writers' fsync latency histogram, and whether each log is poisoned
//! (`log_health.rs`), the I/O pool's open files, and blocking calls caught
//! on an async worker thread (`reactor_guard`). Names and labels
//! follow Prometheus conventions (`conveyor_` prefix, base units: seconds
//! and bytes, `_total` counters, cumulative `le` buckets).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use conveyor_core::Broker;
use conveyor_core::log_health::{LogRole, LogStatus};
use conveyor_core::stats::Flow;
use conveyor_log::histogram::HistogramSnapshot;

/// One metric family being written: HELP and TYPE once, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl<'a> Family<'a> {
    fn gauge(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        Family::new(out, name, help, "gauge")
    }

    fn counter(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        Family::new(out, name, help, "counter")
    }

    fn histogram(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        Family::new(out, name, help, "histogram")
    }

    /// One histogram's series: cumulative `_bucket`s up to `+Inf`, `_sum`, `_count`.
    fn histogram_samples(&mut self, labels: &[(&str, &str)], snapshot: &HistogramSnapshot) {
        for (bound, count) in &snapshot.buckets {
            let le = bound.to_string();
            let with_le: Vec<(&str, &str)> = labels.iter().copied().chain([("le", le.as_str())]).collect();
            self.series("_bucket", &with_le, *count as f64);
        }
        let with_le: Vec<(&str, &str)> = labels.iter().copied().chain([("le", "+Inf")]).collect();
        self.series("_bucket", &with_le, snapshot.count as f64);
        self.series("_sum", labels, snapshot.sum_s);
        self.series("_count", labels, snapshot.count as f64);
    }

    fn new(out: &'a mut String, name: &str, help: &str, kind: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family {
            out,
            name: name.to_owned(),
        }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.series("", labels, value);
    }

    /// A sample of the family's series named with `suffix` (a histogram's `_bucket`, `_sum`, `_count`).
    fn series(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            let rendered: Vec<String> = labels.iter().map(|(key, value)| format!("{key}=\"{}\"", escape(value))).collect();
            let _ = write!(self.out, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// One gauge per log, 1 while it is poisoned (refuses appends after a
/// failed write or fsync until reopened), else 0.
fn render_log_health(out: &mut String, broker: &Broker) {
    let statuses = broker.log_statuses();
    let value = |status: &LogStatus| if status.health.is_healthy() { 0.0 } else { 1.0 };
    let mut family = Family::gauge(
        out,
        "conveyor_partition_log_poisoned",
        "1 while a topic partition's log refuses appends after a failed write or fsync, until reopened.",
    );
    for status in &statuses {
        if let LogRole::Partition { topic, partition } = &status.role {
            let partition = partition.to_string();
            family.sample(&[("topic", topic), ("partition", &partition)], value(status));
        }
    }
    let mut family = Family::gauge(
        out,
        "conveyor_queue_log_poisoned",
        "1 while a queue's message log or cursor journal refuses appends after a failed write or fsync, until reopened.",
    );
    for status in &statuses {
        let (queue, log) = match &status.role {
            LogRole::QueueMessages { queue } => (queue, "messages"),
            LogRole::QueueCursor { queue } => (queue, "cursor"),
            _ => continue,
        };
        family.sample(&[("queue", queue), ("log", log)], value(status));
    }
    let mut family = Family::gauge(
        out,
        "conveyor_internal_log_poisoned",
        "1 while the metadata catalog's, the committed offsets', the KIP-848 groups' or the transaction state's log refuses appends, until reopened.",
    );
    for status in &statuses {
        let log = match &status.role {
            LogRole::Catalog => "catalog",
            LogRole::ConsumerOffsets => "consumer_offsets",
            LogRole::ConsumerGroups => "consumer_groups",
            LogRole::ShareGroups => "share_groups",
            LogRole::TransactionState => "transaction_state",
            _ => continue,
        };
        family.sample(&[("log", log)], value(status));
    }
}

/// The Raft groups' gauges of this node, each group named by its label
/// (`group="metadata"`, or a replicated partition's `topic/partition`):
/// whether this node leads it, the leader it knows, the term, the commit
/// and applied index and, on the leader, each replica's lag in entries.
pub fn render_cluster(out: &mut String, groups: &[(String, conveyor_cluster::ClusterStatus)]) {
    type Gauge = fn(&conveyor_cluster::ClusterStatus) -> f64;
    let Some((_, first)) = groups.first() else {
        return;
    };
    let node = first.node_id.to_string();
    let mut leader = Family::gauge(out, "conveyor_raft_leader", "1 when this node leads the Raft group, else 0.");
    for (group, status) in groups {
        leader.sample(&[("group", group), ("node", &node)], f64::from(u8::from(status.role == "leader")));
    }
    let gauges: [(&str, &str, Gauge); 4] = [
        (
            "conveyor_raft_leader_id",
            "The node id of the group's leader as this node knows it (0: none).",
            |status| status.leader_id.unwrap_or(0) as f64,
        ),
        ("conveyor_raft_term", "The group's current Raft term on this node.", |status| {
            status.term as f64
        }),
        (
            "conveyor_raft_commit_index",
            "The group's commit index as this node knows it.",
            |status| status.commit_index as f64,
        ),
        (
            "conveyor_raft_applied_index",
            "The last entry of the group this node applied.",
            |status| status.applied_index as f64,
        ),
    ];
    for (name, help, gauge) in gauges {
        let mut family = Family::gauge(out, name, help);
        for (group, status) in groups {
            family.sample(&[("group", group)], gauge(status));
        }
    }
    let mut lag = Family::gauge(
        out,
        "conveyor_raft_replica_lag",
        "Entries a replica is behind the leader's log (reported by the leader).",
    );
    for (group, status) in groups {
        for member in &status.members {
            if let Some(entries) = member.lag {
                let replica = member.node_id.to_string();
                lag.sample(&[("group", group), ("replica", &replica)], entries as f64);
            }
        }
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition.
pub fn render(broker: &Broker) -> String {
    let mut out = String::new();
    let topics = broker.topics();

    type PartitionGauge = fn(&conveyor_core::partition_slot::PartitionSummary) -> u64;
    let partition_gauges: [(&str, &str, PartitionGauge); 3] = [
        (
            "conveyor_partition_high_watermark",
            "Offset after the last committed record of a topic partition.",
            |summary| summary.high_watermark,
        ),
        (
            "conveyor_partition_log_start_offset",
            "First offset still stored in a topic partition.",
            |summary| summary.start_offset,
        ),
        (
            "conveyor_partition_log_size_bytes",
            "Bytes stored in a topic partition's segments.",
            |summary| summary.size_bytes,
        ),
    ];
    for (name, help, gauge) in partition_gauges {
        let mut family = Family::gauge(&mut out, name, help);
        for topic in &topics {
            // Opens no log: an unopened partition's figures are the stored ones.
            for (index, summary) in topic.partition_summaries().iter().enumerate() {
                let partition = index.to_string();
                family.sample(&[("topic", &topic.name), ("partition", &partition)], gauge(summary) as f64);
            }
        }
    }

    let offsets = broker.groups().offsets();
    let mut family = Family::gauge(
        &mut out,
        "conveyor_consumer_group_lag",
        "Records between a consumer group's committed offset and the partition's high watermark.",
    );
    for group in offsets.groups() {
        for (topic, partition, committed) in offsets.of_group(&group) {
            let Some(high_watermark) = broker.topic(&topic).and_then(|found| found.high_watermark(partition)) else {
                continue;
            };
            let lag = (high_watermark as i64).saturating_sub(committed.offset).max(0);
            let partition = partition.to_string();
            family.sample(&[("group", &group), ("topic", &topic), ("partition", &partition)], lag as f64);
        }
    }

    render_log_health(&mut out, broker);

    let queues = broker.queues();
    let mut family = Family::gauge(
        &mut out,
        "conveyor_queue_messages",
        "Messages in a queue by state: ready (available) or unacked (held by a consumer).",
    );
    for declared in &queues {
        family.sample(&[("queue", &declared.name), ("state", "ready")], declared.available_count() as f64);
        family.sample(&[("queue", &declared.name), ("state", "unacked")], declared.acquired_count() as f64);
    }
    let mut family = Family::gauge(
        &mut out,
        "conveyor_queue_log_size_bytes",
        "Bytes stored in a queue's message log segments.",
    );
    for declared in &queues {
        family.sample(&[("queue", &declared.name)], declared.size_bytes() as f64);
    }
    let mut family = Family::gauge(
        &mut out,
        "conveyor_queues_opened",
        "Queues whose logs are open: since the start, those used (or that a timer needs); the others answer their stored counts.",
    );
    family.sample(&[], queues.iter().filter(|declared| declared.opened().is_some()).count() as f64);
    let mut family = Family::gauge(
        &mut out,
        "conveyor_partitions_opened",
        "Topic partitions whose logs are open: since the start, those used (or that retention or the cleaner needs); the others answer their stored figures.",
    );
    let opened: usize = topics.iter().map(|topic| topic.opened_partitions().len()).sum();
    family.sample(&[], opened as f64);
    let mut family = Family::gauge(&mut out, "conveyor_queue_consumers", "Consumers attached to a queue.");
    for declared in &queues {
        family.sample(&[("queue", &declared.name)], declared.consumer_count() as f64);
    }

    // Traffic counters, for the topics and queues that exist now.
    let stats = broker.stats();
    let topic_flows: Vec<(String, Arc<Flow>)> = stats
        .topics()
        .into_iter()
        .filter(|(name, _)| topics.iter().any(|topic| topic.name == *name))
        .collect();
    let queue_flows: Vec<(String, Arc<Flow>)> = stats
        .queues()
        .into_iter()
        .filter(|(name, _)| queues.iter().any(|declared| declared.name == *name))
        .collect();
    type Counter = fn(&Flow) -> &AtomicU64;
    let topic_counters: [(&str, &str, Counter); 4] = [
        (
            "conveyor_topic_messages_in_total",
            "Records appended to a topic (Kafka produce, exchanges, the admin API).",
            |flow| &flow.messages_in,
        ),
        (
            "conveyor_topic_bytes_in_total",
            "Bytes of record batches appended to a topic.",
            |flow| &flow.bytes_in,
        ),
        (
            "conveyor_topic_messages_out_total",
            "Records handed out by Kafka fetches of a topic.",
            |flow| &flow.messages_out,
        ),
        (
            "conveyor_topic_bytes_out_total",
            "Bytes of record batches handed out by Kafka fetches of a topic.",
            |flow| &flow.bytes_out,
        ),
    ];
    for (name, help, counter) in topic_counters {
        let mut family = Family::counter(&mut out, name, help);
        for (topic, flow) in &topic_flows {
            family.sample(&[("topic", topic)], Flow::get(counter(flow)) as f64);
        }
    }
    let queue_counters: [(&str, &str, Counter); 6] = [
        (
            "conveyor_queue_messages_in_total",
            "Messages stored in a queue (AMQP, SQS, dead-lettering, the admin API).",
            |flow| &flow.messages_in,
        ),
        (
            "conveyor_queue_bytes_in_total",
            "Body bytes of the messages stored in a queue.",
            |flow| &flow.bytes_in,
        ),
        (
            "conveyor_queue_messages_out_total",
            "Deliveries from a queue to consumers (redeliveries included).",
            |flow| &flow.messages_out,
        ),
        (
            "conveyor_queue_bytes_out_total",
            "Body bytes of the deliveries from a queue.",
            |flow| &flow.bytes_out,
        ),
        (
            "conveyor_queue_messages_redelivered_total",
            "Deliveries of messages delivered before.",
            |flow| &flow.redelivered,
        ),
        (
            "conveyor_queue_messages_dead_lettered_total",
            "Messages that died in a queue (rejected, expired, over a limit) and went to its dead-letter exchange.",
            |flow| &flow.dead_lettered,
        ),
    ];
    for (name, help, counter) in queue_counters {
        let mut family = Family::counter(&mut out, name, help);
        for (queue, flow) in &queue_flows {
            family.sample(&[("queue", queue)], Flow::get(counter(flow)) as f64);
        }
    }
    let totals = broker.connections().totals();
    let mut family = Family::gauge(
        &mut out,
        "conveyor_connections",
        "Open client connections by protocol (kafka, amqp).",
    );
    for (protocol, open, _) in &totals {
        family.sample(&[("protocol", protocol.name())], *open as f64);
    }
    let mut family = Family::gauge(
        &mut out,
        "conveyor_channels",
        "Open channels by protocol (AMQP channels; Kafka has none).",
    );
    for (protocol, _, channels) in &totals {
        family.sample(&[("protocol", protocol.name())], *channels as f64);
    }
    let failures = broker.authorizer().failures();
    let mut family = Family::counter(
        &mut out,
        "conveyor_auth_failures_total",
        "Refused logins by protocol (amqp, http) and reason (unknown_user, bad_credentials, anonymous_refused, loopback_only, bad_mechanism).",
    );
    for (protocol, reason, count) in failures.login_failures() {
        family.sample(&[("protocol", protocol), ("reason", reason)], count as f64);
    }
    let mut family = Family::counter(
        &mut out,
        "conveyor_authorization_denials_total",
        "Requests of logged-in clients the authorizer refused, by protocol.",
    );
    for (protocol, count) in failures.denials() {
        family.sample(&[("protocol", protocol)], count as f64);
    }

    let limits = broker.limits();
    let mut family = Family::counter(
        &mut out,
        "conveyor_limit_reached_total",
        "Times a limit of [limits] was reached (a request refused, a connection refused or closed), by limit key.",
    );
    for limit in conveyor_core::limits::Limit::ALL {
        family.sample(&[("limit", limit.key())], limits.reached_total(limit) as f64);
    }

    let mut family = Family::histogram(
        &mut out,
        "conveyor_request_duration_seconds",
        "Time from a request read to its answer, by protocol (kafka, amqp, sqs, sns, admin) and API \
         (Kafka API, AMQP method, SQS/SNS action, admin route); an AMQP basic.publish until it is stored.",
    );
    for (protocol, api, histogram) in stats.request_latencies() {
        family.histogram_samples(&[("protocol", protocol), ("api", &api)], &histogram.snapshot());
    }
    let mut family = Family::histogram(
        &mut out,
        "conveyor_fsync_duration_seconds",
        "Time of each fdatasync of a log segment, over every log of the process.",
    );
    family.histogram_samples(&[], &conveyor_log::histogram::fsync_duration().snapshot());
    let pool = conveyor_log::IoPool::default_pool();
    let mut family = Family::gauge(
        &mut out,
        "conveyor_log_open_files",
        "Segment files the log I/O pool's open-file cache holds open.",
    );
    family.sample(&[], pool.open_files() as f64);
    let mut family = Family::gauge(
        &mut out,
        "conveyor_log_open_files_max",
        "The open-file cache's cap ([storage] open_files_max).",
    );
    family.sample(&[], pool.open_files_max() as f64);
    let mut family = Family::counter(
        &mut out,
        "conveyor_blocking_calls_on_reactor_total",
        "Blocking file operations or waits that ran on an async worker thread; stays 0 unless a call site is wrong.",
    );
    family.sample(&[], conveyor_log::reactor_guard::blocking_calls_on_reactor() as f64);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_up_to_inf_with_sum_and_count() {
        let mut out = String::new();
        let snapshot = HistogramSnapshot {
            buckets: vec![(0.005, 1), (0.5, 3)],
            count: 4,
            sum_s: 2.25,
        };
        Family::histogram(&mut out, "x_seconds", "help").histogram_samples(&[("api", "Fetch")], &snapshot);
        assert_eq!(
            out,
            "# HELP x_seconds help\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{api=\"Fetch\",le=\"0.005\"} 1\n\
             x_seconds_bucket{api=\"Fetch\",le=\"0.5\"} 3\n\
             x_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 4\n\
             x_seconds_sum{api=\"Fetch\"} 2.25\n\
             x_seconds_count{api=\"Fetch\"} 4\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("line\nbreak"), "line\\nbreak");
    }
}
