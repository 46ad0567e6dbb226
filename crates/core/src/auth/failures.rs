//! Failed logins and authorization denials: counted for `/metrics`
//! (`conveyor_auth_failures_total{protocol,reason}`,
//! `conveyor_authorization_denials_total{protocol}`), logged at most
//! [`LOG_LINES_PER_WINDOW`] lines per window (then a count of what was left
//! out), and slowed down per client address: after a few failures a door
//! delays its refusal, in that connection's task, for longer each time.
//! Counters, not state: nothing here is durable.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::warn;

/// Failures an address may make before its refusals are delayed.
const FAILURES_FREE: u32 = 3;
/// The first delay; each further failure doubles it up to [`DELAY_MAX`].
const DELAY_FIRST: Duration = Duration::from_millis(200);
const DELAY_MAX: Duration = Duration::from_secs(5);
/// An address's failures are forgotten this long after its last one.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Addresses tracked at once; bounds the memory a spray of addresses takes.
const ADDRESSES_MAX: usize = 10_000;
/// Log lines about failures and denials per window.
pub const LOG_LINES_PER_WINDOW: u32 = 10;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Why a login failed: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureReason {
    /// No such user.
    UnknownUser,
    /// The user exists; the password (or proof, or signature) is wrong.
    BadCredentials,
    /// No credentials, where anonymous access is not allowed.
    AnonymousRefused,
    /// A user only loopback clients may be (RabbitMQ's `guest`).
    LoopbackOnly,
    /// A mechanism the door does not offer, or an unreadable response.
    BadMechanism,
}

impl FailureReason {
    pub fn label(self) -> &'static str {
        match self {
            FailureReason::UnknownUser => "unknown_user",
            FailureReason::BadCredentials => "bad_credentials",
            FailureReason::AnonymousRefused => "anonymous_refused",
            FailureReason::LoopbackOnly => "loopback_only",
            FailureReason::BadMechanism => "bad_mechanism",
        }
    }
}

#[derive(Debug, Default)]
pub struct AuthFailures {
    logins: Mutex<BTreeMap<(&'static str, FailureReason), u64>>,
    denials: Mutex<BTreeMap<&'static str, u64>>,
    by_address: Mutex<HashMap<IpAddr, Recent>>,
    log: Mutex<LogWindow>,
}

#[derive(Debug, Clone, Copy)]
struct Recent {
    failures: u32,
    last: Instant,
}

#[derive(Debug, Default)]
struct LogWindow {
    started: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

impl AuthFailures {
    /// Counts and logs a failed login from `peer`; returns how long the door
    /// should wait before it answers (zero for an address's first failures).
    pub fn login_failed(&self, protocol: &'static str, reason: FailureReason, peer: IpAddr, user: &str) -> Duration {
        *self.logins.lock().entry((protocol, reason)).or_default() += 1;
        if self.may_log() {
            warn!(protocol, reason = reason.label(), %peer, user, "login refused");
        }
        self.delay_after_failure(peer, Instant::now())
    }

    /// Counts and logs an authorization denial.
    pub fn denied(&self, protocol: &'static str, user: &str, what: &str) {
        *self.denials.lock().entry(protocol).or_default() += 1;
        if self.may_log() {
            warn!(protocol, user, what, "access refused");
        }
    }

    /// (protocol, reason, count) of every failed login so far.
    pub fn login_failures(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.logins
            .lock()
            .iter()
            .map(|((protocol, reason), count)| (*protocol, reason.label(), *count))
            .collect()
    }

    /// (protocol, count) of every denial so far.
    pub fn denials(&self) -> Vec<(&'static str, u64)> {
        self.denials.lock().iter().map(|(protocol, count)| (*protocol, *count)).collect()
    }

    fn delay_after_failure(&self, peer: IpAddr, now: Instant) -> Duration {
        let mut by_address = self.by_address.lock();
        if by_address.len() >= ADDRESSES_MAX && !by_address.contains_key(&peer) {
            by_address.retain(|_, recent| now.duration_since(recent.last) < FORGET_AFTER);
            if by_address.len() >= ADDRESSES_MAX {
                // Still full of active addresses: this one is slowed at once.
                return DELAY_MAX;
            }
        }
        let recent = by_address.entry(peer).or_insert(Recent { failures: 0, last: now });
        if now.duration_since(recent.last) >= FORGET_AFTER {
            recent.failures = 0;
        }
        recent.failures = recent.failures.saturating_add(1);
        recent.last = now;
        delay_for(recent.failures)
    }

    /// True while this window has log lines left; rolls the window and
    /// reports what the last one left out.
    fn may_log(&self) -> bool {
        let now = Instant::now();
        let mut log = self.log.lock();
        if log.started.is_none_or(|started| now.duration_since(started) >= LOG_WINDOW) {
            if log.suppressed > 0 {
                warn!(
                    suppressed = log.suppressed,
                    "more login failures and access refusals were not logged"
                );
            }
            *log = LogWindow {
                started: Some(now),
                lines: 0,
                suppressed: 0,
            };
        }
        if log.lines < LOG_LINES_PER_WINDOW {
            log.lines += 1;
            true
        } else {
            log.suppressed += 1;
            false
        }
    }
}

/// The delay after an address's `failures`-th recent failure.
fn delay_for(failures: u32) -> Duration {
    if failures <= FAILURES_FREE {
        return Duration::ZERO;
    }
    let doublings = (failures - FAILURES_FREE - 1).min(16);
    DELAY_FIRST.saturating_mul(1 << doublings).min(DELAY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_from_one_address_are_delayed_more_and_more() {
        let failures = AuthFailures::default();
        let attacker: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let now = Instant::now();
        let delays: Vec<Duration> = (0..8).map(|_| failures.delay_after_failure(attacker, now)).collect();
        assert_eq!(&delays[..3], &[Duration::ZERO; 3]);
        assert_eq!(delays[3], DELAY_FIRST);
        assert_eq!(delays[4], DELAY_FIRST * 2);
        assert_eq!(delays[7], DELAY_MAX.min(DELAY_FIRST * 16));
        assert_eq!(
            failures.delay_after_failure(other, now),
            Duration::ZERO,
            "another address is not slowed"
        );
        let later = now + FORGET_AFTER;
        assert_eq!(
            failures.delay_after_failure(attacker, later),
            Duration::ZERO,
            "forgotten after a quiet minute"
        );
    }

    #[test]
    fn failures_and_denials_are_counted_by_label() {
        let failures = AuthFailures::default();
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        failures.login_failed("amqp", FailureReason::BadCredentials, peer, "alice");
        failures.login_failed("amqp", FailureReason::BadCredentials, peer, "alice");
        failures.login_failed("http", FailureReason::UnknownUser, peer, "mallory");
        failures.denied("amqp", "alice", "queue 'q'");
        assert_eq!(
            failures.login_failures(),
            vec![("amqp", "bad_credentials", 2), ("http", "unknown_user", 1)]
        );
        assert_eq!(failures.denials(), vec![("amqp", 1)]);
    }

    #[test]
    fn logging_is_bounded_per_window() {
        let failures = AuthFailures::default();
        let logged = (0..100).filter(|_| failures.may_log()).count();
        assert_eq!(logged, LOG_LINES_PER_WINDOW as usize);
    }
}
