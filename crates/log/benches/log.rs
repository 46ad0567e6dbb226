//! The partition log's benchmark: append throughput per durability policy,
//! record size, batch size and number of concurrent appenders, and sequential
//! read throughput, each printed next to a raw baseline measured in the same
//! run on the same disk.
//!
//! ```text
//! cargo bench -p conveyor-log                      # everything (about 1.5 minutes)
//! cargo bench -p conveyor-log -- always            # one durability policy
//! cargo bench -p conveyor-log -- always/1KiB/b100/c16 never/c16 read
//! ```
//!
//! A pattern selects the configurations whose name has every one of the
//! pattern's `/`-separated parts as a component; several patterns add up.
//! Names look like `append/always/1KiB/b100/c16` (durability, record value
//! size, records per batch, concurrent appenders) and `read/1KiB/b100`.
//!
//! Why ratios: the machine is shared and its disk's speed drifts by ±25% from
//! minute to minute (and page-cache writes from one second to the next), so
//! an absolute MB/s says little. Each configuration alternates with its
//! baseline in short slices (appends: five slices of 0.3 s between six
//! baseline slices of 0.17 s; reads: whole passes of tens of milliseconds)
//! and is compared with the baseline's total over its slices:
//!
//! | compared with | baseline |
//! |---|---|
//! | `always` | sequential 1 MiB `write`s to a new file, each followed by `fdatasync` |
//! | `interval:100`, `never` | the same writes without `fdatasync` |
//! | reads | sequential 1 MiB `pread`s of a file as large as the log, into one reused buffer |
//!
//! MB/s counts the bytes that reach the file (batch headers and record framing
//! included), since that is what the baselines write; records/s counts
//! records. Each configuration appends to a fresh log for at most
//! `CONVEYOR_BENCH_SECONDS` (1.5 s) or `CONVEYOR_BENCH_MIB_MAX` (768 MiB),
//! whichever comes first; the byte cap keeps a segment roll (which fsyncs the
//! sealed segment) and the kernel's dirty-page throttling out of the window,
//! for the log and the baselines alike. Under `interval` each slice ends with
//! the fsync the policy owes for it. Data goes to
//! `CONVEYOR_BENCH_DIR` (default: the workspace's `target/bench-log`, which is
//! on the repository's disk, unlike a tmpfs `/tmp`) and is deleted afterwards.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Durability, Log, LogConfig};

const MIB: u64 = 1024 * 1024;
/// Size of one baseline write or read, and of one log read (Kafka's default
/// `max.partition.fetch.bytes`).
const CHUNK_BYTES: usize = 1024 * 1024;
/// The interval of the `interval` policy in this benchmark.
const INTERVAL: Duration = Duration::from_millis(100);
const RECORD_BYTES: [usize; 3] = [100, 1024, 16 * 1024];
const BATCH_RECORDS: [usize; 2] = [1, 100];
const APPENDERS: [usize; 2] = [1, 16];

fn main() {
    let settings = Settings::from_env();
    let patterns: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    let selected = |name: &str| {
        patterns.is_empty()
            || patterns.iter().any(|pattern| {
                let components: Vec<&str> = name.split('/').collect();
                pattern.split('/').all(|part| components.contains(&part))
            })
    };
    // A previous run that was interrupted may have left its files behind.
    let _ = fs::remove_dir_all(&settings.dir);
    fs::create_dir_all(&settings.dir).expect("create the benchmark directory");
    print_environment(&settings);

    let mut results = Vec::new();
    for policy in [Policy::Always, Policy::Interval, Policy::Never] {
        let configs: Vec<AppendConfig> = RECORD_BYTES
            .iter()
            .flat_map(|&record_bytes| BATCH_RECORDS.iter().map(move |&batch_records| (record_bytes, batch_records)))
            .flat_map(|(record_bytes, batch_records)| {
                APPENDERS.iter().map(move |&appenders| AppendConfig {
                    policy,
                    shape: Shape {
                        record_bytes,
                        batch_records,
                    },
                    appenders,
                })
            })
            .filter(|config| selected(&config.name()))
            .collect();
        if configs.is_empty() {
            continue;
        }
        let baseline = policy.baseline();
        print_group_header(&format!("append, durability {}", policy.durability()), baseline);
        for config in &configs {
            let (measured, baseline) = measure_appends(&settings, config, baseline == Baseline::SyncedWrites);
            let row = Row {
                name: config.name(),
                measured,
                baseline_mb_per_s: baseline.mb_per_s(),
            };
            print_row(&row);
            results.push(row);
        }
    }

    let reads: Vec<Shape> = RECORD_BYTES
        .iter()
        .flat_map(|&record_bytes| {
            BATCH_RECORDS.iter().map(move |&batch_records| Shape {
                record_bytes,
                batch_records,
            })
        })
        .filter(|shape| selected(&read_name(shape)))
        .collect();
    if !reads.is_empty() {
        print_group_header(
            &format!(
                "sequential read, {} KiB per read, log of {} MiB in the page cache",
                CHUNK_BYTES / 1024,
                settings.read_log_bytes / MIB
            ),
            Baseline::Reads,
        );
        let baseline_file = settings.dir.join("baseline-read");
        write_file(&baseline_file, settings.read_log_bytes);
        for shape in &reads {
            let log = ReadLog::fill(&settings, shape);
            let (measured, baseline) = measure_reads(&settings, &log, &baseline_file);
            log.remove();
            let row = Row {
                name: read_name(shape),
                measured,
                baseline_mb_per_s: baseline.mb_per_s(),
            };
            print_row(&row);
            results.push(row);
        }
        fs::remove_file(&baseline_file).expect("remove the read baseline file");
    }

    fs::remove_dir_all(&settings.dir).expect("remove the benchmark directory");
    print_summary(&results);
}

