//! Crash consistency under `Durability::Always`: a child process (this test
//! binary, re-executed to run only `crash_child_appends_until_killed`) appends
//! from several threads and prints each acknowledged batch the moment its
//! append returns. The parent SIGKILLs it at random moments, then reopens the
//! log and checks that every acknowledged batch is there byte for byte at its
//! offset, that nothing torn is served, and that appends continue at the high
//! watermark. Half of the rounds use tiny segments so kills also land in rolls.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conveyor_log::batch::check_batch;
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Durability, Log, LogConfig, LogError};

/// Set in the child's environment: the log directory it appends to.
const CHILD_DIR_ENV: &str = "CONVEYOR_CRASH_CHILD_DIR";
const CHILD_SEGMENT_BYTES_ENV: &str = "CONVEYOR_CRASH_CHILD_SEGMENT_BYTES";
const CHILD_SEED_ENV: &str = "CONVEYOR_CRASH_CHILD_SEED";
/// Set by a developer to replay a failing run.
const SEED_ENV: &str = "CONVEYOR_CRASH_SEED";
const CHILD_TEST_NAME: &str = "crash_child_appends_until_killed";

const KILLS: usize = 24;
const APPENDER_THREADS: u64 = 4;
/// The parent kills the child after it has seen between 1 and this many acks.
const ACKS_BEFORE_KILL_MAX: u64 = 300;
/// Segment size of the rounds that roll often: a roll every dozen batches or so.
const SMALL_SEGMENT_BYTES: u64 = 16 * 1024;
/// How long the parent waits for the child's next ack before giving up.
const ACK_WAIT_MAX: Duration = Duration::from_secs(30);
const TEST_DURATION_MAX: Duration = Duration::from_secs(240);
/// Bounds of the child on its own, far beyond what the parent lets it reach.
const CHILD_APPENDS_PER_THREAD_MAX: u64 = 200_000;
const CHILD_RUN_MAX: Duration = Duration::from_secs(120);

/// A small deterministic generator (SplitMix64), so a failing run can be
/// replayed from its printed seed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[low, high]`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        durability: Durability::Always,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// A batch of 1 to 4 records with random values; `tag` makes it unique.
fn random_batch(rng: &mut Rng, tag: &str) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000 + rng.between(0, 1_000_000) as i64);
    for index in 0..rng.between(1, 4) {
        let mut value = format!("{tag}/{index}/").into_bytes();
        let length = rng.between(0, 600) as usize;
        value.extend((0..length).map(|_| rng.next() as u8));
        builder.push(Record::new(None, Some(value)));
    }
    builder.build()
}

/// What the child printed for one acknowledged append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ack {
    base_offset: u64,
    last_offset: u64,
    bytes: usize,
    /// CRC-32C of the batch from byte 8 on: everything but the base offset,
    /// which the log assigns.
    checksum: u32,
}

impl Ack {
    fn of(base_offset: u64, last_offset: u64, batch: &[u8]) -> Ack {
        Ack {
            base_offset,
            last_offset,
            bytes: batch.len(),
            checksum: crc32c::crc32c(&batch[8..]),
        }
    }

    fn line(&self) -> String {
        format!("ack {} {} {} {}\n", self.base_offset, self.last_offset, self.bytes, self.checksum)
    }

