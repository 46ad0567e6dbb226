//! Resource alarms, as RabbitMQ has them: when free disk space under the
//! data directory falls below a floor, or the broker's memory rises above a
//! ceiling, an alarm goes off and front doors stop taking publishes (AMQP's
//! `connection.blocked`) until it clears. Nothing is refused or lost:
//! publishers wait. The limits can change while the broker runs (an
//! operator's `set_disk_free_limit`).
//!
//! Disk: a timer measures free space (statvfs), and every write a front
//! door admits is deducted from the last measurement at once, so the floor
//! holds between measurements: a publish that would take the estimate below
//! the floor raises the alarm and waits instead. When a measurement clears
//! the alarm, waiting publishers are admitted one by one against the new
//! estimate, so they refill only what is above the floor. Memory: the
//! larger of the process's resident memory and the bytes front doors hold
//! for their connections (`connection_budget.rs`), which are counted as
//! they change, so a surge raises the alarm without waiting for the timer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::{info, warn};

/// How often the timer measures.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// RabbitMQ's `disk_free_limit` default.
pub const DISK_FREE_MIN_BYTES_DEFAULT: u64 = 50_000_000;
/// RabbitMQ's `vm_memory_high_watermark` default: this share of the machine's memory.
const MEMORY_SHARE_DEFAULT: f64 = 0.6;
/// Bytes admitted since the last measurement after which one is taken early.
const MEASURE_AFTER_BYTES_MIN: u64 = 4 * 1024 * 1024;

/// Which alarms are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alarms {
    pub disk: bool,
    pub memory: bool,
}

impl Alarms {
    pub fn any(self) -> bool {
        self.disk || self.memory
    }

    /// Why publishers wait, in RabbitMQ's words (`connection.blocked`'s reason).
    pub fn reason(self) -> &'static str {
        match (self.disk, self.memory) {
            (true, true) => "low on disk and memory",
            (true, false) => "low on disk",
            _ => "low on memory",
        }
    }
}

/// What the broker measured last, with the limits it compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Free bytes measured, less what was admitted since.
    pub disk_free_bytes: Option<u64>,
    pub disk_free_min_bytes: u64,
    /// The larger of resident memory and `held_bytes`.
    pub memory_used_bytes: Option<u64>,
    /// Bytes front doors hold for their connections (`connection_budget.rs`).
    pub held_bytes: u64,
    /// 0: no ceiling.
    pub memory_max_bytes: u64,
    pub alarms: Alarms,
}

/// The limits, the alarms' state and its subscribers.
#[derive(Debug)]
pub struct ResourceAlarms {
    data_dir: PathBuf,
    disk_free_min_bytes: AtomicU64,
    memory_max_bytes: AtomicU64,
    held_bytes: AtomicU64,
    /// The last measurements (free disk, resident memory) and the bytes
    /// admitted since the disk one; evaluations without I/O start from them.
    last: Mutex<Last>,
    /// A measurement is under way on a blocking thread.
    measuring: AtomicBool,
    state: watch::Sender<Measured>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Last {
    disk_free_bytes: Option<u64>,
    resident_bytes: Option<u64>,
    admitted_bytes: u64,
    /// A write was held since the disk measurement: it would have taken
    /// the estimate below the floor. The disk alarm stays on until the next one.
    admission_refused: bool,
}

impl ResourceAlarms {
    /// Alarms for a broker storing under `data_dir`, with RabbitMQ's
    /// default limits (50 MB of free disk; 60% of the machine's memory).
    pub fn new(data_dir: &Path) -> ResourceAlarms {
        let memory_max_bytes = machine_memory_bytes().map_or(0, |total| (total as f64 * MEMORY_SHARE_DEFAULT) as u64);
        let (state, _) = watch::channel(Measured {
            disk_free_bytes: None,
            disk_free_min_bytes: DISK_FREE_MIN_BYTES_DEFAULT,
            memory_used_bytes: None,
            held_bytes: 0,
            memory_max_bytes,
            alarms: Alarms::default(),
        });
        ResourceAlarms {
            data_dir: data_dir.to_path_buf(),
            disk_free_min_bytes: AtomicU64::new(DISK_FREE_MIN_BYTES_DEFAULT),
            memory_max_bytes: AtomicU64::new(memory_max_bytes),
            held_bytes: AtomicU64::new(0),
            last: Mutex::new(Last::default()),
            measuring: AtomicBool::new(false),
            state,
        }
    }

    /// Changes the limits (`None` keeps one) and measures again at once.
    pub fn set_limits(&self, disk_free_min_bytes: Option<u64>, memory_max_bytes: Option<u64>) -> Measured {
        if let Some(bytes) = disk_free_min_bytes {
            self.disk_free_min_bytes.store(bytes, Ordering::SeqCst);
        }
        if let Some(bytes) = memory_max_bytes {
            self.memory_max_bytes.store(bytes, Ordering::SeqCst);
        }
        self.check()
    }

    /// The latest measurement.
    pub fn measured(&self) -> Measured {
        *self.state.borrow()
    }

