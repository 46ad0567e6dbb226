//! One journaled state machine's files: its events as records in a log of
//! their own (`<dir>/log/`, one record per event, one batch per append) and
//! a snapshot (`<dir>/snapshot.json`, the state after every event below an
//! offset). Opening replays the snapshot plus the events after it; a
//! snapshot is written only once every event it reflects is durable, and the
//! journal's prefix it covers is dropped after it. Knows records and files;
//! the state and its lock belong to the caller, which appends under the lock
//! that orders its changes, so the journal's order is the state's.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use conveyor_log::clock::Clock;
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{AppendInfo, Appending, Durability, Log, LogConfig, LogError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{JournalError, StateMachine};
use crate::record_batches::decode_batches;

/// Bytes read from the journal per step of the replay.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// How a journal is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// When an append is acknowledged (the log's policy).
    pub durability: Durability,
    pub segment_bytes: u64,
    /// Snapshot after this many events, so a replay reads at most about
    /// this many.
    pub snapshot_every_events: u64,
    /// Room the journal keeps reserved past its end (`LogConfig::reserve_bytes`),
    /// so it can still append on a full file system.
    pub reserve_bytes: u64,
}

/// What opening a journal rebuilt.
#[derive(Debug)]
pub struct Replayed<M> {
    pub state: M,
    /// Events replayed on top of the snapshot.
    pub events: u64,
}

/// The snapshot file as written: the offset first, then the machine's fields.
#[derive(Serialize)]
struct SnapshotOut<'a, S> {
    offset: u64,
    #[serde(flatten)]
    state: &'a S,
}

/// The snapshot file as read; `journal_offset` is what cursor snapshots
/// called the offset before every journal shared this format.
#[derive(Deserialize)]
struct SnapshotIn<S> {
    #[serde(alias = "journal_offset")]
    offset: u64,
    #[serde(flatten)]
    state: S,
}

#[derive(Debug)]
struct Progress {
    /// Offset after the last event enqueued: what a snapshot of the state
    /// as of now covers.
    end: u64,
    /// The offset the newest snapshot on disk covers, if there is one.
    snapshot_offset: Option<u64>,
    /// A snapshot falls due once `end` reaches this.
    snapshot_due_end: u64,
}

/// A state machine's journal and snapshot. See the module documentation.
pub struct Journaled<M> {
    log: Log,
    dir: PathBuf,
    snapshot_path: PathBuf,
    clock: Arc<dyn Clock>,
    snapshot_every_events: u64,
    /// Taken while an append is enqueued, so `end` follows the log's order.
    progress: Mutex<Progress>,
    /// Set when an append fails: the caller's state may hold events the
    /// journal lost, so no snapshot may be written from it.
    diverged: Arc<AtomicBool>,
    /// Serializes snapshot writes (lock order: before `progress`).
    snapshotting: Mutex<()>,
    machine: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for Journaled<M> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Journaled")
            .field("dir", &self.dir)
            .field("progress", &*self.progress.lock())
            .field("diverged", &self.diverged.load(Ordering::Relaxed))
            .finish()
    }
}

