//! A broker that is one node of a cluster: its durable catalog events go
//! to the cluster's metadata group (a [`Replication`] the binary installs)
//! instead of straight into its own journal, and every node applies what
//! the group committed, in the group's order, through the one path of a
//! metadata change (`Change::commit_with`, which journals it locally too,
//! so a restart opens the broker as before), opening what an event names
//! with the functions the start uses (`data_dir.rs`). Knows the catalog's
//! events, the views and the metadata lock; nothing of Raft or sockets.
//!
//! Whoever holds the metadata lock applies the entries delivered so far:
//! the background task (`Broker::run_replicated`), or a change waiting for
//! its own entry, which applies every entry before it and its own. What a
//! proposer on this node opened for its event (a topic's logs, a queue)
//! waits in the hand-off, so the entry applies with those objects and the
//! files are never opened twice.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::Broker;
use super::data_dir::{open_partitions, open_queue, open_topic, stream_topic};
use super::metadata::{Change, blocking};
use super::queues::remove_queues;
use super::topics::remove_topics;
use super::views::{Applied, Effect, Opened, Views};
use crate::catalog::{CatalogState, Event};
use crate::error::{CoreError, Result};

/// How long a change waits for its committed entry to be applied here.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What proposes catalog events to the cluster's metadata group.
pub trait Replication: Send + Sync + std::fmt::Debug {
    /// This node's id in the cluster.
    fn node_id(&self) -> u64;
    /// Proposes `events` as one entry; resolves with the entry's index
    /// once the group committed it and this node's group member applied
    /// it (and so delivered it with [`Broker::deliver_replicated`]).
    fn propose(&self, events: Vec<Event>) -> Pin<Box<dyn Future<Output = std::result::Result<u64, String>> + Send + '_>>;
}

/// A node's side of the metadata group: where proposals go, the entries
/// delivered and not applied yet, and the proposers' hand-off.
#[derive(Debug)]
pub(crate) struct Replicated {
    replication: Arc<dyn Replication>,
    entries: parking_lot::Mutex<VecDeque<(u64, Vec<Event>)>>,
    /// The index of the last entry delivered, for those waiting for one.
    delivered: watch::Sender<u64>,
    /// The index of the last entry applied to the views.
    applied_index: AtomicU64,
    handoff: parking_lot::Mutex<HashMap<String, Opened>>,
    /// Why a committed entry could not be applied here, once one could
    /// not: nothing after it is applied, and the node must stop
    /// (`Broker::replication_failed`).
    failed: watch::Sender<Option<String>>,
}

impl Replicated {
    pub fn new(replication: Arc<dyn Replication>) -> Replicated {
        Replicated {
            replication,
            entries: parking_lot::Mutex::new(VecDeque::new()),
            delivered: watch::channel(0).0,
            applied_index: AtomicU64::new(0),
            handoff: parking_lot::Mutex::new(HashMap::new()),
            failed: watch::channel(None).0,
        }
    }

    fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Acquire)
    }

    pub fn node_id(&self) -> u64 {
        self.replication.node_id()
    }
}

/// The hand-off key of what an event opens, if it opens anything.
fn handoff_key(event: &Event) -> Option<String> {
    match event {
        Event::TopicCreated { id, .. } => Some(format!("topic/{id}")),
        Event::PartitionsCreated { id, partitions, .. } => Some(format!("partitions/{id}/{partitions}")),
        Event::QueueDeclared { id, .. } => Some(format!("queue/{id}")),
        _ => None,
    }
}

/// Whether the catalog already shows what `event` creates (an entry
/// applied again after a restart, whose objects are open already).
fn reflected(catalog: &CatalogState, event: &Event) -> bool {
    match event {
        Event::TopicCreated { id, name, .. } => catalog.topics.get(name).is_some_and(|topic| topic.id == *id),
        Event::PartitionsCreated { id, name, partitions } => catalog
            .topics
            .get(name)
            .is_some_and(|topic| topic.id == *id && topic.partitions >= *partitions),
        Event::QueueDeclared { id, name, .. } => catalog.queues.get(name).is_some_and(|queue| queue.id == *id),
        _ => false,
    }
}

