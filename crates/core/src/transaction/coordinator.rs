//! The transaction coordinator (Kafka's `TransactionCoordinator`): hands a
//! producer id and epoch to each transactional id, bumps the epoch to fence
//! an older producer (aborting its open transaction), records the partitions
//! a transaction writes to, and ends a transaction in two journaled steps —
//! Prepare{Commit,Abort}, the markers written, Complete{Commit,Abort} — so a
//! crash between them is finished after a restart, never half-visible.
//! Knows transactional ids, partitions and groups by name; writing a marker
//! into a partition and committing a group's offsets is the
//! [`Participants`]' job (the broker's). On a cluster node the state is
//! the metadata group's instead of the journal's (`group/coordination.rs`):
//! each change is proposed there, so a new leader finishes what the last
//! one decided.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use conveyor_log::Durability;
use conveyor_log::clock::Clock;
use parking_lot::Mutex;
use tracing::{info, warn};

use super::TransactionError;
use super::marker::MarkerKind;
use super::state::{PendingOffset, TopicPartition, TransactionChange, TransactionMetadata, TransactionStatus, Transactions};
use crate::group::Coordination;
use crate::group::coordination::read_through;
use crate::journal::{JournalConfig, Journaled, StateMachine};

/// Kafka's default `transaction.max.timeout.ms`: the longest
/// `transaction.timeout.ms` a producer may ask for.
pub const TRANSACTION_TIMEOUT_MS_MAX: i32 = 900_000;
/// Snapshot the coordinator's journal after this many events.
const EVENTS_PER_SNAPSHOT: u64 = 10_000;
/// An epoch this high is not bumped further: the transactional id gets a new
/// producer id at epoch 0 (Kafka's rule, keeping one epoch for fencing).
const EPOCH_BUMP_MAX: i16 = i16::MAX - 1;

type Result<T> = std::result::Result<T, TransactionError>;

/// What a transaction touches outside the coordinator. Each future resolves
/// once its writes are durable; the error is a reason to log and report as
/// retriable, and every call may be repeated (after a crash) harmlessly.
pub trait Participants: Send + Sync {
    /// One control batch per partition; an unknown (deleted) partition is skipped.
    fn write_markers<'a>(
        &'a self,
        partitions: &'a BTreeSet<TopicPartition>,
        producer_id: i64,
        producer_epoch: i16,
        kind: MarkerKind,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send + 'a>>;

    /// The offsets of a committed transaction become the groups' committed offsets.
    fn commit_offsets<'a>(
        &'a self,
        offsets: &'a [PendingOffset],
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send + 'a>>;
}

#[derive(Debug)]
pub struct TransactionCoordinator {
    journal: Arc<Journaled<Transactions>>,
    /// Taken while a change is enqueued on the journal and applied, so the
    /// in-memory order is the journal's. Never held across an await.
    state: Mutex<Transactions>,
    /// Serializes operations: each reads the state, may write markers and
    /// journals the outcome, so two never interleave on one transactional id.
    /// Lock order: before `state`.
    operations: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    /// On a cluster node: where the state is kept instead of `journal`
    /// and `state`.
    replication: OnceLock<Arc<dyn Coordination>>,
}

