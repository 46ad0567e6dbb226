//! Traffic counters for operators (Prometheus `/metrics`): messages and
//! bytes into and out of each topic and queue, redelivered and
//! dead-lettered messages per queue, and open connections per protocol.
//! Counters only grow while the process runs and start at zero on the next
//! start, as Prometheus counters do; they are statistics, not state, so
//! nothing here is durable. Handles are cached per name, so counting costs a
//! read-locked map lookup and an atomic add.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use conveyor_log::batch::{BatchHeader, HEADER_BYTES};
use parking_lot::RwLock;

/// The counters of one topic or queue.
#[derive(Debug, Default)]
pub struct Flow {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Queues: deliveries of messages delivered before.
    pub redelivered: AtomicU64,
    /// Queues: dead messages sent to the dead-letter exchange.
    pub dead_lettered: AtomicU64,
}

impl Flow {
    pub fn add_in(&self, messages: u64, bytes: u64) {
        self.messages_in.fetch_add(messages, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_out(&self, messages: u64, bytes: u64) {
        self.messages_out.fetch_add(messages, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts whole record batches read out (a Kafka fetch's answer).
    pub fn add_out_batches(&self, batches: &[u8]) {
        if !batches.is_empty() {
            self.add_out(records_in(batches), batches.len() as u64);
        }
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Records in concatenated batches, from their headers; a partial batch at
/// the end (or anything that does not parse) ends the count.
pub fn records_in(batches: &[u8]) -> u64 {
    let mut records = 0;
    let mut rest = batches;
    // Each step consumes at least one header's bytes.
    for _ in 0..batches.len() / HEADER_BYTES + 1 {
        let Some(header) = BatchHeader::parse(rest) else { break };
        let total = header.total_bytes();
        if total < HEADER_BYTES || total > rest.len() {
            break;
        }
        records += u64::try_from(header.records_count).unwrap_or(0);
        rest = &rest[total..];
    }
    records
}

#[derive(Debug, Default)]
pub struct Stats {
    topics: RwLock<BTreeMap<String, Arc<Flow>>>,
    queues: RwLock<BTreeMap<String, Arc<Flow>>>,
    connections: RwLock<BTreeMap<&'static str, Arc<AtomicI64>>>,
}

impl Stats {
    /// The counters of topic `name`.
    pub fn topic(&self, name: &str) -> Arc<Flow> {
        flow(&self.topics, name)
    }

    /// The counters of queue `name`.
    pub fn queue(&self, name: &str) -> Arc<Flow> {
        flow(&self.queues, name)
    }

    /// Every topic counted so far.
    pub fn topics(&self) -> BTreeMap<String, Arc<Flow>> {
        self.topics.read().clone()
    }

    /// Every queue counted so far.
    pub fn queues(&self) -> BTreeMap<String, Arc<Flow>> {
        self.queues.read().clone()
    }

    /// Counts an open connection of `protocol` until the guard is dropped.
    pub fn connection_opened(&self, protocol: &'static str) -> ConnectionGuard {
        let open = {
            let mut connections = self.connections.write();
            Arc::clone(connections.entry(protocol).or_default())
        };
        open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(open)
    }

    /// Open connections by protocol.
    pub fn connections(&self) -> Vec<(&'static str, i64)> {
        self.connections
            .read()
            .iter()
            .map(|(protocol, open)| (*protocol, open.load(Ordering::Relaxed)))
            .collect()
    }
}

fn flow(map: &RwLock<BTreeMap<String, Arc<Flow>>>, name: &str) -> Arc<Flow> {
    if let Some(found) = map.read().get(name) {
        return Arc::clone(found);
    }
    Arc::clone(map.write().entry(name.to_owned()).or_default())
}

/// An open connection, counted until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<AtomicI64>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_accumulate_per_name_and_connections_are_counted_while_open() {
        let stats = Stats::default();
        stats.topic("orders").add_in(3, 300);
        stats.topic("orders").add_in(1, 10);
        stats.queue("jobs").add_out(2, 20);
        let orders = &stats.topics()["orders"];
        assert_eq!((Flow::get(&orders.messages_in), Flow::get(&orders.bytes_in)), (4, 310));
        assert_eq!(Flow::get(&stats.queues()["jobs"].messages_out), 2);
        let first = stats.connection_opened("kafka");
        let second = stats.connection_opened("kafka");
        assert_eq!(stats.connections(), vec![("kafka", 2)]);
        drop((first, second));
        assert_eq!(stats.connections(), vec![("kafka", 0)]);
    }

    #[test]
    fn records_are_counted_from_batch_headers_and_a_torn_tail_ends_the_count() {
        let mut builder = conveyor_log::record::BatchBuilder::new(1);
        for index in 0..3 {
            builder.push(conveyor_log::record::Record::new(None, Some(vec![index])));
        }
        let batch = builder.build();
        let mut two = batch.to_vec();
        two.extend_from_slice(&batch);
        assert_eq!(records_in(&two), 6);
        assert_eq!(records_in(&two[..two.len() - 1]), 3);
        assert_eq!(records_in(&[]), 0);
    }
}
