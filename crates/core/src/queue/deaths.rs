//! A dead-lettered record's history of deaths, in record headers any front
//! door can read: the latest death in the `conveyor.death-*` headers, the
//! earlier ones (since a door last published the message) in
//! `conveyor.death-history`, one entry per (queue, reason) with a count — as
//! RabbitMQ's `x-death` keeps them, so the history stays bounded however
//! often a message cycles. Also the rule that a fully automatic cycle ends
//! (RabbitMQ drops a message dead-lettered back into a queue it already died
//! in, unless a consumer rejected it on the way). Knows nothing of AMQP.

use conveyor_log::record::Record;
use serde::{Deserialize, Serialize};

use super::policy::headers;

/// The earlier deaths: a JSON array of [`Death`], oldest first.
pub const HISTORY: &str = "conveyor.death-history";

/// One way a message died in one queue, and how many times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Death {
    /// The queue it died in (its broker-wide name).
    pub queue: String,
    /// rejected, expired, maxlen or delivery_limit.
    pub reason: String,
    pub count: u64,
    pub time_ms: i64,
    /// The routing key it had before this death.
    pub routing_key: String,
}

impl Death {
    fn same_as(&self, other: &Death) -> bool {
        self.queue == other.queue && self.reason == other.reason
    }
}

/// Every death the record carries, oldest first.
pub fn deaths(record: &Record) -> Vec<Death> {
    let mut deaths = history(record);
    deaths.extend(latest(record));
    deaths
}

/// Records a new death: the previous latest death moves into the history,
/// and a death the same as one there takes its count along.
pub fn record_death(record: &mut Record, mut death: Death, deliveries: u32, original_key: Vec<u8>) {
    let mut history = history(record);
    if let Some(previous) = latest(record) {
        push_compacted(&mut history, previous);
    }
    if let Some(index) = history.iter().position(|earlier| earlier.same_as(&death)) {
        death.count += history.remove(index).count;
    }
    record.headers.retain(|header| !header.key.starts_with("conveyor.death-"));
    if !history.is_empty() {
        let encoded = serde_json::to_vec(&history).unwrap_or_default();
        record.headers.push(header(HISTORY, encoded));
    }
    record.headers.extend([
        header(headers::DEATH_REASON, death.reason.into_bytes()),
        header(headers::DEATH_QUEUE, death.queue.into_bytes()),
        header(headers::DEATH_TIME_MS, death.time_ms.to_string().into_bytes()),
        header(headers::DEATH_DELIVERIES, deliveries.to_string().into_bytes()),
        header(headers::DEATH_COUNT, death.count.to_string().into_bytes()),
        header(headers::DEATH_ROUTING_KEY, original_key),
    ]);
}

/// Whether dead-lettering the record into `target` would complete a cycle no
/// consumer took part in: `target` is among the queues it died in, and none
/// of the deaths since then was a rejection (RabbitMQ's rule).
pub fn completes_automatic_cycle(record: &Record, target: &str) -> bool {
    for death in deaths(record).iter().rev() {
        if death.reason == "rejected" {
            return false;
        }
        if death.queue == target {
            return true;
        }
    }
    false
}

fn push_compacted(history: &mut Vec<Death>, death: Death) {
    match history.iter().position(|earlier| earlier.same_as(&death)) {
        Some(index) => {
            let earlier = history.remove(index);
            history.push(Death {
                count: earlier.count + death.count,
                ..death
            });
        }
        None => history.push(death),
    }
}

fn history(record: &Record) -> Vec<Death> {
    record
        .header(HISTORY)
        .and_then(|header| header.value.as_deref())
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default()
}

fn latest(record: &Record) -> Option<Death> {
    let text = |name: &str| {
        record
            .header(name)
            .and_then(|header| header.value.as_deref())
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    };
    Some(Death {
        reason: text(headers::DEATH_REASON)?,
        queue: text(headers::DEATH_QUEUE).unwrap_or_default(),
        count: text(headers::DEATH_COUNT).and_then(|count| count.parse().ok()).unwrap_or(1),
        time_ms: text(headers::DEATH_TIME_MS).and_then(|time| time.parse().ok()).unwrap_or(0),
        routing_key: text(headers::DEATH_ROUTING_KEY).unwrap_or_default(),
    })
}

fn header(key: &str, value: Vec<u8>) -> conveyor_log::record::Header {
    conveyor_log::record::Header {
        key: key.to_owned(),
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn die(record: &mut Record, queue: &str, reason: &str) {
        let death = Death {
            queue: queue.into(),
            reason: reason.into(),
            count: 1,
            time_ms: 7,
            routing_key: "k".into(),
        };
        record_death(record, death, 1, b"k".to_vec());
    }

    fn summary(record: &Record) -> Vec<(String, String, u64)> {
        deaths(record).into_iter().map(|d| (d.queue, d.reason, d.count)).collect()
    }

    #[test]
    fn every_death_is_kept_oldest_first() {
        let mut record = Record::default();
        die(&mut record, "retry.1", "expired");
        die(&mut record, "retry.2", "expired");
        die(&mut record, "work", "rejected");
        assert_eq!(
            summary(&record),
            [
                ("retry.1".into(), "expired".into(), 1),
                ("retry.2".into(), "expired".into(), 1),
                ("work".into(), "rejected".into(), 1)
            ]
        );
        assert_eq!(
            record.header(headers::DEATH_QUEUE).and_then(|h| h.value.clone()),
            Some(b"work".to_vec())
        );
    }

    #[test]
    fn a_repeated_death_counts_instead_of_growing_the_history() {
        let mut record = Record::default();
        for _ in 0..100 {
            die(&mut record, "a", "expired");
            die(&mut record, "b", "expired");
        }
        assert_eq!(
            summary(&record),
            [("a".into(), "expired".into(), 100), ("b".into(), "expired".into(), 100)]
        );
    }

    #[test]
    fn a_cycle_is_automatic_unless_a_consumer_rejected_on_the_way() {
        let mut record = Record::default();
        die(&mut record, "a", "expired");
        assert!(!completes_automatic_cycle(&record, "b"));
        die(&mut record, "b", "expired");
        assert!(completes_automatic_cycle(&record, "a"));

        let mut rejected = Record::default();
        die(&mut rejected, "a", "expired");
        die(&mut rejected, "b", "rejected");
        assert!(!completes_automatic_cycle(&rejected, "a"));
    }
}
