//! A latency histogram with fixed bucket bounds and atomic counts, cheap
//! enough to record on every request and every fsync, plus the process-wide
//! fsync histogram the writers record into. Knows durations and buckets;
//! rendering them (Prometheus text) is the HTTP front door's job.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds for request latencies, in seconds: 0.5 ms up to a long poll.
pub const REQUEST_BOUNDS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds for fsync latencies, in seconds: 100 µs (a write cache) up
/// to the multi-second stalls a busy disk shows.
pub const FSYNC_BOUNDS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Every `fdatasync` of a segment by any log writer of this process. One
/// histogram, not one per log: the latency is the disk's, which they share.
static FSYNC: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(FSYNC_BOUNDS_S));

/// The process's fsync latencies.
pub fn fsync_duration() -> &'static Histogram {
    &FSYNC
}

/// Counts of observations per bucket (not cumulative; a snapshot makes them
/// so), their sum in nanoseconds, and the bounds they were sorted by.
#[derive(Debug)]
pub struct Histogram {
    bounds_s: &'static [f64],
    /// One count per bound, then the overflow bucket (+Inf).
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

/// A histogram read at one moment, cumulative as Prometheus exposes it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations at or below it), ascending;
    /// the +Inf bucket is `count`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_s: f64,
}

impl Histogram {
    /// A histogram over ascending `bounds_s`.
    pub fn new(bounds_s: &'static [f64]) -> Histogram {
        debug_assert!(bounds_s.windows(2).all(|pair| pair[0] < pair[1]), "bounds ascend");
        Histogram {
            bounds_s,
            counts: (0..=bounds_s.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        // The first bucket whose bound is at or above the value (Prometheus' `le`).
        let index = self.bounds_s.partition_point(|bound| *bound < seconds);
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Cumulative counts. Each count is read once, so the buckets and the
    /// total agree with each other even while observations land.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.bounds_s.len());
        for (bound, count) in self.bounds_s.iter().zip(self.counts.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let overflow = self.counts.last().map_or(0, |count| count.load(Ordering::Relaxed));
        HistogramSnapshot {
            buckets,
            count: cumulative + overflow,
            sum_s: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_at_or_above_them_and_snapshots_are_cumulative() {
        static BOUNDS: &[f64] = &[0.001, 0.01, 0.1];
        let histogram = Histogram::new(BOUNDS);
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_secs(3));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets, vec![(0.001, 2), (0.01, 2), (0.1, 3)]);
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum_s - 3.0515).abs() < 1e-9, "{}", snapshot.sum_s);
    }
}
