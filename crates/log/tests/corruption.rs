//! Recovery from damaged segment files: torn tails, flipped bytes, garbage
//! and zero-filled tails of the active segment, missing and damaged indexes of
//! sealed segments. Each scenario runs on the files a crash leaves (copied from
//! a log that is still open, after `sync`) and on the files of a cleanly closed
//! log that were damaged afterwards (the open then trusts the active segment's
//! index). After reopening, the log must serve exactly the sound batches before
//! the damage, never a batch that fails `check_batch`, answer time lookups
//! right, and continue appending at the right offset.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use bytes::Bytes;
use conveyor_log::batch::{self, check_batch};
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::{Durability, Log, LogConfig, LogError};

const T0_MS: i64 = 1_700_000_000_000;

/// How the files to damage were left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// As a kill -9 leaves them: no clean-shutdown marker, the active
    /// segment's index never written.
    Crash,
    /// After `close`: the next open trusts the active segment's index files.
    Clean,
}

const SHUTDOWNS: [Shutdown; 2] = [Shutdown::Crash, Shutdown::Clean];

fn config() -> LogConfig {
    LogConfig {
        // An offset and a time entry every two or three batches, so recovery
        // meets both indexed and unindexed batches.
        index_interval_bytes: 300,
        // The files are damaged by hand, so fsyncs would only slow the test.
        durability: Durability::Never,
        ..LogConfig::default()
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1_000,
        ..config()
    }
}

/// Batch number `index`: 1 to 3 records, timestamps increasing with `index`.
fn batch(index: u64) -> Bytes {
    let mut builder = BatchBuilder::new(T0_MS + 10 * index as i64);
    for record_index in 0..=(index % 3) {
        let mut record = Record::new(
            Some(format!("key-{index}").into_bytes()),
            Some(format!("batch {index} record {record_index} {}", "x".repeat((index % 5) as usize * 7)).into_bytes()),
        );
        record.timestamp_ms = Some(T0_MS + 10 * index as i64 + record_index as i64);
        builder.push(record);
    }
    builder.build()
}

/// A batch as the log stores it: its bytes with the assigned base offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    base_offset: u64,
    bytes: Bytes,
}

impl Stored {
    fn next_offset(&self) -> u64 {
        let header = check_batch(&self.bytes).expect("stored batches are sound");
        header.last_offset() as u64 + 1
    }
}

fn append(log: &Log, batch: Bytes) -> Stored {
    let info = log.append(batch.clone()).wait().expect("append");
    let mut bytes = batch.to_vec();
    batch::set_base_offset(&mut bytes, info.base_offset as i64);
    Stored {
        base_offset: info.base_offset,
        bytes: bytes.into(),
    }
}

/// Writes `count` batches into a new log in `dir` and leaves its files as
/// `shutdown` says. Returns the batches as stored.
fn write_log(dir: &Path, config: &LogConfig, count: u64, shutdown: Shutdown) -> Vec<Stored> {
    match shutdown {
        Shutdown::Clean => {
            let log = Log::open(dir, config.clone()).expect("open");
            let stored = (0..count).map(|index| append(&log, batch(index))).collect();
            log.close().expect("close");
            stored
        }
        Shutdown::Crash => {
            // The files of a log that is still open, once everything is
            // written: what a kill -9 leaves on disk.
            let running = tempfile::tempdir().expect("tempdir");
            let log = Log::open(running.path(), config.clone()).expect("open");
            let stored = (0..count).map(|index| append(&log, batch(index))).collect();
            log.sync().expect("sync");
            copy_dir(running.path(), dir);
            log.close().expect("close");
            stored
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create the copy's directory");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a log file");
    }
}

/// Files of the log with this extension, in segment order.
fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect();
    paths.sort();
    paths
}

fn active_segment(dir: &Path) -> PathBuf {
    files_with_extension(dir, "log").pop().expect("a segment file")
}

fn append_to_file(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).expect("open segment");
    file.write_all(bytes).expect("append to segment");
}

fn overwrite(path: &Path, position: usize, bytes: &[u8]) {
    let mut contents = fs::read(path).expect("read file");
    contents[position..position + bytes.len()].copy_from_slice(bytes);
    fs::write(path, contents).expect("write file");
}