/// Knobs, from the environment.
#[derive(Debug)]
struct Settings {
    dir: PathBuf,
    duration: Duration,
    baseline_duration: Duration,
    bytes_max: u64,
    read_log_bytes: u64,
}

impl Settings {
    fn from_env() -> Settings {
        let seconds = |name: &str, default: f64| {
            let value = std::env::var(name)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .unwrap_or(default);
            Duration::from_secs_f64(value)
        };
        let mib = |name: &str, default: u64| std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default) * MIB;
        let dir = std::env::var_os("CONVEYOR_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-log"));
        Settings {
            dir,
            duration: seconds("CONVEYOR_BENCH_SECONDS", 1.5),
            baseline_duration: seconds("CONVEYOR_BENCH_BASELINE_SECONDS", 1.0),
            bytes_max: mib("CONVEYOR_BENCH_MIB_MAX", 768),
            read_log_bytes: mib("CONVEYOR_BENCH_READ_MIB", 256),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Always,
    Interval,
    Never,
}

impl Policy {
    fn durability(self) -> Durability {
        match self {
            Policy::Always => Durability::Always,
            Policy::Interval => Durability::Interval(INTERVAL),
            Policy::Never => Durability::Never,
        }
    }

    fn name(self) -> String {
        // `interval:100` would need quoting in a shell pattern; `interval` is enough.
        match self {
            Policy::Interval => "interval".to_owned(),
            other => other.durability().to_string(),
        }
    }

    fn baseline(self) -> Baseline {
        match self {
            Policy::Always => Baseline::SyncedWrites,
            Policy::Interval | Policy::Never => Baseline::Writes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Baseline {
    SyncedWrites,
    Writes,
    Reads,
}

impl Baseline {
    fn describe(self) -> &'static str {
        match self {
            Baseline::SyncedWrites => "1 MiB write + fdatasync, sequential, new file",
            Baseline::Writes => "1 MiB write, no fdatasync, sequential, new file",
            Baseline::Reads => "1 MiB pread, sequential, reused buffer",
        }
    }
}

/// What one batch looks like.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Bytes of each record's value (no key, no headers).
    record_bytes: usize,
    batch_records: usize,
}

impl Shape {
    fn size_name(&self) -> String {
        if self.record_bytes.is_multiple_of(1024) {
            format!("{}KiB", self.record_bytes / 1024)
        } else {
            format!("{}B", self.record_bytes)
        }
    }

    /// One batch of this shape; every record has its own pseudo-random value
    /// so that nothing downstream can benefit from repetition.
    fn batch(&self) -> Bytes {
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (self.record_bytes as u64) << 32 ^ self.batch_records as u64;
        let mut builder = BatchBuilder::new(1_700_000_000_000);
        for _ in 0..self.batch_records {
            let value: Vec<u8> = (0..self.record_bytes)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            builder.push(Record::new(None, Some(value)));
        }
        builder.build()
    }
}

#[derive(Debug, Clone, Copy)]
struct AppendConfig {
    policy: Policy,
    shape: Shape,
    appenders: usize,
}

impl AppendConfig {
    fn name(&self) -> String {
        format!(
            "append/{}/{}/b{}/c{}",
            self.policy.name(),
            self.shape.size_name(),
            self.shape.batch_records,
            self.appenders
        )
    }
}

fn read_name(shape: &Shape) -> String {
    format!("read/{}/b{}", shape.size_name(), shape.batch_records)
}

/// The figures targets are set for (Foundation issue).
fn target_ratio(name: &str) -> Option<f64> {
    match name {
        "append/always/1KiB/b100/c16" => Some(0.70),
        "append/never/1KiB/b100/c16" => Some(0.80),
        _ if name.starts_with("read/") => Some(0.70),
        _ => None,
    }
}

/// One timed run.
#[derive(Debug, Default, Clone)]
struct Measured {
    bytes: u64,
    records: u64,
    elapsed: Duration,
    /// Per-operation latencies (appends: until acknowledged), sorted.
    latencies: Vec<Duration>,
}

impl Measured {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, fraction: f64) -> Option<Duration> {
        let last = self.latencies.len().checked_sub(1)?;
        Some(self.latencies[((last as f64) * fraction).round() as usize])
    }
}

