//! A `conveyor serve` the scale and backlog benchmarks start themselves
//! (this binary, loopback listeners on free ports, a data directory they
//! name), so they can read its threads, open files and memory from
//! `/proc` and restart it. Knows processes and `/proc`; nothing about what
//! a benchmark does with the broker.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

/// How long a start (opening every queue and partition) or a stop may take.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// The data directory of the broker a benchmark starts, as its flags give it.
#[derive(Debug, clap::Args)]
pub struct DataDir {
    /// The broker's data directory (a new one under the temporary
    /// directory if not given); removed at the end unless --keep.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the data directory.
    #[arg(long)]
    pub keep: bool,
}

impl DataDir {
    /// Runs benchmark `bench` (`work`, which also reports) in the data
    /// directory, then removes the directory unless --keep: a temporary one
    /// always, a given one only if `work` succeeded. `work` reports before
    /// the directory goes: removing thousands of queues' files can take
    /// minutes on a disk that discards freed blocks.
    pub async fn run(&self, bench: &str, work: impl AsyncFnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let (data_dir, temporary) = match &self.data_dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!("conveyor-bench-{bench}-{}", super::unique_suffix())),
                true,
            ),
        };
        let reported = work(&data_dir).await;
        if !self.keep && (temporary || reported.is_ok()) {
            let _ = std::fs::remove_dir_all(&data_dir);
        }
        reported
    }
}

/// A broker this process started; killed if dropped still running.
#[derive(Debug)]
pub struct SpawnedBroker {
    child: Child,
    pub kafka: SocketAddr,
    pub amqp: SocketAddr,
    /// From the spawn to its ready line (every listener up, the data
    /// directory open).
    pub started_in: Duration,
}

/// What `/proc` says of a process at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcessSample {
    pub threads: u64,
    pub open_files: u64,
    /// `VmRSS`: resident memory, including file pages it maps.
    pub rss_bytes: u64,
    /// `RssAnon`: resident memory that is not the page cache's.
    pub rss_anon_bytes: u64,
}

impl SpawnedBroker {
    /// Starts `conveyor serve` on `data_dir` (with `config`, a TOML file,
    /// if given) and waits for its ready line.
    pub fn start(data_dir: &Path, config: Option<&Path>) -> anyhow::Result<SpawnedBroker> {
        let binary = std::env::current_exe().context("finding this binary")?;
        let mut command = Command::new(binary);
        command.arg("serve").arg("--data-dir").arg(data_dir);
        for flag in ["--http-addr", "--kafka-addr", "--amqp-addr"] {
            command.args([flag, "127.0.0.1:0"]);
        }
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let started = Instant::now();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting conveyor serve")?;
        let stdout = child.stdout.take().context("the broker's stdout")?;
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = started + START_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(remaining) else {
                let _ = child.kill();
                let _ = child.wait();
                bail!("conveyor serve did not report ready within {START_TIMEOUT:?}");
            };
            if let (Some(kafka), Some(amqp)) = (address_after(&line, " kafka "), address_after(&line, " amqp ")) {
                return Ok(SpawnedBroker {
                    child,
                    kafka,
                    amqp,
                    started_in: started.elapsed(),
                });
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The AMQP URL of its default vhost with the default user.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.amqp)
    }

    /// One AMQP connection to it with `count` channels in confirm mode.
    pub async fn amqp_channels(&self, count: usize) -> anyhow::Result<(lapin::Connection, Vec<lapin::Channel>)> {
        let connection = lapin::DefaultConnectionBuilder::new()?
            .with_uri_str(self.amqp_url())
            .with_properties(lapin::ConnectionProperties::default())
            .connect()
            .await
            .context("connecting over AMQP")?;
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count {
            let channel = connection.create_channel().await?;
            channel.confirm_select(lapin::options::ConfirmSelectOptions::default()).await?;
            channels.push(channel);
        }
        Ok((connection, channels))
    }

    /// Its threads, open files and memory now.
    pub fn sample(&self) -> anyhow::Result<ProcessSample> {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
            let number = line.trim().trim_end_matches("kB").trim();
            number.parse().with_context(|| format!("{name} {number:?}"))
        };
        let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .context("reading /proc/PID/fd")?
            .count() as u64;
        Ok(ProcessSample {
            threads: field("Threads:")?,
            open_files,
            rss_bytes: field("VmRSS:")? * 1024,
            rss_anon_bytes: field("RssAnon:")? * 1024,
        })
    }

    /// SIGTERM, and waits for a clean exit; returns how long it took.
    pub fn stop(mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let signalled = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("running kill")?;
        if !signalled.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        // Bounded: polled until it exits or the stop timeout passes.
        while started.elapsed() < STOP_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("conveyor serve exited with {status} on SIGTERM");
                }
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("conveyor serve did not stop within {STOP_TIMEOUT:?}")
    }
}

impl Drop for SpawnedBroker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address after `label` in the broker's ready line.
fn address_after(line: &str, label: &str) -> Option<SocketAddr> {
    if !line.contains(" ready:") {
        return None;
    }
    line.split(label).nth(1)?.split_whitespace().next()?.parse().ok()
}

/// Bytes as MiB, for reports.
pub fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listeners_are_read_from_the_ready_line_only() {
        let line = "conveyor ready: http 127.0.0.1:8080 kafka 127.0.0.1:9092 amqp 127.0.0.1:5672";
        assert_eq!(address_after(line, " kafka "), Some("127.0.0.1:9092".parse().expect("address")));
        assert_eq!(address_after("listening: kafka 127.0.0.1:9092", " kafka "), None);
    }
}
