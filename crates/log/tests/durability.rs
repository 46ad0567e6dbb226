//! Scenario tests of what the log promises when the disk fails, fills up or
//! loses power: run on the simulated disk (`conveyor_log::sim`), which keeps
//! unsynced writes apart from durable ones and fails operations on request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use conveyor_log::clock::{Clock, ManualClock};
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::sim::{PowerLoss, SimDisk, SimError, SimOp};
use conveyor_log::{Durability, Log, LogConfig, LogError, LogHealth, RESERVE_FIRST_BYTES};

const START_MS: i64 = 1_700_000_000_000;

fn batch(values: &[&str]) -> Bytes {
    let mut builder = BatchBuilder::new(START_MS);
    for value in values {
        builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
    }
    builder.build()
}

fn config(durability: Durability) -> LogConfig {
    LogConfig {
        durability,
        retention_check_interval_ms: 3_600_000,
        ..LogConfig::default()
    }
}

fn clock() -> Arc<dyn Clock> {
    ManualClock::new(START_MS)
}

fn open(disk: &SimDisk, dir: &Path, config: LogConfig) -> Log {
    Log::open_on(disk.storage(), dir, config, clock()).expect("open the log")
}

/// Every record from the log's start to its high watermark, as (offset, value).
fn contents(log: &Log) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    // Each read returns at least one batch until the end.
    for _ in 0..1_000 {
        if offset >= log.high_watermark() {
            break;
        }
        let read = log.read(offset, 1 << 20, true).expect("read");
        if read.bytes.is_empty() {
            // Offsets a failed fsync cut after readers saw them: a gap up to
            // the high watermark.
            break;
        }
        let mut position = 0;
        while position < read.bytes.len() {
            let header = conveyor_log::batch::check_batch(&read.bytes[position..]).expect("only sound batches are served");
            let end = position + header.total_bytes();
            for record in decode_records(&read.bytes[position..end]).expect("records") {
                let record_offset = record.offset.expect("offset") as u64;
                out.push((record_offset, String::from_utf8(record.value.expect("value")).expect("utf8")));
                offset = record_offset + 1;
            }
            position = end;
        }
    }
    out
}

fn pairs(expected: &[(u64, &str)]) -> Vec<(u64, String)> {
    expected.iter().map(|(offset, value)| (*offset, value.to_string())).collect()
}

fn dir() -> PathBuf {
    PathBuf::from("/data/topics/orders/0")
}

#[test]
fn an_append_whose_fsync_failed_never_comes_back_after_a_restart() {
    let disk = SimDisk::new(1);
    let log = open(&disk, &dir(), config(Durability::Always));
    log.append(batch(&["kept"])).wait().expect("first append");
    disk.fail_next(SimOp::Sync, SimError::Io);
    let failed = log.append(batch(&["refused"])).wait();
    assert!(matches!(failed, Err(LogError::Poisoned { .. })), "{failed:?}");
    assert_eq!(
        log.health(),
        LogHealth::Poisoned {
            reason: "fdatasync failed: Input/output error (os error 5)".into(),
            failed_tail_removed: true,
        }
    );
    let later = log.append(batch(&["after"])).wait();
    assert!(
        matches!(later, Err(LogError::Poisoned { .. })),
        "a poisoned log acknowledges nothing"
    );
    // A restart without a power loss: the page cache still held the bytes.
    drop(log);
    let log = open(&disk, &dir(), config(Durability::Always));
    assert_eq!(contents(&log), pairs(&[(0, "kept")]));
    drop(log);
    // And a power loss that keeps whatever the device happened to write back.
    disk.power_loss(PowerLoss::KeepSome);
    let log = open(&disk, &dir(), config(Durability::Always));
    assert_eq!(contents(&log), pairs(&[(0, "kept")]));
}

