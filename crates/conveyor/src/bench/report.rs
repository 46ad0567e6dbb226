//! Throughput and latency summaries printed by the benchmarks: one format for
//! every protocol, readable by people and, with `--json`, by scripts.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub megabytes_per_second: f64,
    /// Bytes read or written including protocol framing, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// MB/s over a raw baseline's MB/s measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<f64>,
    /// p99 latency over a raw baseline's p99 measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ratio_to_baseline: Option<f64>,
    /// Messages per second over those of another phase of the same run
    /// (its name, the ratio): produce while the cleaner compacts over
    /// produce without compaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_phase: Option<(String, f64)>,
    /// The broker process's CPU seconds (user + system) per 100,000
    /// messages of this phase, when its PID was given (`--broker-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_cpu_seconds_per_100k: Option<f64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub samples: u64,
}

impl Phase {
    pub fn new(name: &str, messages: u64, bytes: u64, elapsed: Duration) -> Phase {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Phase {
            name: name.to_owned(),
            messages,
            bytes,
            seconds,
            messages_per_second: messages as f64 / seconds,
            megabytes_per_second: bytes as f64 / seconds / 1_000_000.0,
            wire_bytes: None,
            latency_ms: None,
            ratio_to_baseline: None,
            p99_ratio_to_baseline: None,
            ratio_to_phase: None,
            broker_cpu_seconds_per_100k: None,
        }
    }

    /// Notes the broker CPU seconds this phase took, per 100k of its messages.
    pub fn with_broker_cpu_seconds(mut self, seconds: f64) -> Phase {
        self.broker_cpu_seconds_per_100k = Some(seconds * 100_000.0 / (self.messages.max(1) as f64));
        self
    }

    /// An end-to-end latency phase: `messages` of `message_bytes` each, sent
    /// at `rate` a second, each timed from its send to its receipt.
    pub fn end_to_end(rate: u64, messages: u64, message_bytes: usize, elapsed: Duration, histogram: &Histogram<u64>) -> Phase {
        Phase::new(&format!("e2e @ {rate}/s"), messages, messages * message_bytes as u64, elapsed).with_latency(histogram)
    }

    pub fn with_latency(mut self, histogram: &Histogram<u64>) -> Phase {
        if !histogram.is_empty() {
            let ms = |micros: u64| micros as f64 / 1000.0;
            self.latency_ms = Some(Latency {
                p50: ms(histogram.value_at_quantile(0.50)),
                p99: ms(histogram.value_at_quantile(0.99)),
                p999: ms(histogram.value_at_quantile(0.999)),
                max: ms(histogram.max()),
                samples: histogram.len(),
            });
        }
        self
    }
}

/// How every bench and client command reports: flags shared by
/// `conveyor bench *` and the admin commands (`conveyor topic …`). Global,
/// so they may follow any subcommand of the command that flattens them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Output {
    /// Print the result as JSON, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,
}

impl Output {
    /// Takes the flags `outer` (given before the command name) set.
    pub fn inherit(&mut self, outer: &Output) {
        self.json |= outer.json;
        self.quiet |= outer.quiet;
    }

    /// A progress bar, hidden with `--quiet` or `--json`.
    pub fn progress(&self, total: u64, label: &str) -> indicatif::ProgressBar {
        progress(self.quiet || self.json, total, label)
    }

    /// A running count of messages for work of unknown length (lines read
    /// from a pipe), hidden like [`Output::progress`].
    pub fn counter(&self, label: &str) -> indicatif::ProgressBar {
        if self.quiet || self.json {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::no_length();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>12} {pos} msgs {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(label.to_owned());
        bar
    }
}

fn progress(hidden: bool, total: u64, label: &str) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} msgs {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar
}

/// A histogram of microseconds from 1 µs to 60 s with 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid histogram bounds")
}

pub fn print(title: &str, phases: &[Phase], json: bool) {
    if json {
        match serde_json::to_string_pretty(phases) {
            Ok(text) => crate::cli::render::out!("{text}"),
            Err(error) => eprintln!("could not render JSON: {error}"),
        }
        return;
    }
    crate::cli::render::out!("\n{title}");
    crate::cli::render::out!(
        "{:<22} {:>12} {:>12} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "phase",
        "msgs/s",
        "MB/s",
        "messages",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms"
    );
    for phase in phases {
        let latency = |value: Option<f64>| value.map(|ms| format!("{ms:.2}")).unwrap_or_else(|| "-".into());
        crate::cli::render::out!(
            "{:<22} {:>12.0} {:>12.1} {:>10} {:>9} {:>9} {:>9} {:>9}",
            phase.name,
            phase.messages_per_second,
            phase.megabytes_per_second,
            phase.messages,
            latency(phase.latency_ms.map(|l| l.p50)),
            latency(phase.latency_ms.map(|l| l.p99)),
            latency(phase.latency_ms.map(|l| l.p999)),
            latency(phase.latency_ms.map(|l| l.max)),
        );
    }
    for phase in phases {
        if let Some(ratio) = phase.ratio_to_baseline {
            crate::cli::render::out!("{} MB/s is {ratio:.2} × the disk baseline measured in the same run", phase.name);
        }
        if let Some((other, ratio)) = &phase.ratio_to_phase {
            crate::cli::render::out!("{} msg/s is {ratio:.2} × {other}'s, in the same run", phase.name);
        }
        if let Some(seconds) = phase.broker_cpu_seconds_per_100k {
            crate::cli::render::out!("{} took {seconds:.2} s of broker CPU per 100k messages", phase.name);
        }
        if let Some(ratio) = phase.p99_ratio_to_baseline {
            crate::cli::render::out!(
                "{} p99 is {ratio:.2} × the paced disk baseline's p99 measured in the same run",
                phase.name
            );
        }
    }
}
