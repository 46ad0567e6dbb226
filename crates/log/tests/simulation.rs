//! Seeded simulation of the log on the simulated disk: random appends, reads,
//! rolls, retention by size, `truncate_prefix`, syncs, restarts, in-place
//! reopens, full disks and power losses, with
//! EIO, ENOSPC and torn writes injected at random steps, checked against a
//! model of what was acknowledged and what failed. After every recovery:
//!
//! - every acknowledged record that the durability policy made durable is
//!   there, byte for byte, at its offset;
//! - no record whose append failed is ever served (unless the log said it
//!   could not cut it: `failed_tail_removed: false`);
//! - everything served is a whole, sound batch that some append wrote.
//!
//! Each seed runs alone and is fully determined by its number: the disk's
//! faults and the test's choices come from generators seeded by it, and the
//! test waits for each operation, so the writer thread never races it.
//!
//! ```text
//! cargo test -p conveyor-log --test simulation                 # 1,000 seeds, or 20 s
//! CONVEYOR_SIM_SEED=1234 cargo test -p conveyor-log --test simulation   # one seed
//! CONVEYOR_SIM_SEEDS=100000 CONVEYOR_SIM_SECONDS=600 cargo test -p conveyor-log --test simulation  # a soak
//! ```

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conveyor_log::batch::check_batch;
use conveyor_log::clock::{Clock, ManualClock};
use conveyor_log::record::{BatchBuilder, Record, decode_records};
use conveyor_log::sim::{Faults, PowerLoss, SimDisk, SimRng};
use conveyor_log::{Durability, Log, LogConfig, LogError, LogHealth};

/// Runs exactly this seed.
const SEED_ENV: &str = "CONVEYOR_SIM_SEED";
/// How many seeds a run tries at most (default `SEEDS_DEFAULT`).
const SEEDS_ENV: &str = "CONVEYOR_SIM_SEEDS";
const SEEDS_DEFAULT: u64 = 1_000;
/// A run stops starting new seeds after this many seconds (default
/// `RUN_SECONDS_DEFAULT`), so the test stays within CI's budget on a busy machine.
const SECONDS_ENV: &str = "CONVEYOR_SIM_SECONDS";
const RUN_SECONDS_DEFAULT: u64 = 20;
const STEPS_PER_SEED: usize = 160;
/// Opens that fail on injected faults are retried this often, then once more
/// with faults off.
const OPEN_ATTEMPTS_MAX: usize = 8;
const START_MS: i64 = 1_700_000_000_000;

fn dir() -> PathBuf {
    PathBuf::from("/data/topics/t/0")
}

/// What the model knows of one batch an append carried.
#[derive(Debug, Clone)]
struct Expected {
    /// The batch as appended (base offset 0).
    bytes: Bytes,
    last_offset_delta: u64,
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Acknowledged at this base offset. `durable`: the policy promised it
    /// survives a power loss (always: at once; never: after a sync).
    Acked { base_offset: u64, durable: bool },
    /// Its append failed and the log cut its bytes (or never wrote them): it
    /// must never be served.
    Failed,
    /// Its append failed and the log said it could not cut the bytes: it
    /// may come back.
    InDoubt,
    /// Acknowledged, then below the start offset after retention or
    /// `truncate_prefix`: not promised any more, but if a power loss brings
    /// its segment back it must still be itself, at its offset.
    Deleted,
}

#[derive(Debug)]
struct Model {
    durability: Durability,
    batches: HashMap<u64, Expected>,
    fates: HashMap<u64, Fate>,
    /// Acks at or after this offset survive a restart but are not promised
    /// to survive a power loss, because bytes before them are readable but
    /// perhaps never durable: a restart found in-doubt bytes, or a failed
    /// fsync dropped writes that reads still see (Linux's writeback-error
    /// behaviour, which no later fsync repairs). A power loss clears it.
    tainted_from: Option<u64>,
    /// The disk's count of such fsyncs when the model last looked.
    forgotten_syncs: u64,
}

impl Model {
    /// A failed fsync dropped writes: nothing not yet durable, and nothing
    /// acknowledged after it, is promised to survive a power loss.
    fn taint_not_durable(&mut self) {
        let mut from = self.acked_end();
        for fate in self.fates.values() {
            if let Fate::Acked {
                base_offset,
                durable: false,
            } = fate
            {
                from = from.min(*base_offset);
            }
        }
        self.tainted_from = Some(self.tainted_from.map_or(from, |earlier| earlier.min(from)));
    }