#[test]
fn a_poisoned_log_is_reopened_in_place_and_never_reuses_an_offset_readers_could_see() {
    let disk = SimDisk::new(2);
    let log = open(&disk, &dir(), config(Durability::Always));
    log.append(batch(&["a"])).wait().expect("append");
    disk.fail_next(SimOp::Sync, SimError::Io);
    assert!(log.append(batch(&["b", "c"])).wait().is_err());
    // Between its write and its failed fsync the group was readable by
    // read_written (an AMQP consumer may have taken it).
    assert_eq!(log.written(), 3);
    assert!(!log.health().is_healthy());
    log.reopen().expect("reopen");
    assert_eq!(log.health(), LogHealth::Healthy);
    let next = log.append(batch(&["d"])).wait().expect("append after reopen");
    assert_eq!(next.base_offset, 3, "offsets 1 and 2 were seen by readers and are not given again");
    assert_eq!(contents(&log), pairs(&[(0, "a"), (3, "d")]));
    // A read inside the gap gets the next batch after it.
    let read = log.read(1, 1 << 20, true).expect("read in the gap");
    assert_eq!(
        decode_records(&read.bytes).expect("records")[0].offset,
        Some(3),
        "a read in the gap serves the batch after it"
    );
    drop(log);
    disk.power_loss(PowerLoss::LoseUnsynced);
    let log = open(&disk, &dir(), config(Durability::Always));
    assert_eq!(contents(&log), pairs(&[(0, "a"), (3, "d")]));
    assert_eq!(log.append(batch(&["e"])).wait().expect("append").base_offset, 4);
}

#[test]
fn a_failed_write_poisons_the_log_and_its_torn_prefix_is_cut() {
    let disk = SimDisk::new(3);
    let log = open(&disk, &dir(), config(Durability::Always));
    log.append(batch(&["a"])).wait().expect("append");
    let size_before = disk.read(&dir().join("00000000000000000000.log")).expect("segment").len();
    disk.fail_next(SimOp::Write, SimError::Io);
    assert!(matches!(log.append(batch(&["torn"])).wait(), Err(LogError::Poisoned { .. })));
    let size_after = disk.read(&dir().join("00000000000000000000.log")).expect("segment").len();
    assert_eq!(size_after, size_before, "whatever of the failed write landed was cut");
    log.reopen().expect("reopen");
    // Nothing of the failed group was ever readable, so its offset is reused.
    assert_eq!(log.append(batch(&["b"])).wait().expect("append").base_offset, 1);
    assert_eq!(contents(&log), pairs(&[(0, "a"), (1, "b")]));
}

#[test]
fn when_even_the_cut_fails_the_log_says_so_and_reopen_cuts_first() {
    let disk = SimDisk::new(4);
    let log = open(&disk, &dir(), config(Durability::Always));
    log.append(batch(&["a"])).wait().expect("append");
    disk.fail_next(SimOp::Sync, SimError::Io);
    disk.fail_next(SimOp::SetLen, SimError::Io);
    assert!(log.append(batch(&["b"])).wait().is_err());
    assert!(matches!(
        log.health(),
        LogHealth::Poisoned {
            failed_tail_removed: false,
            ..
        }
    ));
    disk.fail_next(SimOp::SetLen, SimError::Io);
    assert!(
        log.reopen().is_err(),
        "reopen refuses to recover while it cannot cut the failed bytes"
    );
    assert!(!log.health().is_healthy());
    log.reopen().expect("reopen once the cut works");
    assert_eq!(contents(&log), pairs(&[(0, "a")]));
    drop(log);
    disk.power_loss(PowerLoss::KeepSome);
    let log = open(&disk, &dir(), config(Durability::Always));
    assert_eq!(contents(&log), pairs(&[(0, "a")]));
}

