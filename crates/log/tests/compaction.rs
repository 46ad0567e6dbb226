//! Log compaction end to end on the log: the cleaner keeps the latest record
//! per key at its offset (inside compressed batches too, rewritten with
//! their codec), removes expired tombstones, leaves the active
//! segment and undecided transactions alone, removes aborted records and
//! then their markers, survives a reopen, and a crash
//! at any step of a cleaning (a failed write, fsync, rename or directory
//! sync, then a power loss on the simulated disk) leaves a log that serves
//! either the old or the cleaned version of each segment — every key's
//! latest record still there at its offset, nothing torn, nothing invented.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use conveyor_log::batch::{self, check_batch};
use conveyor_log::clock::{Clock, ManualClock};
use conveyor_log::codec::Codec;
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::sim::{PowerLoss, SimDisk, SimError, SimOp};
use conveyor_log::throttle::Throttle;
use conveyor_log::{CleanerSettings, CompactionConfig, Log, LogConfig};

const NOW_MS: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_000,
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn compaction(delete_retention_ms: i64) -> CompactionConfig {
    CompactionConfig {
        delete_retention_ms,
        min_cleanable_dirty_ratio: 0.0,
        ..CompactionConfig::default()
    }
}

fn keyed(key: &str, value: Option<&str>) -> Bytes {
    let mut builder = BatchBuilder::new(NOW_MS);
    builder.push(Record::new(
        Some(key.as_bytes().to_vec()),
        value.map(|value| value.as_bytes().to_vec()),
    ));
    builder.build()
}

/// Calls `visit` with every whole batch served from the start (header and
/// bytes), each checked sound.
fn each_served_batch(log: &Log, mut visit: impl FnMut(&batch::BatchHeader, &[u8])) {
    let mut offset = log.start_offset();
    // Bounded: each read moves past at least one batch, and the log is small.
    for _ in 0..10_000 {
        if offset >= log.high_watermark() {
            break;
        }
        let read = log.read(offset, 1 << 20, true).expect("read");
        assert!(!read.bytes.is_empty(), "a read below the high watermark serves something");
        for (header, bytes) in batch::whole_batches(&read.bytes) {
            check_batch(bytes).expect("every served batch is whole and sound");
            visit(&header, bytes);
            offset = header.last_offset() as u64 + 1;
        }
    }
}

/// Every record served from the start: (offset, key, value).
fn read_all(log: &Log) -> Vec<(u64, String, Option<String>)> {
    let mut records = Vec::new();
    each_served_batch(log, |_, bytes| {
        for record in decode_records(bytes).expect("records") {
            let key = String::from_utf8(record.key.expect("keyed")).expect("utf-8");
            let value = record.value.map(|value| String::from_utf8(value).expect("utf-8"));
            records.push((record.offset.expect("offset") as u64, key, value));
        }
    });
    records
}

/// Every data record served from the start (markers left out).
fn read_data(log: &Log) -> Vec<(u64, String, Option<String>)> {
    let mut records = Vec::new();
    each_served_batch(log, |header, bytes| {
        if header.is_control() {
            return;
        }
        for record in decode_records(bytes).expect("records") {
            let key = String::from_utf8(record.key.expect("keyed")).expect("utf-8");
            let value = record.value.map(|value| String::from_utf8(value).expect("utf-8"));
            records.push((record.offset.expect("offset") as u64, key, value));
        }
    });
    records
}

/// Appends `rounds` updates to each of `keys` keys, then a tombstone for
/// key 0 and two records of key `last`, one batch per record, and rolls;
/// returns what was written, by offset.
fn fill(log: &Log, keys: usize, rounds: usize) -> BTreeMap<u64, (String, Option<String>)> {
    let mut written = BTreeMap::new();
    for round in 0..rounds {
        for key in 0..keys {
            let (key, value) = (format!("k{key}"), format!("v{round}-{key}"));
            let info = futures_lite_block(log.append(keyed(&key, Some(&value))));
            written.insert(info, (key, Some(value)));
        }
    }
    let info = futures_lite_block(log.append(keyed("k0", None)));
    written.insert(info, ("k0".to_owned(), None));
    // The segment before the active one then has a record its own next
    // record supersedes: cleaned, it has a gap, which recovery must accept.
    for value in ["first", "second"] {
        let info = futures_lite_block(log.append(keyed("last", Some(value))));
        written.insert(info, ("last".to_owned(), Some(value.to_owned())));
    }
    log.roll().expect("roll");
    written
}

