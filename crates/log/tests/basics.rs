//! Scenario tests of the log's public API: append, read, roll, reopen.

use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::{Log, LogConfig, LogError};

fn batch(values: &[&str], timestamp_ms: i64) -> bytes::Bytes {
    let mut builder = BatchBuilder::new(timestamp_ms);
    for value in values {
        builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
    }
    builder.build()
}

fn values(bytes: &[u8]) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header = conveyor_log::batch::check_batch(&bytes[position..]).expect("valid batch");
        let end = position + header.total_bytes();
        for record in decode_records(&bytes[position..end]).expect("records") {
            out.push((
                record.offset.expect("offset") as u64,
                String::from_utf8(record.value.expect("value")).expect("utf8"),
            ));
        }
        position = end;
    }
    out
}

#[test]
fn appended_batches_get_consecutive_offsets_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    let first = log.append(batch(&["a", "b", "c"], 1000)).wait().expect("append");
    let second = log.append(batch(&["d"], 1001)).wait().expect("append");
    assert_eq!((first.base_offset, first.last_offset), (0, 2));
    assert_eq!((second.base_offset, second.last_offset), (3, 3));
    assert_eq!(log.high_watermark(), 4);
    let read = log.read(1, 1 << 20, true).expect("read");
    assert_eq!(
        values(&read.bytes),
        vec![(0, "a".into()), (1, "b".into()), (2, "c".into()), (3, "d".into())]
    );
    let read = log.read(3, 1 << 20, true).expect("read");
    assert_eq!(values(&read.bytes), vec![(3, "d".into())]);
    assert!(log.read(4, 1 << 20, true).expect("read at end").bytes.is_empty());
    assert!(matches!(log.read(5, 1 << 20, true), Err(LogError::OffsetOutOfRange { .. })));
    log.close().expect("close");
}

#[test]
fn once_close_returns_the_log_refuses_appends_before_enqueuing_them() {
    // The refusal must be decided when `append` is called, not when the
    // writer gets to it: a caller that closed a log must not be handed a
    // pending append that was never going to be written.
    for _ in 0..50 {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), LogConfig::default()).expect("open");
        log.append(batch(&["a"], 1000)).wait().expect("append");
        log.close().expect("close");
        let appending = log.append(batch(&["b"], 1001));
        assert!(
            matches!(appending, conveyor_log::Appending::Ready(Some(Err(LogError::Closed(_))))),
            "refused at once: {appending:?}"
        );
    }
}

#[test]
fn offsets_continue_after_reopen_and_roll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    {
        let log = Log::open(dir.path(), config.clone()).expect("open");
        for index in 0..20 {
            log.append(batch(&[&format!("value-{index}")], 1000 + index))
                .wait()
                .expect("append");
        }
        assert!(log.segment_count() > 3, "rolled by size: {}", log.segment_count());
        log.close().expect("close");
    }
    let log = Log::open(dir.path(), config).expect("reopen");
    assert_eq!(log.high_watermark(), 20);
    let next = log.append(batch(&["after"], 5000)).wait().expect("append");
    assert_eq!(next.base_offset, 20);
    for offset in 0..20u64 {
        let read = log.read(offset, 1, true).expect("read");
        assert_eq!(values(&read.bytes)[0], (offset, format!("value-{offset}")));
    }
    assert_eq!(log.offset_for_timestamp(1005).expect("lookup"), Some((5, 1005)));
    assert_eq!(log.offset_for_timestamp(4000).expect("lookup"), Some((20, 5000)));
    assert_eq!(log.offset_for_timestamp(6000).expect("lookup"), None);
}

#[test]
fn invalid_batches_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    let mut bad = batch(&["x"], 1).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(log.append(bad.into()).wait(), Err(LogError::InvalidBatch { .. })));
    assert!(matches!(
        log.append(bytes::Bytes::from_static(b"nonsense")).wait(),
        Err(LogError::InvalidBatch { .. })
    ));
    assert_eq!(log.high_watermark(), 0);
    assert_eq!(log.append(batch(&["ok"], 1)).wait().expect("append").base_offset, 0);
}

#[test]
fn read_of_a_batch_larger_than_max_bytes_without_min_one_serves_nothing() {
    // Found by the model test: the read used to move on to the next segment
    // and serve its first batch, which does not contain the offset asked for.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    let big = log
        .append(batch(&["a value longer than the read allows"], 1))
        .wait()
        .expect("append");
    log.roll().expect("roll");
    log.append(batch(&["b"], 2)).wait().expect("append");
    let read = log.read(big.base_offset, 80, false).expect("read");
    assert!(read.bytes.is_empty(), "served {:?}", values(&read.bytes));
    let read = log.read(big.base_offset, 80, true).expect("read");
    assert_eq!(values(&read.bytes), vec![(0, "a value longer than the read allows".into())]);
}

