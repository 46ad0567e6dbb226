//! The one path by which what exists changes: a [`Change`] holds the
//! metadata lock, checks and applies an event to a copy of the [`Views`],
//! journals it in the catalog (durable things only), applies it to the
//! catalog's state, makes the changes to open objects and publishes the
//! new views, in that order. Knows the catalog and the views; the rules of
//! each operation are the broker's (`topics.rs`, `queues.rs`, ...).
//!
//! Lock order: the metadata lock (async, held across the journal append)
//! before anything a view holds; readers never take it.

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use conveyor_log::clock::Clock;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tracing::warn;

use super::BrokerConfig;
use super::views::{Applied, Effect, Opened, Views};
use crate::auth::Authorizer;
use crate::catalog::{Catalog, CatalogState, Event};
use crate::connections::Connections;
use crate::error::{CoreError, Result};
use crate::stats::Stats;

/// The catalog, the views derived from it, and what changes need besides.
#[derive(Debug)]
pub(crate) struct Metadata {
    pub config: BrokerConfig,
    pub clock: Arc<dyn Clock>,
    pub stats: Arc<Stats>,
    pub connections: Arc<Connections>,
    /// Kafka producer ids: (next to hand out, first not reserved yet).
    /// Reserved in blocks by `ProducerIdsReserved` events.
    pub producer_ids: parking_lot::Mutex<(i64, i64)>,
    /// Who may do what: its view is derived from the catalog's users and
    /// grants after every change to them.
    pub authorizer: Authorizer,
    /// New queues' files being created outside the metadata lock, at most
    /// `QUEUE_OPENS_CONCURRENT_MAX` at once (`queues.rs`).
    pub queue_opens: tokio::sync::Semaphore,
    /// Queue declarations waiting for the metadata lock, committed together
    /// by the first to get it (`declarations.rs`).
    pub declarations: super::declarations::Declarations,
    /// Set on a cluster node: where durable events go, and the committed
    /// entries waiting to be applied here (`replication.rs`).
    pub replicated: std::sync::OnceLock<Arc<super::replication::Replicated>>,
    /// The metadata lock: one change at a time.
    catalog: Arc<Mutex<Catalog>>,
    views: ArcSwap<Views>,
}

impl Metadata {
    pub fn new(config: BrokerConfig, clock: Arc<dyn Clock>, stats: Arc<Stats>, catalog: Catalog, views: Views) -> Metadata {
        // Start above everything reserved before: ids handed out before a
        // crash are never reused.
        let reserved = catalog.state().producer_ids_reserved;
        Metadata {
            authorizer: Authorizer::new(&catalog.state().auth),
            producer_ids: parking_lot::Mutex::new((reserved, reserved)),
            connections: Arc::new(Connections::new(Arc::clone(&clock))),
            config,
            clock,
            stats,
            queue_opens: tokio::sync::Semaphore::new(super::queues::QUEUE_OPENS_CONCURRENT_MAX),
            declarations: super::declarations::Declarations::default(),
            replicated: std::sync::OnceLock::new(),
            catalog: Arc::new(Mutex::new(catalog)),
            views: ArcSwap::from_pointee(views),
        }
    }

    /// The current views, to keep.
    pub fn views(&self) -> Arc<Views> {
        self.views.load_full()
    }

    /// The current views, for a quick look (cheaper than [`Metadata::views`];
    /// not to be held across an await).
    pub fn current(&self) -> arc_swap::Guard<Arc<Views>> {
        self.views.load()
    }

    /// Waits for the metadata lock. Dropping the returned change before it
    /// commits changes nothing.
    pub async fn change(self: &Arc<Self>) -> Change {
        Change {
            catalog: Arc::clone(&self.catalog).lock_owned().await,
            meta: Arc::clone(self),
        }
    }

    /// The metadata catalog's log, unless a metadata change holds the
    /// catalog right now.
    pub fn catalog_log(&self) -> Option<conveyor_log::Log> {
        self.catalog.try_lock().ok().map(|catalog| catalog.log().clone())
    }

    /// Snapshots and closes the catalog. Blocking; after the front doors stopped.
    pub fn close(&self) -> Result<()> {
        match self.catalog.try_lock() {
            Ok(mut catalog) => catalog.close(),
            Err(_) => {
                warn!("metadata catalog busy at close; it will replay its log on the next start");
                Ok(())
            }
        }
    }
}

/// One change in progress, holding the metadata lock.
#[derive(Debug)]
pub(crate) struct Change {
    pub(super) meta: Arc<Metadata>,
    pub(super) catalog: OwnedMutexGuard<Catalog>,
}

impl Change {
    pub fn meta(&self) -> &Arc<Metadata> {
        &self.meta
    }

    /// The views as of this change (no other change runs meanwhile).
    pub fn views(&self) -> Arc<Views> {
        self.meta.views()
    }

    /// What the catalog records: the durable part of what exists.
    pub fn catalog(&self) -> &CatalogState {
        self.catalog.state()
    }