fn futures_lite_block(appending: conveyor_log::Appending) -> u64 {
    appending.wait().expect("append").base_offset
}

/// The latest record of each key: what compaction must keep.
fn latest(written: &BTreeMap<u64, (String, Option<String>)>) -> BTreeMap<String, (u64, Option<String>)> {
    let mut latest = BTreeMap::new();
    for (offset, (key, value)) in written {
        latest.insert(key.clone(), (*offset, value.clone()));
    }
    latest
}

fn clean(log: &Log, config: &CompactionConfig) -> conveyor_log::Result<Option<conveyor_log::CleanStats>> {
    log.clean(config, &CleanerSettings::default(), &mut Throttle::new(None), NOW_MS + 10_000)
}

fn open(disk: &SimDisk, clock: &Arc<ManualClock>) -> Log {
    let clock: Arc<dyn Clock> = clock.clone();
    Log::open_on(disk.storage(), PathBuf::from("/data/t/0"), config(), clock).expect("open")
}

#[test]
fn compaction_keeps_the_latest_record_per_key_at_its_offset() {
    let disk = SimDisk::new(1);
    let clock = ManualClock::new(NOW_MS);
    let log = open(&disk, &clock);
    let written = fill(&log, 5, 6);
    let segments_before = log.segment_count();
    assert!(segments_before > 3, "the test spans several segments: {segments_before}");
    // Tombstones younger than delete.retention.ms stay.
    let stats = clean(&log, &compaction(i64::MAX)).expect("clean").expect("a cleaning was due");
    assert!(stats.records_removed >= 25, "{stats:?}");
    let expected: Vec<(u64, String, Option<String>)> = latest(&written)
        .into_iter()
        .map(|(key, (offset, value))| (offset, key, value))
        .collect();
    let mut served = read_all(&log);
    served.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(served, expected_sorted, "only each key's latest record, at its own offset");
    assert!(log.size_bytes() < stats.bytes_before + 1_000);
    assert_eq!(
        log.start_offset(),
        0,
        "a segment cleaned of every record stays: the log start does not move"
    );
    assert_eq!(log.segment_count(), segments_before, "no segment removed");
    // Nothing is dirty any more: no second cleaning.
    assert!(clean(&log, &compaction(i64::MAX)).expect("clean").is_none());
    // A reopen serves the same.
    drop(log);
    let log = open(&disk, &clock);
    let mut reopened = read_all(&log);
    reopened.sort();
    assert_eq!(reopened, expected_sorted);
    // Appends go on after the highest offset.
    let next = futures_lite_block(log.append(keyed("k1", Some("after"))));
    assert_eq!(next, *written.keys().last().expect("written") + 1);
}

#[test]
fn expired_tombstones_go_and_the_active_segment_stays() {
    let disk = SimDisk::new(2);
    let clock = ManualClock::new(NOW_MS);
    let log = open(&disk, &clock);
    let written = fill(&log, 3, 4);
    // Unrolled records in the active segment are never cleaned.
    let active_offset = futures_lite_block(log.append(keyed("k1", Some("active-1"))));
    futures_lite_block(log.append(keyed("k1", Some("active-2"))));
    clean(&log, &compaction(0)).expect("clean").expect("due");
    let served = read_all(&log);
    assert!(
        served.iter().all(|(_, key, _)| key != "k0"),
        "k0's tombstone expired, and took k0 with it: {served:?}"
    );
    assert!(
        served.iter().any(|(offset, _, _)| *offset == active_offset),
        "the active segment is untouched"
    );
    let sealed_k2: Vec<_> = served.iter().filter(|(_, key, _)| key == "k2").collect();
    assert_eq!(sealed_k2.len(), 1, "{served:?}");
    assert_eq!(sealed_k2[0].2.as_deref(), Some("v3-2"));
    assert!(written.len() > served.len());
}

