//! Decides whether a compacted log is worth cleaning now and which segments a
//! cleaning covers: Kafka's `LogCleanerManager` rules (never the active
//! segment; `min.compaction.lag.ms`; the dirty ratio against
//! `min.cleanable.dirty.ratio`; `max.compaction.lag.ms` forcing a cleaning).
//! A pure function of segment summaries, the cleaner's checkpoint, the config
//! and the time; the cleaner (`cleaner.rs`) does the reading and writing.

use crate::compaction_config::CompactionConfig;

/// What the plan needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    pub base_offset: u64,
    pub bytes: u64,
    /// Timestamp of the segment's first time-index entry (its oldest batch,
    /// roughly); `i64::MIN` when unknown or empty.
    pub first_timestamp_ms: i64,
    /// Newest record timestamp; `i64::MIN` when empty.
    pub max_timestamp_ms: i64,
}

/// One cleaning: rewrite the first `segments` segments, keeping for each key
/// only its latest record found in `[first_dirty_offset, end_offset)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPlan {
    /// How many segments, from the first, the cleaning rewrites.
    pub segments: usize,
    /// Where the records not yet compacted begin (the cleaner's checkpoint).
    pub first_dirty_offset: u64,
    /// The first offset the cleaning may not touch: the base of the first
    /// segment it leaves alone.
    pub end_offset: u64,
    /// Dirty bytes over cleanable bytes.
    pub dirty_ratio: f64,
    /// True when `max.compaction.lag.ms` forced the cleaning.
    pub forced: bool,
}

