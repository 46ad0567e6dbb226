//! What of the share groups survives a restart, in
//! `<data>/groups/share-groups/` (a [`GroupStore`], `group/store.rs`), as
//! Kafka keeps them in `__consumer_offsets`: per group its metadata (the
//! group epoch and the session timeout its members last heartbeated with,
//! Kafka's ShareGroupMetadata) and each member (its epoch, subscription and
//! client, Kafka's ShareGroupMemberMetadata). No target records: a member
//! is assigned every partition of the topics it subscribes to, so its
//! subscription is its assignment. A group loaded after a restart gives
//! every member a full session from the load, as Kafka's coordinator does
//! on loading. The share-partitions' delivery state is theirs
//! (`share_partition.rs`). Knows these records, nothing of the wire format.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::membership::{SESSION_TIMEOUT_MS_DEFAULT, ShareGroup, ShareMember};
use crate::group::store::{GroupImage, GroupKind, GroupStore};

/// The share groups' records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareGroupRecords;

/// Where the share groups' members are kept.
pub type ShareGroupStore = GroupStore<ShareGroupRecords>;

/// A share group's own fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareGroupMetadata {
    pub group_epoch: i32,
    /// `None`: no member has heartbeated (the broker's default applies).
    pub session_timeout_ms: Option<i64>,
}

/// One member as it is kept: everything but its liveness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareMemberMetadata {
    pub member_epoch: i32,
    pub subscribed_topics: BTreeSet<String>,
    pub client_id: String,
    pub client_host: String,
}

impl GroupKind for ShareGroupRecords {
    type Metadata = ShareGroupMetadata;
    type Member = ShareMemberMetadata;
    /// Never recorded: see the module documentation.
    type Target = ();
    type Live = ShareGroup;
    const NAME: &'static str = "KIP-932 share groups";

    fn image(group: &ShareGroup) -> GroupImage<ShareGroupRecords> {
        GroupImage {
            metadata: ShareGroupMetadata {
                group_epoch: group.group_epoch,
                session_timeout_ms: group.session_timeout_ms,
            },
            members: (group.members.iter())
                .map(|(id, member)| {
                    let metadata = ShareMemberMetadata {
                        member_epoch: member.member_epoch,
                        subscribed_topics: member.subscribed_topics.clone(),
                        client_id: member.client_id.clone(),
                        client_host: member.client_host.clone(),
                    };
                    (id.clone(), metadata)
                })
                .collect(),
            target: Default::default(),
        }
    }