/// The stored batches of the active segment, with their byte positions in it.
fn active_batches(stored: &[Stored], dir: &Path) -> Vec<(usize, Stored)> {
    let segment = active_segment(dir);
    let base: u64 = segment
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .expect("segment named by its base offset");
    let mut position = 0;
    let mut out = Vec::new();
    for batch in stored.iter().filter(|batch| batch.base_offset >= base) {
        out.push((position, batch.clone()));
        position += batch.bytes.len();
    }
    assert_eq!(position as u64, fs::metadata(&segment).expect("stat").len());
    out
}

/// Every record's offset and timestamp, in offset order.
fn record_times(stored: &[Stored]) -> Vec<(u64, i64)> {
    stored
        .iter()
        .flat_map(|batch| decode_records(&batch.bytes).expect("stored batches decode"))
        .map(|record| (record.offset.expect("offset") as u64, record.timestamp_ms.expect("timestamp")))
        .collect()
}

/// Checks that `log` holds exactly `expected`: bounds, every batch read at
/// each of its offsets, a scan that serves only sound, contiguous batches up
/// to the high watermark, and time lookups at every record's timestamp.
fn check_contents(log: &Log, expected: &[Stored], context: &str) {
    let start = expected.first().map(|batch| batch.base_offset).unwrap_or(0);
    let end = expected.last().map(Stored::next_offset).unwrap_or(0);
    assert_eq!(log.high_watermark(), end, "{context}: high watermark");
    assert_eq!(log.start_offset(), start, "{context}: start offset");
    for batch in expected {
        for offset in batch.base_offset..batch.next_offset() {
            let read = log.read(offset, 1, true).expect("read");
            assert!(
                read.bytes == batch.bytes,
                "{context}: read at {offset} does not serve the stored batch"
            );
        }
    }
    let mut offset = start;
    let mut reads = 0;
    while offset < end {
        reads += 1;
        assert!(reads <= expected.len(), "{context}: the scan does not advance");
        let read = log.read(offset, 700, true).expect("read");
        assert!(!read.bytes.is_empty(), "{context}: nothing served at {offset}");
        let mut position = 0;
        while position < read.bytes.len() {
            let header = check_batch(&read.bytes[position..]).unwrap_or_else(|error| panic!("{context}: served a bad batch: {error}"));
            assert_eq!(header.base_offset as u64, offset, "{context}: batches are contiguous");
            offset = header.last_offset() as u64 + 1;
            position += header.total_bytes();
        }
    }
    assert!(log.read(end, 1, true).expect("read at the end").bytes.is_empty());
    assert!(matches!(log.read(end + 1, 1, true), Err(LogError::OffsetOutOfRange { .. })));
    let times = record_times(expected);
    for &(_, timestamp) in &times {
        for wanted in [timestamp - 1, timestamp, timestamp + 1] {
            let first = times.iter().copied().find(|&(_, found)| found >= wanted);
            assert_eq!(
                log.offset_for_timestamp(wanted).expect("time lookup"),
                first,
                "{context}: time lookup of {wanted}"
            );
        }
    }
}

/// Opens the damaged log and checks that it holds exactly `expected`, that
/// the active segment was cut back to it, that appends continue at its end,
/// and that all of it survives a close and reopen.
fn expect_recovered(dir: &Path, config: &LogConfig, expected: &[Stored], context: &str) {
    let log = Log::open(dir, config.clone()).unwrap_or_else(|error| panic!("{context}: open after damage: {error}"));
    check_contents(&log, expected, context);
    let active_bytes: usize = active_batches(expected, dir).iter().map(|(_, batch)| batch.bytes.len()).sum();
    assert_eq!(
        fs::metadata(active_segment(dir)).expect("stat").len(),
        active_bytes as u64,
        "{context}: the active segment is cut back to its last sound batch"
    );
    let mut all = expected.to_vec();
    let end = log.high_watermark();
    // Newer than anything written before the damage, so time lookups must
    // find these even where the lost batches had indexed timestamps.
    for index in 1_000..1_004 {
        let stored = append(&log, batch(index));
        assert_eq!(stored.base_offset, all.last().map(Stored::next_offset).unwrap_or(end), "{context}");
        all.push(stored);
    }
    assert_eq!(
        all.iter().filter(|batch| batch.base_offset == end).count(),
        1,
        "{context}: appends continue at {end}"
    );
    check_contents(&log, &all, &format!("{context}, after new appends"));
    log.close().expect("close");
    let log = Log::open(dir, config.clone()).expect("reopen");
    check_contents(&log, &all, &format!("{context}, after reopen"));
    log.close().expect("close");
}

