//! What of the KIP-848 groups survives a restart, a [`Journaled`] state
//! machine in `<data>/groups/consumer-groups/`, as Kafka keeps them in
//! `__consumer_offsets`: per group its metadata (group epoch, the target's
//! assignment epoch, assignor, subscribed topics' shapes, session timeout),
//! each member (epochs, reconciliation state, subscription, current and
//! revoking partitions: Kafka's ConsumerGroupMemberMetadata and
//! ConsumerGroupCurrentMemberAssignment records) and each member's target
//! (ConsumerGroupTargetAssignmentMember). Each event sets or deletes one
//! of those by key; replay keeps the last value per key, from the latest
//! snapshot on. The events are the difference between a group as the
//! coordinator holds it and as the journal last recorded it, so a
//! heartbeat that changes nothing but the member's liveness writes nothing.
//! Liveness is not kept: a group loaded after a restart gives every member
//! a full session (and a member still revoking its rebalance timeout) from
//! the load, as Kafka's coordinator does on loading. Knows groups and
//! their durability, nothing of the wire format.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use conveyor_log::Durability;
use conveyor_log::clock::Clock;
use conveyor_log::record::Record;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::assignor::{Assignment, Assignor, TopicShape};
use super::consumer_group::{ConsumerGroup, ConsumerMember, MemberState};
use super::subscription::SubscribedRegex;
use crate::error::Result;
use crate::journal::{Appended, EncodedEvent, JournalConfig, JournalError, Journaled, StateMachine};

/// Write a snapshot after this many events, so replay stays bounded.
const EVENTS_PER_SNAPSHOT: u64 = 10_000;

/// A group's own fields (Kafka's ConsumerGroupMetadata, target assignment
/// metadata and partition metadata records in one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMetadata {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub topics: BTreeMap<String, TopicShape>,
    pub session_timeout_ms: Option<i64>,
}

/// One member as it is kept: everything but its liveness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    pub subscribed_regex: Option<String>,
    pub matched: BTreeSet<String>,
    pub rebalance_timeout_ms: i32,
    pub assigned: Assignment,
    pub revoking: Assignment,
}

/// One event: one key of one group set (`Some`) or deleted (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    /// `None`: the group is gone, with its members and targets.
    Group { group: String, metadata: Option<GroupMetadata> },
    Member {
        group: String,
        member: String,
        metadata: Option<MemberMetadata>,
    },
    Target {
        group: String,
        member: String,
        assignment: Option<Assignment>,
    },
}

/// One group as the journal holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupImage {
    pub metadata: GroupMetadata,
    pub members: BTreeMap<String, MemberMetadata>,
    pub target: BTreeMap<String, Assignment>,
}

/// Every KIP-848 group: the replay of the changes. Also its snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroups {
    groups: BTreeMap<String, GroupImage>,
}

/// The journal's record key: `[group, kind, member]`, kind one of
/// `group`, `member`, `target` (member empty for `group`).
type ChangeKey = (String, String, String);

impl StateMachine for StoredGroups {
    type Event = GroupChange;
    type Snapshot = StoredGroups;