#[derive(Debug)]
struct Row {
    name: String,
    measured: Measured,
    baseline_mb_per_s: f64,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.measured.mb_per_s() / self.baseline_mb_per_s
    }

    fn verdict(&self) -> Option<(f64, bool)> {
        target_ratio(&self.name).map(|target| (target, self.ratio() >= target))
    }
}

fn chunk() -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..CHUNK_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Sequential 1 MiB writes at the end of `file`, each followed by
/// `fdatasync` if `sync`, for `duration` or `bytes_max`.
fn write_baseline_slice(file: &mut File, chunk: &[u8], sync: bool, duration: Duration, bytes_max: u64) -> Measured {
    let mut measured = Measured::default();
    let start = Instant::now();
    while start.elapsed() < duration && measured.bytes < bytes_max {
        file.write_all(chunk).expect("baseline write");
        if sync {
            file.sync_data().expect("baseline fdatasync");
        }
        measured.bytes += chunk.len() as u64;
    }
    measured.elapsed = start.elapsed();
    measured
}

/// Writes `bytes` to a new file and fsyncs it, so that reads find it in the
/// page cache and no writeback runs while they are timed.
fn write_file(path: &Path, bytes: u64) {
    let chunk = chunk();
    let mut file = File::create(path).expect("create a file");
    let mut written = 0;
    while written < bytes {
        let length = (bytes - written).min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..length]).expect("write");
        written += length as u64;
    }
    file.sync_all().expect("fsync");
}

/// One pass of sequential 1 MiB positional reads over `file` into one
/// reused buffer; returns the bytes read.
fn read_baseline_pass(file: &File, buffer: &mut [u8]) -> u64 {
    let length = file.metadata().expect("metadata").len();
    let mut position = 0;
    while position < length {
        let wanted = (length - position).min(buffer.len() as u64) as usize;
        file.read_exact_at(&mut buffer[..wanted], position).expect("baseline pread");
        position += wanted as u64;
    }
    length
}

/// How many slices an append configuration and its baseline are cut into.
const SLICES: u32 = 5;

/// Measures one append configuration and its baseline in alternating slices:
/// baseline, appends, baseline, appends, ..., baseline, each slice a fifth of
/// the budget (the baseline gets one slice more, so that it surrounds the
/// appends). Page-cache write speed on this machine swings between 0.5 and
/// 4 GB/s from one second to the next (`dd`, run back to back), so runs of a
/// second each, even bracketed, compared unlike conditions; slices of a few
/// hundred milliseconds expose both sides to the same ones.
///
/// In an append slice `appenders` threads append the same batch to one log,
/// each waiting for its acknowledgement before sending the next. The log stays
/// open across slices; its byte budget is shared out between them.
fn measure_appends(settings: &Settings, config: &AppendConfig, sync_baseline: bool) -> (Measured, Measured) {
    let dir = settings.dir.join("append");
    let log = Log::open(
        &dir,
        LogConfig {
            durability: config.policy.durability(),
            ..LogConfig::default()
        },
    )
    .expect("open the log");
    let batch = config.shape.batch();
    // Like the log's segment, the baseline's file is new at the start of the
    // configuration and grows slice after slice.
    let baseline_path = settings.dir.join("baseline-write");
    let mut baseline_file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&baseline_path)
        .expect("create the baseline file");
    let chunk = chunk();
    let bytes_per_slice = settings.bytes_max / u64::from(SLICES);
    let baseline_slice = settings.baseline_duration / (SLICES + 1);
    let mut baseline = Measured::default();
    let mut measured = Measured::default();
    for slice in 0..=SLICES {
        let part = write_baseline_slice(&mut baseline_file, &chunk, sync_baseline, baseline_slice, bytes_per_slice);
        baseline.bytes += part.bytes;
        baseline.elapsed += part.elapsed;
        if slice == SLICES {
            break;
        }
        let part = append_slice(settings, config, &log, &batch, bytes_per_slice);
        measured.bytes += part.bytes;
        measured.records += part.records;
        measured.elapsed += part.elapsed;
        measured.latencies.extend(part.latencies);
    }
    measured.latencies.sort_unstable();
    discard_log(log, &dir);
    // Unlinking a file nobody has open drops its unsynced pages unwritten.
    drop(baseline_file);
    fs::remove_file(&baseline_path).expect("remove the baseline file");
    (measured, baseline)
}