#[test]
fn every_offset_is_found_when_the_walk_from_the_index_spans_many_header_blocks() {
    // No offset index entry after the first batch: every lookup walks the
    // headers from the start of the segment, across several read blocks.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: u32::MAX,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).expect("open");
    let count = 600u64;
    for index in 0..count {
        log.append(batch(&[&format!("v{index}")], 1000)).wait().expect("append");
    }
    assert!(log.size_bytes() > 4 * 8192, "spans several blocks: {}", log.size_bytes());
    for offset in 0..count {
        let read = log.read(offset, 1, true).expect("read");
        assert_eq!(values(&read.bytes), vec![(offset, format!("v{offset}"))]);
        let read = log.read(offset, 1 << 20, true).expect("read");
        assert_eq!(values(&read.bytes).len() as u64, count - offset);
    }
}

#[test]
fn reads_cut_by_max_bytes_end_at_the_last_whole_batch() {
    // A dense offset index: the trim to whole batches starts from an index
    // entry inside the read rather than from its first batch.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 200,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).expect("open");
    let one = batch(&["same-size"], 1000);
    let size = one.len();
    for _ in 0..200 {
        log.append(one.clone()).wait().expect("append");
    }
    for start in [0u64, 1, 17, 150] {
        for max_bytes in [1, size - 1, size, size + 1, 5 * size + 7, 64 * size - 1, 1 << 20] {
            let read = log.read(start, max_bytes, true).expect("read");
            let fits = (max_bytes / size).max(1).min(200 - start as usize);
            assert_eq!(read.bytes.len(), fits * size, "start {start}, max_bytes {max_bytes}");
            let offsets: Vec<u64> = values(&read.bytes).into_iter().map(|(offset, _)| offset).collect();
            assert_eq!(offsets, (start..start + fits as u64).collect::<Vec<_>>());
        }
    }
}

#[test]
fn large_and_small_batches_mixed_in_one_append_are_stored_in_order() {
    // Batches of 8 KiB and more are written from the appender's bytes, the
    // rest copied: one append mixes both, and needs more iovecs than one
    // pwritev takes (IOV_MAX is 1024), so the write continues after a short one.
    let dir = tempfile::tempdir().expect("tempdir");
    let large_value = "x".repeat(9000);
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for index in 0..1000u64 {
        let value = if index % 3 == 0 {
            format!("small-{index}")
        } else {
            format!("{large_value}-{index}")
        };
        bytes.extend_from_slice(&batch(&[&value], 1000));
        expected.push((index, value));
    }
    {
        let log = Log::open(dir.path(), LogConfig::default()).expect("open");
        let appended = log.append(bytes.into()).wait().expect("append");
        assert_eq!((appended.base_offset, appended.last_offset), (0, 999));
        let after = log.append(batch(&["after"], 1000)).wait().expect("append");
        assert_eq!(after.base_offset, 1000);
        log.close().expect("close");
    }
    expected.push((1000, "after".to_owned()));
    // Recovery rescans the segment: every batch must be sound on disk.
    std::fs::remove_file(dir.path().join(".clean-shutdown")).expect("forget the clean shutdown");
    let log = Log::open(dir.path(), LogConfig::default()).expect("reopen");
    assert_eq!(log.high_watermark(), 1001);
    let mut offset = 0;
    let mut read_back = Vec::new();
    while offset < 1001 {
        let read = log.read(offset, 1 << 20, true).expect("read");
        let mut batch_values = values(&read.bytes);
        offset = batch_values.last().expect("some").0 + 1;
        read_back.append(&mut batch_values);
    }
    assert_eq!(read_back, expected);
}

