//! What a conditional append expects — Conveyor's optimistic concurrency for
//! event sourcing — and why one was refused. Knows offsets and the position
//! of a record in an append; nothing of record headers or JSON fields, which
//! each front door maps onto these.

/// What one record of an append expects of the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Expectation {
    /// The record gets exactly this offset.
    Offset(u64),
    /// The latest record with the same key is at this offset; `None`: no
    /// record has that key yet.
    KeyOffset(Option<u64>),
}

/// A condition on the record at position `record` of an append (counting
/// the records of its readable batches from 0, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppendCondition {
    pub record: usize,
    pub expectation: Expectation,
}

impl AppendCondition {
    /// Whether it is on the record's key (and so needs the key index).
    pub fn is_on_key(&self) -> bool {
        matches!(self.expectation, Expectation::KeyOffset(_))
    }
}

/// Why a conditional append was refused. Nothing of the append was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ConditionFailed {
    #[error("record {record} expected offset {expected}, it would get offset {actual}")]
    Offset { record: usize, expected: u64, actual: u64 },
    #[error("record {record} expected its key's latest record at offset {expected}, it is at offset {actual} (-1: no record has this key)")]
    KeyOffset { record: usize, expected: i64, actual: i64 },
    #[error("record {record} expected its key's latest record at offset {expected}, but the key index cannot tell: {why}")]
    KeyUnknown { record: usize, expected: i64, why: String },
    #[error("record {record} has no key, so it cannot expect its key's latest offset")]
    Keyless { record: usize },
    #[error("the append has no record {record} (records of compressed batches are not read)")]
    NoSuchRecord { record: usize },
    #[error("the partition's next offset is unsettled after a failed append; retry once appends in flight are answered")]
    Unsettled,
}

impl ConditionFailed {
    /// The offset the condition expected (-1: a new key), if it names one.
    pub fn expected_offset(&self) -> Option<i64> {
        match self {
            ConditionFailed::Offset { expected, .. } => Some(*expected as i64),
            ConditionFailed::KeyOffset { expected, .. } | ConditionFailed::KeyUnknown { expected, .. } => Some(*expected),
            _ => None,
        }
    }

    /// The offset the partition has instead (-1: no record has the key).
    pub fn actual_offset(&self) -> Option<i64> {
        match self {
            ConditionFailed::Offset { actual, .. } => Some(*actual as i64),
            ConditionFailed::KeyOffset { actual, .. } => Some(*actual),
            _ => None,
        }
    }

    /// The position of the record whose condition failed, if one did.
    pub fn record(&self) -> Option<usize> {
        match self {
            ConditionFailed::Offset { record, .. }
            | ConditionFailed::KeyOffset { record, .. }
            | ConditionFailed::KeyUnknown { record, .. }
            | ConditionFailed::Keyless { record }
            | ConditionFailed::NoSuchRecord { record } => Some(*record),
            ConditionFailed::Unsettled => None,
        }
    }

    /// Whether the same append may succeed if simply sent again (nothing
    /// about the partition's records has to change first).
    pub fn is_retriable(&self) -> bool {
        matches!(self, ConditionFailed::Unsettled)
    }
}

/// `-1` for "no record", as the doors spell it.
pub(crate) fn offset_or_new(offset: Option<u64>) -> i64 {
    offset.map_or(-1, |offset| offset as i64)
}