    /// The offset after the last acknowledged batch.
    fn acked_end(&self) -> u64 {
        self.acked()
            .iter()
            .next_back()
            .map_or(0, |(&base, &id)| base + self.batches[&id].last_offset_delta + 1)
    }

    fn acked(&self) -> BTreeMap<u64, u64> {
        self.fates
            .iter()
            .filter_map(|(&id, fate)| match fate {
                Fate::Acked { base_offset, .. } => Some((*base_offset, id)),
                _ => None,
            })
            .collect()
    }
}

/// One simulated run.
struct Run {
    rng: SimRng,
    disk: SimDisk,
    config: LogConfig,
    clock: Arc<ManualClock>,
    faults: Faults,
    log: Option<Log>,
    model: Model,
    next_id: u64,
    /// What the run did, for the report of a failing seed.
    history: Vec<String>,
    /// A failed fsync dropped writes that reads still see (Linux marks such
    /// pages clean) and nothing has made the disk honest again since: the
    /// log's in-place `reopen` writes its unsynced bytes again, and a power
    /// loss makes what is read what is on disk. A process that restarts in
    /// between reads bytes it cannot tell are not on disk, so this run does
    /// not restart it then (see `step`).
    disk_lied: bool,
}

/// How many of the last steps a failing seed prints.
const HISTORY_PRINTED: usize = 60;

impl Run {
    fn new(seed: u64) -> Run {
        let mut rng = SimRng::new(seed);
        let disk = SimDisk::new(rng.next_u64());
        let durability = if rng.coin() { Durability::Always } else { Durability::Never };
        let config = LogConfig {
            segment_bytes: rng.between(400, 6_000),
            index_interval_bytes: rng.between(1, 2_000) as u32,
            durability,
            // Retention by time is not simulated: the clock does not move.
            retention_ms: None,
            retention_check_interval_ms: 3_600_000,
            reserve_bytes: if rng.coin() { rng.between(100, 3_000) } else { 0 },
            retention_bytes: rng.coin().then(|| rng.between(1_000, 8_000)),
            ..LogConfig::default()
        };
        let rate = |rng: &mut SimRng| rng.between(0, 40_000) as u32;
        let faults = Faults {
            write_per_million: rate(&mut rng),
            sync_per_million: rate(&mut rng),
            metadata_per_million: rate(&mut rng),
            no_space_percent: rng.between(0, 100) as u32,
            forget_failed_syncs: rng.coin(),
        };
        Run {
            rng,
            disk,
            config,
            clock: ManualClock::new(START_MS),
            faults,
            log: None,
            model: Model {
                durability,
                batches: HashMap::new(),
                fates: HashMap::new(),
                tainted_from: None,
                forgotten_syncs: 0,
            },
            next_id: 0,
            history: Vec::new(),
            disk_lied: false,
        }
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("the log is open between steps")
    }

    /// Opens the log, retrying opens that injected faults fail, then checks
    /// it against the model. `power_lost`: the disk holds only durable bytes.
    fn open(&mut self, power_lost: bool) {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let mut opened = None;
        let mut power_lost = power_lost;
        for attempt in 0..=OPEN_ATTEMPTS_MAX {
            if self.disk.forgotten_syncs() > self.model.forgotten_syncs {
                // Recovery's own fsync failed and dropped what it recovered
                // from the page cache: another attempt would build on bytes
                // that are not on disk. The machine restarts instead.
                self.note("an fsync during recovery dropped writes: power loss".into());
                self.model.forgotten_syncs = self.disk.forgotten_syncs();
                self.disk.power_loss(PowerLoss::LoseUnsynced);
                power_lost = true;
            }
            if attempt == OPEN_ATTEMPTS_MAX {
                // Recovery may need room (a quarantine file) and a disk
                // that works; a real operator would free space or swap it.
                self.disk.set_faults(Faults::none());
                self.disk.set_capacity(None);
            }
            match Log::open_on(self.disk.storage(), dir(), self.config.clone(), Arc::clone(&clock)) {
                Ok(log) => {
                    opened = Some(log);
                    break;
                }
                Err(error) => assert!(attempt < OPEN_ATTEMPTS_MAX, "open fails without faults: {error}"),
            }
        }
        self.disk.set_faults(self.faults);
        self.log = opened;
        if power_lost {
            self.disk_lied = false;
        }
        self.verify(power_lost);
        self.notice_forgotten_syncs();
    }