/// Runs `damage` on a fresh copy of the template log and checks recovery.
fn damaged_copy(template: &Path, damage: impl FnOnce(&Path)) -> tempfile::TempDir {
    let case = tempfile::tempdir().expect("tempdir");
    copy_dir(template, case.path());
    damage(case.path());
    case
}

/// Checks independent damage cases on a few threads: each case spends most
/// of its time waiting for fsyncs (close writes indexes atomically), which
/// overlap well.
fn in_parallel<T: Sync>(cases: &[T], check: impl Fn(&T) + Sync) {
    const WORKERS: usize = 4;
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    check(case);
                }
            });
        }
    });
}

/// Byte positions inside a batch of `length` bytes that stand for every kind
/// of damage point: each byte of the header (base offset, length, epoch,
/// magic, CRC and the CRC-covered fields) and a spread of record bytes.
fn points_in_batch(length: usize) -> Vec<usize> {
    let mut points: Vec<usize> = (0..=batch::HEADER_BYTES).collect();
    points.extend((batch::HEADER_BYTES + 1..length).step_by(9));
    points.push(length - 1);
    points.dedup();
    points
}

/// How the tail tests leave a log before damaging it: after a crash or a
/// clean close, with dense or sparse indexes. With sparse ones a clean open
/// trusts an index whose last offset entry lies well before the damage while
/// its time index describes the batches the damage destroyed.
fn tail_setups() -> Vec<(Shutdown, LogConfig)> {
    let mut setups = Vec::new();
    for shutdown in SHUTDOWNS {
        for index_interval_bytes in [300, 1 << 20] {
            setups.push((
                shutdown,
                LogConfig {
                    index_interval_bytes,
                    ..config()
                },
            ));
        }
    }
    setups
}

#[test]
fn truncated_tail_of_the_active_segment_is_cut_back_to_the_last_whole_batch() {
    for (shutdown, config) in tail_setups() {
        let interval = config.index_interval_bytes;
        let template = tempfile::tempdir().expect("tempdir");
        let stored = write_log(template.path(), &config, 10, shutdown);
        let batches = active_batches(&stored, template.path());
        // Cuts in the last batch and in the one before it (losing both), and
        // exactly at the boundary between them.
        let mut cuts = Vec::new();
        for (position, batch) in &batches[batches.len() - 2..] {
            cuts.extend(points_in_batch(batch.bytes.len()).into_iter().map(|point| position + point));
        }
        in_parallel(&cuts, |&cut| {
            let case = damaged_copy(template.path(), |dir| {
                let file = OpenOptions::new().write(true).open(active_segment(dir)).expect("open");
                file.set_len(cut as u64).expect("truncate");
            });
            let lost = batches
                .iter()
                .find(|(position, batch)| position + batch.bytes.len() > cut)
                .map(|(_, batch)| batch.base_offset)
                .expect("the cut is inside a batch");
            let expected: Vec<Stored> = stored.iter().filter(|batch| batch.base_offset < lost).cloned().collect();
            expect_recovered(
                case.path(),
                &config,
                &expected,
                &format!("{shutdown:?}, index every {interval} bytes, cut at byte {cut}"),
            );
        });
    }
}

