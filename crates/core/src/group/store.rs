//! What of a kind of group survives a restart, a [`Journaled`] state
//! machine in a directory of its own, as Kafka keeps its groups in
//! `__consumer_offsets`: per group its metadata record, one record per
//! member and one per member's target assignment, each event setting or
//! deleting one of those by key; replay keeps the last value per key, from
//! the latest snapshot on. The events are the difference between a group
//! as its coordinator holds it and as the journal last recorded it
//! ([`changes`]), so a heartbeat that changes nothing but the member's
//! liveness writes nothing. Liveness is not kept: each kind gives its
//! members a full session from the load, as Kafka's coordinator does on
//! loading. The records of each kind and how its live groups become records
//! and back are the kind's ([`GroupKind`]): KIP-848 consumer groups
//! (`consumer_protocol/store.rs`) and KIP-932 share groups
//! (`share_group/store.rs`). Knows keys, images and the journal, nothing of
//! a group's rules or the wire.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use conveyor_log::Durability;
use conveyor_log::clock::Clock;
use conveyor_log::record::Record;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::Result;
use crate::journal::{Appended, EncodedEvent, JournalConfig, JournalError, Journaled, StateMachine};

/// Write a snapshot after this many events, so replay stays bounded.
const EVENTS_PER_SNAPSHOT: u64 = 10_000;

/// A value one record of a group's journal holds.
pub trait StoredValue: Debug + Clone + PartialEq + Eq + Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Debug + Clone + PartialEq + Eq + Serialize + DeserializeOwned + Send + Sync + 'static> StoredValue for T {}

/// One kind of group as its journal keeps it: its records and how a group
/// as its coordinator holds it (`Live`) becomes them and back.
pub trait GroupKind: Debug + Clone + Default + PartialEq + Eq + Send + Sync + 'static {
    /// The group's own fields.
    type Metadata: StoredValue + Default;
    /// One member, everything but its liveness.
    type Member: StoredValue;
    /// One member's target assignment.
    type Target: StoredValue;
    /// A group as its coordinator holds it.
    type Live;
    /// What the logs call these groups.
    const NAME: &'static str;

    /// What of `group` is kept.
    fn image(group: &Self::Live) -> GroupImage<Self>;

    /// Group `id` again, loaded at `now_ms`: each member's session starts now.
    fn load(id: &str, image: &GroupImage<Self>, now_ms: i64) -> Self::Live;
}

/// One event: one key of one group set (`Some`) or deleted (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange<K: GroupKind> {
    /// `None`: the group is gone, with its members and targets.
    Group { group: String, metadata: Option<K::Metadata> },
    Member {
        group: String,
        member: String,
        metadata: Option<K::Member>,
    },
    Target {
        group: String,
        member: String,
        assignment: Option<K::Target>,
    },
}

/// One group as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct GroupImage<K: GroupKind> {
    pub metadata: K::Metadata,
    pub members: BTreeMap<String, K::Member>,
    pub target: BTreeMap<String, K::Target>,
}

impl<K: GroupKind> Default for GroupImage<K> {
    fn default() -> GroupImage<K> {
        GroupImage {
            metadata: K::Metadata::default(),
            members: BTreeMap::new(),
            target: BTreeMap::new(),
        }
    }
}

/// Every group of kind `K`: the replay of the changes. Also its snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct StoredGroups<K: GroupKind> {
    groups: BTreeMap<String, GroupImage<K>>,
}

/// The journal's record key: `[group, kind, member]`, kind one of
/// `group`, `member`, `target` (member empty for `group`).
type ChangeKey = (String, String, String);

impl<K: GroupKind> StateMachine for StoredGroups<K> {
    type Event = GroupChange<K>;
    type Snapshot = StoredGroups<K>;