/// `batch` with the given attribute flags set, its CRC recomputed.
fn flagged(batch: &[u8], flags: i16) -> Bytes {
    let mut bytes = batch.to_vec();
    let mut header = batch::BatchHeader::parse(&bytes).expect("header");
    header.attributes |= flags;
    bytes[21..23].copy_from_slice(&header.attributes.to_be_bytes());
    let crc = batch::compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

/// A transactional batch of `producer_id` with one record.
fn transactional(producer_id: i64, key: &str, value: &str) -> Bytes {
    let mut builder = BatchBuilder::new(NOW_MS).producer(producer_id, 0, 0);
    builder.push(Record::new(Some(key.as_bytes().to_vec()), Some(value.as_bytes().to_vec())));
    flagged(&builder.build(), batch::attributes::TRANSACTIONAL)
}

/// The COMMIT (or ABORT) marker of `producer_id`'s transaction, as a
/// coordinator writes it (Kafka's `EndTransactionMarker`).
fn marker(producer_id: i64, commit: bool) -> Bytes {
    let mut builder = BatchBuilder::new(NOW_MS).producer(producer_id, 0, -1);
    let kind: i16 = if commit { 1 } else { 0 };
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&kind.to_be_bytes());
    builder.push(Record::new(Some(key), Some(vec![0; 6])));
    flagged(&builder.build(), batch::attributes::TRANSACTIONAL | batch::attributes::CONTROL)
}

/// The offsets of every batch served from the start, with whether it is a
/// control batch and its records' keys.
fn batches_served(log: &Log) -> Vec<(u64, bool, Vec<Vec<u8>>)> {
    let mut batches = Vec::new();
    each_served_batch(log, |header, bytes| {
        let keys = decode_records(bytes)
            .expect("records")
            .into_iter()
            .map(|record| record.key.unwrap_or_default())
            .collect();
        batches.push((header.base_offset as u64, header.is_control(), keys));
    });
    batches
}

#[test]
fn an_undecided_transaction_and_everything_after_it_are_left_alone() {
    let disk = SimDisk::new(3);
    let clock = ManualClock::new(NOW_MS);
    let log = open(&disk, &clock);
    let offset = futures_lite_block(log.append(transactional(9, "k0", "in-a-transaction")));
    let written = fill(&log, 2, 3);
    clean(&log, &compaction(i64::MAX)).expect("clean").expect("due");
    let served = read_all(&log);
    assert!(
        served.iter().any(|(at, _, _)| *at == offset),
        "a record of a transaction with no marker is never removed: {served:?}"
    );
    assert_eq!(
        served.len(),
        written.len() + 1,
        "nothing past the last stable offset is compacted, as in Kafka: {served:?}"
    );
}

#[test]
fn aborted_records_go_and_their_marker_follows_once_its_data_is_gone() {
    let disk = SimDisk::new(4);
    let clock = ManualClock::new(NOW_MS);
    let log = open(&disk, &clock);
    let aborted: Vec<u64> = ["k0", "k1"]
        .iter()
        .map(|key| futures_lite_block(log.append(transactional(7, key, "aborted"))))
        .collect();
    let committed = futures_lite_block(log.append(transactional(8, "kept", "committed")));
    let abort_marker = futures_lite_block(log.append(marker(7, false)));
    let commit_marker = futures_lite_block(log.append(marker(8, true)));
    // Producer 7 goes on with a committed transaction, so its aborted
    // batches are not its last.
    let later = futures_lite_block(log.append(transactional(7, "later", "committed")));
    let later_marker = futures_lite_block(log.append(marker(7, true)));
    fill(&log, 2, 3);
    let served_before = batches_served(&log);
    assert!(served_before.iter().any(|(offset, _, _)| *offset == aborted[0]));
    let indexed = log.aborted_transactions(0, log.high_watermark());
    assert_eq!(
        indexed
            .iter()
            .map(|txn| (txn.producer_id, txn.first_offset, txn.last_offset))
            .collect::<Vec<_>>(),
        vec![(7, aborted[0], abort_marker)],
        "the abort is indexed from its transaction's first batch"
    );

    let stats = clean(&log, &compaction(i64::MAX)).expect("clean").expect("due");
    assert!(stats.records_removed >= 2, "{stats:?}");
    let served = batches_served(&log);
    let at = |offset: u64| served.iter().find(|(at, _, _)| *at == offset);
    assert!(
        at(aborted[0]).is_none() && at(aborted[1]).is_none(),
        "aborted records go: {served:?}"
    );
    assert_eq!(at(committed).map(|batch| batch.2.clone()), Some(vec![b"kept".to_vec()]));
    assert!(at(later).is_some());
    assert!(
        at(abort_marker).is_some_and(|batch| batch.1),
        "the marker stays while this cleaning met its data"
    );
    assert!(at(commit_marker).is_some() && at(later_marker).is_some());

    // The next cleaning meets no data of the aborted transaction, and with
    // delete.retention.ms passed its marker goes; the commit markers stay
    // (one's data is still there, the other is its producer's last batch).
    fill(&log, 2, 3);
    clean(&log, &compaction(0)).expect("clean").expect("due");
    let served = batches_served(&log);
    let at = |offset: u64| served.iter().find(|(at, _, _)| *at == offset);
    assert!(at(abort_marker).is_none(), "the abort marker went: {served:?}");
    // Its index entry went with it: a reader told of it would drop producer
    // 7's later committed records, never meeting the marker that ends it.
    assert_eq!(log.aborted_transactions(0, log.high_watermark()), vec![]);
    assert!(at(commit_marker).is_some(), "its committed record is still there");
    assert!(at(later_marker).is_some(), "producer 7's last batch keeps its epoch");
    assert!(at(committed).is_some() && at(later).is_some());
    // And it all holds across a reopen.
    drop(log);
    let log = open(&disk, &clock);
    assert_eq!(batches_served(&log), served);
    assert_eq!(log.aborted_transactions(0, log.high_watermark()), vec![]);
}