#[test]
fn a_full_file_system_refuses_appends_but_the_log_stays_healthy_and_appends_once_space_is_free() {
    for durability in [Durability::Always, Durability::Never] {
        let disk = SimDisk::new(5);
        let log = open(&disk, &dir(), config(durability));
        log.append(batch(&["a"])).wait().expect("append");
        disk.set_capacity(Some(disk.used_bytes() + 20));
        let big = "x".repeat(500);
        for _ in 0..3 {
            let refused = log.append(batch(&[&big])).wait();
            assert!(matches!(refused, Err(LogError::StorageFull { .. })), "{durability}: {refused:?}");
            assert_eq!(log.health(), LogHealth::Healthy, "{durability}: a full disk is not a failed disk");
        }
        assert_eq!(
            contents(&log),
            pairs(&[(0, "a")]),
            "{durability}: reads go on while the disk is full"
        );
        disk.set_capacity(None);
        let stored = log.append(batch(&["b"])).wait().expect("append once space is free");
        assert_eq!(stored.base_offset, 1, "{durability}: refused appends took no offsets");
        log.sync().expect("sync");
        drop(log);
        disk.power_loss(PowerLoss::KeepSome);
        let log = open(&disk, &dir(), config(durability));
        assert_eq!(contents(&log), pairs(&[(0, "a"), (1, "b")]), "{durability}");
    }
}

#[test]
fn a_full_file_system_while_rolling_a_segment_leaves_the_log_healthy() {
    let disk = SimDisk::new(6);
    let small = LogConfig {
        segment_bytes: 200,
        ..config(Durability::Always)
    };
    let log = open(&disk, &dir(), small.clone());
    let value = "y".repeat(100);
    log.append(batch(&[&value])).wait().expect("fills the first segment");
    disk.fail_next(SimOp::Create, SimError::NoSpace);
    assert!(matches!(log.append(batch(&[&value])).wait(), Err(LogError::StorageFull { .. })));
    assert_eq!(log.health(), LogHealth::Healthy);
    assert_eq!(log.append(batch(&[&value])).wait().expect("rolls now").base_offset, 1);
    assert_eq!(log.segment_base_offsets(), vec![0, 1]);
    drop(log);
    disk.power_loss(PowerLoss::LoseUnsynced);
    let log = open(&disk, &dir(), small);
    assert_eq!(contents(&log).len(), 2);
}

#[test]
fn close_on_a_full_file_system_succeeds_and_the_next_open_scans_instead() {
    let disk = SimDisk::new(7);
    let log = open(&disk, &dir(), config(Durability::Always));
    log.append(batch(&["a", "b"])).wait().expect("append");
    disk.set_capacity(Some(disk.used_bytes()));
    log.close().expect("close needs no free space");
    assert!(
        !disk.list(&dir()).expect("list").contains(&".clean-shutdown".to_string()),
        "no marker without the index files it vouches for"
    );
    disk.set_capacity(None);
    let log = open(&disk, &dir(), config(Durability::Always));
    assert_eq!(contents(&log), pairs(&[(0, "a"), (1, "b")]));
}

#[test]
fn a_new_log_directory_and_its_parents_survive_a_power_loss() {
    let disk = SimDisk::new(8);
    let log = open(&disk, &dir(), config(Durability::Always));
    log.append(batch(&["durable"])).wait().expect("append");
    disk.power_loss(PowerLoss::LoseUnsynced);
    drop(log);
    assert_eq!(
        disk.list(Path::new("/data/topics")).expect("the topics directory survived"),
        vec!["orders".to_string()]
    );
    let log = open(&disk, &dir(), config(Durability::Always));
    assert_eq!(contents(&log), pairs(&[(0, "durable")]));
}

#[test]
fn unsynced_appends_under_never_may_be_lost_but_never_come_back_torn() {
    let disk = SimDisk::new(9);
    let log = open(&disk, &dir(), config(Durability::Never));
    log.append(batch(&["a"])).wait().expect("append");
    log.sync().expect("sync");
    for index in 0..20 {
        log.append(batch(&[&format!("unsynced {index}")])).wait().expect("append");
    }
    disk.power_loss(PowerLoss::KeepSome);
    drop(log);
    let log = open(&disk, &dir(), config(Durability::Never));
    let found = contents(&log);
    assert_eq!(found[0], (0, "a".to_string()));
    for (position, (offset, value)) in found.iter().enumerate().skip(1) {
        assert_eq!(*offset, position as u64);
        assert_eq!(
            value,
            &format!("unsynced {}", position - 1),
            "a prefix of what was written, in order"
        );
    }
}

