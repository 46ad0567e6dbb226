//! Transaction markers: the control batch a coordinator writes into each
//! partition of a transaction when it ends (Kafka's `EndTransactionMarker`).
//! Knows the batch layout of a marker; nothing of coordinators or fetches.
//!
//! ```text
//! batch:  attributes = TRANSACTIONAL | CONTROL, the producer's id and epoch,
//!         base sequence -1, one record
//! record: key   = version i16 (0) | type i16 (0 = ABORT, 1 = COMMIT)
//!         value = version i16 (0) | coordinator epoch i32
//! ```

use bytes::Bytes;
use conveyor_log::batch::BatchHeader;
use conveyor_log::record::{BatchBuilder, Record, decode_records};

/// How a transaction ended in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MarkerKind {
    Abort,
    Commit,
}

impl MarkerKind {
    pub fn of(commit: bool) -> MarkerKind {
        if commit { MarkerKind::Commit } else { MarkerKind::Abort }
    }

    fn code(self) -> i16 {
        match self {
            MarkerKind::Abort => 0,
            MarkerKind::Commit => 1,
        }
    }
}

/// The control batch that ends `producer_id`'s transaction in a partition.
pub fn control_batch(producer_id: i64, producer_epoch: i16, kind: MarkerKind, coordinator_epoch: i32, now_ms: i64) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.code().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut builder = BatchBuilder::new(now_ms).producer(producer_id, producer_epoch, -1).control();
    builder.push(Record::new(Some(key), Some(value)));
    builder.build()
}

/// The kind of the marker in `batch_bytes` (one whole control batch), if it is one.
pub fn marker_kind(header: &BatchHeader, batch_bytes: &[u8]) -> Option<MarkerKind> {
    if !header.is_control() {
        return None;
    }
    let records = decode_records(batch_bytes).ok()?;
    let key = records.first()?.key.as_deref()?;
    match key.get(2..4)? {
        [0, 0] => Some(MarkerKind::Abort),
        [0, 1] => Some(MarkerKind::Commit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::batch;

    #[test]
    fn a_marker_is_a_valid_transactional_control_batch_of_one_record() {
        let bytes = control_batch(42, 3, MarkerKind::Commit, 0, 1_700_000_000_000);
        let header = batch::check_batch(&bytes).expect("a valid batch");
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (42, 3, -1));
        assert_eq!((header.records_count, header.last_offset_delta), (1, 0));
        assert_eq!(marker_kind(&header, &bytes), Some(MarkerKind::Commit));
        let abort = control_batch(42, 3, MarkerKind::Abort, 0, 1);
        let header = batch::check_batch(&abort).expect("a valid batch");
        assert_eq!(marker_kind(&header, &abort), Some(MarkerKind::Abort));
    }
}