#[test]
fn flipped_bytes_in_the_last_batch_drop_it() {
    for (shutdown, config) in tail_setups() {
        let interval = config.index_interval_bytes;
        let template = tempfile::tempdir().expect("tempdir");
        let stored = write_log(template.path(), &config, 8, shutdown);
        let (last_position, last) = active_batches(&stored, template.path()).pop().expect("a batch");
        let cases: Vec<(usize, u8)> = points_in_batch(last.bytes.len())
            .into_iter()
            .filter(|&at| at < last.bytes.len())
            .flat_map(|at| [(at, 0x01u8), (at, 0xff)])
            .collect();
        in_parallel(&cases, |&(at, mask)| {
            let case = damaged_copy(template.path(), |dir| {
                overwrite(&active_segment(dir), last_position + at, &[last.bytes[at] ^ mask]);
            });
            let context = format!("{shutdown:?}, index every {interval} bytes, byte {at} of the last batch xor {mask:#x}");
            if (12..16).contains(&at) {
                // The partition leader epoch is outside the CRC (as in Kafka),
                // so damage there cannot be told from another epoch; the batch
                // stays and is still sound.
                let log = Log::open(case.path(), config.clone()).expect("open");
                assert_eq!(log.high_watermark(), last.next_offset(), "{context}");
                let read = log.read(last.base_offset, 1, true).expect("read");
                check_batch(&read.bytes).expect("a sound batch");
                log.close().expect("close");
                return;
            }
            expect_recovered(case.path(), &config, &stored[..stored.len() - 1], &context);
        });
    }
}

#[test]
fn garbage_after_the_last_batch_is_cut_off() {
    let mut random = 0x5eed_u64;
    let mut noise = |length: usize| -> Vec<u8> {
        (0..length)
            .map(|_| {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                random as u8
            })
            .collect()
    };
    for (shutdown, config) in tail_setups() {
        let interval = config.index_interval_bytes;
        let template = tempfile::tempdir().expect("tempdir");
        let stored = write_log(template.path(), &config, 6, shutdown);
        let last = stored.last().expect("a batch");
        // A stale copy of the last batch (a block written twice), and a header
        // that claims a huge batch.
        let mut huge = last.bytes[..batch::HEADER_BYTES].to_vec();
        huge[0..8].copy_from_slice(&(last.next_offset() as i64).to_be_bytes());
        huge[8..12].copy_from_slice(&(1i32 << 30).to_be_bytes());
        let mut garbages = vec![last.bytes.to_vec(), huge];
        for length in [1, 7, 11, 12, 60, 61, 62, 500, 70_000] {
            garbages.push(noise(length));
        }
        for garbage in garbages {
            let case = damaged_copy(template.path(), |dir| append_to_file(&active_segment(dir), &garbage));
            expect_recovered(
                case.path(),
                &config,
                &stored,
                &format!("{shutdown:?}, index every {interval} bytes, {} bytes of garbage", garbage.len()),
            );
        }
    }
}

#[test]
fn zero_filled_tail_is_cut_off() {
    for (shutdown, config) in tail_setups() {
        let interval = config.index_interval_bytes;
        let template = tempfile::tempdir().expect("tempdir");
        let stored = write_log(template.path(), &config, 6, shutdown);
        let (last_position, last) = active_batches(&stored, template.path()).pop().expect("a batch");
        // A file whose size grew before its data blocks were written reads
        // back zeros: after the last batch, or over it.
        for length in [1, 8, 12, 61, 4096, 65_536] {
            let case = damaged_copy(template.path(), |dir| append_to_file(&active_segment(dir), &vec![0u8; length]));
            expect_recovered(
                case.path(),
                &config,
                &stored,
                &format!("{shutdown:?}, index every {interval} bytes, {length} zero bytes after the last batch"),
            );
        }
        for extra in [0, 4096] {
            let case = damaged_copy(template.path(), |dir| {
                let segment = active_segment(dir);
                overwrite(&segment, last_position, &vec![0u8; last.bytes.len()]);
                append_to_file(&segment, &vec![0u8; extra]);
            });
            expect_recovered(
                case.path(),
                &config,
                &stored[..stored.len() - 1],
                &format!("{shutdown:?}, index every {interval} bytes, last batch zeroed and {extra} zero bytes after it"),
            );
        }
    }
}