    /// Follows the measurements; front doors wait on it while an alarm is on.
    pub fn subscribe(&self) -> watch::Receiver<Measured> {
        self.state.subscribe()
    }

    /// Measures disk and memory against the limits and publishes the result
    /// (subscribers wake only when the alarms change). Blocking: statvfs and /proc.
    pub fn check(&self) -> Measured {
        let admitted_before = self.last.lock().admitted_bytes;
        let disk_free_bytes = disk_free_bytes(&self.data_dir);
        let resident_bytes = resident_memory_bytes();
        {
            let mut last = self.last.lock();
            last.disk_free_bytes = disk_free_bytes;
            last.resident_bytes = resident_bytes;
            // What was admitted while statvfs ran still counts against the new figure.
            last.admitted_bytes -= admitted_before.min(last.admitted_bytes);
            last.admission_refused = false;
        }
        self.evaluate()
    }

    /// Compares the last measurements (less what was admitted since, plus
    /// the bytes held now) with the limits and publishes the result. No I/O.
    fn evaluate(&self) -> Measured {
        let last = *self.last.lock();
        let disk_free_bytes = last.disk_free_bytes.map(|free| free.saturating_sub(last.admitted_bytes));
        let held_bytes = self.held_bytes.load(Ordering::SeqCst);
        let memory_used_bytes = last.resident_bytes.map(|resident| resident.max(held_bytes));
        let disk_free_min_bytes = self.disk_free_min_bytes.load(Ordering::SeqCst);
        let memory_max_bytes = self.memory_max_bytes.load(Ordering::SeqCst);
        // What cannot be measured raises no alarm.
        let alarms = Alarms {
            disk: last.admission_refused || disk_free_bytes.is_some_and(|free| free < disk_free_min_bytes),
            memory: memory_max_bytes > 0 && memory_used_bytes.unwrap_or(held_bytes) > memory_max_bytes,
        };
        let measured = Measured {
            disk_free_bytes,
            disk_free_min_bytes,
            memory_used_bytes,
            held_bytes,
            memory_max_bytes,
            alarms,
        };
        let before = self.state.borrow().alarms;
        if before != alarms {
            if alarms.any() {
                warn!(?measured, reason = alarms.reason(), "resource alarm: publishers are blocked");
            } else {
                info!(?measured, "resource alarm cleared: publishers may go on");
            }
        }
        self.state.send_if_modified(|state| {
            let changed = state.alarms != alarms;
            *state = measured;
            changed
        });
        measured
    }

    /// Admits a write of `bytes` against the disk floor: false (and the disk
    /// alarm on) when an alarm is on or the write would take the free-space
    /// estimate below the floor. A front door that gets false waits for the
    /// alarms to clear ([`ResourceAlarms::admit`]).
    pub fn try_admit(self: &Arc<Self>, bytes: u64) -> bool {
        if self.state.borrow().alarms.any() {
            return false;
        }
        let floor = self.disk_free_min_bytes.load(Ordering::SeqCst);
        let measure_early = {
            let mut last = self.last.lock();
            let Some(free) = last.disk_free_bytes else {
                // Not measured (yet, or at all): nothing to hold against.
                return true;
            };
            let estimate = free.saturating_sub(last.admitted_bytes);
            if estimate.saturating_sub(bytes) < floor && bytes > 0 {
                None
            } else {
                last.admitted_bytes += bytes;
                Some(last.admitted_bytes > MEASURE_AFTER_BYTES_MIN.max(free.saturating_sub(floor) / 2))
            }
        };
        match measure_early {
            None => {
                // Raise the alarm now rather than at the next measurement.
                self.last.lock().admission_refused = true;
                self.evaluate();
                self.measure_soon();
                false
            }
            Some(early) => {
                if early {
                    self.measure_soon();
                }
                true
            }
        }
    }

    /// Waits until no alarm is on and a write of `bytes` is admitted (see
    /// [`ResourceAlarms::try_admit`]); 0 bytes waits for the alarms only.
    pub async fn admit(self: &Arc<Self>, bytes: u64) {
        let mut watching = self.subscribe();
        loop {
            watching.borrow_and_update();
            if self.try_admit(bytes) {
                return;
            }
            if watching.changed().await.is_err() {
                return;
            }
        }
    }

    /// Takes a measurement on a blocking thread unless one is under way.
    fn measure_soon(self: &Arc<Self>) {
        if self.measuring.swap(true, Ordering::SeqCst) {
            return;
        }
        let alarms = Arc::clone(self);
        let measure = move || {
            alarms.check();
            alarms.measuring.store(false, Ordering::SeqCst);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(measure)),
            Err(_) => measure(),
        }
    }