    fn apply(&mut self, change: &GroupChange<K>) {
        match change {
            GroupChange::Group { group, metadata: None } => {
                self.groups.remove(group);
            }
            GroupChange::Group {
                group,
                metadata: Some(metadata),
            } => self.groups.entry(group.clone()).or_default().metadata = metadata.clone(),
            GroupChange::Member { group, member, metadata } => {
                let image = self.groups.entry(group.clone()).or_default();
                match metadata {
                    Some(metadata) => image.members.insert(member.clone(), metadata.clone()),
                    None => image.members.remove(member),
                };
            }
            GroupChange::Target { group, member, assignment } => {
                let image = self.groups.entry(group.clone()).or_default();
                match assignment {
                    Some(assignment) => image.target.insert(member.clone(), assignment.clone()),
                    None => image.target.remove(member),
                };
            }
        }
    }

    fn encode(change: &GroupChange<K>) -> std::result::Result<EncodedEvent, String> {
        fn value<T: Serialize>(value: &Option<T>) -> std::result::Result<Option<Vec<u8>>, String> {
            value
                .as_ref()
                .map(|value| serde_json::to_vec(value).map_err(|error| error.to_string()))
                .transpose()
        }
        let (key, value): (ChangeKey, _) = match change {
            GroupChange::Group { group, metadata } => ((group.clone(), "group".into(), String::new()), value(metadata)?),
            GroupChange::Member { group, member, metadata } => ((group.clone(), "member".into(), member.clone()), value(metadata)?),
            GroupChange::Target { group, member, assignment } => ((group.clone(), "target".into(), member.clone()), value(assignment)?),
        };
        let key = serde_json::to_vec(&key).map_err(|error| error.to_string())?;
        Ok((Some(key), value))
    }

    fn decode(record: &Record) -> std::result::Result<GroupChange<K>, String> {
        fn value<T: DeserializeOwned>(record: &Record) -> std::result::Result<Option<T>, String> {
            record
                .value
                .as_ref()
                .map(|value| serde_json::from_slice(value).map_err(|error| format!("value: {error}")))
                .transpose()
        }
        let (group, kind, member): ChangeKey =
            serde_json::from_slice(record.key.as_deref().unwrap_or_default()).map_err(|error| format!("key: {error}"))?;
        match kind.as_str() {
            "group" => Ok(GroupChange::Group {
                group,
                metadata: value(record)?,
            }),
            "member" => Ok(GroupChange::Member {
                group,
                member,
                metadata: value(record)?,
            }),
            "target" => Ok(GroupChange::Target {
                group,
                member,
                assignment: value(record)?,
            }),
            other => Err(format!("key: unknown kind {other:?}")),
        }
    }

    fn snapshot(&self) -> StoredGroups<K> {
        self.clone()
    }

    fn restore(snapshot: StoredGroups<K>) -> StoredGroups<K> {
        snapshot
    }
}

/// The events that turn `stored` (the journal's image of group `id`, if
/// any) into `live` (the group as the coordinator holds it, if any).
pub fn changes<K: GroupKind>(id: &str, stored: Option<&GroupImage<K>>, live: Option<&GroupImage<K>>) -> Vec<GroupChange<K>> {
    let group = || id.to_owned();
    let Some(live) = live else {
        return match stored {
            Some(_) => vec![GroupChange::Group {
                group: group(),
                metadata: None,
            }],
            None => Vec::new(),
        };
    };
    let empty = GroupImage::default();
    let stored_or_empty = stored.unwrap_or(&empty);
    let mut changes = Vec::new();
    if stored.is_none() || stored_or_empty.metadata != live.metadata {
        changes.push(GroupChange::Group {
            group: group(),
            metadata: Some(live.metadata.clone()),
        });
    }
    changes.extend(keyed_changes(&stored_or_empty.members, &live.members, |member, metadata| {
        GroupChange::Member {
            group: group(),
            member: member.clone(),
            metadata,
        }
    }));
    changes.extend(keyed_changes(&stored_or_empty.target, &live.target, |member, assignment| {
        GroupChange::Target {
            group: group(),
            member: member.clone(),
            assignment,
        }
    }));
    changes
}