#[test]
fn reserved_room_lets_small_appends_succeed_on_a_full_file_system() {
    let disk = SimDisk::new(10);
    let reserved = LogConfig {
        reserve_bytes: 4_096,
        ..config(Durability::Always)
    };
    let log = open(&disk, &dir(), reserved);
    log.append(batch(&["before"])).wait().expect("append");
    // Nothing left but what the log reserved.
    disk.set_capacity(Some(disk.used_bytes()));
    let mut stored = 0;
    for index in 0..100 {
        match log.append(batch(&[&format!("settle {index}")])).wait() {
            Ok(_) => stored += 1,
            Err(LogError::StorageFull { .. }) => break,
            Err(other) => panic!("{other}"),
        }
    }
    // Each batch is about 80 bytes: the reserve holds dozens of them, but
    // not all hundred.
    assert!((20..100).contains(&stored), "{stored} appends fitted in the reserve");
    assert_eq!(log.health(), LogHealth::Healthy);
    drop(log);
    disk.power_loss(PowerLoss::LoseUnsynced);
    disk.set_capacity(None);
    let log = open(&disk, &dir(), config(Durability::Always));
    assert_eq!(contents(&log).len(), 1 + stored);
}

#[test]
fn an_idle_log_reserves_little_room_and_the_reserve_grows_with_its_appends() {
    let disk = SimDisk::new(11);
    let reserve_bytes = 1024 * 1024;
    let reserved = LogConfig {
        reserve_bytes,
        ..config(Durability::Always)
    };
    let log = open(&disk, &dir(), reserved.clone());
    let idle_bytes = disk.used_bytes();
    // Ten thousand never-written cursor journals must not hold 10 GiB.
    assert!(
        idle_bytes >= RESERVE_FIRST_BYTES && idle_bytes < reserve_bytes / 4,
        "an idle log holds {idle_bytes} bytes"
    );
    let value = "v".repeat(4_000);
    for _ in 0..200 {
        log.append(batch(&[&value])).wait().expect("append");
    }
    let written_bytes = log.size_bytes();
    assert!(written_bytes > reserve_bytes / 2, "{written_bytes} bytes written");
    // A busy log keeps the whole reserve past its end.
    let busy_bytes = disk.used_bytes();
    assert!(
        busy_bytes >= written_bytes + reserve_bytes / 2,
        "{busy_bytes} bytes held for {written_bytes} written"
    );
    drop(log);
    // After a restart the reserve follows what the segment holds.
    let log = open(&disk, &dir(), reserved);
    assert_eq!(contents(&log).len(), 200);
}

#[test]
fn appends_after_a_tail_lost_below_a_persisted_start_offset_take_offsets_after_it() {
    let disk = SimDisk::new(11);
    let log = open(&disk, &dir(), config(Durability::Never));
    log.append(batch(&["a", "b"])).wait().expect("append");
    log.sync().expect("sync");
    for index in 0..4 {
        log.append(batch(&[&format!("unsynced {index}")])).wait().expect("append");
    }
    // DeleteRecords up to offset 4: the start is persisted at once, the
    // records before it were never synced.
    assert_eq!(log.truncate_prefix(4).expect("truncate"), 4);
    disk.power_loss(PowerLoss::LoseUnsynced);
    drop(log);
    let log = open(&disk, &dir(), config(Durability::Never));
    assert_eq!(log.start_offset(), 4);
    let next = log.append(batch(&["after"])).wait().expect("append");
    assert_eq!(next.base_offset, 4, "no offset below the persisted start is given again");
    log.sync().expect("sync");
    drop(log);
    let log = open(&disk, &dir(), config(Durability::Never));
    assert_eq!(
        contents(&log),
        pairs(&[(4, "after")]),
        "the persisted start hides nothing acknowledged"
    );
}
