//! The aborted-transactions index (`.txnindex`) end to end on the log: an
//! ABORT marker is indexed from its transaction's first batch even when
//! that batch is segments back; the index survives a clean restart and a
//! crash (the active segment's is rebuilt from its batches and the open
//! transactions the segment before recorded); a missing or torn file is
//! rebuilt; retention deletes it with its segment.

use std::path::Path;

use bytes::Bytes;
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::transaction_index::AbortedTxn;
use conveyor_log::{Log, LogConfig};

const NOW_MS: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn plain(value: &str) -> Bytes {
    let mut builder = BatchBuilder::new(NOW_MS);
    builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
    builder.build()
}

fn transactional(producer_id: i64, value: &str) -> Bytes {
    let mut builder = BatchBuilder::new(NOW_MS).producer(producer_id, 0, 0).transactional();
    builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
    builder.build()
}

/// The COMMIT or ABORT marker of `producer_id` (Kafka's `EndTransactionMarker`).
fn marker(producer_id: i64, commit: bool) -> Bytes {
    let mut builder = BatchBuilder::new(NOW_MS).producer(producer_id, 0, -1).control();
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    builder.push(Record::new(Some(key), Some(vec![0; 6])));
    builder.build()
}

fn append(log: &Log, batch: Bytes) -> u64 {
    log.append(batch).wait().expect("append").base_offset
}

/// (producer id, first offset, marker offset) of what a read of `from..to` gets.
fn aborted(log: &Log, from: u64, to: u64) -> Vec<(i64, u64, u64)> {
    log.aborted_transactions(from, to)
        .iter()
        .map(|txn: &AbortedTxn| (txn.producer_id, txn.first_offset, txn.last_offset))
        .collect()
}

/// A copy of the log's directory as a crash would leave it: every
/// acknowledged append is synced, but no clean close wrote the active
/// segment's index files or the clean-shutdown marker.
fn crash_copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// Producer 1's transaction begins in segment 0 and is aborted in segment
/// 2; producer 2's is committed; producer 3's begins in segment 2 and is
/// aborted in the active segment 3, after the data of producer 4, whose
/// transaction is still open. Returns the log and the expected index.
fn transactions_across_segments(dir: &Path) -> (Log, Vec<(i64, u64, u64)>) {
    let log = Log::open(dir, config()).expect("open");
    append(&log, plain("before"));
    let first_1 = append(&log, transactional(1, "aborted-1"));
    log.roll().expect("roll");
    append(&log, transactional(1, "aborted-1 again"));
    let first_2 = append(&log, transactional(2, "committed-2"));
    log.roll().expect("roll");
    let abort_1 = append(&log, marker(1, false));
    append(&log, marker(2, true));
    assert!(first_2 > first_1);
    let first_3 = append(&log, transactional(3, "aborted-3"));
    log.roll().expect("roll");
    append(&log, transactional(4, "open-4"));
    let abort_3 = append(&log, marker(3, false));
    append(&log, plain("after"));
    assert_eq!(log.segment_count(), 4);
    (log, vec![(1, first_1, abort_1), (3, first_3, abort_3)])
}

#[test]
fn an_abort_is_indexed_from_a_first_batch_segments_back_and_survives_a_restart_and_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crashed = tempfile::tempdir().expect("tempdir");
    let (log, expected) = transactions_across_segments(dir.path());
    let end = log.high_watermark();
    assert_eq!(aborted(&log, 0, end), expected);
    // Kafka's rule: those with records in the range read.
    let (abort_1, first_3) = (expected[0].2, expected[1].1);
    assert_eq!(aborted(&log, abort_1 + 1, end), expected[1..]);
    assert_eq!(aborted(&log, 0, first_3), expected[..1]);
    assert_eq!(aborted(&log, 0, 1), vec![], "nothing aborted below the first transaction");

    crash_copy(dir.path(), crashed.path());
    log.close().expect("close");
    drop(log);
    let log = Log::open(dir.path(), config()).expect("reopen");
    assert_eq!(aborted(&log, 0, end), expected, "after a clean restart");
    drop(log);
    let log = Log::open(crashed.path(), config()).expect("recover");
    assert_eq!(
        aborted(&log, 0, end),
        expected,
        "after a crash the active segment's index is rebuilt from its batches"
    );
    // Producer 4's transaction is still open after the crash: its abort is
    // indexed from its first batch.
    let abort_4 = append(&log, marker(4, false));
    assert_eq!(aborted(&log, abort_4, abort_4 + 1), vec![(4, abort_4 - 3, abort_4)]);
}

#[test]
fn a_missing_or_torn_transaction_index_is_rebuilt_and_retention_deletes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, expected) = transactions_across_segments(dir.path());
    let end = log.high_watermark();
    let bases = log.segment_base_offsets();
    log.close().expect("close");
    drop(log);
    let txn_index = |base: u64| dir.path().join(format!("{base:020}.txnindex"));
    // Segment 2 holds producer 1's abort, and producer 3's transaction is
    // open at its end: two entries of 34 bytes.
    let written = std::fs::read(txn_index(bases[2])).expect("the sealed segment's transaction index");
    assert_eq!(written.len(), 2 * 34);
    std::fs::write(txn_index(bases[2]), &written[..written.len() - 5]).expect("tear it");
    std::fs::remove_file(txn_index(bases[1])).expect("remove it");
    let log = Log::open(dir.path(), config()).expect("reopen");
    assert_eq!(aborted(&log, 0, end), expected, "rebuilt by scanning");
    assert_eq!(std::fs::read(txn_index(bases[2])).expect("rewritten"), written);
    assert!(txn_index(bases[1]).exists());

    log.truncate_prefix(bases[2]).expect("delete the first two segments");
    for base in &bases[..2] {
        assert!(!txn_index(*base).exists(), "deleted with its segment");
    }
    assert_eq!(aborted(&log, bases[2], end), expected, "indexed where the marker is");
}