fn append_slice(settings: &Settings, config: &AppendConfig, log: &Log, batch: &Bytes, bytes_max: u64) -> Measured {
    let batch_bytes = batch.len() as u64;
    let stop = AtomicBool::new(false);
    let appended = AtomicU64::new(0);
    let latencies = Mutex::new(Vec::new());
    let barrier = Barrier::new(config.appenders + 1);
    let duration = settings.duration / SLICES;
    let mut start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..config.appenders {
            scope.spawn(|| {
                let mut mine = Vec::with_capacity(1 << 14);
                barrier.wait();
                let deadline = Instant::now() + duration;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    log.append(batch.clone()).wait().expect("append");
                    let acknowledged = Instant::now();
                    mine.push(acknowledged - sent);
                    let total = appended.fetch_add(batch_bytes, Ordering::Relaxed) + batch_bytes;
                    if acknowledged >= deadline || total + batch_bytes > bytes_max {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                latencies.lock().expect("latencies").extend(mine);
            });
        }
        barrier.wait();
        start = Instant::now();
    });
    if config.policy == Policy::Interval {
        // The fsync the policy owes for this slice's appends is part of its
        // cost; without this it would land in the next baseline slice.
        log.sync().expect("sync");
    }
    let elapsed = start.elapsed();
    let latencies = latencies.into_inner().expect("latencies");
    let appends = latencies.len() as u64;
    Measured {
        bytes: appends * batch_bytes,
        records: appends * config.shape.batch_records as u64,
        elapsed,
        latencies,
    }
}

/// Deletes a log without writing its unsynced pages back: closing would
/// fsync up to `bytes_max` of page cache (seconds of disk time that would
/// only slow the run down), so the segment files are truncated first, which
/// drops their dirty pages.
fn discard_log(log: Log, dir: &Path) {
    for entry in fs::read_dir(dir).expect("list the log directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|extension| extension == "log") {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_len(0))
                .expect("truncate a segment");
        }
    }
    log.delete().expect("delete the log");
}

/// A log filled with batches of one shape, synced, for the read benchmark.
#[derive(Debug)]
struct ReadLog {
    log: Log,
    dir: PathBuf,
    shape: Shape,
    batch_bytes: usize,
}

impl ReadLog {
    fn fill(settings: &Settings, shape: &Shape) -> ReadLog {
        let dir = settings.dir.join("read");
        let log = Log::open(
            &dir,
            LogConfig {
                durability: Durability::Never,
                ..LogConfig::default()
            },
        )
        .expect("open the log");
        let batch = shape.batch();
        // Appending ~1 MiB of concatenated batches at a time fills the log in
        // well under a second even for 100-byte batches.
        let per_append = (CHUNK_BYTES / batch.len()).max(1);
        let mut chunk = Vec::with_capacity(per_append * batch.len());
        for _ in 0..per_append {
            chunk.extend_from_slice(&batch);
        }
        let chunk = Bytes::from(chunk);
        let mut bytes = 0;
        while bytes < settings.read_log_bytes {
            log.append(chunk.clone()).wait().expect("fill append");
            bytes += chunk.len() as u64;
        }
        log.sync().expect("sync the filled log");
        ReadLog {
            log,
            dir,
            shape: *shape,
            batch_bytes: batch.len(),
        }
    }

    fn remove(self) {
        discard_log(self.log, &self.dir);
    }
}

