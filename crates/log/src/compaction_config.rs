//! Per-log compaction settings: how long tombstones stay, how long a record
//! is safe from compaction and how soon it must be compacted, and how dirty a
//! log must be before the cleaner bothers. Knows nothing of Kafka config
//! names; the catalog maps `delete.retention.ms` and friends onto these fields.

/// Kafka's default `delete.retention.ms` (one day).
pub const DELETE_RETENTION_MS_DEFAULT: i64 = 24 * 60 * 60 * 1000;
/// Kafka's default `min.cleanable.dirty.ratio`.
pub const MIN_CLEANABLE_DIRTY_RATIO_DEFAULT: f64 = 0.5;

/// How the cleaner treats one compacted log. Defaults follow Kafka's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// A tombstone (a record with a null value) is removed once the segment
    /// holding it has no record newer than this (`delete.retention.ms`), so
    /// consumers reading from the start have that long to see it.
    pub delete_retention_ms: i64,
    /// A segment is cleaned only once its newest record is at least this old
    /// (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// A log whose oldest dirty record is older than this is cleaned whatever
    /// its dirty ratio (`max.compaction.lag.ms`).
    pub max_compaction_lag_ms: i64,
    /// Clean a log only once the dirty part is at least this share of the
    /// cleanable bytes (`min.cleanable.dirty.ratio`).
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for CompactionConfig {
    fn default() -> CompactionConfig {
        CompactionConfig {
            delete_retention_ms: DELETE_RETENTION_MS_DEFAULT,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: MIN_CLEANABLE_DIRTY_RATIO_DEFAULT,
        }
    }
}