    /// Applies `event` with what was opened for it: checked against a copy
    /// of the views (a refusal changes nothing), journaled if `durable` and
    /// it changes anything (when that fails, nothing changed either), then
    /// applied to the catalog's state, to the open objects it changes, and
    /// published. Returns what it took out of the views, for the caller to
    /// close. Run it in [`run_to_completion`] once its event may be durable,
    /// so that a caller going away cannot stop it halfway.
    ///
    /// On a cluster node a durable event goes to the cluster's metadata
    /// group instead, and is applied here like every node applies it
    /// (`Change::commit_replicated`); what it took out of the views is
    /// closed there, so the returned [`Applied`] names nothing to close.
    pub async fn commit(&mut self, event: Event, durable: bool, opened: Opened) -> Result<Applied> {
        self.commit_with(event, durable, opened, true).await
    }

    /// [`Change::commit`]; `may_replicate` false applies a committed
    /// entry of the cluster's group here.
    pub(super) async fn commit_with(&mut self, event: Event, durable: bool, opened: Opened, may_replicate: bool) -> Result<Applied> {
        let mut next = Views::clone(&self.meta.views.load());
        let mut applied = next.apply(&event, opened)?;
        if may_replicate
            && durable
            && applied.changed
            && let Some(replicated) = self.meta.replicated.get().cloned()
        {
            // Boxed: applying the entries before it calls back into this function.
            return Box::pin(self.commit_replicated(event, next, applied, replicated)).await;
        }
        let changes_auth = event.changes_auth();
        if durable
            && applied.changed
            && let Err(error) = self.catalog.append(event).await
        {
            // What was opened for the event closes with the copy, off the reactor.
            let _ = tokio::task::spawn_blocking(move || drop(next)).await;
            return Err(error);
        }
        if changes_auth {
            self.meta.authorizer.refresh(&self.catalog.state().auth);
        }
        let effects = std::mem::take(&mut applied.effects);
        if !effects.is_empty() {
            let defaults = self.meta.config.topic_defaults.clone();
            let changed = blocking(move || {
                for effect in effects {
                    match effect {
                        Effect::AddPartitions(topic, partitions) => topic.add_partitions(partitions),
                        Effect::SetTopicConfig(topic, config) => {
                            let log_config = config.log_config(&defaults);
                            topic.set_config(config);
                            // An unopened partition opens with the new config;
                            // one that now owes retention or cleaning opens now.
                            for log in topic.partitions_for_timers(&defaults) {
                                log.set_config(log_config.clone())?;
                            }
                        }
                        Effect::Redefine(queue, definition, stream) => {
                            let policy = &definition.policy;
                            let retained = retains_as_stream(&queue, policy)
                                .then(|| super::data_dir::queue_config_of(defaults.log.durability, &definition, policy).log);
                            let retention = policy.stream_retention;
                            queue.redefine(*definition);
                            if let (Some(log_config), Some(opened)) = (retained, queue.opened()) {
                                // A stream's retention is its log's: in effect
                                // now, not only once the log reopens.
                                let log = opened.message_log();
                                log.set_config(log_config)?;
                                log.enforce_retention()?;
                            }
                            if let Some(topic) = stream {
                                topic.set_config(crate::topic::stream_config(retention));
                            }
                            // A lower delivery limit or a new dead-letter route
                            // may concern messages already waiting.
                            queue.notify_available();
                        }
                    }
                }
                Ok(())
            })
            .await;
            if let Err(error) = changed {
                // The event is durable and the next start applies it; this
                // process carries on with what it could change.
                warn!(%error, "applying a durable metadata change to an open topic failed");
            }
        }
        self.meta.views.store(Arc::new(next));
        Ok(applied)
    }
}

impl Change {
    /// Journals `events` for a caller that checked and applied them to a
    /// copy of the views itself (queue declarations, `declarations.rs`):
    /// all are enqueued before any is awaited, so the catalog log writes
    /// them with one fsync. One result per event; those that are durable
    /// are applied to the catalog's state. No effects, no auth changes.
    pub async fn journal_each(&mut self, events: Vec<Event>) -> Vec<Result<()>> {
        self.catalog.append_each(events).await
    }

    /// Publishes views the caller built under this change's lock.
    pub fn publish(&self, views: Views) {
        self.meta.views.store(Arc::new(views));
    }

    /// Commits an event that opens and closes nothing (users, grants,
    /// exchanges, bindings), journaled if `durable`, to its end even if the
    /// caller goes away.
    pub async fn commit_to_end(self, event: Event, durable: bool) -> Result<()> {
        let mut change = self;
        run_to_completion(async move { change.commit(event, durable, Opened::Nothing).await.map(|_| ()) }).await
    }
}

/// Runs `operation` to its end in a task of its own and waits for it: a
/// caller that goes away (a client disconnecting mid-request) does not stop
/// a change between its durable event and the views that show it.
pub(crate) async fn run_to_completion<T: Send + 'static>(operation: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    tokio::spawn(operation)
        .await
        .map_err(|error| CoreError::Catalog(format!("metadata change failed: {error}")))?
}

/// Runs blocking file work off the async reactor.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| CoreError::Catalog(format!("blocking task failed: {error}")))?
}

/// Whether `queue`, redefined with `policy`, keeps its messages by its
/// log's retention: a stream that owns its log (one over a Kafka topic's
/// log has the topic's retention).
fn retains_as_stream(queue: &crate::queue::DeclaredQueue, policy: &crate::queue::QueuePolicy) -> bool {
    policy.queue_type == crate::queue::QueueType::Stream && queue.owns_messages()
}
