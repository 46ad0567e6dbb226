//! The I/O pool: a fixed number of writer threads serving every log, a
//! timer thread for the work a log owes without being asked (the
//! `interval` policy's fsync, retention), and the open-file cache. A log
//! with commands waiting is *ready*: it sits once in the ready queue until
//! a writer thread takes it, and only that thread runs its writer until it
//! hands it back, so each log still has exactly one writer at a time and an
//! idle log costs no thread, no task and no queue entry.
//!
//! A writer thread takes several ready logs at once (its share of the
//! queue), writes each one's group, then fsyncs them one after another and
//! acknowledges them: fsyncs that fall due together are issued together,
//! and on ext4 the first one's journal commit carries the others' metadata.
//! Knows logs only as cells with commands and writers; nothing of batches
//! or files beyond the cache it owns.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tracing::warn;

use crate::file_cache::FileCache;
use crate::log_cell::LogCell;

/// A writer thread takes at most this many ready logs in one round.
const ROUND_LOGS_MAX: usize = 256;
/// Stack of each pool thread: the writer keeps its buffers on the heap.
const THREAD_STACK_BYTES: usize = 512 * 1024;
/// Open files kept when `RLIMIT_NOFILE` cannot be read.
const OPEN_FILES_FALLBACK: usize = 512;
/// The cache never gets fewer files than this, whatever the limit says.
const OPEN_FILES_MIN: usize = 16;

/// How big an I/O pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoPoolConfig {
    /// Threads writing and fsyncing logs.
    pub writer_threads: usize,
    /// Segment files the open-file cache keeps open at most (files with
    /// data not yet fsynced may take it past this for as long as that lasts).
    pub open_files_max: usize,
}

impl IoPoolConfig {
    /// One writer thread per core, and half the process's open-file limit
    /// (`RLIMIT_NOFILE`, soft) for segment files: the other half is left
    /// for connections, listeners and everything else.
    pub fn from_system() -> IoPoolConfig {
        let writer_threads = std::thread::available_parallelism().map_or(2, usize::from);
        IoPoolConfig {
            writer_threads,
            open_files_max: default_open_files_max(),
        }
    }
}

impl Default for IoPoolConfig {
    fn default() -> IoPoolConfig {
        IoPoolConfig::from_system()
    }
}

/// Half the soft `RLIMIT_NOFILE`, at least [`OPEN_FILES_MIN`].
pub fn default_open_files_max() -> usize {
    match rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        Some(limit) => usize::try_from(limit / 2).unwrap_or(usize::MAX).max(OPEN_FILES_MIN),
        None => OPEN_FILES_FALLBACK,
    }
}

/// A pool of writer threads and its open-file cache. Cheap to clone; the
/// threads stop once the last clone and the last log opened on it are gone.
#[derive(Debug, Clone)]
pub struct IoPool {
    handle: Arc<PoolHandle>,
}

/// Held by every user of the pool (clones of [`IoPool`], open logs); the
/// threads hold only [`PoolInner`], so dropping the last handle stops them.
#[derive(Debug)]
pub(crate) struct PoolHandle {
    inner: Arc<PoolInner>,
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::Release);
        // Taking each lock before notifying closes the window between a
        // thread's check of `stopping` and its wait.
        drop(self.inner.ready.lock());
        self.inner.ready_signal.notify_all();
        drop(self.inner.timers.lock());
        self.inner.timer_signal.notify_all();
    }
}

#[derive(Debug)]
struct PoolInner {
    ready: Mutex<VecDeque<Arc<LogCell>>>,
    ready_signal: Condvar,
    timers: Mutex<BinaryHeap<Reverse<Timer>>>,
    timer_signal: Condvar,
    files: Arc<FileCache>,
    writer_threads: usize,
    stopping: AtomicBool,
    /// Orders timers with the same deadline (and makes them comparable).
    timer_sequence: AtomicU64,
}

