//! The log at scale: 1 GiB of 16 KiB batches across 64 MiB segments, read
//! back by offset (samples in every segment and a full sequential scan) and by
//! timestamp, before and after a close and reopen. Timings are printed so a
//! slowdown shows in the test output (`--nocapture`).

use std::time::Instant;

use bytes::Bytes;
use conveyor_log::batch::{self, check_batch};
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Appending, Durability, Log, LogConfig};

const LOG_BYTES_MIN: u64 = 1 << 30;
const SEGMENT_BYTES: u64 = 64 << 20;
const RECORDS_PER_BATCH: u64 = 16;
/// With record framing, 16 records of this size make a batch of about 16 KiB.
const VALUE_BYTES: usize = 1_000;
/// Appends in flight at once: enough for the writer to group them.
const APPENDS_IN_FLIGHT_MAX: usize = 32;
const T0_MS: i64 = 1_700_000_000_000;

/// Every record's timestamp is a function of its offset (two milliseconds
/// apart), so the right answer to any time lookup is known.
fn timestamp_of(offset: u64) -> i64 {
    T0_MS + 2 * offset as i64
}

/// Batch number `index` (offsets `index * RECORDS_PER_BATCH ..`), as appended.
/// Each value starts with its record's offset; the rest is a pattern that
/// changes from batch to batch.
fn batch(index: u64) -> Bytes {
    let first_offset = index * RECORDS_PER_BATCH;
    let mut builder = BatchBuilder::new(timestamp_of(first_offset));
    let filler = vec![(index % 251) as u8; VALUE_BYTES - 8];
    for offset in first_offset..first_offset + RECORDS_PER_BATCH {
        let mut value = offset.to_be_bytes().to_vec();
        value.extend_from_slice(&filler);
        let mut record = Record::new(None, Some(value));
        record.timestamp_ms = Some(timestamp_of(offset));
        builder.push(record);
    }
    builder.build()
}

/// Batch `index` as the log stores it: with its base offset set.
fn stored_batch(index: u64) -> Vec<u8> {
    let mut bytes = batch(index).to_vec();
    batch::set_base_offset(&mut bytes, (index * RECORDS_PER_BATCH) as i64);
    bytes
}

/// A small deterministic generator (xorshift) for sampling.
struct Sampler(u64);

impl Sampler {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        durability: Durability::Never,
        ..LogConfig::default()
    }
}

fn timed<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = work();
    eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
    out
}

#[test]
fn a_gibibyte_across_many_segments_reads_back_by_offset_and_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let log = Log::open(dir.path(), config()).expect("open");
    let batch_bytes = batch(0).len() as u64;
    let batch_count = LOG_BYTES_MIN.div_ceil(batch_bytes);
    // The CRC of every batch, to check the scan's batches against without
    // building them again.
    let crcs: Vec<u32> = timed("append 1 GiB", || append_all(&log, batch_count));
    timed("sync", || log.sync().expect("sync"));
    let end = batch_count * RECORDS_PER_BATCH;
    assert_eq!(log.high_watermark(), end);
    assert!(log.size_bytes() >= LOG_BYTES_MIN, "{} bytes", log.size_bytes());
    let segments = log.segment_base_offsets();
    let batches_per_segment = SEGMENT_BYTES / batch_bytes;
    assert_eq!(
        segments.len() as u64,
        batch_count.div_ceil(batches_per_segment),
        "segments of {SEGMENT_BYTES} bytes"
    );

    check_everything(&log, &crcs, "before reopen");
    timed("close", || log.close().expect("close"));
    let log = timed("reopen", || Log::open(dir.path(), config()).expect("reopen"));
    assert_eq!(log.high_watermark(), end);
    assert_eq!(log.segment_base_offsets(), segments);
    check_everything(&log, &crcs, "after reopen");
    let next = log.append(batch(batch_count)).wait().expect("append after reopen");
    assert_eq!(next.base_offset, end, "appends continue at the high watermark");
    log.close().expect("close");
    drop(dir);
    eprintln!("total: {:.2} s", started.elapsed().as_secs_f64());
}

