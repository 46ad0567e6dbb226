//! `GET /metrics`: the broker's state in the Prometheus text exposition
//! format (version 0.0.4), computed from the core on each scrape — log sizes
//! and offsets per partition, consumer-group lag per partition, queue depth
//! by state and consumers per queue. Names and labels follow Prometheus
//! conventions (`conveyor_` prefix, base units, `_bytes` suffixes).

use std::fmt::Write;

use conveyor_core::Broker;

/// One metric family being written: HELP and TYPE once, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn gauge(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            let rendered: Vec<String> = labels.iter().map(|(key, value)| format!("{key}=\"{}\"", escape(value))).collect();
            let _ = write!(self.out, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.out, " {value}");
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

    let mut family = Family::gauge(
        &mut out,
        "conveyor_partition_high_watermark",
        "Offset after the last committed record of a topic partition.",
    );
    for topic in &topics {
        for (index, log) in topic.partitions().iter().enumerate() {
            let partition = index.to_string();
            family.sample(
                "conveyor_partition_high_watermark",
                &[("topic", &topic.name), ("partition", &partition)],
                log.high_watermark() as f64,
            );
        }
    }
    let mut family = Family::gauge(
        &mut out,
        "conveyor_partition_log_start_offset",
        "First offset still stored in a topic partition.",
    );
    for topic in &topics {
        for (index, log) in topic.partitions().iter().enumerate() {
            let partition = index.to_string();
            family.sample(
                "conveyor_partition_log_start_offset",
                &[("topic", &topic.name), ("partition", &partition)],
                log.start_offset() as f64,
            );
        }
    }
    let mut family = Family::gauge(
        &mut out,
        "conveyor_partition_log_size_bytes",
        "Bytes stored in a topic partition's segments.",
    );
    for topic in &topics {
        for (index, log) in topic.partitions().iter().enumerate() {
            let partition = index.to_string();
            family.sample(
                "conveyor_partition_log_size_bytes",
                &[("topic", &topic.name), ("partition", &partition)],
                log.size_bytes() as f64,
            );
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
            let Some(log) = broker.topic(&topic).and_then(|found| found.partition(partition)) else {
                continue;
            };
            let lag = (log.high_watermark() as i64).saturating_sub(committed.offset).max(0);
            let partition = partition.to_string();
            family.sample(
                "conveyor_consumer_group_lag",
                &[("group", &group), ("topic", &topic), ("partition", &partition)],
                lag as f64,
            );
        }
    }

    let queues = broker.queues();
    let mut family = Family::gauge(
        &mut out,
        "conveyor_queue_messages",
        "Messages in a queue by state: ready (available) or unacked (held by a consumer).",
    );
    for declared in &queues {
        family.sample(
            "conveyor_queue_messages",
            &[("queue", &declared.name), ("state", "ready")],
            declared.queue.available_count() as f64,
        );
        family.sample(
            "conveyor_queue_messages",
            &[("queue", &declared.name), ("state", "unacked")],
            declared.queue.acquired_count() as f64,
        );
    }
    let mut family = Family::gauge(&mut out, "conveyor_queue_consumers", "Consumers attached to a queue.");
    for declared in &queues {
        family.sample(
            "conveyor_queue_consumers",
            &[("queue", &declared.name)],
            declared.consumer_count() as f64,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("line\nbreak"), "line\\nbreak");
    }
}