impl<M: StateMachine> Journaled<M> {
    /// Opens (or creates) the journal under `dir` and replays it: the
    /// snapshot, then every event after it. Refuses (rather than start from
    /// less) a snapshot or event that does not decode, and a journal whose
    /// events before its start are in no snapshot. A snapshot ahead of the
    /// journal (a tail lost under a policy weaker than `always`) is
    /// rewritten to cover the journal's end, so later events are not
    /// mistaken for ones it covers. Blocking.
    pub fn open(dir: &Path, config: JournalConfig, clock: Arc<dyn Clock>) -> Result<(Journaled<M>, Replayed<M>), JournalError> {
        // Durably named: its parent is fsynced before anything in it is acknowledged.
        conveyor_log::index::create_dir_all(dir).map_err(|source| JournalError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let log_config = LogConfig {
            // The snapshot bounds replay; the prefix it covers is dropped
            // explicitly once it is durable, never by retention.
            retention_ms: None,
            retention_bytes: None,
            segment_bytes: config.segment_bytes,
            durability: config.durability,
            reserve_bytes: config.reserve_bytes,
            ..LogConfig::default()
        };
        let log = Log::open_with_clock(dir.join("log"), log_config, Arc::clone(&clock))?;
        let snapshot_path = dir.join("snapshot.json");
        let snapshot = read_snapshot::<M>(&snapshot_path)?;
        let snapshot_offset = snapshot.as_ref().map(|(offset, _)| *offset);
        let (mut offset, mut state) = snapshot.unwrap_or_else(|| (0, M::default()));
        let corrupt = |reason: String| JournalError::Corrupt {
            path: log.dir().to_owned(),
            reason,
        };
        let (start, end) = (log.start_offset(), log.high_watermark());
        if offset < start {
            return Err(corrupt(format!(
                "the journal starts at {start} but no snapshot covers the events before it (snapshot offset {snapshot_offset:?})"
            )));
        }
        let replay_from = offset;
        let mut replayed = 0u64;
        // Bounded: each step consumes at least one event or fails, and the
        // journal's end does not move while it opens.
        let steps_max = end.saturating_sub(offset) + 1;
        for _ in 0..steps_max {
            if offset >= end {
                break;
            }
            let read = log.read(offset, REPLAY_READ_BYTES, true)?;
            let before = offset;
            for record in decode_batches(&read.bytes).map_err(&corrupt)? {
                let record_offset = record
                    .offset
                    .and_then(|offset| u64::try_from(offset).ok())
                    .ok_or_else(|| corrupt(format!("a record after offset {offset} has offset {:?}", record.offset)))?;
                if record_offset < offset {
                    // The batch began before the snapshot's offset.
                    continue;
                }
                if record_offset != offset {
                    return Err(corrupt(format!("events {offset}..{record_offset} are missing")));
                }
                let event = M::decode(&record).map_err(|reason| corrupt(format!("event {record_offset}: {reason}")))?;
                state.apply(&event);
                replayed += 1;
                offset += 1;
            }
            if offset == before {
                return Err(corrupt(format!("no event at {offset}, below the journal's end {end}")));
            }
        }
        let journaled = Journaled {
            log,
            dir: dir.to_owned(),
            snapshot_path,
            clock,
            snapshot_every_events: config.snapshot_every_events.max(1),
            progress: Mutex::new(Progress {
                end,
                snapshot_offset,
                snapshot_due_end: replay_from.min(end) + config.snapshot_every_events.max(1),
            }),
            diverged: Arc::new(AtomicBool::new(false)),
            snapshotting: Mutex::new(()),
            machine: PhantomData,
        };
        if offset > end {
            warn!(journal = %journaled.dir.display(), snapshot_offset = offset, end, "snapshot is ahead of its journal; rewriting it at the journal's end");
            journaled.write_snapshot_at(&state.snapshot(), end, true)?;
        }
        Ok((journaled, Replayed { state, events: replayed }))
    }

    /// Enqueues `events` as one batch, one record per event, and returns
    /// what resolves once they are durable under the journal's policy. The
    /// caller holds the lock that orders its state's changes, and its state
    /// reflects the events (now, or once they are durable).
    pub fn append(&self, events: &[M::Event]) -> Result<Appended, JournalError> {
        if events.is_empty() {
            return Ok(Appended(AppendedState::Done));
        }
        let mut builder = BatchBuilder::new(self.clock.now_ms());
        for event in events {
            let (key, value) = M::encode(event).map_err(|reason| JournalError::Encode {
                path: self.dir.clone(),
                reason,
            })?;
            builder.push(Record::new(key, value));
        }
        let batch = builder.build();
        let mut progress = self.progress.lock();
        match self.log.append(batch) {
            Appending::Ready(result) => {
                // Refused before it was enqueued: the log is closed.
                self.diverged.store(true, Ordering::Relaxed);
                let error = match result {
                    Some(Err(error)) => error,
                    _ => LogError::Closed(self.dir.clone()),
                };
                Err(error.into())
            }
            waiting => {
                progress.end += events.len() as u64;
                Ok(Appended(AppendedState::Pending {
                    appending: waiting,
                    end: progress.end,
                    diverged: Arc::clone(&self.diverged),
                }))
            }
        }
    }

    /// The offset after the last event enqueued. Read under the caller's
    /// lock, it is the offset a snapshot of the caller's state covers.
    pub fn end(&self) -> u64 {
        self.progress.lock().end
    }

    /// Whether a snapshot is due (every `snapshot_every_events` events).
    /// Claims it: the next one is due that many events later, whether this
    /// one is written or fails (a failing disk is retried at that pace).
    pub fn claim_snapshot(&self) -> bool {
        let mut progress = self.progress.lock();
        if progress.end < progress.snapshot_due_end {
            return false;
        }
        progress.snapshot_due_end = progress.end + self.snapshot_every_events;
        true
    }

    /// Whether events were appended since the newest snapshot (a clean
    /// close writes one then).
    pub fn has_events_after_snapshot(&self) -> bool {
        let progress = self.progress.lock();
        progress.snapshot_offset.is_none_or(|offset| offset < progress.end)
    }

    /// Writes `snapshot` as the state after every event below `offset` (the
    /// caller read both under its lock), once those events are durable; then
    /// drops the journal's segments wholly below `offset`. A snapshot older
    /// than the newest written is skipped. Blocking.
    pub fn write_snapshot(&self, snapshot: &M::Snapshot, offset: u64) -> Result<(), JournalError> {
        self.write_snapshot_at(snapshot, offset, false)
    }

    fn write_snapshot_at(&self, snapshot: &M::Snapshot, offset: u64, repair: bool) -> Result<(), JournalError> {
        let _serial = self.snapshotting.lock();
        if !repair && self.progress.lock().snapshot_offset.is_some_and(|newest| newest > offset) {
            return Ok(());
        }
        if self.diverged.load(Ordering::Relaxed) {
            return Err(JournalError::Diverged { path: self.dir.clone() });
        }
        // A snapshot must never hold an event the journal could still lose.
        self.log.sync()?;
        if self.log.high_watermark() < offset {
            self.diverged.store(true, Ordering::Relaxed);
            return Err(JournalError::Diverged { path: self.dir.clone() });
        }
        let bytes = serde_json::to_vec(&SnapshotOut { offset, state: snapshot }).map_err(|error| JournalError::Encode {
            path: self.snapshot_path.clone(),
            reason: error.to_string(),
        })?;
        conveyor_log::index::write_atomically(&self.snapshot_path, &bytes).map_err(|source| JournalError::Io {
            path: self.snapshot_path.clone(),
            source,
        })?;
        self.progress.lock().snapshot_offset = Some(offset);
        // Only now, with the snapshot durable, may the events it covers go.
        if offset > self.log.start_offset() {
            self.log.truncate_prefix(offset)?;
        }
        Ok(())
    }

    /// The journal's log (its start and end offsets, its directory).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Closes the journal's log. Blocking; the caller snapshots first.
    pub fn close(&self) -> Result<(), JournalError> {
        self.log.close()?;
        Ok(())
    }

    /// Writes a snapshot of `state` if one is due, on a blocking thread (off
    /// the reactor). The image is taken under `state`'s lock, under which
    /// the caller enqueues its events, so it covers exactly the journal below
    /// its end. A failure is only logged (`what` names the state): replay
    /// from the previous snapshot still works, only longer.
    pub async fn snapshot_when_due(self: &Arc<Self>, state: &Mutex<M>, what: &'static str)
    where
        M: Send + 'static,
        M::Snapshot: Send + 'static,
    {
        if !self.claim_snapshot() {
            return;
        }
        let (snapshot, offset) = self.image(state);
        let journal = Arc::clone(self);
        match tokio::task::spawn_blocking(move || journal.write_snapshot(&snapshot, offset)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(%error, what, "could not write the snapshot"),
            Err(error) => warn!(%error, what, "the snapshot task failed"),
        }
    }

    /// Snapshots `state` (if events came after the last snapshot) and closes
    /// the journal. A snapshot that cannot be written is only logged: the
    /// next open replays the journal. Blocking.
    pub fn close_with_snapshot(&self, state: &Mutex<M>, what: &'static str) -> Result<(), JournalError> {
        if self.has_events_after_snapshot() {
            let (snapshot, offset) = self.image(state);
            if let Err(error) = self.write_snapshot(&snapshot, offset) {
                warn!(%error, what, "could not write the snapshot at close");
            }
        }
        self.close()
    }

    /// `state`'s snapshot and the journal offset it covers.
    fn image(&self, state: &Mutex<M>) -> (M::Snapshot, u64) {
        let state = state.lock();
        (state.snapshot(), self.end())
    }
}

/// The snapshot at `path` and the offset it covers, if there is one.
fn read_snapshot<M: StateMachine>(path: &Path) -> Result<Option<(u64, M)>, JournalError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let snapshot: SnapshotIn<M::Snapshot> = serde_json::from_slice(&bytes).map_err(|error| JournalError::Corrupt {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
            Ok(Some((snapshot.offset, M::restore(snapshot.state))))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(JournalError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// An append on its way to disk: a future, or [`Appended::wait`] from
/// blocking code. An append that fails marks its journal diverged.
#[derive(Debug)]
pub struct Appended(AppendedState);

#[derive(Debug)]
enum AppendedState {
    Done,
    Pending {
        appending: Appending,
        /// The journal's end once this append is in.
        end: u64,
        diverged: Arc<AtomicBool>,
    },
}

impl Appended {
    /// Nothing to wait for.
    pub fn done() -> Appended {
        Appended(AppendedState::Done)
    }

    /// Blocks until the events are durable. Not from an async context.
    pub fn wait(self) -> Result<(), JournalError> {
        match self.0 {
            AppendedState::Done => Ok(()),
            AppendedState::Pending { appending, end, diverged } => settle(appending.wait(), end, &diverged),
        }
    }
}

impl std::future::Future for Appended {
    type Output = Result<(), JournalError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            AppendedState::Done => Poll::Ready(Ok(())),
            AppendedState::Pending { appending, end, diverged } => {
                Pin::new(appending).poll(cx).map(|result| settle(result, *end, diverged))
            }
        }
    }
}

fn settle(result: Result<AppendInfo, LogError>, end: u64, diverged: &AtomicBool) -> Result<(), JournalError> {
    match result {
        Ok(info) => {
            if info.last_offset + 1 != end {
                // The log gave other offsets than counted: snapshots would
                // name the wrong offset, so none is written any more.
                warn!(
                    expected_end = end,
                    last_offset = info.last_offset,
                    "journal offsets are not where they were counted"
                );
                diverged.store(true, Ordering::Relaxed);
            }
            Ok(())
        }
        Err(error) => {
            diverged.store(true, Ordering::Relaxed);
            Err(error.into())
        }
    }
}
