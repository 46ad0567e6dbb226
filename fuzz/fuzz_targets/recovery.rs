//! Segment recovery on arbitrary files. The input's first byte picks the
//! setup: index files (from the input) beside the segment, a clean-shutdown
//! marker, an empty later segment that seals the fuzzed one. The segment is
//! either the input's bytes (with each batch's CRC resealed, optionally, so
//! mutations reach the checks behind the checksum) or sound batches built
//! from the input, then damaged at a position the input gives and followed by
//! the rest of the input as a tail. Opening must not panic or fail on the bytes,
//! every batch served must pass `check_batch`, reads must stay inside the
//! log's bounds, and an append must then land at the high watermark.

#![no_main]

mod reseal;

use std::fs;
use std::path::Path;

use conveyor_log::batch::{check_batch, set_base_offset, whole_batches_len};
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Durability, Log, LogConfig, LogError};
use libfuzzer_sys::fuzz_target;

use reseal::reseal;

/// What `recover` looks for; written by `Log::close`.
const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
/// Base offset of the empty segment that seals the fuzzed one in sealed mode.
const NEXT_SEGMENT_BASE: u64 = 1 << 20;
const READS_MAX: usize = 10_000;
const BUILT_BATCHES_MAX: usize = 8;

fn segment_path(dir: &Path, base_offset: u64) -> std::path::PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}

/// Splits `length-prefixed` pieces off the front of the input.
fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((&length, rest)) = data.split_first() else {
        return &[];
    };
    let length = (length as usize * 4).min(rest.len());
    let (piece, rest) = rest.split_at(length);
    *data = rest;
    piece
}

/// Sound batches with consecutive offsets, their values taken from the
/// input; then one byte xored at an input-given position; then the rest of
/// the input as a tail.
fn built_segment(data: &mut &[u8]) -> Vec<u8> {
    let mut segment = Vec::new();
    let mut next_offset = 0i64;
    for batch_index in 0..BUILT_BATCHES_MAX {
        let piece = take(data);
        if piece.is_empty() {
            break;
        }
        let mut builder = BatchBuilder::new(1_000 * batch_index as i64);
        for (record_index, value) in piece.chunks(piece.len().div_ceil(3)).enumerate() {
            let mut record = Record::new(None, Some(value.to_vec()));
            // Timestamps that go back as well as forward.
            record.timestamp_ms = Some(i64::from(value[0]) * 10 - record_index as i64);
            builder.push(record);
        }
        let mut batch = builder.build().to_vec();
        set_base_offset(&mut batch, next_offset);
        next_offset += builder.len() as i64;
        segment.extend_from_slice(&batch);
    }
    if let [high, low, mask, rest @ ..] = data {
        let at = usize::from(u16::from_be_bytes([*high, *low]));
        if let Some(byte) = segment.get_mut(at) {
            *byte ^= *mask;
        }
        *data = rest;
    }
    segment.extend_from_slice(data);
    segment
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut data)) = data.split_first() else {
        return;
    };
    let sealed = mode & 1 != 0;
    let clean = mode & 2 != 0;
    let with_index = mode & 4 != 0;
    let built = mode & 8 != 0;
    let resealed = mode & 16 != 0;
    let index_interval_bytes = 1 + u32::from(mode >> 5) * 128;
    let offset_index = take(&mut data);
    let time_index = take(&mut data);
    let segment = if built {
        built_segment(&mut data)
    } else {
        let mut segment = data.to_vec();
        if resealed {
            reseal(&mut segment);
        }
        segment
    };

    // Recovery fsyncs; on tmpfs that costs nothing.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let log_path = segment_path(dir.path(), 0);
    fs::write(&log_path, &segment).expect("write segment");
    if with_index {
        fs::write(log_path.with_extension("index"), offset_index).expect("write index");
        fs::write(log_path.with_extension("timeindex"), time_index).expect("write time index");
    }
    if sealed {
        fs::write(segment_path(dir.path(), NEXT_SEGMENT_BASE), b"").expect("write next segment");
    }
    if clean {
        fs::write(dir.path().join(CLEAN_SHUTDOWN_FILE), b"").expect("write marker");
    }
    let config = LogConfig {
        index_interval_bytes,
        durability: Durability::Never,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).expect("recovery never fails on a segment's contents");
    let start = log.start_offset();
    let end = log.high_watermark();

    let trusted = with_index && (sealed || clean);
    if trusted {
        for offset in start..end.min(start + 64) {
            let read = log.read(offset, 1 << 16, true).expect("reads inside the log succeed");
            assert_eq!(whole_batches_len(&read.bytes), read.bytes.len(), "reads serve whole batches");
        }
    } else {
        check_validated_reads(&log);
    }
    assert!(matches!(log.read(end + 1, 1, true), Err(LogError::OffsetOutOfRange { .. })));
    if start > 0 {
        assert!(matches!(log.read(start - 1, 1, true), Err(LogError::OffsetOutOfRange { .. })));
    }

    let mut builder = BatchBuilder::new(0);
    builder.push(Record::new(None, Some(b"after recovery".to_vec())));
    let appended = log.append(builder.build()).wait().expect("append after recovery");
    assert_eq!(appended.base_offset, end);
    log.close().expect("close");
});

/// Reads every segment from its base until it serves nothing more, checking
/// each batch served.
fn check_validated_reads(log: &Log) {
    let end = log.high_watermark();
    let bases = log.segment_base_offsets();
    let mut reads = 0;
    let mut last_served: Option<u64> = None;
    for (position, &base) in bases.iter().enumerate() {
        let next_base = bases.get(position + 1).copied().unwrap_or(end);
        let mut offset = base;
        while offset < next_base && reads < READS_MAX {
            reads += 1;
            let read = log.read(offset, 1 << 16, true).expect("reads inside the log succeed");
            if read.bytes.is_empty() {
                // The rest of a damaged sealed segment: nothing more here.
                break;
            }
            let mut at = 0;
            let mut contiguous_from = None;
            while at < read.bytes.len() {
                let header = check_batch(&read.bytes[at..]).expect("every served batch is sound");
                let (first, last) = (header.base_offset as u64, header.last_offset() as u64);
                match contiguous_from {
                    None => assert!(last >= offset, "the first batch holds the offset read, or comes after it"),
                    Some(next) => assert_eq!(first, next, "one read serves contiguous batches"),
                }
                assert!(last_served.is_none_or(|previous| first > previous), "offsets only increase");
                assert!(last < end, "served past the high watermark");
                let _ = log.offset_for_timestamp(header.max_timestamp).expect("time lookup");
                last_served = Some(last);
                contiguous_from = Some(last + 1);
                offset = last + 1;
                at += header.total_bytes();
            }
        }
    }
}