fn append_all(log: &Log, batch_count: u64) -> Vec<u32> {
    let mut crcs = Vec::with_capacity(batch_count as usize);
    let mut in_flight: std::collections::VecDeque<(u64, Appending)> = std::collections::VecDeque::new();
    for index in 0..batch_count {
        let bytes = batch(index);
        crcs.push(check_batch(&bytes).expect("built batches are sound").crc);
        if in_flight.len() == APPENDS_IN_FLIGHT_MAX {
            let (done, appending) = in_flight.pop_front().expect("in flight");
            assert_eq!(appending.wait().expect("append").base_offset, done * RECORDS_PER_BATCH);
        }
        in_flight.push_back((index, log.append(bytes)));
    }
    for (done, appending) in in_flight {
        assert_eq!(appending.wait().expect("append").base_offset, done * RECORDS_PER_BATCH);
    }
    crcs
}

fn check_everything(log: &Log, crcs: &[u32], when: &str) {
    timed(&format!("sampled reads {when}"), || check_sampled_reads(log));
    timed(&format!("sequential scan {when}"), || check_scan(log, crcs));
    timed(&format!("time lookups {when}"), || check_time_lookups(log));
}

/// Offsets to sample: the first, second, middle and last offset of every
/// segment, and random ones.
fn sample_offsets(log: &Log) -> Vec<u64> {
    let end = log.high_watermark();
    let segments = log.segment_base_offsets();
    let mut offsets = Vec::new();
    for (position, &base) in segments.iter().enumerate() {
        let next = segments.get(position + 1).copied().unwrap_or(end);
        offsets.extend([base, base + 1, (base + next) / 2, next - 1]);
    }
    let mut sampler = Sampler(0x9e37_79b9);
    offsets.extend((0..1_000).map(|_| sampler.below(end)));
    offsets
}

fn check_sampled_reads(log: &Log) {
    let mut sampler = Sampler(0xdead_beef);
    for offset in sample_offsets(log) {
        let max_bytes = 1 + sampler.below(64 * 1024) as usize;
        let read = log.read(offset, max_bytes, true).expect("read");
        let index = offset / RECORDS_PER_BATCH;
        let first = check_batch(&read.bytes).expect("a sound batch");
        assert_eq!(
            first.base_offset as u64,
            index * RECORDS_PER_BATCH,
            "the first batch holds offset {offset}"
        );
        let expected = stored_batch(index);
        assert!(
            read.bytes[..first.total_bytes()] == expected[..],
            "batch {index} differs from what was appended"
        );
        assert!(read.bytes.len() <= max_bytes.max(first.total_bytes()));
    }
}

fn check_scan(log: &Log, crcs: &[u32]) {
    let end = log.high_watermark();
    let mut offset = 0;
    let mut reads = 0;
    while offset < end {
        reads += 1;
        assert!(reads <= crcs.len(), "the scan does not advance");
        let read = log.read(offset, 1 << 20, true).expect("read");
        assert!(!read.bytes.is_empty(), "nothing served at {offset}");
        let mut position = 0;
        while position < read.bytes.len() {
            let header = check_batch(&read.bytes[position..]).expect("a sound batch");
            assert_eq!(header.base_offset as u64, offset, "batches are contiguous");
            let index = (offset / RECORDS_PER_BATCH) as usize;
            assert_eq!(header.crc, crcs[index], "batch {index} has the CRC it was appended with");
            offset = header.last_offset() as u64 + 1;
            position += header.total_bytes();
        }
    }
    assert_eq!(offset, end);
}

fn check_time_lookups(log: &Log) {
    let end = log.high_watermark();
    let mut wanted = vec![T0_MS - 1_000, timestamp_of(end - 1), timestamp_of(end - 1) + 1];
    for offset in sample_offsets(log) {
        // At a record's timestamp, and just after the one before it.
        wanted.extend([timestamp_of(offset), timestamp_of(offset) - 1]);
    }
    for timestamp_ms in wanted {
        let expected = if timestamp_ms > timestamp_of(end - 1) {
            None
        } else {
            // The first record at or after the time: timestamps are 2 ms apart from T0.
            let offset = ((timestamp_ms - T0_MS).max(0) as u64).div_ceil(2);
            Some((offset, timestamp_of(offset)))
        };
        assert_eq!(
            log.offset_for_timestamp(timestamp_ms).expect("time lookup"),
            expected,
            "lookup of {timestamp_ms}"
        );
    }
}