impl Change {
    /// A durable event checked against `next` (the views with it applied)
    /// goes to the metadata group; what was opened for it waits in the
    /// hand-off; every entry delivered before it and its own are applied
    /// here before it returns.
    pub(super) async fn commit_replicated(
        &mut self,
        event: Event,
        next: Views,
        applied: Applied,
        replicated: Arc<Replicated>,
    ) -> Result<Applied> {
        let key = handoff_key(&event);
        if let Some(key) = &key {
            let opened = match &event {
                Event::TopicCreated { name, .. } => next.topics.get(name).cloned().map(Opened::Topic),
                Event::QueueDeclared { name, .. } => next.queues.get(name).cloned().map(|queue| match next.streams.get(name) {
                    Some(topic) => Opened::Stream(queue, Arc::clone(topic)),
                    None => Opened::Queue(queue),
                }),
                Event::PartitionsCreated { .. } => applied.effects.into_iter().find_map(|effect| match effect {
                    Effect::AddPartitions(_, partitions) => Some(Opened::Partitions(partitions)),
                    _ => None,
                }),
                _ => None,
            };
            if let Some(opened) = opened {
                replicated.handoff.lock().insert(key.clone(), opened);
            }
        }
        // The copy's other objects are the current views' own.
        let _ = blocking(move || {
            drop(next);
            Ok(())
        })
        .await;
        let mut delivered = replicated.delivered.subscribe();
        let proposal = replicated.replication.propose(vec![event]);
        tokio::pin!(proposal);
        let proposed = loop {
            self.apply_delivered(&replicated).await;
            tokio::select! {
                result = &mut proposal => break result,
                _ = delivered.changed() => {}
            }
        };
        let log_index = match proposed {
            Ok(log_index) => log_index,
            Err(reason) => {
                // Not committed (as far as this node knows): what was
                // opened for it goes; if the entry commits after all, it is
                // applied here like another node's, opening its files then.
                if let Some(opened) = key.and_then(|key| replicated.handoff.lock().remove(&key)) {
                    let _ = blocking(move || {
                        drop(opened);
                        Ok(())
                    })
                    .await;
                }
                return Err(CoreError::Catalog(format!("the cluster did not commit the change: {reason}")));
            }
        };
        let deadline = tokio::time::Instant::now() + APPLY_TIMEOUT;
        loop {
            self.apply_delivered(&replicated).await;
            if replicated.applied_index() >= log_index {
                break;
            }
            if let Some(reason) = replicated.failed.borrow().clone() {
                return Err(CoreError::Catalog(reason));
            }
            if tokio::time::timeout_at(deadline, delivered.changed()).await.is_err() {
                return Err(CoreError::Catalog(format!(
                    "the cluster committed the change at {log_index}, but it was not applied here in time"
                )));
            }
        }
        Ok(Applied {
            changed: true,
            ..Applied::default()
        })
    }

    /// Applies every entry delivered so far, in order.
    /// A committed entry this node cannot apply (a full disk, a file in
    /// the way) stops the applying: every later entry may build on it, so
    /// none is applied, and the node reports why
    /// (`Broker::replication_failed`) to be stopped. The next start
    /// applies it again.
    pub(super) async fn apply_delivered(&mut self, replicated: &Replicated) {
        loop {
            if replicated.failed.borrow().is_some() {
                return;
            }
            let Some((log_index, events)) = replicated.entries.lock().pop_front() else {
                return;
            };
            if log_index <= replicated.applied_index() {
                continue;
            }
            for event in events {
                if let Err(error) = self.apply_replicated(event, replicated).await {
                    let reason = format!("the cluster committed catalog entry {log_index}, but this node could not apply it: {error}");
                    error!(%error, log_index, "applying a committed catalog change on this node failed; the node stops");
                    replicated.failed.send_replace(Some(reason));
                    return;
                }
            }
            replicated.applied_index.store(log_index, Ordering::Release);
        }
    }

    async fn apply_replicated(&mut self, event: Event, replicated: &Replicated) -> Result<()> {
        if reflected(self.catalog(), &event) {
            return Ok(());
        }
        let handed = handoff_key(&event).and_then(|key| replicated.handoff.lock().remove(&key));
        let opened = match handed {
            Some(opened) => opened,
            None => self.open_for(&event).await?,
        };
        let applied = self.commit_with(event, true, opened, false).await?;
        remove_queues(applied.removed_queues).await?;
        remove_topics(applied.removed_topics).await
    }