    /// Parses a whole line (with its newline: a line cut by the kill is not an ack).
    fn parse(line: &str) -> Option<Ack> {
        let line = line.strip_suffix('\n')?;
        let mut fields = line.strip_prefix("ack ")?.split(' ');
        let ack = Ack {
            base_offset: fields.next()?.parse().ok()?,
            last_offset: fields.next()?.parse().ok()?,
            bytes: fields.next()?.parse().ok()?,
            checksum: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(ack)
    }
}

/// Runs only in the child process; the parent sets its environment.
#[test]
#[ignore = "the child process of acknowledged_appends_survive_sigkill, which runs it"]
fn crash_child_appends_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        // Run by hand (`--ignored`) it has no log to append to.
        return;
    };
    let segment_bytes: u64 = std::env::var(CHILD_SEGMENT_BYTES_ENV)
        .expect("segment bytes in the environment")
        .parse()
        .expect("segment bytes is a number");
    let seed: u64 = std::env::var(CHILD_SEED_ENV)
        .expect("seed in the environment")
        .parse()
        .expect("seed is a number");
    let log = Log::open(&dir, config(segment_bytes)).expect("child opens the log");
    let started = Instant::now();
    let appenders: Vec<_> = (0..APPENDER_THREADS)
        .map(|thread_index| {
            let log = log.clone();
            let mut rng = Rng(seed ^ (thread_index << 56));
            thread::spawn(move || {
                for sequence in 0..CHILD_APPENDS_PER_THREAD_MAX {
                    if started.elapsed() > CHILD_RUN_MAX {
                        break;
                    }
                    let batch = random_batch(&mut rng, &format!("{seed}/{thread_index}/{sequence}"));
                    let info = log.append(batch.clone()).wait().expect("append in the child");
                    let ack = Ack::of(info.base_offset, info.last_offset, &batch);
                    // One locked write and flush per ack, so the parent has the
                    // line before this thread appends again.
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(ack.line().as_bytes()).expect("print ack");
                    stdout.flush().expect("flush ack");
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.join().expect("appender thread");
    }
}

/// Sends SIGKILL to a process by its PID.
#[allow(unsafe_code)]
fn sigkill(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("PID fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The
    // PID is our own child's and cannot have been reused: it is not reaped yet.
    let result = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(result, 0, "kill({pid}, SIGKILL): {}", std::io::Error::last_os_error());
}

/// A child process that is killed and reaped even when the test fails halfway.
struct ChildProcess {
    child: Child,
    reaped: bool,
}

impl ChildProcess {
    fn spawn(dir: &Path, segment_bytes: u64, seed: u64) -> ChildProcess {
        let exe = std::env::current_exe().expect("path of the test binary");
        let child = Command::new(exe)
            .args([CHILD_TEST_NAME, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir)
            .env(CHILD_SEGMENT_BYTES_ENV, segment_bytes.to_string())
            .env(CHILD_SEED_ENV, seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        ChildProcess { child, reaped: false }
    }

    fn kill_and_wait(&mut self) -> ExitStatus {
        sigkill(self.child.id());
        let status = self.child.wait().expect("wait for the killed child");
        self.reaped = true;
        status
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if !self.reaped {
            sigkill(self.child.id());
            let _ = self.child.wait();
        }
    }
}

/// Every acknowledged batch, by base offset.
#[derive(Debug, Default)]
struct Acks(BTreeMap<u64, Ack>);

impl Acks {
    fn insert(&mut self, ack: Ack) {
        assert!(ack.last_offset >= ack.base_offset, "{ack:?}");
        if let Some((_, before)) = self.0.range(..=ack.base_offset).next_back() {
            assert!(
                before.last_offset < ack.base_offset,
                "offsets acknowledged twice: {before:?} and {ack:?}"
            );
        }
        if let Some((_, after)) = self.0.range(ack.base_offset..).next() {
            assert!(
                ack.last_offset < after.base_offset,
                "offsets acknowledged twice: {ack:?} and {after:?}"
            );
        }
        self.0.insert(ack.base_offset, ack);
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let seed = std::env::var(SEED_ENV).ok().and_then(|seed| seed.parse().ok()).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|now| now.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!("crash test seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut acks = Acks::default();
    for round in 0..KILLS {
        assert!(
            started.elapsed() < TEST_DURATION_MAX,
            "the crash test ran out of time in round {round}"
        );
        let segment_bytes = if round % 2 == 0 {
            SMALL_SEGMENT_BYTES
        } else {
            LogConfig::default().segment_bytes
        };
        let acks_before = acks.0.len();
        run_child_until_killed(
            dir.path(),
            segment_bytes,
            rng.next(),
            rng.between(1, ACKS_BEFORE_KILL_MAX),
            &mut rng,
            &mut acks,
        );
        assert!(acks.0.len() > acks_before, "round {round} saw no acknowledged append");
        check_recovered_log(dir.path(), segment_bytes, &mut acks, &mut rng);
    }
    eprintln!(
        "{KILLS} kills, {} acknowledged batches, {:.1} s",
        acks.0.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Starts a child, waits until it has printed `acks_before_kill` acks, waits
/// a random moment more and kills it; records every ack it printed.
fn run_child_until_killed(dir: &Path, segment_bytes: u64, child_seed: u64, acks_before_kill: u64, rng: &mut Rng, acks: &mut Acks) {
    let mut child = ChildProcess::spawn(dir, segment_bytes, child_seed);
    let stdout = child.child.stdout.take().expect("child stdout is piped");
    let (lines, received) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        // Ends at EOF, which comes once the child is dead.
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + ACK_WAIT_MAX;
    let mut seen = 0;
    while seen < acks_before_kill {
        let wait = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(wait) {
            Ok(line) => {
                if let Some(ack) = Ack::parse(&line) {
                    acks.insert(ack);
                    seen += 1;
                }
            }
            Err(RecvTimeoutError::Timeout) => panic!("the child printed {seen} acks in {ACK_WAIT_MAX:?}, expected {acks_before_kill}"),
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.kill_and_wait();
                panic!("the child exited on its own ({status}) after {seen} acks");
            }
        }
    }
    // A random moment after the last ack seen: the child is somewhere in a
    // write, an fsync, a roll or an index write.
    thread::sleep(Duration::from_micros(rng.between(0, 3_000)));
    let status = child.kill_and_wait();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the child died of SIGKILL, not on its own: {status}"
    );
    reader.join().expect("stdout reader");
    // Acks printed between the last line read and the kill are acknowledged too.
    for line in received.try_iter() {
        if let Some(ack) = Ack::parse(&line) {
            acks.insert(ack);
        }
    }
}

/// Reopens the log after a kill and checks it against every ack so far, then
/// appends one batch, which later rounds must keep like any other ack.
fn check_recovered_log(dir: &Path, segment_bytes: u64, acks: &mut Acks, rng: &mut Rng) {
    let log = Log::open(dir, config(segment_bytes)).expect("reopen after the kill");
    let high_watermark = log.high_watermark();
    let newest = acks.0.values().next_back().expect("some acks");
    assert!(
        newest.last_offset < high_watermark,
        "acknowledged offset {} is at or past the recovered high watermark {high_watermark}",
        newest.last_offset
    );

    // A scan of the whole log serves only sound, contiguous batches, up to
    // exactly the high watermark; every ack is among them.
    let mut offset = log.start_offset();
    assert_eq!(offset, 0, "no retention is configured");
    let mut served = BTreeMap::new();
    let mut reads = 0;
    while offset < high_watermark {
        reads += 1;
        assert!(reads <= high_watermark, "the scan does not advance");
        let max_bytes = rng.between(1, 64 * 1024) as usize;
        let read = log.read(offset, max_bytes, true).expect("read below the high watermark");
        assert!(
            !read.bytes.is_empty(),
            "nothing served at {offset} below the high watermark {high_watermark}"
        );
        let mut position = 0;
        while position < read.bytes.len() {
            let batch = &read.bytes[position..];
            let header = check_batch(batch).unwrap_or_else(|error| panic!("served a torn or corrupt batch at offset {offset}: {error}"));
            assert_eq!(header.base_offset as u64, offset, "batches are contiguous");
            let batch = &batch[..header.total_bytes()];
            served.insert(offset, Ack::of(offset, header.last_offset() as u64, batch));
            offset = header.last_offset() as u64 + 1;
            position += header.total_bytes();
        }
    }
    assert_eq!(offset, high_watermark, "the last batch ends at the high watermark");
    for ack in acks.0.values() {
        assert_eq!(served.get(&ack.base_offset), Some(ack), "acknowledged batch lost or changed");
        // And a read straight at the acknowledged offset finds the same batch.
        let read = log.read(ack.base_offset, 1, true).expect("read an acknowledged offset");
        let header = check_batch(&read.bytes).expect("a sound batch");
        assert_eq!(Ack::of(ack.base_offset, header.last_offset() as u64, &read.bytes), *ack);
    }
    assert!(log.read(high_watermark, 1, true).expect("read at the end").bytes.is_empty());
    assert!(matches!(
        log.read(high_watermark + 1, 1, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));

    // A new append continues at exactly the high watermark.
    let batch = random_batch(rng, "parent");
    let info = log.append(batch.clone()).wait().expect("append after recovery");
    assert_eq!(info.base_offset, high_watermark, "appends continue at the high watermark");
    acks.insert(Ack::of(info.base_offset, info.last_offset, &batch));
    log.close().expect("close");
}