/// Writes a log of several sealed segments, damages the index files of one
/// sealed segment in the middle, and checks the log reads as before.
fn check_sealed_index_damage(describe: &str, damage: impl Fn(&Path, &Path)) {
    for shutdown in SHUTDOWNS {
        let template = tempfile::tempdir().expect("tempdir");
        let stored = write_log(template.path(), &small_segments(), 40, shutdown);
        let segments = files_with_extension(template.path(), "log");
        assert!(segments.len() >= 4, "the log rolled into several segments: {}", segments.len());
        let victim = &segments[1];
        let (offset_index, time_index) = (victim.with_extension("index"), victim.with_extension("timeindex"));
        let original = (
            fs::read(&offset_index).expect("sealed offset index"),
            fs::read(&time_index).expect("sealed time index"),
        );
        assert!(
            original.0.len() >= 16 && original.1.len() >= 24,
            "the victim's indexes have entries to damage"
        );
        let case = damaged_copy(template.path(), |dir| {
            let name = |path: &Path| dir.join(path.file_name().expect("file name"));
            damage(&name(&offset_index), &name(&time_index));
        });
        expect_recovered(case.path(), &small_segments(), &stored, &format!("{shutdown:?}, {describe}"));
        let rebuilt = (
            fs::read(case.path().join(offset_index.file_name().expect("name"))).expect("rebuilt offset index"),
            fs::read(case.path().join(time_index.file_name().expect("name"))).expect("rebuilt time index"),
        );
        assert!(
            rebuilt == original,
            "{shutdown:?}, {describe}: the index files are rebuilt as they were"
        );
    }
}

#[test]
fn missing_index_of_a_sealed_segment_is_rebuilt() {
    check_sealed_index_damage("offset index removed", |offsets, _| fs::remove_file(offsets).expect("remove"));
    check_sealed_index_damage("time index removed", |_, times| fs::remove_file(times).expect("remove"));
    check_sealed_index_damage("both indexes removed", |offsets, times| {
        fs::remove_file(offsets).expect("remove");
        fs::remove_file(times).expect("remove");
    });
}

#[test]
fn torn_or_damaged_index_of_a_sealed_segment_is_rebuilt() {
    let cut = |path: &Path, keep: usize| {
        let bytes = fs::read(path).expect("read index");
        fs::write(path, &bytes[..keep.min(bytes.len())]).expect("write index");
    };
    check_sealed_index_damage("offset index torn mid-entry", |offsets, _| cut(offsets, 13));
    check_sealed_index_damage("time index torn mid-entry", |_, times| cut(times, 5));
    check_sealed_index_damage("time index emptied", |_, times| cut(times, 0));
    check_sealed_index_damage("offset index zero-filled", |offsets, _| {
        let length = fs::metadata(offsets).expect("stat").len() as usize;
        fs::write(offsets, vec![0u8; length]).expect("write");
    });
    check_sealed_index_damage("offset index filled with 0xff", |offsets, _| {
        let length = fs::metadata(offsets).expect("stat").len() as usize;
        fs::write(offsets, vec![0xffu8; length]).expect("write");
    });
    check_sealed_index_damage("time index entries out of order", |_, times| {
        let mut bytes = fs::read(times).expect("read");
        let last = bytes.len() - 12;
        bytes[last..last + 8].copy_from_slice(&0i64.to_be_bytes());
        fs::write(times, bytes).expect("write");
    });
}

#[test]
fn offset_index_entry_pointing_inside_a_batch_is_not_followed() {
    // Damage the structural checks cannot see: entries still increase and
    // point inside the file, but one no longer points at a batch start.
    for shutdown in SHUTDOWNS {
        for shift in [1u32, 12, 61] {
            let template = tempfile::tempdir().expect("tempdir");
            let stored = write_log(template.path(), &small_segments(), 40, shutdown);
            let victim = files_with_extension(template.path(), "index")[1].clone();
            let case = damaged_copy(template.path(), |dir| {
                let path = dir.join(victim.file_name().expect("name"));
                let mut bytes = fs::read(&path).expect("read index");
                let last = bytes.len() - 4;
                let position = u32::from_be_bytes(bytes[last..].try_into().expect("4 bytes")) + shift;
                bytes[last..].copy_from_slice(&position.to_be_bytes());
                fs::write(&path, bytes).expect("write index");
            });
            expect_recovered(
                case.path(),
                &small_segments(),
                &stored,
                &format!("{shutdown:?}, last entry moved by {shift} bytes"),
            );
        }
    }
}

/// The quarantine files recovery left next to the segments.
fn quarantine_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "quarantine")
}

