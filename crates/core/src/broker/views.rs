//! What exists, as the broker serves it: the open topics and queues, the
//! router and the vhosts, derived from the catalog's state when the broker
//! opens and changed afterwards only by [`Views::apply`] of the same events
//! the catalog journals. Transient queues, exchanges and bindings live here
//! only: their events are applied without being journaled. Knows events and
//! the objects they name; no files, no locks (`metadata.rs` publishes a new
//! `Views` once its event is durable).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::{CatalogState, Event, QueueDefinition};
use crate::error::{CoreError, Result};
use crate::exchange::{ExchangeError, Router};
use crate::producer::Partition;
use crate::queue::DeclaredQueue;
use crate::topic::Topic;
use crate::topic_config::TopicConfig;
use crate::vhost::VirtualHost;

/// Queues by name: a persistent map, so that cloning the views for a
/// change costs O(1) and the change O(log n), not a copy of every entry
/// (ten thousand queues made each declaration copy ten thousand names).
pub(crate) type QueueMap = imbl::OrdMap<String, Arc<DeclaredQueue>>;

/// The broker's live view of what exists. Cloned, changed and swapped whole
/// by each metadata change; readers see one consistent version.
#[derive(Debug, Clone, Default)]
pub(crate) struct Views {
    pub topics: BTreeMap<String, Arc<Topic>>,
    /// Durable and transient queues.
    pub queues: QueueMap,
    /// The stream queues of `/` whose names are valid topic names, each
    /// as the one-partition topic Kafka clients read and write
    /// ([`Topic::of_stream`]), by name: derived from `queues`, opened with
    /// them and removed with them.
    pub streams: BTreeMap<String, Arc<Topic>>,
    /// Every vhost's exchanges and bindings, durable and transient.
    pub router: Router,
    /// The virtual hosts besides `/`.
    pub vhosts: BTreeMap<String, VirtualHost>,
    /// Kafka groups' own configs, as the catalog records them.
    pub group_configs: Arc<BTreeMap<String, BTreeMap<String, String>>>,
    /// On a cluster node, the cluster's Kafka cluster id once set.
    pub cluster_id: Option<Arc<str>>,
}

/// What a change opened for its event to name: files are opened before the
/// event is journaled, so that a journaled event never names what could not
/// be opened.
#[derive(Debug)]
pub(crate) enum Opened {
    Nothing,
    Topic(Arc<Topic>),
    Partitions(Vec<Partition>),
    Queue(Arc<DeclaredQueue>),
    /// A stream queue and the topic its log is to Kafka clients.
    Stream(Arc<DeclaredQueue>, Arc<Topic>),
}

/// A change to an object that stays open across the event (a topic's
/// partitions or config, a queue's definition): made only once the event is
/// durable, as the object is shared with every reader.
#[derive(Debug)]
pub(crate) enum Effect {
    AddPartitions(Arc<Topic>, Vec<Partition>),
    SetTopicConfig(Arc<Topic>, TopicConfig),
    /// A queue's new definition (and so policy); with the topic a stream is
    /// to Kafka clients, whose config then says its new retention.
    Redefine(Arc<DeclaredQueue>, Box<QueueDefinition>, Option<Arc<Topic>>),
}

/// What applying one event did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// False when the event changed nothing (an equivalent redeclaration,
    /// a binding that exists): then it is not journaled either.
    pub changed: bool,
    /// Taken out of the views; the caller closes them and removes their files.
    pub removed_topics: Vec<Arc<Topic>>,
    pub removed_queues: Vec<Arc<DeclaredQueue>>,
    pub effects: Vec<Effect>,
}

impl Views {
    /// The views of a catalog state: its vhosts, and a router rebuilt from
    /// its exchanges and bindings. Topics and queues are opened by the
    /// caller (it knows the data directory).
    pub fn of_catalog(state: &CatalogState) -> Result<Views> {
        let vhosts: BTreeMap<String, VirtualHost> = state
            .vhosts
            .iter()
            .filter_map(|name| VirtualHost::new(name).ok().map(|vhost| (name.clone(), vhost)))
            .collect();
        let router = Router::from_definitions(&state.routing, vhosts.values())?;
        Ok(Views {
            topics: BTreeMap::new(),
            queues: QueueMap::new(),
            streams: BTreeMap::new(),
            router,
            vhosts,
            group_configs: Arc::new(state.group_configs.clone()),
            cluster_id: state.cluster_id.as_deref().map(Arc::from),
        })
    }

