//! A check that no blocking file operation or blocking wait runs on an
//! async reactor thread. The binary marks its runtime's worker threads
//! ([`mark_reactor_thread`], from tokio's park hooks, which only workers
//! run); the real storage backend and the log's blocking waits call
//! [`check`] first. A violation is counted ([`blocking_calls_on_reactor`],
//! exported as a metric), logged with the operation, and with
//! `CONVEYOR_REACTOR_GUARD=panic` in a debug build it panics, so a test
//! finds the call site. Knows threads; nothing of files or the runtime.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Set to `panic` (debug builds) to panic at a blocking call on a reactor thread.
pub const GUARD_ENV: &str = "CONVEYOR_REACTOR_GUARD";
/// Violations logged in full; later ones are only counted.
const LOGGED_MAX: u64 = 20;

thread_local! {
    static ON_REACTOR: Cell<bool> = const { Cell::new(false) };
}

static VIOLATIONS: AtomicU64 = AtomicU64::new(0);

/// Marks the calling thread as an async reactor (worker) thread.
pub fn mark_reactor_thread() {
    ON_REACTOR.with(|flag| flag.set(true));
}

/// Whether the calling thread was marked as a reactor thread.
pub fn on_reactor_thread() -> bool {
    ON_REACTOR.with(Cell::get)
}

/// Blocking calls made on reactor threads since the process started.
pub fn blocking_calls_on_reactor() -> u64 {
    VIOLATIONS.load(Ordering::Relaxed)
}

/// Called before a blocking operation (`what` names it).
pub fn check(what: &'static str) {
    if !on_reactor_thread() {
        return;
    }
    let count = VIOLATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    if count <= LOGGED_MAX {
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(operation = what, ?backtrace, "a blocking call ran on an async reactor thread");
    }
    if cfg!(debug_assertions) && panics() {
        panic!("blocking call on an async reactor thread: {what}");
    }
}

/// Runs `blocking` with the calling thread not counted as a reactor
/// thread, for a caller that has already handed the worker's tasks to
/// another thread (`tokio::task::block_in_place`). The mark stays off
/// afterwards: the thread may not get its worker back, and then ends in
/// the blocking pool, whose tasks may block; if it does, its next unpark
/// marks it again.
pub fn off_reactor<R>(blocking: impl FnOnce() -> R) -> R {
    ON_REACTOR.with(|flag| flag.set(false));
    blocking()
}

fn panics() -> bool {
    static PANICS: OnceLock<bool> = OnceLock::new();
    *PANICS.get_or_init(|| std::env::var(GUARD_ENV).is_ok_and(|value| value == "panic"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marked_threads_count_blocking_calls() {
        let before = blocking_calls_on_reactor();
        check("on an unmarked thread");
        std::thread::spawn(|| {
            mark_reactor_thread();
            check("on a marked thread");
        })
        .join()
        .expect("thread");
        // Other tests of this crate run on unmarked threads, so exactly the
        // marked thread's call counted.
        assert_eq!(blocking_calls_on_reactor(), before + 1);
    }
}