    /// Bytes front doors hold for their connections now.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes.load(Ordering::SeqCst)
    }

    /// Counts `bytes` more held; raises the memory alarm at once when the
    /// total passes the ceiling.
    pub fn hold_bytes(&self, bytes: u64) {
        let total = self.held_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
        let max = self.memory_max_bytes.load(Ordering::Relaxed);
        if max > 0 && total > max && !self.state.borrow().alarms.memory {
            self.evaluate();
        }
    }

    /// Counts `bytes` no longer held; clears a memory alarm they raised.
    pub fn release_bytes(&self, bytes: u64) {
        let total = self.held_bytes.fetch_sub(bytes, Ordering::SeqCst).saturating_sub(bytes);
        let max = self.memory_max_bytes.load(Ordering::Relaxed);
        if total <= max && self.state.borrow().alarms.memory {
            self.evaluate();
        }
    }

    /// Measures every [`CHECK_INTERVAL`] until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(CHECK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let alarms = Arc::clone(&self);
                    // statvfs and /proc reads block.
                    let _ = tokio::task::spawn_blocking(move || alarms.check()).await;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

/// Bytes an unprivileged writer can still use on the file system holding `path`.
fn disk_free_bytes(path: &Path) -> Option<u64> {
    file_system_bytes(path).map(|bytes| bytes.usable_bytes)
}

/// The size of a file system and what of it a writer can still use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSystemBytes {
    pub total_bytes: u64,
    /// Free bytes an unprivileged writer can use (statvfs's `f_bavail`).
    pub usable_bytes: u64,
}

/// The file system holding `path`, measured by statvfs (blocking).
pub fn file_system_bytes(path: &Path) -> Option<FileSystemBytes> {
    let stats = rustix::fs::statvfs(path).ok()?;
    Some(FileSystemBytes {
        total_bytes: stats.f_blocks.saturating_mul(stats.f_frsize),
        usable_bytes: stats.f_bavail.saturating_mul(stats.f_frsize),
    })
}

/// The process's resident memory (Linux's `VmRSS`).
fn resident_memory_bytes() -> Option<u64> {
    kibibytes_field(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS:")
}

/// The machine's memory (Linux's `MemTotal`).
fn machine_memory_bytes() -> Option<u64> {
    kibibytes_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:")
}

/// A `Name:   1234 kB` line of a /proc file, in bytes.
fn kibibytes_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    let kibibytes: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kibibytes.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_read_in_bytes() {
        let status = "Name:\tconveyor\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(kibibytes_field(status, "VmRSS:"), Some(2 * 1024 * 1024));
        assert_eq!(kibibytes_field(status, "VmSwap:"), None);
        assert_eq!(kibibytes_field("VmRSS: lots", "VmRSS:"), None);
    }

    #[tokio::test]
    async fn a_disk_floor_above_the_free_space_raises_the_alarm_and_lowering_it_clears_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alarms = ResourceAlarms::new(dir.path());
        let mut watching = alarms.subscribe();
        let measured = alarms.check();
        assert!(measured.disk_free_bytes.is_some(), "statvfs works on the data directory");
        assert!(!measured.alarms.disk, "a temp dir has 50 MB free");
        let raised = alarms.set_limits(Some(u64::MAX), None);
        assert!(raised.alarms.disk && raised.alarms.any());
        assert_eq!(raised.alarms.reason(), "low on disk");
        assert!(watching.has_changed().expect("open"), "subscribers see the alarm");
        watching.borrow_and_update();
        let cleared = alarms.set_limits(Some(0), None);
        assert!(!cleared.alarms.disk);
        assert!(watching.has_changed().expect("open"), "and its end");
        let memory = alarms.set_limits(None, Some(1));
        assert!(memory.alarms.memory, "any process uses more than one byte");
        assert_eq!(memory.alarms.reason(), "low on memory");
    }

    #[tokio::test]
    async fn admitted_writes_count_against_the_floor_before_the_next_measurement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alarms = Arc::new(ResourceAlarms::new(dir.path()));
        let free = alarms.set_limits(Some(0), Some(0)).disk_free_bytes.expect("measured");
        // A floor 10 MB under the free space: 10 MB of writes fit, no more.
        let floor = free - 10_000_000;
        alarms.set_limits(Some(floor), None);
        assert!(alarms.try_admit(6_000_000));
        assert!(!alarms.try_admit(6_000_000), "6 + 6 MB would pass the floor");
        assert!(alarms.measured().alarms.disk, "the alarm is on at once, without a measurement");
        let cleared = alarms.set_limits(Some(0), None);
        assert!(!cleared.alarms.disk);
        assert!(alarms.try_admit(6_000_000), "a measurement with a lower floor admits again");
    }

    #[tokio::test]
    async fn held_bytes_past_the_memory_ceiling_raise_the_alarm_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alarms = Arc::new(ResourceAlarms::new(dir.path()));
        // A ceiling far above the resident memory: only held bytes can pass it.
        alarms.set_limits(Some(0), Some(1 << 40));
        alarms.hold_bytes((1 << 40) + 1);
        assert!(alarms.measured().alarms.memory, "held bytes count at once");
        assert!(!alarms.try_admit(0), "publishers wait");
        alarms.release_bytes((1 << 40) + 1);
        assert!(!alarms.measured().alarms.memory);
        assert!(alarms.try_admit(0));
    }
}