    fn notice_forgotten_syncs(&mut self) {
        let forgotten = self.disk.forgotten_syncs();
        if forgotten > self.model.forgotten_syncs {
            self.model.forgotten_syncs = forgotten;
            self.note("a failed fsync dropped writes".into());
            self.model.taint_not_durable();
            self.disk_lied = true;
        }
    }

    /// Reads the whole log and checks it against the model, then makes the
    /// model what was found.
    fn verify(&mut self, power_lost: bool) {
        let log = self.log();
        let served = read_all(log);
        let mut found: BTreeMap<u64, u64> = BTreeMap::new();
        for (offset, bytes) in &served {
            let id = batch_id(bytes);
            let expected = self
                .model
                .batches
                .get(&id)
                .unwrap_or_else(|| panic!("served a batch no append wrote (id {id}) at {offset}"));
            assert_eq!(&bytes[8..], &expected.bytes[8..], "batch {id} at {offset} is not what was appended");
            match self.model.fates.get(&id) {
                Some(Fate::Acked { base_offset, .. }) => {
                    assert_eq!(base_offset, offset, "batch {id} moved from its acknowledged offset");
                }
                Some(Fate::Failed) => panic!("batch {id}, whose append failed, came back at {offset}"),
                Some(Fate::InDoubt | Fate::Deleted) | None => {}
            }
            found.insert(*offset, id);
        }
        for (&base_offset, &id) in &self.model.acked() {
            let Some(Fate::Acked { durable, .. }) = self.model.fates.get(&id).copied() else {
                continue;
            };
            let tainted = self.model.tainted_from.is_some_and(|from| base_offset >= from);
            let promised = durable && !(power_lost && tainted);
            if promised || !power_lost {
                assert_eq!(
                    found.get(&base_offset),
                    Some(&id),
                    "acknowledged batch {id} at {base_offset} is missing (power lost: {power_lost})"
                );
            }
        }
        // The model becomes what is there.
        let mut fates = HashMap::new();
        for (&id, fate) in &self.model.fates {
            let fate = match fate {
                Fate::Acked { .. } | Fate::InDoubt | Fate::Failed => Fate::Failed,
                // A removal that was not synced yet can be undone by a power loss.
                Fate::Deleted => Fate::Deleted,
            };
            fates.insert(id, fate);
        }
        if power_lost {
            self.model.tainted_from = None;
        }
        for (&offset, &id) in &found {
            let durable = match self.model.fates.get(&id) {
                Some(Fate::Acked { durable, .. }) => *durable || power_lost,
                // Served again (a power loss brought its segment back, or a
                // failed `truncate_prefix` did not take effect yet): still
                // not promised, as a persisted start may hide it again.
                Some(Fate::Deleted) => continue,
                Some(Fate::InDoubt) if !power_lost => {
                    // Readable, perhaps never durable: what follows it is not
                    // promised to survive a power loss.
                    self.model.tainted_from = Some(self.model.tainted_from.map_or(offset, |from| from.min(offset)));
                    false
                }
                _ => power_lost,
            };
            fates.insert(
                id,
                Fate::Acked {
                    base_offset: offset,
                    durable,
                },
            );
        }
        self.model.fates = fates;
    }

    fn note(&mut self, text: String) {
        self.history.push(text);
    }