#[test]
fn an_aborted_compressed_batch_goes_whole_and_one_the_codecs_refuse_stays_whole() {
    let disk = SimDisk::new(6);
    let clock = ManualClock::new(NOW_MS);
    let log = open(&disk, &clock);
    // The gzip flag on records that are not really compressed: an aborted
    // batch needs no look inside, and a committed one the codec refuses is
    // left as it is rather than stopping the cleaning.
    const GZIP: i16 = 1;
    let aborted = futures_lite_block(log.append(flagged(&transactional(7, "k0", "aborted"), GZIP)));
    let committed = futures_lite_block(log.append(flagged(&transactional(8, "k0", "committed"), GZIP)));
    futures_lite_block(log.append(marker(7, false)));
    futures_lite_block(log.append(marker(8, true)));
    futures_lite_block(log.append(transactional(7, "later", "committed")));
    futures_lite_block(log.append(marker(7, true)));
    // fill's k0 records supersede both; a batch the codec refuses is not filtered.
    fill(&log, 2, 3);
    clean(&log, &compaction(i64::MAX)).expect("clean").expect("due");
    let read = log.read(0, 1 << 20, true).expect("read");
    let offsets: Vec<u64> = batch::whole_batches(&read.bytes)
        .map(|(header, _)| header.base_offset as u64)
        .collect();
    assert!(!offsets.contains(&aborted), "the aborted compressed batch went: {offsets:?}");
    assert!(
        offsets.contains(&committed),
        "a committed batch that does not decompress is kept whole: {offsets:?}"
    );
}

/// One batch of `records` (key, value) compressed with `codec`, from
/// `producer_id` (-1: none).
fn compressed(codec: Codec, producer_id: i64, records: &[(String, Option<String>)]) -> Bytes {
    let mut builder = BatchBuilder::new(NOW_MS).compression(codec).producer(producer_id, 0, 0);
    for (key, value) in records {
        builder.push(Record::new(Some(key.clone().into_bytes()), value.clone().map(String::into_bytes)));
    }
    builder.build()
}

