//! The raw disk baseline benchmarks are compared with: sequential 1 MiB
//! `write`s to a new file, each followed by `fdatasync` — the best a durable
//! (acknowledged-after-fsync) broker could do on the same file system.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::report::Phase;

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
