//! Resource alarms, as RabbitMQ has them: when free disk space under the
//! data directory falls below a floor, or the broker's resident memory
//! rises above a ceiling, an alarm goes off and front doors stop taking
//! publishes (AMQP's `connection.blocked`) until it clears. Nothing is
//! refused or lost: publishers wait. The limits can change while the broker
//! runs (an operator's `set_disk_free_limit`); a timer checks both.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

/// How often the timer measures.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// RabbitMQ's `disk_free_limit` default.
pub const DISK_FREE_MIN_BYTES_DEFAULT: u64 = 50_000_000;
/// RabbitMQ's `vm_memory_high_watermark` default: this share of the machine's memory.
const MEMORY_SHARE_DEFAULT: f64 = 0.6;

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
    pub disk_free_bytes: Option<u64>,
    pub disk_free_min_bytes: u64,
    pub memory_used_bytes: Option<u64>,
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
    state: watch::Sender<Measured>,
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
            memory_max_bytes,
            alarms: Alarms::default(),
        });
        ResourceAlarms {
            data_dir: data_dir.to_path_buf(),
            disk_free_min_bytes: AtomicU64::new(DISK_FREE_MIN_BYTES_DEFAULT),
            memory_max_bytes: AtomicU64::new(memory_max_bytes),
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
    /// (subscribers wake only when the alarms change).
    pub fn check(&self) -> Measured {
        let disk_free_bytes = disk_free_bytes(&self.data_dir);
        let memory_used_bytes = resident_memory_bytes();
        let disk_free_min_bytes = self.disk_free_min_bytes.load(Ordering::SeqCst);
        let memory_max_bytes = self.memory_max_bytes.load(Ordering::SeqCst);
        // What cannot be measured raises no alarm.
        let alarms = Alarms {
            disk: disk_free_bytes.is_some_and(|free| free < disk_free_min_bytes),
            memory: memory_max_bytes > 0 && memory_used_bytes.is_some_and(|used| used > memory_max_bytes),
        };
        let measured = Measured {
            disk_free_bytes,
            disk_free_min_bytes,
            memory_used_bytes,
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
    let stats = rustix::fs::statvfs(path).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
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
}