    /// Applies one event with what was opened for it. Fails, changing
    /// nothing that matters (the caller drops this copy), when the router
    /// refuses it: this is where exchanges and bindings are checked.
    pub fn apply(&mut self, event: &Event, opened: Opened) -> Result<Applied> {
        let mut applied = Applied {
            changed: true,
            ..Applied::default()
        };
        match event {
            Event::TopicCreated { name, .. } => {
                let Opened::Topic(topic) = opened else {
                    return Err(not_opened(event));
                };
                self.topics.insert(name.clone(), topic);
            }
            Event::TopicDeleted { id, name } => match self.topics.get(name) {
                Some(topic) if topic.id == *id => applied.removed_topics.extend(self.topics.remove(name)),
                _ => applied.changed = false,
            },
            Event::PartitionsCreated { id, name, .. } => {
                let (Some(topic), Opened::Partitions(partitions)) = (self.topics.get(name).filter(|topic| topic.id == *id), opened) else {
                    return Err(not_opened(event));
                };
                applied.effects.push(Effect::AddPartitions(Arc::clone(topic), partitions));
            }
            Event::TopicConfigsSet { id, name, configs } => match self.topics.get(name).filter(|topic| topic.id == *id) {
                Some(topic) => {
                    let config = TopicConfig::new(configs.clone())?;
                    applied.effects.push(Effect::SetTopicConfig(Arc::clone(topic), config));
                }
                None => applied.changed = false,
            },
            // Kept by the broker's producer id counter, not a view; where a
            // partition's replicas are is the cluster's partition groups' to act on.
            Event::ProducerIdsReserved { .. } | Event::ProducerIdsAllocated { .. } | Event::PartitionReplicasSet { .. } => {}
            // Set once: a second one changes nothing, as in the catalog.
            Event::ClusterIdSet { cluster_id } => match self.cluster_id {
                Some(_) => applied.changed = false,
                None => self.cluster_id = Some(Arc::from(cluster_id.as_str())),
            },
            Event::QueueDeclared { name, .. } => match opened {
                Opened::Queue(queue) => {
                    self.queues.insert(name.clone(), queue);
                }
                Opened::Stream(queue, topic) => {
                    self.queues.insert(name.clone(), queue);
                    self.streams.insert(name.clone(), topic);
                }
                _ => return Err(not_opened(event)),
            },
            Event::QueueDeleted { id, name } => match self.queues.get(name) {
                Some(queue) if queue.id == *id => {
                    self.streams.remove(name);
                    applied.removed_queues.extend(self.queues.remove(name));
                    self.router.remove_queue(name);
                }
                _ => applied.changed = false,
            },
            Event::QueueArgumentsSet { id, name, .. } => match self.queues.get(name).filter(|queue| queue.id == *id) {
                Some(queue) => {
                    let definition = event
                        .redefined(&queue.definition())
                        .ok_or_else(|| CoreError::Catalog("a queue's arguments set without a definition".to_owned()))?;
                    let stream = self.streams.get(name).filter(|topic| topic.id == *id).cloned();
                    applied
                        .effects
                        .push(Effect::Redefine(Arc::clone(queue), Box::new(definition), stream));
                }
                None => applied.changed = false,
            },
            // A declaration of an existing exchange replaces it, as on replay.
            Event::ExchangeDeclared { exchange } => match self.router.exchange(&exchange.name) {
                Some(existing) if existing == exchange => applied.changed = false,
                Some(_) => self.router.redefine_exchange(exchange.clone())?,
                None => applied.changed = self.router.declare_exchange(exchange.clone())?,
            },
            Event::ExchangeDeleted { name } => applied.changed = self.router.delete_exchange(name, false)?.is_some(),
            Event::BindingAdded { source, binding } => applied.changed = self.router.bind(source, binding.clone())?,
            Event::BindingRemoved { source, binding } => applied.changed = !self.router.unbind(source, binding)?.bindings.is_empty(),
            Event::BindingReplaced { source, old, new } => {
                if self.router.unbind(source, old)?.bindings.is_empty() {
                    return Err(CoreError::Exchange(ExchangeError::InvalidArgument {
                        exchange: source.clone(),
                        reason: "no such binding to replace".to_owned(),
                    }));
                }
                self.router.bind(source, new.clone())?;
            }
            Event::VhostCreated { name } => {
                let vhost = VirtualHost::new(name)?;
                self.router.add_vhost(&vhost);
                applied.changed = self.vhosts.insert(name.clone(), vhost).is_none();
            }
            Event::VhostDeleted { name } => match self.vhosts.remove(name) {
                Some(vhost) => {
                    self.router.remove_vhost(&vhost);
                    let names: Vec<String> = self.queues.keys().filter(|queue| vhost.contains(queue)).cloned().collect();
                    applied
                        .removed_queues
                        .extend(names.iter().filter_map(|queue| self.queues.remove(queue)));
                }
                None => applied.changed = false,
            },
            // Users and grants are no view of this kind: the authorizer
            // derives its own from the catalog's state after the change.
            Event::UserSet { .. }
            | Event::UserDeleted { .. }
            | Event::PermissionSet { .. }
            | Event::PermissionCleared { .. }
            | Event::AclsCreated { .. }
            | Event::AclsDeleted { .. } => {}
            Event::GroupConfigsSet { group, configs } => {
                let mut group_configs = (*self.group_configs).clone();
                if configs.is_empty() {
                    group_configs.remove(group);
                } else {
                    group_configs.insert(group.clone(), configs.clone());
                }
                self.group_configs = Arc::new(group_configs);
            }
        }
        Ok(applied)
    }
}

/// An event applied without the object it needs: a bug in the caller.
fn not_opened(event: &Event) -> CoreError {
    CoreError::Catalog(format!("applied without what it names: {event:?}"))
}
