//! The raw disk baseline benchmarks are compared with: sequential 1 MiB
//! `write`s to a new file, each followed by `fdatasync` — the best a durable
//! (acknowledged-after-fsync) broker could do on the same file system.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::report::{Phase, latency_histogram};

const CHUNK_BYTES: usize = 1024 * 1024;

/// Writes for `duration` or `bytes_max`, whichever comes first, to a scratch
/// file in `dir` that is removed afterwards. Blocking.
pub fn fdatasync_baseline(dir: &Path, duration: Duration, bytes_max: u64) -> std::io::Result<Phase> {
    let path = dir.join(format!(".conveyor-bench-baseline-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new().create_new(true).write(true).open(&path)?;
        let chunk = vec![0x5a_u8; CHUNK_BYTES];
        let started = Instant::now();
        let mut written = 0u64;
        let mut chunks = 0u64;
        while started.elapsed() < duration && written < bytes_max {
            file.write_all(&chunk)?;
            file.sync_data()?;
            written += CHUNK_BYTES as u64;
            chunks += 1;
        }
        Ok(Phase::new("disk: 1 MiB write+fdatasync", chunks, written, started.elapsed()))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Runs the paced baseline as long as a latency phase of `rate` messages of
/// `message_bytes` a second for `seconds` (capped by `messages`) ran, and
/// gives `latency` its p99 as a ratio of the baseline's. Returns the
/// baseline's phase.
pub async fn paced_baseline_for(
    latency: &mut Phase,
    dir: std::path::PathBuf,
    rate: u64,
    seconds: u64,
    messages: u64,
    message_bytes: usize,
) -> anyhow::Result<Phase> {
    use anyhow::Context as _;
    let seconds = super::latency_seconds(rate, seconds, messages);
    let disk = tokio::task::spawn_blocking(move || paced_fdatasync_baseline(&dir, rate, seconds, message_bytes))
        .await?
        .context("paced disk baseline")?;
    if let (Some(ours), Some(floor)) = (latency.latency_ms, disk.latency_ms) {
        latency.p99_ratio_to_baseline = Some(ours.p99 / floor.p99.max(1e-3));
    }
    Ok(disk)
}

/// The latency floor of a durable broker on this disk: `rate` messages of
/// `message_bytes` per second for `seconds`, appended by one writer that
/// group-commits whatever is due (one `pwrite` and one `fdatasync`), as the
/// log's writer does. A message's latency is from when it was due to when
/// its `fdatasync` returned, so disk stalls count for every message queued
/// behind them. Blocking.
pub fn paced_fdatasync_baseline(dir: &Path, rate: u64, seconds: u64, message_bytes: usize) -> std::io::Result<Phase> {
    let path = dir.join(format!(".conveyor-bench-paced-{}", std::process::id()));
    let result = (|| {
        let file = OpenOptions::new().create_new(true).write(true).open(&path)?;
        let total = rate * seconds;
        let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
        let mut histogram = latency_histogram();
        let chunk = vec![0x5a_u8; message_bytes * 1024];
        let (mut written, mut position) = (0u64, 0u64);
        let started = Instant::now();
        // Bounded: every pass either writes at least one due message or sleeps until one is due.
        while written < total {
            let due = ((started.elapsed().as_secs_f64() / interval.as_secs_f64()) as u64 + 1).min(total);
            if due <= written {
                std::thread::sleep((started + interval.mul_f64(written as f64)).saturating_duration_since(Instant::now()));
                continue;
            }
            let count = ((due - written) as usize).min(1024);
            file.write_all_at(&chunk[..count * message_bytes], position)?;
            file.sync_data()?;
            let done = started.elapsed();
            for index in written..written + count as u64 {
                let late = done.saturating_sub(interval.mul_f64(index as f64));
                let _ = histogram.record((late.as_micros() as u64).max(1));
            }
            position += (count * message_bytes) as u64;
            written += count as u64;
        }
        Ok(Phase::new(&format!("disk: paced @ {rate}/s"), total, position, started.elapsed()).with_latency(&histogram))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// One phase for the baselines measured before and after a run: their bytes
/// and time added up, so a disk that changed speed midway shows as the mean.
pub fn combine(before: Phase, after: Phase) -> Phase {
    Phase::new(
        &before.name,
        before.messages + after.messages,
        before.bytes + after.bytes,
        Duration::from_secs_f64(before.seconds + after.seconds),
    )
}
