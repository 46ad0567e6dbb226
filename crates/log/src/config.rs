//! Per-log settings: segment size and age, retention, index density and the
//! durability policy. Knows nothing of Kafka config names; the catalog maps
//! `retention.ms` and friends onto these fields.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// When an acknowledged append is on stable storage.
///
/// | policy | acknowledged after | a process crash (kill -9) loses | a power loss / kernel crash loses |
/// |---|---|---|---|
/// | `always` | write + fdatasync | nothing | nothing |
/// | `interval:<ms>` | write to the page cache | nothing | at most the last `<ms>` of acknowledged appends |
/// | `never` | write to the page cache | nothing | anything since the last segment roll or clean shutdown |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge only after `fdatasync`; concurrent appends share one sync.
    #[default]
    Always,
    /// Acknowledge after the write; `fdatasync` at most this long after it.
    Interval(Duration),
    /// Acknowledge after the write; sync only on roll and on close.
    Never,
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Always => f.write_str("always"),
            Durability::Interval(interval) => write!(f, "interval:{}", interval.as_millis()),
            Durability::Never => f.write_str("never"),
        }
    }
}

/// A durability string that is not `always`, `never` or `interval:<ms>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid durability {0:?}: expected always, never or interval:<ms> with ms >= 1")]
pub struct DurabilityParseError(pub String);

impl FromStr for Durability {
    type Err = DurabilityParseError;

    fn from_str(text: &str) -> Result<Durability, DurabilityParseError> {
        let error = || DurabilityParseError(text.to_owned());
        match text.trim() {
            "always" => Ok(Durability::Always),
            "never" => Ok(Durability::Never),
            other => {
                let ms = other.strip_prefix("interval:").ok_or_else(error)?;
                let ms: u64 = ms.parse().map_err(|_| error())?;
                if ms == 0 {
                    return Err(error());
                }
                Ok(Durability::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

/// Settings of one log. Defaults follow Kafka's broker defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll the active segment before it would grow past this (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll the active segment once it is this old (`segment.ms`).
    pub segment_ms: i64,
    /// Delete sealed segments whose newest record is older than this (`retention.ms`); `None` keeps them.
    pub retention_ms: Option<i64>,
    /// Delete the oldest sealed segments while the log is larger than this (`retention.bytes`); `None` keeps them.
    pub retention_bytes: Option<u64>,
    /// Add an offset-index entry after at least this many bytes (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    pub durability: Durability,
    /// Stamp every batch with the append time (Kafka's
    /// `message.timestamp.type=LogAppendTime`) instead of keeping the
    /// producer's timestamps; the time index then follows append time.
    pub log_append_time: bool,
    /// How often the writer checks retention on its own.
    pub retention_check_interval_ms: u64,
    /// Room kept reserved past the end of the active segment (`fallocate`
    /// without changing its length), renewed as appends use it, so that this
    /// many bytes of appends still succeed on a full file system: what a
    /// queue's cursor journal needs so consumers can settle when publishers
    /// no longer can. 0 reserves nothing. The reserve starts smaller
    /// ([`crate::RESERVE_FIRST_BYTES`]) and grows with the active segment
    /// up to this, so idle logs hold little room.
    pub reserve_bytes: u64,
}

pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * DAY_MS,
            retention_ms: Some(7 * DAY_MS),
            retention_bytes: None,
            index_interval_bytes: 4096,
            durability: Durability::Always,
            log_append_time: false,
            retention_check_interval_ms: 30_000,
            reserve_bytes: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_parses_and_prints_each_policy() {
        for text in ["always", "never", "interval:250"] {
            let parsed: Durability = text.parse().expect("valid");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn durability_rejects_nonsense() {
        for text in ["", "sometimes", "interval:", "interval:0", "interval:-5", "interval:abc"] {
            assert!(text.parse::<Durability>().is_err(), "{text}");
        }
    }
}
