//! The CPU time a broker process spends during a bench phase, read from
//! `/proc/<pid>/stat` (user + system time of all its threads) and reported
//! per 100,000 messages, so brokers are compared by the work each message
//! costs them rather than by wall-clock rates alone. Knows Linux's proc
//! format; nothing of the protocols.

use std::future::Future;

use anyhow::Context;

use super::report::Phase;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: Linux's USER_HZ,
/// fixed at 100 in its user-space ABI (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

/// Which broker process to measure (`--broker-pid`); none: nothing measured.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BrokerProcess {
    /// The broker's process id on this machine: each phase then reports the
    /// broker's CPU seconds per 100k messages (user + system, from
    /// /proc/<pid>/stat).
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
}

impl BrokerProcess {
    /// Runs `phase`, and notes on its result the broker CPU time it took.
    pub async fn measure(&self, phase: impl Future<Output = anyhow::Result<Phase>>) -> anyhow::Result<Phase> {
        let before = self.cpu_seconds()?;
        let mut measured = phase.await?;
        if let (Some(before), Some(after)) = (before, self.cpu_seconds()?) {
            measured = measured.with_broker_cpu_seconds(after - before);
        }
        Ok(measured)
    }

    /// The broker's user + system CPU seconds so far.
    fn cpu_seconds(&self) -> anyhow::Result<Option<f64>> {
        let Some(pid) = self.broker_pid else { return Ok(None) };
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path} (--broker-pid)"))?;
        Ok(Some(cpu_seconds_of(&stat).with_context(|| format!("parsing {path}"))?))
    }
}

/// User + system seconds of a `/proc/<pid>/stat` line: fields 14 and 15,
/// counted after the command name (field 2, in parentheses, which may hold
/// spaces and parentheses itself).
fn cpu_seconds_of(stat: &str) -> anyhow::Result<f64> {
    let (_, after_name) = stat.rsplit_once(')').context("no command name")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (the state).
    let ticks = |field: usize| -> anyhow::Result<u64> {
        let text = fields.get(field - 3).with_context(|| format!("no field {field}"))?;
        text.parse().with_context(|| format!("field {field} is {text:?}"))
    };
    Ok((ticks(14)? + ticks(15)?) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_time_are_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (conveyor (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert!((cpu_seconds_of(stat).expect("parsed") - 3.25).abs() < 1e-9);
        assert!(cpu_seconds_of("4242 (conveyor) S 1").is_err(), "too short");
    }

    #[tokio::test]
    async fn a_phase_notes_the_cpu_time_the_process_spent_per_100k_messages() {
        let me = BrokerProcess {
            broker_pid: Some(std::process::id()),
        };
        let start = me.cpu_seconds().expect("read").expect("measured");
        let phase = me
            .measure(async {
                // Busy until the kernel has counted a few ticks (bounded).
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while me.cpu_seconds()?.unwrap_or(start) < start + 0.05 && std::time::Instant::now() < deadline {
                    std::hint::black_box((0..10_000u64).sum::<u64>());
                }
                Ok(Phase::new("busy", 50_000, 0, std::time::Duration::from_secs(1)))
            })
            .await
            .expect("measured");
        let per_100k = phase.broker_cpu_seconds_per_100k.expect("noted");
        assert!(
            per_100k >= 0.1,
            "0.05 s or more over 50k messages is 0.1 s or more per 100k, not {per_100k}"
        );
        assert!(BrokerProcess::default().cpu_seconds().expect("nothing to read").is_none());
    }
}