#[test]
fn compressed_batches_keep_the_latest_record_per_key_and_their_codec() {
    for (seed, codec) in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd].into_iter().enumerate() {
        let disk = SimDisk::new(20 + seed as u64);
        let clock = ManualClock::new(NOW_MS);
        let log = open(&disk, &clock);
        let mut written = BTreeMap::new();
        for round in 0..6 {
            let mut records: Vec<(String, Option<String>)> =
                (0..4).map(|key| (format!("k{key}"), Some(format!("v{round}-{key}")))).collect();
            if round == 2 {
                // A committed transaction's compressed batch, with a key
                // nothing later supersedes.
                records.push(("t".to_owned(), Some("in-txn".to_owned())));
            }
            if round == 4 {
                records.push(("k0".to_owned(), None));
            }
            let bytes = compressed(codec, if round == 2 { 9 } else { -1 }, &records);
            let base = if round == 2 {
                let base = futures_lite_block(log.append(flagged(&bytes, batch::attributes::TRANSACTIONAL)));
                futures_lite_block(log.append(marker(9, true)));
                base
            } else {
                futures_lite_block(log.append(bytes))
            };
            for (delta, (key, value)) in records.into_iter().enumerate() {
                written.insert(base + delta as u64, (key, value));
            }
        }
        log.roll().expect("roll");
        let stats = clean(&log, &compaction(i64::MAX)).expect("clean").expect("a cleaning was due");
        assert!(stats.records_removed >= 20, "{codec:?}: {stats:?}");
        let mut expected: Vec<(u64, String, Option<String>)> = latest(&written)
            .into_iter()
            .map(|(key, (offset, value))| (offset, key, value))
            .collect();
        expected.sort();
        let mut served = read_data(&log);
        served.sort();
        assert_eq!(served, expected, "{codec:?}: only each key's latest record, at its own offset");
        each_served_batch(&log, |header, _| {
            if !header.is_control() && header.records_count > 0 {
                assert_eq!(header.compression(), codec.id(), "a rewritten batch keeps its codec");
            }
        });
        drop(log);
        let log = open(&disk, &clock);
        let mut reopened = read_data(&log);
        reopened.sort();
        assert_eq!(reopened, expected, "{codec:?}: the cleaned segments recover as written");
    }
}

#[test]
fn a_producers_last_batch_keeps_its_header_when_its_records_go() {
    let disk = SimDisk::new(5);
    let clock = ManualClock::new(NOW_MS);
    let log = open(&disk, &clock);
    // An idempotent producer's two batches, both superseded by fill's k0s.
    let idempotent = |value: &str| {
        let mut builder = BatchBuilder::new(NOW_MS).producer(9, 0, 0);
        builder.push(Record::new(Some(b"k0".to_vec()), Some(value.as_bytes().to_vec())));
        builder.build()
    };
    let first = futures_lite_block(log.append(idempotent("one")));
    let last = futures_lite_block(log.append(idempotent("two")));
    fill(&log, 2, 3);
    clean(&log, &compaction(i64::MAX)).expect("clean").expect("due");
    let served = batches_served(&log);
    let at = |offset: u64| served.iter().find(|(at, _, _)| *at == offset);
    assert!(at(first).is_none(), "an emptied batch goes: {served:?}");
    assert_eq!(
        at(last).map(|batch| batch.2.len()),
        Some(0),
        "the producer's last batch stays, without its records, for its sequence: {served:?}"
    );
}

#[test]
fn a_crash_at_any_step_of_a_cleaning_leaves_old_or_new_segments_never_half() {
    let ops = [
        SimOp::Create,
        SimOp::Write,
        SimOp::SetLen,
        SimOp::Sync,
        SimOp::Remove,
        SimOp::Rename,
        SimOp::SyncDir,
    ];
    for (round, op) in ops.iter().enumerate() {
        for mode in [PowerLoss::LoseUnsynced, PowerLoss::KeepSome] {
            let disk = SimDisk::new(100 + round as u64);
            let clock = ManualClock::new(NOW_MS);
            let log = open(&disk, &clock);
            let written = fill(&log, 4, 5);
            disk.fail_next(*op, SimError::Io);
            // The cleaning may fail at the injected fault, or get past it.
            let _ = clean(&log, &compaction(i64::MAX));
            disk.power_loss(mode);
            drop(log);
            let log = open(&disk, &clock);
            let served = read_all(&log);
            let mut last_offset = None;
            for (offset, key, value) in &served {
                assert!(last_offset < Some(*offset), "offsets only grow ({op:?}, {mode:?})");
                last_offset = Some(*offset);
                assert_eq!(
                    written.get(offset),
                    Some(&(key.clone(), value.clone())),
                    "served only what was written, at its offset ({op:?}, {mode:?})"
                );
            }
            for (key, (offset, value)) in latest(&written) {
                assert!(
                    served.contains(&(offset, key.clone(), value.clone())),
                    "{key}'s latest record survives ({op:?}, {mode:?})"
                );
            }
            // And a cleaning after the restart finishes the job.
            clean(&log, &compaction(i64::MAX)).expect("clean after restart");
            let keys: Vec<_> = read_all(&log).into_iter().map(|(_, key, _)| key).collect();
            let mut unique = keys.clone();
            unique.dedup();
            assert_eq!(keys.len(), latest(&written).len(), "{keys:?} ({op:?}, {mode:?})");
        }
    }
}