    /// Each member's session starts at `now_ms`.
    fn load(_id: &str, image: &GroupImage<ShareGroupRecords>, now_ms: i64) -> ShareGroup {
        let session_timeout_ms = image.metadata.session_timeout_ms.unwrap_or(SESSION_TIMEOUT_MS_DEFAULT);
        ShareGroup {
            group_epoch: image.metadata.group_epoch,
            session_timeout_ms: image.metadata.session_timeout_ms,
            members: (image.members.iter())
                .map(|(id, member)| {
                    let live = ShareMember {
                        member_id: id.clone(),
                        member_epoch: member.member_epoch,
                        subscribed_topics: member.subscribed_topics.clone(),
                        client_id: member.client_id.clone(),
                        client_host: member.client_host.clone(),
                        deadline_ms: now_ms.saturating_add(session_timeout_ms),
                    };
                    (id.clone(), live)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use conveyor_log::clock::ManualClock;

    use super::*;
    use crate::group::store::{GroupChange, StoredGroups, changes};
    use crate::share_group::{Heartbeat, JOIN_EPOCH, MembershipError, ShareGroupCoordinator, SharePartitionConfig};

    const SESSION_MS: i64 = 10_000;

    impl crate::journal::suite::Fixture for StoredGroups<ShareGroupRecords> {
        fn events(count: usize) -> Vec<GroupChange<ShareGroupRecords>> {
            // Members set with a new epoch each time; every fifth event
            // removes the member set just before, every fourth sets the
            // group's epoch.
            (0..count)
                .map(|index| {
                    let epoch = index as i32 + 1;
                    let group = "g".to_owned();
                    if index % 5 == 4 {
                        GroupChange::Member {
                            group,
                            member: format!("m{}", (index - 1) % 3),
                            metadata: None,
                        }
                    } else if index % 4 == 3 {
                        GroupChange::Group {
                            group,
                            metadata: Some(ShareGroupMetadata {
                                group_epoch: epoch,
                                session_timeout_ms: Some(SESSION_MS),
                            }),
                        }
                    } else {
                        GroupChange::Member {
                            group,
                            member: format!("m{}", index % 3),
                            metadata: Some(ShareMemberMetadata {
                                member_epoch: epoch,
                                subscribed_topics: ["t".to_owned()].into(),
                                client_id: "c".to_owned(),
                                client_host: "/127.0.0.1".to_owned(),
                            }),
                        }
                    }
                })
                .collect()
        }
    }

    crate::journal::suite::journaled_suite!(StoredGroups<ShareGroupRecords>);

    fn open(dir: &Path, clock: &Arc<ManualClock>) -> ShareGroupCoordinator {
        let store = ShareGroupStore::open(&dir.join("groups"), clock.clone()).expect("share groups");
        let config = SharePartitionConfig::default();
        ShareGroupCoordinator::new(dir.join("partitions"), store, clock.clone(), config, SESSION_MS)
    }

    fn heartbeat(member_id: &str, member_epoch: i32, topics: Option<&[&str]>) -> Heartbeat {
        Heartbeat {
            member_id: member_id.to_owned(),
            member_epoch,
            subscribed_topics: topics.map(|topics| topics.iter().map(|topic| (*topic).to_owned()).collect()),
            client_id: "client".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
        }
    }

    /// Every share group as the coordinator holds it, as it is kept.
    fn images(coordinator: &ShareGroupCoordinator) -> BTreeMap<String, GroupImage<ShareGroupRecords>> {
        (coordinator.names().into_iter())
            .filter_map(|name| Some((name.clone(), ShareGroupRecords::image(&coordinator.describe(&name)?))))
            .collect()
    }

    /// a and b in group g (b on two topics), c in group h: each at its epoch.
    async fn three_members(coordinator: &ShareGroupCoordinator) -> (i32, i32, i32) {
        let beat = |group: &'static str, heartbeat: Heartbeat| async move {
            coordinator
                .heartbeat(group, heartbeat, SESSION_MS)
                .await
                .expect("accepted")
                .member_epoch
        };
        beat("g", heartbeat("a", JOIN_EPOCH, Some(&["t"]))).await;
        let b = beat("g", heartbeat("b", JOIN_EPOCH, Some(&["t", "u"]))).await;
        let a = beat("g", heartbeat("a", 1, None)).await;
        let c = beat("h", heartbeat("c", JOIN_EPOCH, Some(&["t"]))).await;
        (a, b, c)
    }

    #[tokio::test]
    async fn share_groups_after_a_restart_are_the_groups_before_it_and_members_go_on_with_their_ids_and_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let coordinator = open(dir.path(), &clock);
        let (a, b, _) = three_members(&coordinator).await;
        // d joins and leaves: gone from the journal too.
        coordinator
            .heartbeat("g", heartbeat("d", JOIN_EPOCH, Some(&["t"])), SESSION_MS)
            .await
            .expect("d joins");
        coordinator
            .heartbeat("g", heartbeat("d", -1, None), SESSION_MS)
            .await
            .expect("d leaves");
        // a and b take the group's epoch.
        let beat = |member: &'static str, epoch: i32| coordinator.heartbeat("g", heartbeat(member, epoch, None), SESSION_MS);
        let (a, b) = (
            beat("a", a).await.expect("a").member_epoch,
            beat("b", b).await.expect("b").member_epoch,
        );
        assert_eq!((a, b), (4, 4), "three joins and a leave");
        let before = images(&coordinator);
        assert_eq!(before["g"].members.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(before["h"].members.len(), 1);

        // Reopened from the journal alone (no snapshot: as after a SIGKILL).
        drop(coordinator);
        clock.advance_ms(60_000);
        let coordinator = open(dir.path(), &clock);
        assert_eq!(images(&coordinator), before, "the replayed groups are the groups before");

        // a and b heartbeat with their epochs: not fenced, and no epoch moves.
        let again = coordinator
            .heartbeat("g", heartbeat("b", b, None), SESSION_MS)
            .await
            .expect("b is still a member");
        assert_eq!(
            (again.member_epoch, again.assigned_topics),
            (b, vec!["t".to_owned(), "u".to_owned()])
        );
        let again = coordinator
            .heartbeat("g", heartbeat("a", a, None), SESSION_MS)
            .await
            .expect("a is still a member");
        assert_eq!(again.member_epoch, a);
        assert_eq!(
            images(&coordinator),
            before,
            "heartbeats that only show liveness change nothing kept"
        );

        // And from its snapshot (as after a SIGTERM).
        coordinator.close();
        drop(coordinator);
        let coordinator = open(dir.path(), &clock);
        assert_eq!(images(&coordinator), before);
    }

    #[tokio::test]
    async fn a_member_that_does_not_come_back_expires_a_session_after_the_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let coordinator = open(dir.path(), &clock);
        let (a, b, _) = three_members(&coordinator).await;
        // Down for longer than a session: the sessions count from the load.
        drop(coordinator);
        clock.advance_ms(3 * SESSION_MS);
        let coordinator = open(dir.path(), &clock);
        clock.advance_ms(SESSION_MS - 1);
        coordinator
            .heartbeat("g", heartbeat("a", a, None), SESSION_MS)
            .await
            .expect("a came back in time");
        assert!(coordinator.is_member("g", "b"), "b still has time");
        clock.advance_ms(1);
        assert!(!coordinator.is_member("g", "b"));
        assert!(matches!(
            coordinator.heartbeat("g", heartbeat("b", b, None), SESSION_MS).await,
            Err(MembershipError::UnknownMember { .. })
        ));
        // The expiry is journaled too.
        let expired = images(&coordinator);
        assert_eq!(expired["g"].members.keys().collect::<Vec<_>>(), ["a"]);
        assert!(expired["h"].members.is_empty(), "c did not come back either");
        drop(coordinator);
        assert_eq!(images(&open(dir.path(), &clock)), expired);
    }

    #[tokio::test]
    async fn a_deleted_group_stays_deleted_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000_000);
        let coordinator = Arc::new(open(dir.path(), &clock));
        three_members(&coordinator).await;
        coordinator
            .heartbeat("h", heartbeat("c", -1, None), SESSION_MS)
            .await
            .expect("c leaves");
        let deleting = Arc::clone(&coordinator);
        let deleted = tokio::task::spawn_blocking(move || deleting.delete_group("h")).await;
        deleted.expect("joined").expect("h is empty");
        drop(coordinator);
        let coordinator = open(dir.path(), &clock);
        assert_eq!(coordinator.names(), vec!["g".to_owned()]);
    }

    #[test]
    fn a_liveness_heartbeat_is_no_event_and_a_new_member_two() {
        let mut groups = crate::share_group::ShareGroups::new(SESSION_MS);
        groups.heartbeat("g", heartbeat("a", JOIN_EPOCH, Some(&["t"])), 0).expect("a joins");
        let image = ShareGroupRecords::image(groups.group("g").expect("g"));
        groups.heartbeat("g", heartbeat("a", 1, None), 5_000).expect("a is alive");
        let alive = ShareGroupRecords::image(groups.group("g").expect("g"));
        assert_eq!(changes("g", Some(&image), Some(&alive)), Vec::new());
        groups
            .heartbeat("g", heartbeat("b", JOIN_EPOCH, Some(&["t"])), 5_000)
            .expect("b joins");
        let joined = ShareGroupRecords::image(groups.group("g").expect("g"));
        assert!(matches!(
            changes("g", Some(&alive), Some(&joined)).as_slice(),
            [
                GroupChange::Group { metadata: Some(_), .. },
                GroupChange::Member { metadata: Some(_), .. }
            ]
        ));
    }
}