    /// Opens what another node's `event` names, as the start opens what
    /// the catalog records.
    async fn open_for(&self, event: &Event) -> Result<Opened> {
        let meta = Arc::clone(self.meta());
        match event {
            Event::TopicCreated { .. } => {
                let Some(record) = event.created_topic() else {
                    return Ok(Opened::Nothing);
                };
                let topic = blocking(move || {
                    let topics_dir = meta.config.data_dir.join("topics");
                    open_topic(&topics_dir, &record, &meta.config, &meta.clock, &meta.stats)
                })
                .await?;
                Ok(Opened::Topic(topic))
            }
            Event::PartitionsCreated { id, name, partitions } => {
                let Some(topic) = meta.views().topics.get(name).filter(|topic| topic.id == *id).cloned() else {
                    return Ok(Opened::Nothing);
                };
                let (total, name) = (*partitions, name.clone());
                let logs = blocking(move || {
                    let current = topic.partition_count();
                    let log_config = topic.config().log_config(&meta.config.topic_defaults);
                    open_partitions(topic.dir(), current..total, &log_config, &meta.clock, &meta.stats.topic(&name))
                })
                .await?;
                Ok(Opened::Partitions(logs))
            }
            Event::QueueDeclared { .. } => {
                let Some(record) = event.declared_queue() else {
                    return Ok(Opened::Nothing);
                };
                let topics = meta.views().topics.clone();
                blocking(move || {
                    let queue = open_queue(&meta.config.data_dir, &record, &topics, &meta.config, &meta.clock)?;
                    Ok(match stream_topic(&queue)? {
                        Some(topic) => Opened::Stream(queue, topic),
                        None => Opened::Queue(queue),
                    })
                })
                .await
            }
            _ => Ok(Opened::Nothing),
        }
    }
}

impl Broker {
    /// Makes this broker a cluster node: its durable catalog changes go
    /// through `replication` from now on. Call before the doors serve; a
    /// second call changes nothing.
    pub fn replicate_through(&self, replication: Arc<dyn Replication>) {
        let _ = self.meta.replicated.set(Arc::new(Replicated::new(replication)));
    }

    /// Hands this node an entry the metadata group committed, in log
    /// order; applied by whoever holds the metadata lock next.
    pub fn deliver_replicated(&self, log_index: u64, events: Vec<Event>) {
        let Some(replicated) = self.meta.replicated.get() else {
            warn!(log_index, "a replicated catalog change reached a broker that is no cluster node");
            return;
        };
        replicated.entries.lock().push_back((log_index, events));
        replicated.delivered.send_replace(log_index);
    }

    /// Resolves, with why, once a committed catalog entry could not be
    /// applied on this node: the node must stop (it would serve a catalog
    /// that is not the cluster's). Never resolves on a single node.
    pub async fn replication_failed(&self) -> String {
        let Some(replicated) = self.meta.replicated.get() else {
            return std::future::pending().await;
        };
        let mut failed = replicated.failed.subscribe();
        match failed.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The sender lives as long as the broker.
            Err(_) => std::future::pending().await,
        }
    }

    /// Applies delivered entries while no change does, until `shutdown`.
    pub async fn run_replicated(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(replicated) = self.meta.replicated.get().cloned() else {
            return;
        };
        let mut delivered = replicated.delivered.subscribe();
        info!("applying the cluster's committed catalog changes");
        loop {
            if !replicated.entries.lock().is_empty() {
                let mut change = self.meta.change().await;
                change.apply_delivered(&replicated).await;
            }
            tokio::select! {
                changed = delivered.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::BrokerConfig;

    /// A metadata group whose proposals never commit: the test delivers
    /// committed entries itself, as the node does.
    #[derive(Debug)]
    struct Silent;

    impl Replication for Silent {
        fn node_id(&self) -> u64 {
            1
        }

        fn propose(&self, _events: Vec<Event>) -> Pin<Box<dyn Future<Output = std::result::Result<u64, String>> + Send + '_>> {
            Box::pin(std::future::pending())
        }
    }

    fn topic_created(name: &str) -> Event {
        Event::TopicCreated {
            id: uuid::Uuid::new_v4(),
            name: name.to_owned(),
            partitions: 1,
            configs: BTreeMap::new(),
            created_ms: 0,
            replication_factor: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_committed_entry_this_node_cannot_apply_stops_the_applying_and_reports_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("open"));
        broker.replicate_through(Arc::new(Silent));
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(Arc::clone(&broker).run_replicated(shutdown));

        broker.deliver_replicated(1, vec![topic_created("applied")]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !broker.meta.views().topics.contains_key("applied") {
            assert!(tokio::time::Instant::now() < deadline, "entry 1 applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A file where the topics' directories go: the next topic cannot open.
        let topics = dir.path().join("topics");
        std::fs::rename(&topics, dir.path().join("topics-aside")).expect("move aside");
        std::fs::write(&topics, b"in the way").expect("file");
        broker.deliver_replicated(2, vec![topic_created("unopenable")]);
        broker.deliver_replicated(3, vec![topic_created("after")]);
        let reason = tokio::time::timeout(Duration::from_secs(10), broker.replication_failed())
            .await
            .expect("the failure is reported");
        assert!(reason.contains("catalog entry 2"), "names the entry: {reason}");
        let views = broker.meta.views();
        assert!(!views.topics.contains_key("unopenable"));
        assert!(!views.topics.contains_key("after"), "nothing after a failed entry is applied");
        let replicated = broker.meta.replicated.get().expect("a cluster node");
        assert_eq!(replicated.applied_index(), 1);
    }
}