#[test]
fn truncate_prefix_hides_earlier_offsets_deletes_whole_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let segments_before;
    {
        let log = Log::open(dir.path(), config.clone()).expect("open");
        for index in 0..20 {
            log.append(batch(&[&format!("value-{index}")], 1000 + index))
                .wait()
                .expect("append");
        }
        segments_before = log.segment_count();
        assert_eq!(log.truncate_prefix(7).expect("truncate"), 7);
        assert_eq!(log.start_offset(), 7);
        assert!(log.segment_count() < segments_before, "segments wholly below 7 are deleted");
        assert!(matches!(
            log.read(6, 1 << 20, true),
            Err(LogError::OffsetOutOfRange { start: 7, .. })
        ));
        assert_eq!(values(&log.read(7, 1, true).expect("read").bytes)[0], (7, "value-7".into()));
        // Moving backwards is a no-op; past the end is refused.
        assert_eq!(log.truncate_prefix(3).expect("no-op"), 7);
        assert!(matches!(log.truncate_prefix(21), Err(LogError::OffsetOutOfRange { .. })));
        let appended = log.append(batch(&["after"], 5000)).wait().expect("append");
        assert_eq!(appended.log_start_offset, 7);
        log.close().expect("close");
    }
    let log = Log::open(dir.path(), config).expect("reopen");
    assert_eq!(log.start_offset(), 7);
    assert_eq!(log.high_watermark(), 21);
    assert!(matches!(log.read(6, 1 << 20, true), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(values(&log.read(7, 1, true).expect("read").bytes)[0], (7, "value-7".into()));
    // Truncating to the end leaves an empty, still appendable log.
    assert_eq!(log.truncate_prefix(21).expect("truncate to end"), 21);
    assert!(log.read(21, 1 << 20, true).expect("read at end").bytes.is_empty());
    assert_eq!(log.append(batch(&["more"], 6000)).wait().expect("append").base_offset, 21);
}

#[test]
fn log_append_time_stamps_batches_with_the_clock_and_keeps_them_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = conveyor_log::clock::ManualClock::new(50_000);
    let config = LogConfig {
        log_append_time: true,
        ..LogConfig::default()
    };
    let log = Log::open_with_clock(dir.path(), config, clock.clone()).expect("open");
    let info = log.append(batch(&["a", "b"], 1000)).wait().expect("append");
    assert_eq!(info.log_append_time_ms, Some(50_000));
    let read = log.read(0, 1 << 20, true).expect("read");
    // The rewritten batch passes the CRC check and says whose time it carries.
    let header = conveyor_log::batch::check_batch(&read.bytes).expect("valid batch");
    assert_eq!(header.max_timestamp, 50_000);
    assert_ne!(header.attributes & conveyor_log::batch::attributes::TIMESTAMP_LOG_APPEND_TIME, 0);
    assert_eq!(values(&read.bytes), vec![(0, "a".into()), (1, "b".into())]);
    // The time index follows append time, not the producer's timestamps.
    assert_eq!(log.offset_for_timestamp(2000).expect("lookup"), Some((0, 50_000)));
    drop(log);
    let plain = Log::open(dir.path(), LogConfig::default()).expect("reopen without it");
    let info = plain.append(batch(&["c"], 1000)).wait().expect("append");
    assert_eq!(info.log_append_time_ms, None);
}

/// Every file in `dir` with its length and modification time.
fn files_of(dir: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let metadata = entry.metadata().expect("metadata");
            (
                entry.file_name().to_string_lossy().into_owned(),
                metadata.len(),
                metadata.modified().expect("mtime"),
            )
        })
        .collect();
    files.sort();
    files
}

/// Shutting down a broker with thousands of idle logs must not cost an
/// fsync and an index rewrite each: a log that nothing changed since it was
/// opened closes without writing any file, and what it held is all there
/// (and appendable) on the next open.
#[test]
fn a_log_unchanged_since_it_was_opened_closes_without_writing_and_keeps_its_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), LogConfig::default()).expect("open");
    log.append(batch(&["a", "b"], 1000)).wait().expect("append");
    log.close().expect("close");

    let log = Log::open(dir.path(), LogConfig::default()).expect("reopen");
    let before = files_of(dir.path());
    // Coarse file-system timestamps would hide a rewrite done too soon.
    std::thread::sleep(std::time::Duration::from_millis(20));
    log.close().expect("close unchanged");
    assert_eq!(files_of(dir.path()), before, "closing an unchanged log wrote files");

    let log = Log::open(dir.path(), LogConfig::default()).expect("open after the quiet close");
    assert_eq!(
        values(&log.read(0, 1 << 20, true).expect("read").bytes),
        vec![(0, "a".into()), (1, "b".into())]
    );
    let appended = log.append(batch(&["c"], 1001)).wait().expect("append");
    assert_eq!(appended.base_offset, 2);
    log.close().expect("close");
}

#[test]
fn max_timestamp_record_is_the_first_record_with_the_largest_timestamp_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config.clone()).expect("open");
    assert_eq!(log.max_timestamp_record().expect("empty log"), None);
    // Timestamps out of order: the largest sits inside a batch, in an early segment.
    let mut builder = BatchBuilder::new(1000);
    for (value, timestamp_ms) in [("a", 1000), ("peak", 9000), ("b", 1500), ("peak-again", 9000)] {
        let mut record = Record::new(None, Some(value.as_bytes().to_vec()));
        record.timestamp_ms = Some(timestamp_ms);
        builder.push(record);
    }
    log.append(builder.build()).wait().expect("append");
    for index in 0..10 {
        log.append(batch(&[&format!("later-{index}")], 2000 + index))
            .wait()
            .expect("append");
    }
    assert!(log.segment_count() > 2, "rolled: {}", log.segment_count());
    assert_eq!(log.max_timestamp_record().expect("lookup"), Some((1, 9000)));
    log.close().expect("close");
    let log = Log::open(dir.path(), config).expect("reopen");
    assert_eq!(log.max_timestamp_record().expect("after reopen"), Some((1, 9000)));
}
