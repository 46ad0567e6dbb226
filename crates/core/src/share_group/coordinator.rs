//! The share-group coordinator: every share group's membership
//! (`membership.rs`) and the share-partitions of every group, opened on
//! first use under `<data dir>/share-groups/<group, hex>/<topic id>/<partition>/`
//! and kept open until the broker closes. Lock and session expiry are lazy:
//! a share-partition ends expired locks before every acquisition, and
//! members whose session ended are removed (their records released) at
//! every heartbeat and fetch. The groups' members are kept in a journal
//! (`store.rs`): a heartbeat is answered once what it changed is durable,
//! and after a restart every member carries on with its id and epoch; a
//! group with share-partitions on disk and no stored members exists (empty). Also the share-group admin: a group deleted,
//! its share-partitions' start offsets read, set anew or deleted (KIP-932's
//! Describe/Alter/DeleteShareGroupOffsets), the last two only while the
//! group has no members. Knows no wire format.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conveyor_log::clock::Clock;
use parking_lot::Mutex;
use tracing::{info, warn};

use super::membership::{Heartbeat, HeartbeatReply, MembershipError, ShareGroup, ShareGroups};
use super::share_partition::{SharePartition, SharePartitionConfig};
use super::store::ShareGroupStore;
use crate::Topic;
use crate::group::{GroupDescription, GroupState, GroupType, MemberDescription};
use crate::queue::{ConsumerId, CursorStart, QueueError};

/// A share-partition's key: group, topic id, partition.
type PartitionKey = (String, uuid::Uuid, u32);

/// See the module documentation.
#[derive(Debug)]
pub struct ShareGroupCoordinator {
    root: PathBuf,
    clock: Arc<dyn Clock>,
    config: SharePartitionConfig,
    /// Lock order: `membership` before `partitions`, and before `store`'s.
    membership: Mutex<ShareGroups>,
    /// Where `membership` is kept, changed under its lock.
    store: ShareGroupStore,
    partitions: Mutex<HashMap<PartitionKey, Arc<SharePartition>>>,
    /// The cursor number of every member id seen since the broker started
    /// (acquisitions are not durable, so the numbers need not be either).
    consumers: Mutex<HashMap<String, ConsumerId>>,
}