impl TransactionCoordinator {
    /// Opens (or creates) the coordinator's journal under `dir` and replays it. Blocking.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<TransactionCoordinator> {
        let config = JournalConfig {
            durability: Durability::Always,
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_events: EVENTS_PER_SNAPSHOT,
            reserve_bytes: crate::queue::JOURNAL_RESERVE_BYTES,
        };
        let (journal, replayed) = Journaled::<Transactions>::open(dir, config, Arc::clone(&clock))?;
        info!(
            transactional_ids = replayed.state.iter().count(),
            replayed = replayed.events,
            "transaction state loaded"
        );
        Ok(TransactionCoordinator {
            journal: Arc::new(journal),
            state: Mutex::new(replayed.state),
            operations: tokio::sync::Mutex::new(()),
            clock,
            replication: OnceLock::new(),
        })
    }

    /// Keeps the state in the cluster's metadata group from now on. Call
    /// before the doors serve; a second call changes nothing.
    pub fn replicate_through(&self, replication: Arc<dyn Coordination>) {
        let _ = self.replication.set(replication);
    }

    /// Reads the state: the metadata group's on a cluster node, else this
    /// coordinator's.
    fn read<T: Default>(&self, read: impl FnOnce(&Transactions) -> T) -> T {
        match self.replication.get() {
            Some(replication) => read_through(|reader| replication.read_transactions(reader), read),
            None => read(&self.state.lock()),
        }
    }

    /// The metadata of one transactional id.
    pub fn get(&self, transactional_id: &str) -> Option<TransactionMetadata> {
        self.read(|state| state.get(transactional_id).cloned())
    }

    /// Every transactional id and its metadata.
    pub fn list(&self) -> Vec<(String, TransactionMetadata)> {
        self.read(|state| state.iter().map(|(id, metadata)| (id.clone(), metadata.clone())).collect())
    }

    /// The partitions of `group` with an offset pending in a transaction
    /// that has not completed (OffsetFetch's `require_stable` answers them
    /// UNSTABLE_OFFSET_COMMIT until it does).
    pub fn pending_offset_partitions(&self, group: &str) -> std::collections::BTreeSet<TopicPartition> {
        self.read(|state| {
            state
                .pending_offsets_of(group)
                .map(|pending| (pending.topic.clone(), pending.partition))
                .collect()
        })
    }

    /// ListTransactions: the transactional ids in one of `states` (Kafka's
    /// names; all if empty), with one of `producer_ids` (all if empty), and,
    /// if `running_ms_min` is not negative, open at least that long. Also
    /// returns the state names it does not know.
    pub fn list_matching(
        &self,
        states: &[String],
        producer_ids: &[i64],
        running_ms_min: i64,
    ) -> (Vec<(String, TransactionMetadata)>, Vec<String>) {
        let unknown = states
            .iter()
            .filter(|name| TransactionStatus::from_kafka_name(name).is_none())
            .cloned()
            .collect();
        let wanted: Vec<TransactionStatus> = states.iter().filter_map(|name| TransactionStatus::from_kafka_name(name)).collect();
        let now_ms = self.clock.now_ms();
        let matching = self
            .list()
            .into_iter()
            .filter(|(_, metadata)| states.is_empty() || wanted.contains(&metadata.status))
            .filter(|(_, metadata)| producer_ids.is_empty() || producer_ids.contains(&metadata.producer_id))
            .filter(|(_, metadata)| {
                running_ms_min < 0 || (metadata.started_ms >= 0 && now_ms.saturating_sub(metadata.started_ms) >= running_ms_min)
            })
            .collect();
        (matching, unknown)
    }

    /// InitProducerId for a transactional id: a producer id (`fresh_producer_id`
    /// for a new transactional id or an exhausted epoch) and a bumped epoch,
    /// which fences every older producer of the id. An open transaction is
    /// aborted first, its markers written with the new epoch. `expected` is
    /// the producer id and epoch the client says it has (KIP-360), if any.
    pub async fn init_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        fresh_producer_id: i64,
        participants: &dyn Participants,
    ) -> Result<(i64, i16)> {
        if !(1..=TRANSACTION_TIMEOUT_MS_MAX).contains(&timeout_ms) {
            return Err(TransactionError::InvalidTransactionTimeout(timeout_ms));
        }
        let _operation = self.operations.lock().await;
        let now_ms = self.clock.now_ms();
        let Some(mut metadata) = self.get(transactional_id) else {
            if let Some((producer_id, _)) = expected.filter(|(producer_id, _)| *producer_id >= 0) {
                return Err(TransactionError::InvalidProducerIdMapping {
                    transactional_id: transactional_id.to_owned(),
                    producer_id,
                });
            }
            let metadata = TransactionMetadata {
                producer_id: fresh_producer_id,
                producer_epoch: 0,
                timeout_ms,
                status: TransactionStatus::Empty,
                partitions: BTreeSet::new(),
                started_ms: -1,
                updated_ms: now_ms,
                groups: BTreeSet::new(),
                pending_offsets: Vec::new(),
            };
            self.record(transactional_id, Some(metadata)).await?;
            return Ok((fresh_producer_id, 0));
        };
        if let Some((producer_id, epoch)) = expected.filter(|(producer_id, _)| *producer_id >= 0)
            && (producer_id, epoch) != (metadata.producer_id, metadata.producer_epoch)
        {
            return Err(TransactionError::ProducerFenced {
                transactional_id: transactional_id.to_owned(),
                epoch,
                current: metadata.producer_epoch,
            });
        }
        // A transaction decided before a crash or a failed marker write is finished first.
        if metadata.status.is_prepared() {
            metadata = self.complete(transactional_id, metadata, participants).await?;
        }
        let bump = |metadata: &mut TransactionMetadata| {
            if metadata.producer_epoch >= EPOCH_BUMP_MAX {
                metadata.producer_id = fresh_producer_id;
                metadata.producer_epoch = 0;
            } else {
                metadata.producer_epoch += 1;
            }
        };
        if metadata.status == TransactionStatus::Ongoing {
            // Kafka aborts the fenced producer's transaction with the new
            // epoch, so its partitions refuse the old one from then on.
            bump(&mut metadata);
            metadata.status = TransactionStatus::PrepareAbort;
            metadata.updated_ms = now_ms;
            self.record(transactional_id, Some(metadata.clone())).await?;
            info!(
                transactional_id,
                producer_id = metadata.producer_id,
                epoch = metadata.producer_epoch,
                "aborting the transaction of a fenced producer"
            );
            metadata = self.complete(transactional_id, metadata, participants).await?;
        } else {
            bump(&mut metadata);
        }
        metadata.status = TransactionStatus::Empty;
        metadata.timeout_ms = timeout_ms;
        metadata.updated_ms = now_ms;
        let answer = (metadata.producer_id, metadata.producer_epoch);
        self.record(transactional_id, Some(metadata)).await?;
        Ok(answer)
    }

    /// AddPartitionsToTxn: the partitions join the ongoing transaction (which
    /// begins here if none is open).
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        self.add_to_transaction(
            transactional_id,
            producer_id,
            producer_epoch,
            |metadata| partitions.iter().all(|partition| metadata.partitions.contains(partition)),
            |metadata| metadata.partitions.extend(partitions.iter().cloned()),
        )
        .await
    }

    /// AddOffsetsToTxn: `group`'s offsets join the ongoing transaction (which
    /// begins here if none is open).
    pub async fn add_offsets(&self, transactional_id: &str, producer_id: i64, producer_epoch: i16, group: &str) -> Result<()> {
        self.add_to_transaction(
            transactional_id,
            producer_id,
            producer_epoch,
            |metadata| metadata.groups.contains(group),
            |metadata| {
                metadata.groups.insert(group.to_owned());
            },
        )
        .await
    }

    /// What AddPartitionsToTxn and AddOffsetsToTxn share: `add` adds to the
    /// producer's ongoing transaction, which begins here if none is open,
    /// unless `added` says that transaction holds it already. Refused while
    /// a transaction is being completed.
    async fn add_to_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        added: impl FnOnce(&TransactionMetadata) -> bool,
        add: impl FnOnce(&mut TransactionMetadata),
    ) -> Result<()> {
        let _operation = self.operations.lock().await;
        let mut metadata = self.current(transactional_id, producer_id, producer_epoch)?;
        if metadata.status.is_prepared() {
            return Err(TransactionError::ConcurrentTransactions(transactional_id.to_owned()));
        }
        let ongoing = metadata.status == TransactionStatus::Ongoing;
        if ongoing && added(&metadata) {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        if !ongoing {
            metadata.status = TransactionStatus::Ongoing;
            metadata.partitions.clear();
            metadata.started_ms = now_ms;
        }
        add(&mut metadata);
        metadata.updated_ms = now_ms;
        self.record(transactional_id, Some(metadata)).await
    }

    /// TxnOffsetCommit: offsets of a group added to the ongoing transaction,
    /// pending until it ends (a later one for the same partition replaces it).
    pub async fn commit_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: Vec<PendingOffset>,
    ) -> Result<()> {
        let _operation = self.operations.lock().await;
        let mut metadata = self.current(transactional_id, producer_id, producer_epoch)?;
        let outside = offsets.iter().any(|offset| !metadata.groups.contains(&offset.group));
        if metadata.status != TransactionStatus::Ongoing || outside {
            return Err(TransactionError::InvalidTxnState {
                transactional_id: transactional_id.to_owned(),
                status: metadata.status.kafka_name(),
                operation: "commit offsets of a group not added with AddOffsetsToTxn",
            });
        }
        for offset in offsets {
            metadata
                .pending_offsets
                .retain(|pending| (&pending.group, &pending.topic, pending.partition) != (&offset.group, &offset.topic, offset.partition));
            metadata.pending_offsets.push(offset);
        }
        metadata.updated_ms = self.clock.now_ms();
        self.record(transactional_id, Some(metadata)).await
    }

    /// Which of `partitions` are in the ongoing transaction of the producer
    /// (AddPartitionsToTxn with `verify_only`, KIP-890).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<bool>> {
        let metadata = self.current(transactional_id, producer_id, producer_epoch)?;
        let ongoing = metadata.status == TransactionStatus::Ongoing;
        Ok(partitions
            .iter()
            .map(|partition| ongoing && metadata.partitions.contains(partition))
            .collect())
    }

    /// EndTxn: commits or aborts the ongoing transaction — decided durably,
    /// then the markers, then completed. A retry of an end that completed is
    /// answered as success; one that failed half-way is finished.
    pub async fn end(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        participants: &dyn Participants,
    ) -> Result<()> {
        let _operation = self.operations.lock().await;
        let mut metadata = self.current(transactional_id, producer_id, producer_epoch)?;
        let refuse = |status: TransactionStatus| TransactionError::InvalidTxnState {
            transactional_id: transactional_id.to_owned(),
            status: status.kafka_name(),
            operation: if commit { "commit" } else { "abort" },
        };
        match (metadata.status, commit) {
            (TransactionStatus::Ongoing, _) => {
                metadata.status = if commit {
                    TransactionStatus::PrepareCommit
                } else {
                    TransactionStatus::PrepareAbort
                };
                metadata.updated_ms = self.clock.now_ms();
                self.record(transactional_id, Some(metadata.clone())).await?;
                self.complete(transactional_id, metadata, participants).await?;
                Ok(())
            }
            (TransactionStatus::PrepareCommit, true) | (TransactionStatus::PrepareAbort, false) => {
                self.complete(transactional_id, metadata, participants).await?;
                Ok(())
            }
            (TransactionStatus::CompleteCommit, true) | (TransactionStatus::CompleteAbort, false) => Ok(()),
            (status, _) => Err(refuse(status)),
        }
    }

    /// Finishes every transaction decided but not completed (after a crash
    /// or a failed marker write). Returns how many are still unfinished.
    pub async fn complete_prepared(&self, participants: &dyn Participants) -> usize {
        let _operation = self.operations.lock().await;
        let prepared: Vec<(String, TransactionMetadata)> = self
            .list()
            .into_iter()
            .filter(|(_, metadata)| metadata.status.is_prepared())
            .collect();
        let mut unfinished = 0;
        for (transactional_id, metadata) in prepared {
            if let Err(error) = self.complete(&transactional_id, metadata, participants).await {
                warn!(transactional_id, %error, "could not finish a decided transaction");
                unfinished += 1;
            }
        }
        unfinished
    }

    /// Aborts every transaction open longer than its `transaction.timeout.ms`,
    /// bumping its epoch first so its producer is fenced (Kafka's
    /// `abortTimedOutTransactions`). Returns how many were aborted.
    pub async fn abort_expired(&self, participants: &dyn Participants) -> usize {
        let _operation = self.operations.lock().await;
        let now_ms = self.clock.now_ms();
        let expired: Vec<(String, TransactionMetadata)> = self
            .list()
            .into_iter()
            .filter(|(_, metadata)| {
                metadata.status == TransactionStatus::Ongoing
                    && metadata.started_ms >= 0
                    && now_ms.saturating_sub(metadata.started_ms) > i64::from(metadata.timeout_ms)
            })
            .collect();
        let mut aborted = 0;
        for (transactional_id, mut metadata) in expired {
            // At the last epoch there is none left to fence with: abort with it.
            if metadata.producer_epoch < EPOCH_BUMP_MAX {
                metadata.producer_epoch += 1;
            }
            metadata.status = TransactionStatus::PrepareAbort;
            metadata.updated_ms = now_ms;
            info!(
                transactional_id,
                timeout_ms = metadata.timeout_ms,
                "aborting a transaction open past its timeout"
            );
            let outcome = match self.record(&transactional_id, Some(metadata.clone())).await {
                Ok(()) => self.complete(&transactional_id, metadata, participants).await.map(|_| ()),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) => aborted += 1,
                Err(error) => warn!(transactional_id, %error, "could not abort an expired transaction"),
            }
        }
        aborted
    }

    /// The metadata of `transactional_id` if `producer_id` and `producer_epoch` are its current ones.
    fn current(&self, transactional_id: &str, producer_id: i64, producer_epoch: i16) -> Result<TransactionMetadata> {
        let metadata = self
            .get(transactional_id)
            .filter(|metadata| metadata.producer_id == producer_id)
            .ok_or_else(|| TransactionError::InvalidProducerIdMapping {
                transactional_id: transactional_id.to_owned(),
                producer_id,
            })?;
        if producer_epoch != metadata.producer_epoch {
            return Err(TransactionError::ProducerFenced {
                transactional_id: transactional_id.to_owned(),
                epoch: producer_epoch,
                current: metadata.producer_epoch,
            });
        }
        Ok(metadata)
    }

    /// Writes the markers of a prepared transaction, then journals it complete.
    async fn complete(
        &self,
        transactional_id: &str,
        mut metadata: TransactionMetadata,
        participants: &dyn Participants,
    ) -> Result<TransactionMetadata> {
        let (kind, status) = match metadata.status {
            TransactionStatus::PrepareCommit => (MarkerKind::Commit, TransactionStatus::CompleteCommit),
            TransactionStatus::PrepareAbort => (MarkerKind::Abort, TransactionStatus::CompleteAbort),
            _ => return Ok(metadata),
        };
        participants
            .write_markers(&metadata.partitions, metadata.producer_id, metadata.producer_epoch, kind)
            .await
            .map_err(TransactionError::Storage)?;
        if kind == MarkerKind::Commit && !metadata.pending_offsets.is_empty() {
            participants
                .commit_offsets(&metadata.pending_offsets)
                .await
                .map_err(TransactionError::Storage)?;
        }
        metadata.status = status;
        metadata.partitions.clear();
        metadata.groups.clear();
        metadata.pending_offsets.clear();
        metadata.started_ms = -1;
        metadata.updated_ms = self.clock.now_ms();
        self.record(transactional_id, Some(metadata.clone())).await?;
        Ok(metadata)
    }

    /// Journals one transactional id's new metadata and applies it once enqueued; returns once durable.
    async fn record(&self, transactional_id: &str, metadata: Option<TransactionMetadata>) -> Result<()> {
        let change = TransactionChange {
            transactional_id: transactional_id.to_owned(),
            metadata,
        };
        if let Some(replication) = self.replication.get() {
            return replication.propose_transaction(change).await.map_err(TransactionError::Storage);
        }
        let appended = {
            let mut state = self.state.lock();
            let appended = self.journal.append(std::slice::from_ref(&change))?;
            state.apply(&change);
            appended
        };
        appended.await?;
        self.maybe_snapshot().await;
        Ok(())
    }

    /// Writes a snapshot if one is due, off the reactor.
    async fn maybe_snapshot(&self) {
        self.journal.snapshot_when_due(&self.state, "transaction state").await;
    }

    /// The coordinator's journal log, for its health.
    pub fn log(&self) -> &conveyor_log::Log {
        self.journal.log()
    }

    /// Snapshots and closes the journal. Blocking.
    pub fn close(&self) -> Result<()> {
        self.journal.close_with_snapshot(&self.state, "transaction state")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::clock::ManualClock;

    /// Records the markers it is asked to write; fails while `failing` is set.
    #[derive(Default)]
    struct Recorded {
        markers: Mutex<Vec<(TopicPartition, i64, i16, MarkerKind)>>,
        offsets: Mutex<Vec<PendingOffset>>,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Participants for Recorded {
        fn write_markers<'a>(
            &'a self,
            partitions: &'a BTreeSet<TopicPartition>,
            producer_id: i64,
            producer_epoch: i16,
            kind: MarkerKind,
        ) -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send + 'a>> {
            Box::pin(async move {
                if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err("disk full".to_owned());
                }
                let mut markers = self.markers.lock();
                markers.extend(
                    partitions
                        .iter()
                        .map(|partition| (partition.clone(), producer_id, producer_epoch, kind)),
                );
                Ok(())
            })
        }

        fn commit_offsets<'a>(
            &'a self,
            offsets: &'a [PendingOffset],
        ) -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send + 'a>> {
            Box::pin(async move {
                self.offsets.lock().extend(offsets.iter().cloned());
                Ok(())
            })
        }
    }

    fn partition(topic: &str, partition: u32) -> TopicPartition {
        (topic.to_owned(), partition)
    }

    fn open(dir: &Path) -> TransactionCoordinator {
        TransactionCoordinator::open(dir, ManualClock::new(1)).expect("open")
    }

    #[tokio::test]
    async fn a_new_producer_fences_the_old_one_and_aborts_its_open_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let coordinator = open(dir.path());
        let markers = Recorded::default();
        let (id, epoch) = coordinator.init_producer("t", 60_000, None, 7, &markers).await.expect("init");
        assert_eq!((id, epoch), (7, 0));
        coordinator
            .add_partitions("t", 7, 0, &[partition("a", 0), partition("b", 1)])
            .await
            .expect("add");
        let (id, epoch) = coordinator.init_producer("t", 60_000, None, 8, &markers).await.expect("fence");
        assert_eq!((id, epoch), (7, 1), "same producer id, bumped epoch");
        assert_eq!(
            *markers.markers.lock(),
            vec![
                (partition("a", 0), 7, 1, MarkerKind::Abort),
                (partition("b", 1), 7, 1, MarkerKind::Abort)
            ],
            "the open transaction is aborted with the new epoch"
        );
        assert!(matches!(
            coordinator.end("t", 7, 0, true, &markers).await,
            Err(TransactionError::ProducerFenced { epoch: 0, current: 1, .. })
        ));
        assert!(matches!(
            coordinator.add_partitions("t", 7, 0, &[partition("a", 0)]).await,
            Err(TransactionError::ProducerFenced { .. })
        ));
        assert!(matches!(
            coordinator.add_partitions("t", 9, 1, &[partition("a", 0)]).await,
            Err(TransactionError::InvalidProducerIdMapping { .. })
        ));
    }

    #[tokio::test]
    async fn commit_writes_markers_and_a_retried_commit_succeeds_but_a_late_abort_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let coordinator = open(dir.path());
        let markers = Recorded::default();
        coordinator.init_producer("t", 60_000, None, 3, &markers).await.expect("init");
        assert!(matches!(
            coordinator.end("t", 3, 0, true, &markers).await,
            Err(TransactionError::InvalidTxnState { status: "Empty", .. })
        ));
        coordinator.add_partitions("t", 3, 0, &[partition("a", 2)]).await.expect("add");
        coordinator.end("t", 3, 0, true, &markers).await.expect("commit");
        assert_eq!(*markers.markers.lock(), vec![(partition("a", 2), 3, 0, MarkerKind::Commit)]);
        coordinator.end("t", 3, 0, true, &markers).await.expect("a retried commit");
        assert_eq!(markers.markers.lock().len(), 1, "no second marker");
        assert!(matches!(
            coordinator.end("t", 3, 0, false, &markers).await,
            Err(TransactionError::InvalidTxnState { .. })
        ));
        let metadata = coordinator.get("t").expect("known");
        assert_eq!((metadata.status, metadata.partitions.len()), (TransactionStatus::CompleteCommit, 0));
    }

    #[tokio::test]
    async fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000);
        let coordinator = TransactionCoordinator::open(dir.path(), clock.clone()).expect("open");
        let participants = Recorded::default();
        coordinator.init_producer("t", 5_000, None, 3, &participants).await.expect("init");
        coordinator.add_partitions("t", 3, 0, &[partition("a", 0)]).await.expect("add");
        clock.advance_ms(5_000);
        assert_eq!(coordinator.abort_expired(&participants).await, 0, "not past its timeout yet");
        clock.advance_ms(1);
        assert_eq!(coordinator.abort_expired(&participants).await, 1);
        assert_eq!(*participants.markers.lock(), vec![(partition("a", 0), 3, 1, MarkerKind::Abort)]);
        assert_eq!(coordinator.get("t").expect("known").status, TransactionStatus::CompleteAbort);
        assert!(matches!(
            coordinator.end("t", 3, 0, true, &participants).await,
            Err(TransactionError::ProducerFenced { .. })
        ));
    }

    fn pending(group: &str, offset: i64) -> PendingOffset {
        PendingOffset {
            group: group.to_owned(),
            topic: "in".to_owned(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }
    }

    #[tokio::test]
    async fn transactional_offsets_are_committed_with_the_transaction_and_dropped_by_an_abort() {
        let dir = tempfile::tempdir().expect("tempdir");
        let coordinator = open(dir.path());
        let participants = Recorded::default();
        coordinator.init_producer("t", 60_000, None, 3, &participants).await.expect("init");
        assert!(
            matches!(
                coordinator.commit_offsets("t", 3, 0, vec![pending("g", 5)]).await,
                Err(TransactionError::InvalidTxnState { .. })
            ),
            "offsets of a group not added"
        );
        coordinator.add_offsets("t", 3, 0, "g").await.expect("add offsets");
        coordinator.commit_offsets("t", 3, 0, vec![pending("g", 5)]).await.expect("pending");
        coordinator.end("t", 3, 0, false, &participants).await.expect("abort");
        assert_eq!(*participants.offsets.lock(), vec![], "an abort commits nothing");
        coordinator.add_offsets("t", 3, 0, "g").await.expect("add offsets");
        coordinator.commit_offsets("t", 3, 0, vec![pending("g", 7)]).await.expect("pending");
        coordinator
            .commit_offsets("t", 3, 0, vec![pending("g", 9)])
            .await
            .expect("replaced");
        coordinator.end("t", 3, 0, true, &participants).await.expect("commit");
        assert_eq!(*participants.offsets.lock(), vec![pending("g", 9)]);
        assert!(coordinator.get("t").expect("known").pending_offsets.is_empty());
    }

    #[tokio::test]
    async fn a_decided_transaction_whose_markers_failed_is_finished_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let markers = Recorded::default();
        {
            let coordinator = open(dir.path());
            coordinator.init_producer("t", 60_000, None, 3, &markers).await.expect("init");
            coordinator.add_partitions("t", 3, 0, &[partition("a", 0)]).await.expect("add");
            markers.failing.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(matches!(
                coordinator.end("t", 3, 0, false, &markers).await,
                Err(TransactionError::Storage(_))
            ));
            // Dropped as a crash would leave it: no close, no snapshot.
        }
        markers.failing.store(false, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().to_owned();
        let coordinator = tokio::task::spawn_blocking(move || open(&path)).await.expect("join");
        assert_eq!(coordinator.get("t").expect("known").status, TransactionStatus::PrepareAbort);
        assert_eq!(coordinator.complete_prepared(&markers).await, 0);
        assert_eq!(*markers.markers.lock(), vec![(partition("a", 0), 3, 0, MarkerKind::Abort)]);
        assert_eq!(coordinator.get("t").expect("known").status, TransactionStatus::CompleteAbort);
    }
}