    fn step(&mut self) {
        match self.rng.between(0, 99) {
            0..=50 => self.append(),
            51..=60 => self.read_back(),
            61..=65 => {
                let rolled = self.log().roll();
                self.note(format!("roll: {rolled:?}"));
            }
            66..=67 => {
                let deleted = self.log().enforce_retention();
                self.note(format!("retention: {deleted:?}"));
                self.forget_below(self.log().start_offset());
            }
            68..=69 => {
                let (start, end) = (self.log().start_offset(), self.log().high_watermark());
                let offset = self.rng.between(start, end);
                let moved = self.log().truncate_prefix(offset);
                self.note(format!("truncate_prefix({offset}): {moved:?}"));
                // One that failed may still have persisted its new start.
                let below = if moved.is_ok() { self.log().start_offset() } else { offset };
                self.forget_below(below);
            }
            70..=76 => self.sync(),
            77..=81 => self.reopen_in_place(),
            82..=86 if !self.disk_lied => {
                // A restart without a power loss (a crash or a clean close).
                self.note("restart".into());
                self.log = None;
                self.open(false);
            }
            82..=91 => {
                let mode = if self.rng.coin() {
                    PowerLoss::LoseUnsynced
                } else {
                    PowerLoss::KeepSome
                };
                self.note(format!("power loss {mode:?}"));
                self.disk.power_loss(mode);
                self.log = None;
                self.open(true);
            }
            92..=95 => {
                let room = self.rng.between(0, 2_000);
                self.note(format!("disk full in {room} bytes"));
                self.disk.set_capacity(Some(self.disk.used_bytes() + room));
            }
            _ => {
                self.note("space freed".into());
                self.disk.set_capacity(None);
            }
        }
        self.notice_forgotten_syncs();
    }

    fn append(&mut self) {
        let count = self.rng.between(1, 3);
        let mut bytes = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..count {
            let id = self.next_id;
            self.next_id += 1;
            let batch = make_batch(&mut self.rng, id);
            let header = check_batch(&batch).expect("a sound batch");
            self.model.batches.insert(
                id,
                Expected {
                    bytes: batch.clone(),
                    last_offset_delta: header.last_offset_delta as u64,
                },
            );
            bytes.extend_from_slice(&batch);
            ids.push(id);
        }
        let result = self.log().append(Bytes::from(bytes)).wait();
        self.note(format!("append {ids:?}: {result:?} health {:?}", self.log().health()));
        match result {
            Ok(info) => {
                let mut base_offset = info.base_offset;
                let floor = self.model.acked_end();
                assert!(
                    base_offset >= floor,
                    "an acknowledged append at {base_offset} overlaps an earlier one ending at {floor}"
                );
                let durable = self.model.durability == Durability::Always;
                for id in ids {
                    self.model.fates.insert(id, Fate::Acked { base_offset, durable });
                    let read = self.log().read(base_offset, 1, true).expect("read an acknowledged batch");
                    assert_eq!(batch_id(&read.bytes), id, "batch {id} is not readable at {base_offset}");
                    base_offset += self.model.batches[&id].last_offset_delta + 1;
                }
                assert_eq!(base_offset, info.last_offset + 1);
            }
            Err(error) => {
                let health = self.log().health();
                if let LogError::StorageFull { .. } = error {
                    assert_eq!(health, LogHealth::Healthy, "a full disk left the log unhealthy");
                }
                let fate = match health {
                    LogHealth::Poisoned {
                        failed_tail_removed: false,
                        ..
                    } => Fate::InDoubt,
                    _ => Fate::Failed,
                };
                for id in ids {
                    self.model.fates.insert(id, fate);
                }
            }
        }
    }

    /// Acknowledged batches wholly below `start` are gone (or may be).
    fn forget_below(&mut self, start: u64) {
        for (base_offset, id) in self.model.acked() {
            if base_offset + self.model.batches[&id].last_offset_delta < start {
                self.model.fates.insert(id, Fate::Deleted);
            }
        }
    }

    /// Reads every acknowledged batch of the model back.
    fn read_back(&mut self) {
        let start = self.log().start_offset();
        for (base_offset, id) in self.model.acked() {
            // A batch that `truncate_prefix` cut through is read from the start.
            let read = self.log().read(base_offset.max(start), 1, true).expect("read");
            assert_eq!(batch_id(&read.bytes), id, "batch {id} is not readable at {base_offset}");
        }
    }

    fn sync(&mut self) {
        let synced = self.log().sync();
        self.note(format!("sync: {synced:?}"));
        if synced.is_ok() {
            for fate in self.model.fates.values_mut() {
                if let Fate::Acked { durable, .. } = fate {
                    *durable = true;
                }
            }
        }
    }

    fn reopen_in_place(&mut self) {
        let reopened = self.log().reopen();
        self.note(format!("reopen: {reopened:?}"));
        if reopened.is_ok() {
            assert_eq!(self.log().health(), LogHealth::Healthy);
            self.verify(false);
            self.notice_forgotten_syncs();
            self.disk_lied = false;
        }
    }
}