#[test]
fn a_corrupt_batch_in_the_middle_of_the_active_segment_moves_the_rest_to_a_quarantine_file() {
    let config = config();
    // After a clean shutdown the open trusts the segment up to its last index
    // entry and scans only past it; a crash makes it scan everything.
    {
        let shutdown = Shutdown::Crash;
        let template = tempfile::tempdir().expect("tempdir");
        let stored = write_log(template.path(), &config, 8, shutdown);
        let batches = active_batches(&stored, template.path());
        let segment = fs::read(active_segment(template.path())).expect("read the segment");
        // Byte 40 is in the max timestamp (covered by the CRC), so only the
        // CRC fails; byte 9 is in the batch length, so the next batch must be
        // found by searching byte by byte.
        for at in [40, 9] {
            let (position, victim) = &batches[3];
            let case = damaged_copy(template.path(), |dir| {
                overwrite(&active_segment(dir), position + at, &[victim.bytes[at] ^ 0x5a]);
            });
            let context = format!("{shutdown:?}, byte {at} of the fourth batch damaged");
            expect_recovered(case.path(), &config, &stored[..3], &context);
            let quarantined = quarantine_files(case.path());
            assert_eq!(
                quarantined,
                vec![case.path().join(format!("00000000000000000000.{position}.quarantine"))],
                "{context}"
            );
            let mut expected = segment[*position..].to_vec();
            expected[at] ^= 0x5a;
            assert_eq!(
                fs::read(&quarantined[0]).expect("read the quarantine file"),
                expected,
                "{context}: every byte from the corrupt batch on is kept"
            );
        }
    }
}

#[test]
fn a_torn_tail_is_cut_without_a_quarantine_file() {
    let config = config();
    let template = tempfile::tempdir().expect("tempdir");
    let stored = write_log(template.path(), &config, 5, Shutdown::Crash);
    let (position, last) = active_batches(&stored, template.path()).pop().expect("a batch");
    let case = damaged_copy(template.path(), |dir| {
        let file = OpenOptions::new().write(true).open(active_segment(dir)).expect("open");
        file.set_len((position + last.bytes.len() / 2) as u64).expect("cut");
    });
    expect_recovered(case.path(), &config, &stored[..4], "torn last batch");
    assert!(quarantine_files(case.path()).is_empty(), "a torn tail is not worth keeping");
}

#[test]
fn a_damaged_sealed_segment_keeps_its_sound_prefix_and_moves_the_rest_aside() {
    let config = small_segments();
    let dir = tempfile::tempdir().expect("tempdir");
    let stored = write_log(dir.path(), &config, 30, Shutdown::Clean);
    let segments = files_with_extension(dir.path(), "log");
    assert!(segments.len() >= 3, "the test needs sealed segments");
    let first = &segments[0];
    let second_base: u64 = segments[1]
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .expect("segment named by its base offset");
    let in_first: Vec<&Stored> = stored.iter().filter(|batch| batch.base_offset < second_base).collect();
    assert!(in_first.len() >= 3, "the first segment needs a middle batch");
    let position: usize = in_first[..1].iter().map(|batch| batch.bytes.len()).sum();
    let original = fs::read(first).expect("read the segment");
    overwrite(first, position + 40, &[original[position + 40] ^ 0x5a]);
    // Without its index the segment is scanned on open, which finds the damage.
    fs::remove_file(first.with_extension("index")).expect("remove the index");
    let log = Log::open(dir.path(), config.clone()).expect("open");
    let read = log.read(0, 1, true).expect("read the sound prefix");
    assert_eq!(read.bytes, in_first[0].bytes);
    let read = log.read(in_first[1].base_offset, 1, true).expect("read in the damage");
    assert_eq!(
        check_batch(&read.bytes).expect("a sound batch").base_offset as u64,
        second_base,
        "a read past the damage gets the next segment"
    );
    assert_eq!(log.high_watermark(), stored.last().expect("a batch").next_offset());
    log.close().expect("close");
    assert_eq!(
        fs::metadata(first).expect("stat").len(),
        position as u64,
        "the segment keeps only its sound prefix"
    );
    let mut expected = original[position..].to_vec();
    expected[40] ^= 0x5a;
    assert_eq!(
        fs::read(dir.path().join(format!("00000000000000000000.{position}.quarantine"))).expect("the quarantine file"),
        expected
    );
}