    fn apply(&mut self, change: &GroupChange) {
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

    fn encode(change: &GroupChange) -> std::result::Result<EncodedEvent, String> {
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

    fn decode(record: &Record) -> std::result::Result<GroupChange, String> {
        fn value<T: serde::de::DeserializeOwned>(record: &Record) -> std::result::Result<Option<T>, String> {
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

    fn snapshot(&self) -> StoredGroups {
        self.clone()
    }

    fn restore(snapshot: StoredGroups) -> StoredGroups {
        snapshot
    }
}

impl GroupImage {
    /// What of `group` is kept.
    pub fn of(group: &ConsumerGroup) -> GroupImage {
        GroupImage {
            metadata: GroupMetadata {
                group_epoch: group.group_epoch,
                assignment_epoch: group.assignment_epoch,
                assignor: group.assignor.name().to_owned(),
                topics: group.topics.clone(),
                session_timeout_ms: group.session_timeout_ms,
            },
            members: group
                .members
                .iter()
                .map(|(id, member)| (id.clone(), MemberMetadata::of(member)))
                .collect(),
            target: group.target.clone(),
        }
    }

    /// The group again, loaded at `now_ms`: each member's session (and
    /// revocation, if it was revoking) starts now.
    pub fn group(&self, id: &str, now_ms: i64) -> ConsumerGroup {
        let metadata = &self.metadata;
        let mut group = ConsumerGroup::new(id, Assignor::from_name(&metadata.assignor).unwrap_or(Assignor::Uniform));
        group.group_epoch = metadata.group_epoch;
        group.assignment_epoch = metadata.assignment_epoch;
        group.topics = metadata.topics.clone();
        group.session_timeout_ms = metadata.session_timeout_ms;
        group.target = self.target.clone();
        group.members = self
            .members
            .iter()
            .map(|(member_id, member)| (member_id.clone(), member.member(member_id, now_ms)))
            .collect();
        group
    }
}

impl MemberMetadata {
    fn of(member: &ConsumerMember) -> MemberMetadata {
        MemberMetadata {
            instance_id: member.instance_id.clone(),
            epoch: member.epoch,
            previous_epoch: member.previous_epoch,
            state: member.state,
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            subscribed: member.subscribed.clone(),
            subscribed_regex: member.subscribed_regex.as_ref().map(|regex| regex.source().to_owned()),
            matched: member.matched.clone(),
            rebalance_timeout_ms: member.rebalance_timeout_ms,
            assigned: member.assigned.clone(),
            revoking: member.revoking.clone(),
        }
    }

    fn member(&self, id: &str, now_ms: i64) -> ConsumerMember {
        ConsumerMember {
            id: id.to_owned(),
            instance_id: self.instance_id.clone(),
            epoch: self.epoch,
            previous_epoch: self.previous_epoch,
            state: self.state,
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed: self.subscribed.clone(),
            // It compiled when it was kept; one that no longer does (a
            // stricter build) subscribes to nothing by pattern.
            subscribed_regex: self
                .subscribed_regex
                .as_deref()
                .and_then(|source| SubscribedRegex::parse(source).ok()),
            matched: self.matched.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            assigned: self.assigned.clone(),
            revoking: self.revoking.clone(),
            last_heartbeat_ms: now_ms,
            revocation_deadline_ms: (!self.revoking.is_empty()).then(|| now_ms + i64::from(self.rebalance_timeout_ms.max(0))),
        }
    }
}

/// The events that turn `stored` (the journal's image of group `id`, if
/// any) into `live` (the group as the coordinator holds it, if any).
pub fn changes(id: &str, stored: Option<&GroupImage>, live: Option<&GroupImage>) -> Vec<GroupChange> {
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
fn keyed_changes<V: Clone + PartialEq>(
    stored: &BTreeMap<String, V>,
    live: &BTreeMap<String, V>,
    change: impl Fn(&String, Option<V>) -> GroupChange,
) -> Vec<GroupChange> {
    let set = (live.iter())
        .filter(|(key, value)| stored.get(*key) != Some(*value))
        .map(|(key, value)| change(key, Some(value.clone())));
    let gone = (stored.keys()).filter(|key| !live.contains_key(*key)).map(|key| change(key, None));
    set.chain(gone).collect()
}

/// The KIP-848 groups' journal and the image it last recorded.
#[derive(Debug)]
pub struct ConsumerGroupStore {
    journal: Arc<Journaled<StoredGroups>>,
    /// Taken while changes are enqueued on the journal and applied, so the
    /// image's order is the journal's. Lock order: after the coordinator's
    /// `consumer_groups`. Never held across an await.
    state: Mutex<StoredGroups>,
}

impl ConsumerGroupStore {
    /// Opens the store under `dir`, replaying the snapshot and the events after it. Blocking.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<ConsumerGroupStore> {
        ConsumerGroupStore::open_with(dir, clock, EVENTS_PER_SNAPSHOT)
    }

    /// [`ConsumerGroupStore::open`] with another snapshot cadence.
    pub(crate) fn open_with(dir: &Path, clock: Arc<dyn Clock>, snapshot_every_events: u64) -> Result<ConsumerGroupStore> {
        let config = JournalConfig {
            durability: Durability::Always,
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_events,
            // Members heartbeat on a full file system too, as consumers commit offsets.
            reserve_bytes: crate::queue::JOURNAL_RESERVE_BYTES,
        };
        let (journal, replayed) = Journaled::<StoredGroups>::open(dir, config, clock)?;
        info!(
            groups = replayed.state.groups.len(),
            replayed = replayed.events,
            "KIP-848 consumer groups loaded"
        );
        Ok(ConsumerGroupStore {
            journal: Arc::new(journal),
            state: Mutex::new(replayed.state),
        })
    }

    /// Every stored group, loaded at `now_ms`.
    pub(in crate::group) fn groups(&self, now_ms: i64) -> HashMap<String, ConsumerGroup> {
        (self.state.lock().groups.iter())
            .map(|(id, image)| (id.clone(), image.group(id, now_ms)))
            .collect()
    }

    /// Journals what changed of group `id` (`live`: as the coordinator holds
    /// it now, `None` once it is gone) since it was last recorded. Call under
    /// the lock that orders the group's changes; what it returns resolves
    /// once the changes are durable.
    pub(in crate::group) fn record(&self, id: &str, live: Option<&ConsumerGroup>) -> std::result::Result<Appended, JournalError> {
        let mut state = self.state.lock();
        let live = live.map(GroupImage::of);
        let changes = changes(id, state.groups.get(id), live.as_ref());
        if changes.is_empty() {
            return Ok(Appended::done());
        }
        let appended = self.journal.append(&changes)?;
        changes.iter().for_each(|change| state.apply(change));
        Ok(appended)
    }

    /// [`ConsumerGroupStore::record`] where nobody waits for the answer (a
    /// session expired, an empty group gave way): a failure is logged, and
    /// the next change of the group records it again.
    pub(in crate::group) fn record_in_background(&self, id: &str, live: Option<&ConsumerGroup>) {
        match self.record(id, live) {
            Ok(appended) => drop(appended),
            Err(error) => warn!(%error, group = id, "could not journal the KIP-848 group's change"),
        }
    }

    /// Writes a snapshot if one is due, off the reactor.
    pub(in crate::group) async fn maybe_snapshot(&self) {
        self.journal.snapshot_when_due(&self.state, "KIP-848 consumer groups").await;
    }

    /// The groups' journal, for its health.
    pub fn log(&self) -> &conveyor_log::Log {
        self.journal.log()
    }

    /// Snapshots and closes the journal. Blocking.
    pub fn close(&self) -> Result<()> {
        self.journal.close_with_snapshot(&self.state, "KIP-848 consumer groups")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use conveyor_log::clock::ManualClock;

    use super::*;
    use crate::group::consumer_protocol::consumer_group::{ConsumerHeartbeat, HeartbeatReply};
    use crate::group::consumer_protocol::subscription::fixtures::{OneTopic, TOPIC};
    use crate::group::coordinator::tests::consumer_group_store;
    use crate::group::{GroupConfig, GroupCoordinator, OffsetStore};

    fn member(epoch: i32) -> MemberMetadata {
        MemberMetadata {
            instance_id: None,
            epoch,
            previous_epoch: epoch - 1,
            state: MemberState::Stable,
            client_id: "c".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            subscribed: ["t".to_owned()].into(),
            subscribed_regex: None,
            matched: BTreeSet::new(),
            rebalance_timeout_ms: 30_000,
            assigned: [(TOPIC, [epoch % 4].into())].into(),
            revoking: Assignment::new(),
        }
    }

    impl crate::journal::suite::Fixture for StoredGroups {
        fn events(count: usize) -> Vec<GroupChange> {
            // Members set with a new epoch each time; every seventh event
            // removes the member set just before, every fifth sets the
            // group's epochs, every third a target.
            (0..count)
                .map(|index| {
                    let epoch = index as i32 + 1;
                    let group = "g".to_owned();
                    if index % 7 == 6 {
                        GroupChange::Member {
                            group,
                            member: format!("m{}", (index - 1) % 3),
                            metadata: None,
                        }
                    } else if index % 5 == 4 {
                        GroupChange::Group {
                            group,
                            metadata: Some(GroupMetadata {
                                group_epoch: epoch,
                                assignment_epoch: epoch,
                                assignor: "uniform".to_owned(),
                                ..GroupMetadata::default()
                            }),
                        }
                    } else if index % 3 == 2 {
                        GroupChange::Target {
                            group,
                            member: format!("m{}", index % 3),
                            assignment: Some([(TOPIC, [epoch].into())].into()),
                        }
                    } else {
                        GroupChange::Member {
                            group,
                            member: format!("m{}", index % 3),
                            metadata: Some(member(epoch)),
                        }
                    }
                })
                .collect()
        }
    }

    crate::journal::suite::journaled_suite!(StoredGroups);

    fn heartbeat(member_id: &str, epoch: i32, owned: &[i32]) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            member_id: member_id.to_owned(),
            member_epoch: epoch,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_owned()]),
            owned: Some([(TOPIC, owned.iter().copied().collect())].into()),
            ..ConsumerHeartbeat::default()
        }
    }

    fn assigned(reply: &HeartbeatReply) -> Vec<i32> {
        let assignment = reply.assignment.as_ref().and_then(|assignment| assignment.get(&TOPIC));
        assignment
            .map(|partitions| partitions.iter().copied().collect())
            .unwrap_or_default()
    }

    fn open(dir: &Path, clock: &Arc<ManualClock>) -> GroupCoordinator {
        let offsets = OffsetStore::open(dir, clock.clone()).expect("offsets");
        GroupCoordinator::new(offsets, consumer_group_store(dir, clock), clock.clone(), GroupConfig::default())
    }

    /// Every KIP-848 group as the coordinator holds it.
    fn images(coordinator: &GroupCoordinator) -> BTreeMap<String, GroupImage> {
        let groups = coordinator.consumer_groups.lock();
        groups.iter().map(|(id, group)| (id.clone(), GroupImage::of(group))).collect()
    }

    /// a holds all four partitions, b joins, a revokes two and b gets them.
    async fn two_members_with_two_partitions_each(coordinator: &GroupCoordinator) -> (HeartbeatReply, HeartbeatReply) {
        let beat = |member: &'static str, epoch: i32, owned: &'static [i32]| async move {
            let reply = coordinator
                .consumer_heartbeat("g", heartbeat(member, epoch, owned), &OneTopic)
                .await;
            reply.expect("heartbeat accepted").0
        };
        let a = beat("a", 0, &[]).await;
        let b = beat("b", 0, &[]).await;
        let a = beat("a", a.member_epoch, &[0, 1, 2, 3]).await;
        let a = beat("a", a.member_epoch, &[0, 1]).await;
        let b = beat("b", b.member_epoch, &[]).await;
        assert_eq!((assigned(&a), assigned(&b)), (vec![0, 1], vec![2, 3]));
        (a, b)
    }

    #[tokio::test]
    async fn a_group_after_a_restart_is_the_group_before_it_and_its_members_keep_their_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let coordinator = open(dir.path(), &clock);
        // a holds all four, b joins, a revokes two, b gets them; c joins and
        // a is left revoking one (the group mid-reconciliation).
        let (a, b) = two_members_with_two_partitions_each(&coordinator).await;
        coordinator
            .consumer_heartbeat("g", heartbeat("c", 0, &[]), &OneTopic)
            .await
            .expect("c");
        let a = (coordinator
            .consumer_heartbeat("g", heartbeat("a", a.member_epoch, &[0, 1]), &OneTopic)
            .await)
            .expect("a");
        assert_eq!(assigned(&a.0).len(), 1, "a revokes one for c");
        let before = images(&coordinator);
        assert_eq!(before["g"].members.len(), 3);
        assert!(!before["g"].members["a"].revoking.is_empty());

        // Reopened from the journal alone (no snapshot: as after a SIGKILL).
        drop(coordinator);
        clock.advance_ms(60_000);
        let coordinator = open(dir.path(), &clock);
        assert_eq!(images(&coordinator), before, "the replayed groups are the groups before");

        // b heartbeats with its epoch and what it owns: not fenced, and it
        // reconciles to the target computed before the restart, keeping its
        // partitions; the group epoch does not move (no new rebalance).
        let again = (coordinator
            .consumer_heartbeat("g", heartbeat("b", b.member_epoch, &[2, 3]), &OneTopic)
            .await)
            .expect("b is still a member");
        let target = &before["g"].target["b"][&TOPIC];
        assert_eq!(
            (again.0.member_epoch, assigned(&again.0)),
            (before["g"].metadata.assignment_epoch, target.iter().copied().collect())
        );
        assert_eq!(images(&coordinator)["g"].metadata, before["g"].metadata, "no epoch moved");

        // And from its snapshot (as after a SIGTERM).
        let after_heartbeat = images(&coordinator);
        coordinator.consumer_group_store().close().expect("close");
        drop(coordinator);
        let coordinator = open(dir.path(), &clock);
        assert_eq!(images(&coordinator), after_heartbeat);
    }