/// A batch of 1 to 4 records whose values start with the batch's id.
fn make_batch(rng: &mut SimRng, id: u64) -> Bytes {
    let mut builder = BatchBuilder::new(START_MS + rng.between(0, 1_000) as i64);
    for index in 0..rng.between(1, 4) {
        let mut value = format!("{id}/{index}/").into_bytes();
        let length = rng.between(0, 300) as usize;
        value.extend((0..length).map(|_| rng.next_u64() as u8));
        builder.push(Record::new(None, Some(value)));
    }
    builder.build()
}

/// The id a batch's first record carries.
fn batch_id(bytes: &[u8]) -> u64 {
    let header = check_batch(bytes).expect("only sound batches are served");
    let records = decode_records(&bytes[..header.total_bytes()]).expect("served batches decode");
    let value = records[0].value.as_deref().expect("a value");
    let end = value.iter().position(|&byte| byte == b'/').expect("an id");
    std::str::from_utf8(&value[..end]).expect("utf8").parse().expect("a number")
}

/// Every batch from the start to the high watermark, with its base offset.
fn read_all(log: &Log) -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    let end = log.high_watermark();
    // Each read serves at least one batch or ends the walk.
    for _ in 0..100_000 {
        if offset >= end {
            break;
        }
        let read = log.read(offset, 4_096, true).expect("read");
        if read.bytes.is_empty() {
            // A gap up to the high watermark.
            break;
        }
        let mut position = 0;
        while position < read.bytes.len() {
            let header = check_batch(&read.bytes[position..]).unwrap_or_else(|error| {
                panic!(
                    "a read at {offset} served a bad batch at byte {position} of {}: {error} (segments {:?})",
                    read.bytes.len(),
                    log.segment_base_offsets()
                )
            });
            let base_offset = header.base_offset as u64;
            // The first batch may begin below a start offset that
            // `truncate_prefix` moved inside it.
            assert!(header.last_offset() as u64 >= offset, "reads go forward");
            out.push((base_offset, read.bytes.slice(position..position + header.total_bytes())));
            offset = header.last_offset() as u64 + 1;
            position += header.total_bytes();
        }
    }
    out
}

fn run_seed(run: &mut Run) {
    run.open(false);
    for _ in 0..STEPS_PER_SEED {
        run.step();
    }
    // A last power loss: whatever was promised must be there.
    run.log = None;
    run.disk.power_loss(PowerLoss::LoseUnsynced);
    run.open(true);
}

fn run_reporting(seed: u64) {
    let mut run = Run::new(seed);
    let outcome = catch_unwind(AssertUnwindSafe(|| run_seed(&mut run)));
    if let Err(panic) = outcome {
        eprintln!("config: {:?}\nfaults: {:?}", run.config, run.faults);
        eprintln!("last steps:");
        for line in run.history.iter().rev().take(HISTORY_PRINTED).rev() {
            eprintln!("  {line}");
        }
        eprintln!("files:");
        for name in run.disk.list(&dir()).unwrap_or_default() {
            let bytes = run.disk.read(&dir().join(&name)).map(|bytes| bytes.len());
            eprintln!("  {name}: {bytes:?}");
        }
        eprintln!("disk trace:");
        for line in run.disk.trace() {
            eprintln!("  {line}");
        }
        eprintln!("simulation failed at seed {seed}; replay it with {SEED_ENV}={seed} cargo test -p conveyor-log --test simulation");
        resume_unwind(panic);
    }
}

#[test]
fn acknowledged_records_survive_and_failed_ones_never_appear_under_injected_disk_faults() {
    if let Some(seed) = std::env::var(SEED_ENV).ok().and_then(|text| text.parse().ok()) {
        run_reporting(seed);
        return;
    }
    let number = |name: &str, default: u64| std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default);
    let seeds = number(SEEDS_ENV, SEEDS_DEFAULT);
    let run_time_max = Duration::from_secs(number(SECONDS_ENV, RUN_SECONDS_DEFAULT));
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
        .wrapping_mul(1_000_003);
    eprintln!("simulating seeds {base}.. ({seeds} at most, {run_time_max:?} at most)");
    let started = Instant::now();
    let mut ran = 0;
    for seed in base..base.saturating_add(seeds) {
        if started.elapsed() > run_time_max {
            break;
        }
        run_reporting(seed);
        ran += 1;
    }
    eprintln!("{ran} seeds passed in {:?}", started.elapsed());
    assert!(ran > 0);
}
