//! A bytes-per-second budget for background I/O (Kafka's
//! `log.cleaner.io.max.bytes.per.second`): the cleaner reports what it read
//! and wrote, and is held back whenever it ran ahead of the budget. Knows
//! bytes and time only.

use std::time::{Duration, Instant};

/// Waits longer than this are cut into pieces of it, so a throttled cleaner
/// still notices a stop request between them.
const WAIT_STEP_MAX: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Throttle {
    bytes_per_second_max: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    /// `None` means no limit.
    pub fn new(bytes_per_second_max: Option<u64>) -> Throttle {
        Throttle {
            bytes_per_second_max: bytes_per_second_max.filter(|&limit| limit > 0),
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// How long the work done so far must wait to stay within the budget.
    pub fn debt(&self) -> Duration {
        let Some(limit) = self.bytes_per_second_max else {
            return Duration::ZERO;
        };
        let due = Duration::from_secs_f64(self.bytes as f64 / limit as f64);
        due.saturating_sub(self.started.elapsed())
    }

    /// Counts `bytes` of I/O and blocks the calling (background) thread
    /// until the budget allows them. Rate limiting is this wait's purpose.
    pub fn account(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        let mut debt = self.debt();
        // Bounded: each step waits at least a slice of the remaining debt.
        while !debt.is_zero() {
            std::thread::sleep(debt.min(WAIT_STEP_MAX));
            debt = self.debt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_owes() {
        let mut throttle = Throttle::new(None);
        throttle.account(u64::MAX / 2);
        assert_eq!(throttle.debt(), Duration::ZERO);
    }

    #[test]
    fn work_beyond_the_budget_owes_time() {
        let throttle = Throttle {
            bytes_per_second_max: Some(1_000),
            started: Instant::now(),
            bytes: 10_000,
        };
        assert!(throttle.debt() > Duration::from_secs(9), "{:?}", throttle.debt());
    }
}
