//! Traffic counters for operators (Prometheus `/metrics`): messages and
//! bytes into and out of each topic and queue, redelivered and
//! dead-lettered messages per queue, and request latencies per protocol and
//! API (open connections are the registry's, `connections.rs`).
//! Counters only grow while the process runs and start at zero on the next
//! start, as Prometheus counters do; they are statistics, not state, so
//! nothing here is durable. Handles are cached per name, so counting costs a
//! read-locked map lookup and an atomic add.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conveyor_log::batch::whole_batches;
use conveyor_log::histogram::{Histogram, REQUEST_BOUNDS_S};
use parking_lot::{Mutex, RwLock};

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
    /// Messages per second over the last sampling interval.
    rates: Mutex<Rates>,
}

/// Rates from the two latest samples of a [`Flow`]'s message counters.
#[derive(Debug, Clone, Copy)]
struct Rates {
    /// When the latest sample was taken, and the counters (in, out) then.
    sampled: Option<(Instant, u64, u64)>,
    in_per_s: f64,
    out_per_s: f64,
}

impl Default for Rates {
    /// A new flow's counters were 0 when it was created: its first sample
    /// already gives a rate.
    fn default() -> Rates {
        Rates {
            sampled: Some((Instant::now(), 0, 0)),
            in_per_s: 0.0,
            out_per_s: 0.0,
        }
    }
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

    /// Messages per second (in, out) over the last sampling interval (the
    /// first one starts when the flow was created); 0 before any sample.
    pub fn rates_per_s(&self) -> (f64, f64) {
        let rates = self.rates.lock();
        (rates.in_per_s, rates.out_per_s)
    }

    fn sample(&self, now: Instant) {
        let (messages_in, messages_out) = (Flow::get(&self.messages_in), Flow::get(&self.messages_out));
        let mut rates = self.rates.lock();
        if let Some((then, in_then, out_then)) = rates.sampled {
            let elapsed_s = now.saturating_duration_since(then).as_secs_f64();
            if elapsed_s > 0.0 {
                rates.in_per_s = messages_in.saturating_sub(in_then) as f64 / elapsed_s;
                rates.out_per_s = messages_out.saturating_sub(out_then) as f64 / elapsed_s;
            }
        }
        rates.sampled = Some((now, messages_in, messages_out));
    }
}

/// Records in concatenated batches, from their headers; a partial batch at
/// the end (or anything that does not parse) ends the count.
pub fn records_in(batches: &[u8]) -> u64 {
    whole_batches(batches)
        .map(|(header, _)| u64::try_from(header.records_count).unwrap_or(0))
        .sum()
}

/// Request latencies of one protocol, by API name.
type Latencies = BTreeMap<String, Arc<Histogram>>;

#[derive(Debug, Default)]
pub struct Stats {
    topics: RwLock<BTreeMap<String, Arc<Flow>>>,
    queues: RwLock<BTreeMap<String, Arc<Flow>>>,
    /// By protocol, then API. Front doors pass only names of APIs they
    /// serve, never raw client input, so the label sets stay bounded.
    requests: RwLock<BTreeMap<&'static str, Latencies>>,
}

impl Stats {
    /// How often [`Stats::run_rate_sampler`] samples: rates are averages over this long.
    pub const RATE_INTERVAL: Duration = Duration::from_secs(5);

    /// Samples every topic's and queue's counters, for [`Flow::rates_per_s`].
    pub fn sample_rates(&self, now: Instant) {
        for flow in self.topics.read().values().chain(self.queues.read().values()) {
            flow.sample(now);
        }
    }

    /// Runs [`Stats::sample_rates`] every [`Stats::RATE_INTERVAL`] until `shutdown` turns true.
    pub async fn run_rate_sampler(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Stats::RATE_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => self.sample_rates(Instant::now()),
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

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

    /// Records how long one request of `api` over `protocol` took, from
    /// decoded to answered. `api` must name an API the front door serves
    /// (a Kafka API key, an AMQP method, an SQS action, an admin route).
    pub fn request_served(&self, protocol: &'static str, api: &str, elapsed: Duration) {
        let found = self.requests.read().get(protocol).and_then(|apis| apis.get(api)).cloned();
        let histogram = found.unwrap_or_else(|| {
            let mut requests = self.requests.write();
            let apis = requests.entry(protocol).or_default();
            Arc::clone(
                apis.entry(api.to_owned())
                    .or_insert_with(|| Arc::new(Histogram::new(REQUEST_BOUNDS_S))),
            )
        });
        histogram.observe(elapsed);
    }

    /// Every request latency histogram: (protocol, api, histogram).
    pub fn request_latencies(&self) -> Vec<(&'static str, String, Arc<Histogram>)> {
        let requests = self.requests.read();
        requests
            .iter()
            .flat_map(|(protocol, apis)| apis.iter().map(|(api, histogram)| (*protocol, api.clone(), Arc::clone(histogram))))
            .collect()
    }
}

fn flow(map: &RwLock<BTreeMap<String, Arc<Flow>>>, name: &str) -> Arc<Flow> {
    if let Some(found) = map.read().get(name) {
        return Arc::clone(found);
    }
    Arc::clone(map.write().entry(name.to_owned()).or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_accumulate_per_name_and_latencies_per_protocol_and_api() {
        let stats = Stats::default();
        stats.topic("orders").add_in(3, 300);
        stats.topic("orders").add_in(1, 10);
        stats.queue("jobs").add_out(2, 20);
        let orders = &stats.topics()["orders"];
        assert_eq!((Flow::get(&orders.messages_in), Flow::get(&orders.bytes_in)), (4, 310));
        assert_eq!(Flow::get(&stats.queues()["jobs"].messages_out), 2);
        stats.request_served("kafka", "Produce", Duration::from_millis(3));
        stats.request_served("kafka", "Produce", Duration::from_millis(4));
        stats.request_served("amqp", "queue.declare", Duration::from_millis(1));
        let latencies: Vec<(&str, String, u64)> = stats
            .request_latencies()
            .into_iter()
            .map(|(protocol, api, histogram)| (protocol, api, histogram.snapshot().count))
            .collect();
        assert_eq!(
            latencies,
            vec![("amqp", "queue.declare".to_owned(), 1), ("kafka", "Produce".to_owned(), 2)]
        );
    }

    #[test]
    fn rates_are_messages_per_second_between_the_two_latest_samples() {
        let stats = Stats::default();
        let flow = stats.queue("jobs");
        flow.add_in(7, 70);
        assert_eq!(flow.rates_per_s(), (0.0, 0.0), "no rate before a sample");
        let start = Instant::now() + Duration::from_secs(1);
        stats.sample_rates(start);
        let (first_in, first_out) = flow.rates_per_s();
        assert!(
            first_in > 0.0 && first_out == 0.0,
            "the first interval starts at the flow's creation"
        );
        flow.add_in(10, 100);
        flow.add_out(5, 50);
        stats.sample_rates(start + Duration::from_secs(5));
        assert_eq!(flow.rates_per_s(), (2.0, 1.0));
        stats.sample_rates(start + Duration::from_secs(10));
        assert_eq!(flow.rates_per_s(), (0.0, 0.0), "no traffic since: the rate falls to 0");
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