/// Reads the whole log from offset 0 in 1 MiB reads, and the baseline file
/// in 1 MiB `pread`s, alternating whole passes (a pass takes tens of
/// milliseconds) until the budget is spent. Reads are bound by memory
/// bandwidth, which the neighbours' load moves from one second to the next;
/// alternating this finely exposes both sides to the same conditions.
///
/// The next offset is computed from the (fixed) batch size, not by parsing
/// the returned batches: the figure is the log's read path, not a consumer's.
fn measure_reads(settings: &Settings, read_log: &ReadLog, baseline_path: &Path) -> (Measured, Measured) {
    let end = read_log.log.high_watermark();
    let records_per_batch = read_log.shape.batch_records as u64;
    let baseline_file = File::open(baseline_path).expect("open the read baseline file");
    let mut buffer = vec![0u8; CHUNK_BYTES];
    let (mut log, mut baseline) = (Measured::default(), Measured::default());
    let budget = settings.duration + settings.baseline_duration;
    let start = Instant::now();
    while start.elapsed() < budget {
        let pass = Instant::now();
        baseline.bytes += read_baseline_pass(&baseline_file, &mut buffer);
        baseline.elapsed += pass.elapsed();

        let pass = Instant::now();
        let mut offset = 0;
        while offset < end {
            let read = read_log.log.read(offset, CHUNK_BYTES, true).expect("read");
            let batches = (read.bytes.len() / read_log.batch_bytes) as u64;
            assert!(batches > 0, "read at {offset} returned no whole batch");
            offset += batches * records_per_batch;
            log.bytes += read.bytes.len() as u64;
            log.records += batches * records_per_batch;
        }
        log.elapsed += pass.elapsed();
    }
    (log, baseline)
}

fn print_environment(settings: &Settings) {
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M:%S UTC")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|cores| cores.get()).unwrap_or(0);
    let dir = fs::canonicalize(&settings.dir).unwrap_or_else(|_| settings.dir.clone());
    println!("conveyor-log benchmark, {date}");
    println!("machine: {cores} cores, Linux {}", kernel.trim());
    println!("data:    {} ({})", dir.display(), describe_mount(&dir));
    println!(
        "budget:  appends {:.1} s or {} MiB per configuration and {:.1} s of baseline, in alternating slices; reads alternate with their baseline pass by pass",
        settings.duration.as_secs_f64(),
        settings.bytes_max / MIB,
        settings.baseline_duration.as_secs_f64()
    );
}

/// The file system and device holding `dir`, from /proc/self/mountinfo; warns
/// when it is a tmpfs, whose "disk" is memory.
fn describe_mount(dir: &Path) -> String {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return "mount unknown".to_owned();
    };
    let best = mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|field| *field == "-")?;
            let mount_point = *fields.get(4)?;
            let fs_type = *fields.get(separator + 1)?;
            let source = *fields.get(separator + 2)?;
            dir.starts_with(mount_point).then_some((mount_point.len(), fs_type, source))
        })
        .max_by_key(|(length, _, _)| *length);
    match best {
        Some((_, "tmpfs", source)) => format!("tmpfs {source}: WARNING, memory, not a disk; set CONVEYOR_BENCH_DIR"),
        Some((_, fs_type, source)) => {
            let device = source.rsplit('/').next().unwrap_or(source);
            let rotational = fs::read_to_string(format!("/sys/block/{device}/queue/rotational"))
                .map(|text| if text.trim() == "1" { ", rotational" } else { ", non-rotational" })
                .unwrap_or("");
            format!("{fs_type} on {source}{rotational}")
        }
        None => "mount unknown".to_owned(),
    }
}

fn print_group_header(title: &str, baseline: Baseline) {
    println!();
    println!("## {title}; baseline: {}", baseline.describe());
    println!(
        "{:<30} {:>9} {:>12} {:>9} {:>9} {:>11} {:>7}  target",
        "configuration", "MB/s", "records/s", "p50 ms", "p99 ms", "base MB/s", "ratio"
    );
}

fn print_row(row: &Row) {
    let milliseconds = |fraction| {
        row.measured
            .percentile(fraction)
            .map(|latency| format!("{:.3}", latency.as_secs_f64() * 1e3))
            .unwrap_or_else(|| "-".to_owned())
    };
    let verdict = match row.verdict() {
        Some((target, true)) => format!(">= {target:.2} pass"),
        Some((target, false)) => format!(">= {target:.2} FAIL"),
        None => String::new(),
    };
    println!(
        "{:<30} {:>9.1} {:>12.0} {:>9} {:>9} {:>11.1} {:>7.3}  {verdict}",
        row.name,
        row.measured.mb_per_s(),
        row.measured.records_per_s(),
        milliseconds(0.5),
        milliseconds(0.99),
        row.baseline_mb_per_s,
        row.ratio(),
    );
}

fn print_summary(rows: &[Row]) {
    let judged: Vec<&Row> = rows.iter().filter(|row| row.verdict().is_some()).collect();
    if judged.is_empty() {
        return;
    }
    println!();
    println!("## targets");
    for row in judged {
        if let Some((target, pass)) = row.verdict() {
            println!(
                "{:<30} ratio {:.3} (target >= {target:.2}): {}",
                row.name,
                row.ratio(),
                if pass { "pass" } else { "FAIL" }
            );
        }
    }
}
