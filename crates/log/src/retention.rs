//! Decides which sealed segments retention deletes. A pure function of the
//! segments' sizes and timestamps, the config and the time; the writer does
//! the deleting.

use crate::config::LogConfig;

/// What retention needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStats {
    pub bytes: u64,
    pub max_timestamp_ms: i64,
}

/// How many of the oldest segments to delete. `segments` are in offset order
/// and the last one is the active segment, which is never deleted. A prefix is
/// deleted, never a segment in the middle, so the log stays contiguous.
pub fn segments_to_delete(segments: &[SegmentStats], config: &LogConfig, now_ms: i64) -> usize {
    let sealed = segments.len().saturating_sub(1);
    let mut delete = 0;
    if let Some(retention_ms) = config.retention_ms {
        // Kafka's rule: a segment is expired when its newest record is older
        // than retention.ms. An empty segment (no timestamp) is not expired.
        while delete < sealed {
            let stats = segments[delete];
            let expired = stats.max_timestamp_ms != i64::MIN && now_ms.saturating_sub(stats.max_timestamp_ms) > retention_ms;
            if !expired {
                break;
            }
            delete += 1;
        }
    }
    if let Some(retention_bytes) = config.retention_bytes {
        let mut total: u64 = segments[delete..].iter().map(|stats| stats.bytes).sum();
        // Delete whole segments while what remains after the deletion is still
        // at least retention.bytes, as Kafka does.
        while delete < sealed && total.saturating_sub(segments[delete].bytes) >= retention_bytes {
            total -= segments[delete].bytes;
            delete += 1;
        }
    }
    delete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(bytes: u64, max_timestamp_ms: i64) -> SegmentStats {
        SegmentStats { bytes, max_timestamp_ms }
    }

    fn config(retention_ms: Option<i64>, retention_bytes: Option<u64>) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn time_retention_deletes_only_the_expired_prefix() {
        let segments = [stats(10, 100), stats(10, 500), stats(10, 150), stats(10, 900)];
        // Segment 2 is older than segment 1 but sits behind it: only the prefix goes.
        assert_eq!(segments_to_delete(&segments, &config(Some(300), None), 700), 1);
        assert_eq!(segments_to_delete(&segments, &config(Some(100), None), 10_000), 3);
    }

    #[test]
    fn the_active_segment_is_never_deleted() {
        let segments = [stats(10, 1), stats(10, 2)];
        assert_eq!(segments_to_delete(&segments, &config(Some(1), Some(0)), 1_000_000), 1);
        assert_eq!(segments_to_delete(&[stats(10, 1)], &config(Some(1), Some(0)), 1_000_000), 0);
    }

    #[test]
    fn byte_retention_keeps_at_least_the_limit() {
        let segments = [stats(100, 0), stats(100, 0), stats(100, 0), stats(50, 0)];
        assert_eq!(segments_to_delete(&segments, &config(None, Some(250)), 0), 1);
        assert_eq!(segments_to_delete(&segments, &config(None, Some(150)), 0), 2);
        assert_eq!(segments_to_delete(&segments, &config(None, Some(1_000)), 0), 0);
    }

    #[test]
    fn unlimited_retention_keeps_everything() {
        let segments = [stats(100, 0), stats(100, 0)];
        assert_eq!(segments_to_delete(&segments, &config(None, None), i64::MAX), 0);
    }
}