impl ShareGroupCoordinator {
    /// The coordinator of the groups `store` holds, whose members get a
    /// full session from now, and of the share-partitions under `root`.
    pub fn new(
        root: PathBuf,
        store: ShareGroupStore,
        clock: Arc<dyn Clock>,
        config: SharePartitionConfig,
        session_timeout_ms: i64,
    ) -> ShareGroupCoordinator {
        let mut membership = ShareGroups::of(store.groups(clock.now_ms()), session_timeout_ms);
        for group in stored_groups(&root) {
            membership.ensure(&group);
        }
        ShareGroupCoordinator {
            root,
            clock,
            config,
            membership: Mutex::new(membership),
            store,
            partitions: Mutex::new(HashMap::new()),
            consumers: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> SharePartitionConfig {
        self.config
    }

    /// Applies a member's heartbeat (after expiring ended sessions); its
    /// session lasts `session_timeout_ms` from now. Answers once what it
    /// changed of the group (members, epochs, subscriptions) is durable, as
    /// Kafka answers once its records are written.
    pub async fn heartbeat(&self, group: &str, heartbeat: Heartbeat, session_timeout_ms: i64) -> Result<HeartbeatReply, MembershipError> {
        self.expire_members();
        let leaving = heartbeat.member_epoch == super::membership::LEAVE_EPOCH;
        let member_id = heartbeat.member_id.clone();
        let (reply, recorded) = {
            let mut membership = self.membership.lock();
            let reply = membership.heartbeat_within(group, heartbeat, self.clock.now_ms(), session_timeout_ms);
            // A refused heartbeat may have changed the group too (a new
            // empty group): recorded, but nobody waits for it.
            let recorded = self.store.record(group, membership.group(group));
            (reply?, recorded)
        };
        if leaving {
            self.release_member(group, &member_id);
        }
        let storage = |error: crate::journal::JournalError| MembershipError::Storage(error.to_string());
        recorded.map_err(storage)?.await.map_err(storage)?;
        self.store.maybe_snapshot().await;
        Ok(reply)
    }

    /// Where the groups' members are kept.
    pub fn store(&self) -> &ShareGroupStore {
        &self.store
    }

    /// Whether `member_id` is a member of `group` now.
    pub fn is_member(&self, group: &str, member_id: &str) -> bool {
        self.expire_members();
        self.membership
            .lock()
            .group(group)
            .is_some_and(|state| state.members.contains_key(member_id))
    }

    /// A copy of the group's members and epoch, if it exists.
    pub fn describe(&self, group: &str) -> Option<ShareGroup> {
        self.expire_members();
        self.membership.lock().group(group).cloned()
    }

    /// Every share group's name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.membership.lock().names()
    }

    /// Every share group as ListGroups shows it (type `share`, protocol
    /// type `share`, as Kafka lists them).
    pub fn list(&self) -> Vec<GroupDescription> {
        self.expire_members();
        let membership = self.membership.lock();
        membership
            .names()
            .into_iter()
            .filter_map(|name| {
                let group = membership.group(&name)?;
                Some(GroupDescription {
                    group_id: name.clone(),
                    group_type: GroupType::Share,
                    state: if group.members.is_empty() {
                        GroupState::Empty
                    } else {
                        GroupState::Stable
                    },
                    protocol_type: "share".to_owned(),
                    protocol_name: String::new(),
                    generation_id: group.group_epoch,
                    members: (group.members.values())
                        .map(|member| MemberDescription {
                            member_id: member.member_id.clone(),
                            group_instance_id: None,
                            client_id: member.client_id.clone(),
                            client_host: member.client_host.clone(),
                            metadata: bytes::Bytes::new(),
                            assignment: bytes::Bytes::new(),
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// The session timeout of groups that set none.
    pub fn session_timeout_ms(&self) -> i64 {
        self.membership.lock().session_timeout_ms()
    }

    /// The cursor number of a member.
    pub fn consumer(&self, member_id: &str) -> ConsumerId {
        let mut consumers = self.consumers.lock();
        let next = ConsumerId(consumers.len() as u64 + 1);
        *consumers.entry(member_id.to_owned()).or_insert(next)
    }

    /// The share-partition of `group` over partition `index` of `topic`,
    /// opened (and created, starting at `start`: the group's
    /// `share.auto.offset.reset`) on first use. Blocking the first time.
    pub fn share_partition(
        &self,
        group: &str,
        topic: &Topic,
        index: u32,
        start: CursorStart,
    ) -> Result<Option<Arc<SharePartition>>, QueueError> {
        let key = (group.to_owned(), topic.id, index);
        if let Some(open) = self.partitions.lock().get(&key) {
            return Ok(Some(Arc::clone(open)));
        }
        let Some(partition) = topic.partition_handle(index) else {
            return Ok(None);
        };
        let dir = self.partition_dir(group, topic.id, index);
        let mut partitions = self.partitions.lock();
        if let Some(open) = partitions.get(&key) {
            return Ok(Some(Arc::clone(open)));
        }
        // Opened under the lock so that two fetches never open one journal twice.
        let opened = Arc::new(SharePartition::open(dir, partition, start, self.config, Arc::clone(&self.clock))?);
        info!(group, topic = %topic.name, partition = index, start = opened.start_offset(), "share-partition opened");
        partitions.insert(key, Arc::clone(&opened));
        Ok(Some(opened))
    }

    /// Removes members whose session ended and releases their records.
    fn expire_members(&self) {
        let expired = {
            let mut membership = self.membership.lock();
            let expired = membership.expire(self.clock.now_ms());
            let groups: BTreeSet<&String> = expired.iter().map(|(group, _)| group).collect();
            for group in groups {
                self.store.record_in_background(group, membership.group(group));
            }
            expired
        };
        for (group, member_id) in expired {
            info!(group, member_id, "share group member's session expired");
            self.release_member(&group, &member_id);
        }
    }

    fn release_member(&self, group: &str, member_id: &str) {
        let consumer = self.consumer(member_id);
        let partitions: Vec<Arc<SharePartition>> = self
            .partitions
            .lock()
            .iter()
            .filter(|((name, _, _), _)| name == group)
            .map(|(_, partition)| Arc::clone(partition))
            .collect();
        for partition in partitions {
            partition.release_member(consumer);
        }
    }

    /// Forgets every group's state over the topic with id `topic_id` (the
    /// topic was deleted): its share-partitions are closed and their
    /// directories removed, so a topic created again under the same name
    /// (a new id) starts with none. Blocking.
    pub fn forget_topic(&self, topic_id: uuid::Uuid) {
        self.close_partitions(|(_, id, _)| *id == topic_id);
        let Ok(groups) = std::fs::read_dir(&self.root) else {
            return; // No share group ever fetched.
        };
        for group in groups.flatten() {
            remove_dir(&group.path().join(topic_id.to_string()));
        }
    }

    /// Deletes `group` (DeleteGroups) if it has no members: its
    /// share-partitions and their state go, so a group of the same name
    /// starts anew (at its `share.auto.offset.reset`). Blocking.
    pub fn delete_group(&self, group: &str) -> Result<(), MembershipError> {
        self.expire_members();
        // Held until the state is gone: no member joins a half-deleted group.
        let mut membership = self.membership.lock();
        membership.remove_empty(group)?;
        let recorded = self.store.record(group, None).and_then(|appended| appended.wait());
        recorded.map_err(|error| MembershipError::Storage(error.to_string()))?;
        self.close_partitions(|(name, _, _)| name == group);
        remove_dir(&self.root.join(hex(group)));
        info!(group, "share group deleted");
        Ok(())
    }

    /// The partitions, by topic id, `group` has share-partitions over
    /// (KIP-932's initialized share-partitions).
    pub fn initialized_partitions(&self, group: &str) -> BTreeMap<uuid::Uuid, BTreeSet<u32>> {
        let mut initialized: BTreeMap<uuid::Uuid, BTreeSet<u32>> = BTreeMap::new();
        let Ok(topics) = std::fs::read_dir(self.root.join(hex(group))) else {
            return initialized;
        };
        for topic in topics.flatten() {
            let Ok(topic_id) = topic.file_name().to_string_lossy().parse::<uuid::Uuid>() else {
                continue;
            };
            let Ok(partitions) = std::fs::read_dir(topic.path()) else {
                continue;
            };
            let indexes: BTreeSet<u32> = partitions
                .flatten()
                .filter_map(|partition| partition.file_name().to_string_lossy().parse().ok())
                .collect();
            if !indexes.is_empty() {
                initialized.insert(topic_id, indexes);
            }
        }
        initialized
    }

    /// The start offset of `group`'s share-partition over partition `index`
    /// of `topic`; `None` if the group has none there (nothing is created).
    /// Blocking the first time.
    pub fn start_offset(&self, group: &str, topic: &Topic, index: u32) -> Result<Option<u64>, QueueError> {
        if let Some(open) = self.partitions.lock().get(&(group.to_owned(), topic.id, index)) {
            return Ok(Some(open.start_offset()));
        }
        if !self.partition_dir(group, topic.id, index).exists() {
            return Ok(None);
        }
        // Not a new one: the start it is opened with is not used.
        let opened = self.share_partition(group, topic, index, CursorStart::Latest)?;
        Ok(opened.map(|partition| partition.start_offset()))
    }

    /// Makes each `(topic, partition, start)` share-partition of `group`
    /// anew, starting at `start` (an offset is kept within the partition's
    /// log), its delivery state dropped, as Kafka's AlterShareGroupOffsets
    /// initializes them. The group must exist and have no members. One
    /// result per change. Blocking.
    pub fn alter_start_offsets(
        &self,
        group: &str,
        changes: &[(Arc<Topic>, u32, CursorStart)],
    ) -> Result<Vec<Result<(), QueueError>>, MembershipError> {
        self.expire_members();
        // Held until every change is made: no member joins and fetches from a half-made group.
        let membership = self.membership.lock();
        membership.check_empty(group)?;
        let results: Vec<Result<(), QueueError>> = changes
            .iter()
            .map(|(topic, index, start)| -> Result<(), QueueError> {
                self.close_partitions(|(name, id, at)| name == group && *id == topic.id && at == index);
                remove_dir(&self.partition_dir(group, topic.id, *index));
                let opened = self.share_partition(group, topic, *index, *start)?.ok_or(QueueError::Closed)?;
                info!(group, topic = %topic.name, partition = index, start = opened.start_offset(), "share-partition start offset altered");
                Ok(())
            })
            .collect();
        drop(membership);
        Ok(results)
    }

    /// Deletes the state of `group` over each topic of `topic_ids` (Kafka's
    /// DeleteShareGroupOffsets): whether the group had any there. The group
    /// must exist and have no members. Blocking.
    pub fn delete_start_offsets(&self, group: &str, topic_ids: &[uuid::Uuid]) -> Result<Vec<bool>, MembershipError> {
        self.expire_members();
        let membership = self.membership.lock();
        membership.check_empty(group)?;
        let initialized = self.initialized_partitions(group);
        let deleted = topic_ids
            .iter()
            .map(|topic_id| {
                self.close_partitions(|(name, id, _)| name == group && id == topic_id);
                remove_dir(&self.root.join(hex(group)).join(topic_id.to_string()));
                initialized.contains_key(topic_id)
            })
            .collect();
        drop(membership);
        Ok(deleted)
    }

    /// Closes and forgets the open share-partitions whose key `matches`.
    fn close_partitions(&self, matches: impl Fn(&PartitionKey) -> bool) {
        let partitions: Vec<Arc<SharePartition>> = {
            let mut open = self.partitions.lock();
            let keys: Vec<PartitionKey> = open.keys().filter(|key| matches(key)).cloned().collect();
            keys.iter().filter_map(|key| open.remove(key)).collect()
        };
        for partition in partitions {
            if let Err(error) = partition.close() {
                warn!(%error, "closing a share-partition failed");
            }
        }
    }

    fn partition_dir(&self, group: &str, topic_id: uuid::Uuid, index: u32) -> PathBuf {
        self.root.join(hex(group)).join(topic_id.to_string()).join(index.to_string())
    }

    /// Closes every share-partition (a snapshot each), then the groups'
    /// journal (with a snapshot). Blocking.
    pub fn close(&self) {
        self.close_partitions(|_| true);
        if let Err(error) = self.store.close() {
            warn!(%error, "closing the share groups' journal failed");
        }
    }
}

/// A group id as a directory name: any text, one safe name.
fn hex(group: &str) -> String {
    group.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// The group named by a directory [`hex`] named, if it is one.
fn unhex(name: &str) -> Option<String> {
    if !name.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..name.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(name.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The groups with share-partitions under `root`.
fn stored_groups(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new(); // No share group ever fetched.
    };
    entries
        .flatten()
        .filter_map(|entry| unhex(&entry.file_name().to_string_lossy()))
        .collect()
}

/// Removes `dir` and everything in it, if it is there.
fn remove_dir(dir: &Path) {
    if dir.exists()
        && let Err(error) = std::fs::remove_dir_all(dir)
    {
        warn!(%error, dir = %dir.display(), "removing share-group state failed");
    }
}