/// The events (`change` of a key and its new value, `None` once gone) that
/// turn the per-member values `stored` into `live`.
fn keyed_changes<K: GroupKind, V: Clone + PartialEq>(
    stored: &BTreeMap<String, V>,
    live: &BTreeMap<String, V>,
    change: impl Fn(&String, Option<V>) -> GroupChange<K>,
) -> Vec<GroupChange<K>> {
    let set = (live.iter())
        .filter(|(key, value)| stored.get(*key) != Some(*value))
        .map(|(key, value)| change(key, Some(value.clone())));
    let gone = (stored.keys()).filter(|key| !live.contains_key(*key)).map(|key| change(key, None));
    set.chain(gone).collect()
}

/// The journal of the groups of kind `K` and the image it last recorded.
#[derive(Debug)]
pub struct GroupStore<K: GroupKind> {
    journal: Arc<Journaled<StoredGroups<K>>>,
    /// Taken while changes are enqueued on the journal and applied, so the
    /// image's order is the journal's. Lock order: after the coordinator's
    /// lock over its live groups. Never held across an await.
    state: Mutex<StoredGroups<K>>,
}

impl<K: GroupKind> GroupStore<K> {
    /// Opens the store under `dir`, replaying the snapshot and the events after it. Blocking.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<GroupStore<K>> {
        GroupStore::open_with(dir, clock, EVENTS_PER_SNAPSHOT)
    }

    /// [`GroupStore::open`] with another snapshot cadence.
    pub(crate) fn open_with(dir: &Path, clock: Arc<dyn Clock>, snapshot_every_events: u64) -> Result<GroupStore<K>> {
        let config = JournalConfig {
            durability: Durability::Always,
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_events,
            // Members heartbeat on a full file system too, as consumers commit offsets.
            reserve_bytes: crate::queue::JOURNAL_RESERVE_BYTES,
        };
        let (journal, replayed) = Journaled::<StoredGroups<K>>::open(dir, config, clock)?;
        info!(
            groups = replayed.state.groups.len(),
            replayed = replayed.events,
            kind = K::NAME,
            "stored groups loaded"
        );
        Ok(GroupStore {
            journal: Arc::new(journal),
            state: Mutex::new(replayed.state),
        })
    }

    /// Every stored group, loaded at `now_ms`.
    pub(crate) fn groups(&self, now_ms: i64) -> HashMap<String, K::Live> {
        (self.state.lock().groups.iter())
            .map(|(id, image)| (id.clone(), K::load(id, image, now_ms)))
            .collect()
    }

    /// Journals what changed of group `id` (`live`: as the coordinator holds
    /// it now, `None` once it is gone) since it was last recorded. Call under
    /// the lock that orders the group's changes; what it returns resolves
    /// once the changes are durable.
    pub(crate) fn record(&self, id: &str, live: Option<&K::Live>) -> std::result::Result<Appended, JournalError> {
        let mut state = self.state.lock();
        let live = live.map(K::image);
        let changes = changes(id, state.groups.get(id), live.as_ref());
        if changes.is_empty() {
            return Ok(Appended::done());
        }
        let appended = self.journal.append(&changes)?;
        changes.iter().for_each(|change| state.apply(change));
        Ok(appended)
    }

    /// [`GroupStore::record`] where nobody waits for the answer (a session
    /// expired, an empty group gave way): a failure is logged, and the next
    /// change of the group records it again.
    pub(crate) fn record_in_background(&self, id: &str, live: Option<&K::Live>) {
        match self.record(id, live) {
            Ok(appended) => drop(appended),
            Err(error) => warn!(%error, group = id, kind = K::NAME, "could not journal the group's change"),
        }
    }

    /// Writes a snapshot if one is due, off the reactor.
    pub(crate) async fn maybe_snapshot(&self) {
        self.journal.snapshot_when_due(&self.state, K::NAME).await;
    }

    /// The groups' journal, for its health.
    pub fn log(&self) -> &conveyor_log::Log {
        self.journal.log()
    }

    /// Snapshots and closes the journal. Blocking.
    pub fn close(&self) -> Result<()> {
        self.journal.close_with_snapshot(&self.state, K::NAME)?;
        Ok(())
    }
}