    #[tokio::test]
    async fn a_member_that_does_not_come_back_expires_a_session_after_the_restart_and_its_partitions_go_to_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let coordinator = open(dir.path(), &clock);
        let (a, b) = two_members_with_two_partitions_each(&coordinator).await;
        // Down for longer than a session: the sessions count from the load.
        drop(coordinator);
        clock.advance_ms(100_000);
        let coordinator = open(dir.path(), &clock);
        let session_ms = 45_000;
        clock.advance_ms(session_ms - 1);
        let a = coordinator
            .consumer_heartbeat("g", heartbeat("a", a.member_epoch, &[0, 1]), &OneTopic)
            .await;
        let a = a.expect("a came back in time").0;
        coordinator.tick();
        assert_eq!(
            coordinator.check_consumer_member("g", "b", b.member_epoch),
            Some(Ok(())),
            "b still has time"
        );
        clock.advance_ms(1);
        coordinator.tick();
        assert_eq!(
            coordinator.check_consumer_member("g", "b", b.member_epoch),
            Some(Err(crate::group::ConsumerGroupError::UnknownMemberId))
        );
        let a = coordinator
            .consumer_heartbeat("g", heartbeat("a", a.member_epoch, &[0, 1]), &OneTopic)
            .await;
        assert_eq!(assigned(&a.expect("a").0), vec![0, 1, 2, 3], "b's partitions went to a");
        // The expiry is journaled too.
        let expired = images(&coordinator);
        drop(coordinator);
        assert_eq!(images(&open(dir.path(), &clock)), expired);
    }

    #[test]
    fn a_group_gone_is_one_event_and_an_unchanged_group_none() {
        let mut group = ConsumerGroup::new("g", Assignor::Range);
        let image = GroupImage::of(&group);
        assert_eq!(changes("g", Some(&image), Some(&image)), Vec::new());
        group.group_epoch = 3;
        let moved = GroupImage::of(&group);
        assert!(matches!(
            changes("g", Some(&image), Some(&moved)).as_slice(),
            [GroupChange::Group { metadata: Some(_), .. }]
        ));
        assert_eq!(
            changes("g", Some(&moved), None),
            vec![GroupChange::Group {
                group: "g".to_owned(),
                metadata: None
            }]
        );
    }
}