/// The cleaning due now, if any. `segments` are in offset order and the last
/// is the active segment, which is never cleaned. `first_dirty_offset` is the
/// end of the previous cleaning (0 if none).
pub fn plan(segments: &[SegmentSummary], first_dirty_offset: u64, config: &CompactionConfig, now_ms: i64) -> Option<CompactionPlan> {
    let sealed = segments.len().saturating_sub(1);
    let lag_floor_ms = now_ms.saturating_sub(config.min_compaction_lag_ms.max(0));
    // A prefix: the first segment still inside the minimum lag stops it, as
    // everything after it is at least as new in offset order.
    let cleanable = segments[..sealed]
        .iter()
        .take_while(|segment| config.min_compaction_lag_ms <= 0 || segment.max_timestamp_ms <= lag_floor_ms)
        .count();
    if cleanable == 0 {
        return None;
    }
    let end_offset = segments[cleanable].base_offset;
    let first_dirty_offset = first_dirty_offset.max(segments[0].base_offset);
    if first_dirty_offset >= end_offset {
        return None;
    }
    // A segment is clean when the next one starts at or below the checkpoint.
    let clean = segments[..cleanable]
        .iter()
        .zip(&segments[1..=cleanable])
        .take_while(|(_, next)| next.base_offset <= first_dirty_offset)
        .count();
    let clean_bytes: u64 = segments[..clean].iter().map(|segment| segment.bytes).sum();
    let dirty_bytes: u64 = segments[clean..cleanable].iter().map(|segment| segment.bytes).sum();
    let total_bytes = clean_bytes + dirty_bytes;
    let dirty_ratio = if total_bytes == 0 {
        0.0
    } else {
        dirty_bytes as f64 / total_bytes as f64
    };
    let oldest_dirty_ms = segments[clean..cleanable]
        .iter()
        .map(|segment| segment.first_timestamp_ms)
        .filter(|&timestamp| timestamp != i64::MIN)
        .min();
    let forced = oldest_dirty_ms.is_some_and(|timestamp| now_ms.saturating_sub(timestamp) >= config.max_compaction_lag_ms);
    if dirty_bytes == 0 || (dirty_ratio < config.min_cleanable_dirty_ratio && !forced) {
        return None;
    }
    Some(CompactionPlan {
        segments: cleanable,
        first_dirty_offset,
        end_offset,
        dirty_ratio,
        forced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(base_offset: u64, bytes: u64, max_timestamp_ms: i64) -> SegmentSummary {
        SegmentSummary {
            base_offset,
            bytes,
            first_timestamp_ms: max_timestamp_ms,
            max_timestamp_ms,
        }
    }

    fn config(ratio: f64, min_lag_ms: i64, max_lag_ms: i64) -> CompactionConfig {
        CompactionConfig {
            min_cleanable_dirty_ratio: ratio,
            min_compaction_lag_ms: min_lag_ms,
            max_compaction_lag_ms: max_lag_ms,
            ..CompactionConfig::default()
        }
    }

    #[test]
    fn a_log_of_only_the_active_segment_is_never_cleaned() {
        assert_eq!(plan(&[segment(0, 1000, 1)], 0, &config(0.0, 0, 1), 1_000), None);
    }

    #[test]
    fn every_sealed_segment_is_cleaned_the_first_time() {
        let segments = [segment(0, 100, 1), segment(10, 100, 2), segment(20, 5, 3)];
        let plan = plan(&segments, 0, &config(0.5, 0, i64::MAX), 10).expect("due");
        assert_eq!((plan.segments, plan.first_dirty_offset, plan.end_offset), (2, 0, 20));
        assert!((plan.dirty_ratio - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_mostly_clean_log_waits_for_the_ratio() {
        let segments = [segment(0, 300, 1), segment(10, 100, 2), segment(20, 5, 3)];
        // Clean up to 10: 100 dirty of 400 bytes = 0.25.
        assert_eq!(plan(&segments, 10, &config(0.5, 0, i64::MAX), 10), None);
        let due = plan(&segments, 10, &config(0.25, 0, i64::MAX), 10).expect("due");
        assert_eq!((due.segments, due.first_dirty_offset), (2, 10));
    }

    #[test]
    fn max_compaction_lag_forces_a_cleaning_below_the_ratio() {
        let segments = [segment(0, 300, 1), segment(10, 100, 2), segment(20, 5, 3)];
        let due = plan(&segments, 10, &config(0.9, 0, 100), 1_000).expect("forced");
        assert!(due.forced);
        assert_eq!(plan(&segments, 10, &config(0.9, 0, 10_000), 1_000), None);
    }

    #[test]
    fn min_compaction_lag_keeps_recent_segments_out() {
        let segments = [segment(0, 100, 100), segment(10, 100, 900), segment(20, 5, 950)];
        let due = plan(&segments, 0, &config(0.0, 500, i64::MAX), 1_000).expect("due");
        assert_eq!((due.segments, due.end_offset), (1, 10));
        assert_eq!(plan(&segments, 0, &config(0.0, 950, i64::MAX), 1_000), None);
    }

    #[test]
    fn nothing_dirty_means_nothing_to_do() {
        let segments = [segment(0, 100, 1), segment(10, 100, 2), segment(20, 5, 3)];
        assert_eq!(plan(&segments, 20, &config(0.0, 0, 1), 10), None);
    }

    fn segments_strategy() -> impl Strategy<Value = Vec<SegmentSummary>> {
        prop::collection::vec((1u64..50, 0u64..10_000, 0i64..10_000), 1..12).prop_map(|specs| {
            let mut base = 0;
            let mut timestamp = 0;
            specs
                .into_iter()
                .map(|(span, bytes, step)| {
                    timestamp += step;
                    let summary = SegmentSummary {
                        base_offset: base,
                        bytes,
                        first_timestamp_ms: timestamp.saturating_sub(step / 2),
                        max_timestamp_ms: timestamp,
                    };
                    base += span;
                    summary
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn plans_respect_the_active_segment_the_lags_and_the_ratio(
            segments in segments_strategy(),
            dirty in 0u64..600,
            ratio in 0.0f64..=1.0,
            min_lag_ms in 0i64..20_000,
            max_lag_ms in 1i64..200_000,
            now_ms in 0i64..200_000,
        ) {
            let config = config(ratio, min_lag_ms, max_lag_ms);
            if let Some(plan) = plan(&segments, dirty, &config, now_ms) {
                let active = segments.last().expect("non-empty");
                prop_assert!(plan.segments >= 1 && plan.segments < segments.len(), "never the active segment");
                prop_assert!(plan.end_offset <= active.base_offset);
                prop_assert_eq!(plan.end_offset, segments[plan.segments].base_offset);
                prop_assert!(plan.first_dirty_offset < plan.end_offset, "something is dirty");
                prop_assert_eq!(plan.first_dirty_offset, dirty.max(segments[0].base_offset));
                for segment in &segments[..plan.segments] {
                    prop_assert!(min_lag_ms == 0 || now_ms - segment.max_timestamp_ms >= min_lag_ms, "inside min.compaction.lag.ms");
                }
                prop_assert!(plan.dirty_ratio >= ratio || plan.forced);
                prop_assert!((0.0..=1.0).contains(&plan.dirty_ratio));
            } else {
                // Nothing due: either nothing sealed is old enough, nothing is
                // dirty, or the ratio is not reached and no lag forces it.
                let sealed_old = segments[..segments.len() - 1]
                    .iter()
                    .take_while(|segment| min_lag_ms == 0 || now_ms - segment.max_timestamp_ms >= min_lag_ms)
                    .count();
                if sealed_old > 0 && ratio == 0.0 {
                    let end = segments[sealed_old].base_offset;
                    let dirty_bytes: u64 = segments[..sealed_old]
                        .iter()
                        .zip(&segments[1..=sealed_old])
                        .filter(|(_, next)| next.base_offset > dirty)
                        .map(|(segment, _)| segment.bytes)
                        .sum();
                    prop_assert!(dirty >= end || dirty_bytes == 0, "a dirty log with ratio 0 is always due");
                }
            }
        }
    }
}