#[derive(Debug)]
struct Timer {
    at: Instant,
    sequence: u64,
    cell: Weak<LogCell>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

static DEFAULT_POOL: OnceLock<IoPool> = OnceLock::new();

impl IoPool {
    /// Starts a pool: its writer threads and its timer thread.
    pub fn new(config: IoPoolConfig) -> std::io::Result<IoPool> {
        let inner = Arc::new(PoolInner {
            ready: Mutex::new(VecDeque::new()),
            ready_signal: Condvar::new(),
            timers: Mutex::new(BinaryHeap::new()),
            timer_signal: Condvar::new(),
            files: FileCache::new(config.open_files_max),
            writer_threads: config.writer_threads.max(1),
            stopping: AtomicBool::new(false),
            timer_sequence: AtomicU64::new(0),
        });
        for index in 0..inner.writer_threads {
            let worker = Arc::clone(&inner);
            std::thread::Builder::new()
                .name(format!("log-writer-{index}"))
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || worker.run_writer())?;
        }
        let timer = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("log-timer".to_owned())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || timer.run_timers())?;
        Ok(IoPool {
            handle: Arc::new(PoolHandle { inner }),
        })
    }

    /// Sets up the process's default pool (what [`crate::Log::open`] uses)
    /// with `config`. Fails, changing nothing, once the default pool exists
    /// (set up before, or started by a log opened without a pool).
    pub fn install_default(config: IoPoolConfig) -> std::io::Result<IoPool> {
        let pool = IoPool::new(config)?;
        DEFAULT_POOL
            .set(pool.clone())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the default I/O pool is already running"))?;
        Ok(pool)
    }

    /// The process's default pool, started with [`IoPoolConfig::from_system`]
    /// on first use unless [`IoPool::install_default`] set it up before.
    pub fn default_pool() -> IoPool {
        DEFAULT_POOL
            .get_or_init(|| IoPool::new(IoPoolConfig::from_system()).expect("cannot start the log I/O threads"))
            .clone()
    }

    pub fn writer_threads(&self) -> usize {
        self.handle.inner.writer_threads
    }

    /// The open-file cache's cap.
    pub fn open_files_max(&self) -> usize {
        self.handle.inner.files.capacity()
    }

    /// Segment files the cache holds open now.
    pub fn open_files(&self) -> usize {
        self.handle.inner.files.open_count()
    }

    pub(crate) fn files(&self) -> &Arc<FileCache> {
        &self.handle.inner.files
    }

    pub(crate) fn handle(&self) -> Arc<PoolHandle> {
        Arc::clone(&self.handle)
    }
}

impl PoolHandle {
    /// Puts a log that just became ready in the queue.
    pub fn schedule(&self, cell: Arc<LogCell>) {
        self.inner.schedule(cell);
    }
}

impl PoolInner {
    fn schedule(&self, cell: Arc<LogCell>) {
        self.ready.lock().push_back(cell);
        self.ready_signal.notify_one();
    }

    /// A writer thread: takes its share of the ready logs, serves them, repeats.
    fn run_writer(self: Arc<Self>) {
        loop {
            let round: Vec<Arc<LogCell>> = {
                let mut ready = self.ready.lock();
                // Bounded per wake-up by the stop flag; each wait is a wake-up.
                while ready.is_empty() {
                    if self.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    self.ready_signal.wait(&mut ready);
                }
                let share = ready.len().div_ceil(self.writer_threads).clamp(1, ROUND_LOGS_MAX);
                ready.drain(..share).collect()
            };
            for (cell, deadline) in LogCell::serve_round(&round) {
                if let Some(at) = deadline
                    && cell.claim_timer(at)
                {
                    self.add_timer(&cell, at);
                }
                if cell.finish_turn() {
                    self.schedule_again(cell);
                }
            }
        }
    }

    /// Puts back a log this thread just served that has more work: this
    /// thread takes the queue again before it waits, so another one is
    /// woken only if there is more than that log to share. Waking one for
    /// the log alone (at a modest rate, every group has a next one) cost a
    /// futex wake and two context switches per fsync, and the woken thread
    /// mostly found the queue already emptied (issue 18).
    fn schedule_again(&self, cell: Arc<LogCell>) {
        let mut ready = self.ready.lock();
        ready.push_back(cell);
        let others = ready.len() > 1;
        drop(ready);
        if others {
            self.ready_signal.notify_one();
        }
    }

    fn add_timer(&self, cell: &Arc<LogCell>, at: Instant) {
        let sequence = self.timer_sequence.fetch_add(1, Ordering::Relaxed);
        let mut timers = self.timers.lock();
        let earliest = timers.peek().is_none_or(|Reverse(first)| at < first.at);
        timers.push(Reverse(Timer {
            at,
            sequence,
            cell: Arc::downgrade(cell),
        }));
        drop(timers);
        if earliest {
            self.timer_signal.notify_one();
        }
    }

    /// The timer thread: wakes each log whose timer fell due.
    fn run_timers(self: Arc<Self>) {
        loop {
            let due: Vec<Timer> = {
                let mut timers = self.timers.lock();
                loop {
                    if self.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let now = Instant::now();
                    match timers.peek() {
                        Some(Reverse(first)) if first.at <= now => break,
                        Some(Reverse(first)) => {
                            let wait = first.at - now;
                            self.timer_signal.wait_for(&mut timers, wait.max(Duration::from_millis(1)));
                        }
                        None => self.timer_signal.wait(&mut timers),
                    }
                }
                let now = Instant::now();
                let mut due = Vec::new();
                while timers.peek().is_some_and(|Reverse(first)| first.at <= now) {
                    if let Some(Reverse(timer)) = timers.pop() {
                        due.push(timer);
                    }
                }
                due
            };
            for timer in due {
                let Some(cell) = timer.cell.upgrade() else { continue };
                if cell.fire_timer(timer.at) {
                    match cell.push_tick() {
                        Ok(true) => self.schedule(cell),
                        Ok(false) => {}
                        Err(()) => {}
                    }
                }
            }
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let waiting = self.ready.get_mut().len();
        if waiting > 0 {
            warn!(logs = waiting, "the I/O pool stopped with logs waiting");
        }
    }
}
