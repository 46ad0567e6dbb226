//! Partitions' placements as their leaders report them, so that every node
//! answers Metadata the same way for a partition (in Kafka Metadata from
//! any broker is complete): the leader of a partition group reports its
//! leader, term (the leader epoch) and in-sync replicas (match index within
//! [`IN_SYNC_LAG_ENTRIES_MAX`] of its log, an AppendEntries answered within
//! [`IN_SYNC_SILENCE_MAX`]); every node asks every peer for the reports of
//! the groups it leads each [`REPORT_EVERY`] and keeps, per group, the one
//! of the highest term. A peer that does not answer has its reports
//! dropped: a dead leader's partitions show no leader until another
//! reports. Knows the groups' Raft metrics and the peers' connections;
//! nothing of Kafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::partition_groups::PartitionGroups;
use crate::type_config::{GroupId, NodeId};
use crate::wire::{Request, Response};

/// A replica whose log is at most this many entries behind the leader's
/// is in sync...
pub const IN_SYNC_LAG_ENTRIES_MAX: u64 = 1000;
/// ...and that answered the leader's heartbeats or entries within this
/// long (Kafka's `replica.lag.time.max.ms` is 30 s; Raft heartbeats come
/// every 150 ms, so a replica silent this long is down or cut off).
pub const IN_SYNC_SILENCE_MAX: Duration = Duration::from_secs(5);
/// How often every node asks its peers for their leaders' reports.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);
/// How long one peer may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);
/// A peer that has answered none of these asks for this long is down:
/// Metadata no longer lists it (Kafka fences a broker whose heartbeats
/// stop for `broker.session.timeout.ms`, 9 s), so clients that ask every
/// broker (ListGroups, DescribeCluster) do not wait on it.
pub const DOWN_AFTER: Duration = IN_SYNC_SILENCE_MAX;

/// One partition group's placement as its leader reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderReport {
    pub group: GroupId,
    pub leader: NodeId,
    /// The Raft term it leads in (Kafka's leader epoch).
    pub term: u64,
    /// In the order of the group's replicas; the leader always.
    pub in_sync: Vec<NodeId>,
}

/// The latest leader report of every group this node knows of, and since
/// when each silent peer has not answered.
#[derive(Debug, Default)]
pub struct PlacementReports {
    by_group: RwLock<HashMap<GroupId, LeaderReport>>,
    silent_since: RwLock<HashMap<NodeId, Instant>>,
}

impl PlacementReports {
    /// Takes every report `peer` made now (the groups it leads): what it
    /// reported before goes; a group's report of a higher term than
    /// `peer`'s (another leader's, elected since) stays.
    pub fn take(&self, peer: NodeId, reports: Vec<LeaderReport>) {
        self.silent_since.write().remove(&peer);
        let mut by_group = self.by_group.write();
        by_group.retain(|_, report| report.leader != peer);
        for report in reports {
            if report.leader != peer {
                continue;
            }
            match by_group.get(&report.group) {
                Some(known) if known.term > report.term => {}
                _ => {
                    by_group.insert(report.group, report);
                }
            }
        }
    }

    /// Forgets what `peer` reported (it did not answer).
    pub fn forget(&self, peer: NodeId) {
        self.silent_since.write().entry(peer).or_insert_with(Instant::now);
        self.by_group.write().retain(|_, report| report.leader != peer);
    }

    /// Whether `peer` has answered no ask for [`DOWN_AFTER`] (a peer not
    /// asked yet, or that answered the last ask, is up).
    pub fn is_down(&self, peer: NodeId) -> bool {
        self.silent_since
            .read()
            .get(&peer)
            .is_some_and(|since| since.elapsed() >= DOWN_AFTER)
    }

    /// Forgets the reports of groups no longer wanted (a deleted topic).
    pub fn retain(&self, keep: impl Fn(&GroupId) -> bool) {
        self.by_group.write().retain(|group, _| keep(group));
    }

    pub fn get(&self, group: &GroupId) -> Option<LeaderReport> {
        self.by_group.read().get(group).cloned()
    }
}

/// The report of `group` when this node leads it.
pub fn leader_report(groups: &PartitionGroups, group: GroupId) -> Option<LeaderReport> {
    let running = groups.group(&group)?;
    let metrics = running.raft.metrics().borrow().clone();
    if metrics.state != ServerState::Leader {
        return None;
    }
    let replicas = groups.replicas(group.topic, group.partition)?;
    let matched = metrics.replication.as_ref()?;
    let last_index = metrics.last_log_index.unwrap_or(0);
    let in_sync = replicas
        .iter()
        .filter(|id| {
            **id == groups.node_id()
                || (matched
                    .get(id)
                    .and_then(|log_id| *log_id)
                    .is_some_and(|log_id| log_id.index + IN_SYNC_LAG_ENTRIES_MAX >= last_index)
                    && groups.pool().answered_within(Some(group), **id, IN_SYNC_SILENCE_MAX))
        })
        .copied()
        .collect();
    Some(LeaderReport {
        group,
        leader: groups.node_id(),
        term: metrics.current_term,
        in_sync,
    })
}

/// The reports of every group this node leads (the answer to a peer's
/// [`Request::LeaderReports`]).
pub fn leader_reports(groups: &PartitionGroups) -> Vec<LeaderReport> {
    groups
        .running_ids()
        .into_iter()
        .filter_map(|group| leader_report(groups, group))
        .collect()
}

/// Asks every peer for its reports each [`REPORT_EVERY`], until `shutdown`.
pub async fn gather(groups: Arc<PartitionGroups>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let peers: Vec<(NodeId, std::net::SocketAddr)> = groups
            .known_nodes()
            .into_iter()
            .filter(|id| *id != groups.node_id())
            .filter_map(|id| groups.peer_addr(id).map(|addr| (id, addr)))
            .collect();
        let mut asks = tokio::task::JoinSet::new();
        for (peer, addr) in peers {
            let groups = Arc::clone(&groups);
            asks.spawn(async move {
                let answer = groups.pool().call(&addr.to_string(), &Request::LeaderReports, ASK_TIMEOUT).await;
                match answer {
                    Ok(Response::LeaderReports(reports)) => groups.reports().take(peer, reports),
                    _ => groups.reports().forget(peer),
                }
            });
        }
        // Each ask ends within ASK_TIMEOUT.
        while asks.join_next().await.is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(REPORT_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(partition: u32, leader: NodeId, term: u64) -> LeaderReport {
        LeaderReport {
            group: GroupId {
                topic: uuid::Uuid::from_u128(1),
                partition,
            },
            leader,
            term,
            in_sync: vec![leader],
        }
    }

    #[test]
    fn the_report_of_the_highest_term_wins_and_a_silent_peer_s_reports_go() {
        let reports = PlacementReports::default();
        reports.take(1, vec![report(0, 1, 3), report(1, 1, 3)]);
        reports.take(2, vec![report(0, 2, 4)]);
        assert_eq!(reports.get(&report(0, 0, 0).group).map(|known| known.leader), Some(2));
        // Node 1 still believes it leads partition 0 at term 3: too old.
        reports.take(1, vec![report(0, 1, 3), report(1, 1, 3)]);
        assert_eq!(reports.get(&report(0, 0, 0).group).map(|known| known.leader), Some(2));
        // Node 1 no longer leads partition 1.
        reports.take(1, vec![report(0, 1, 3)]);
        assert_eq!(reports.get(&report(1, 0, 0).group), None);
        // A peer may report only its own leadership.
        reports.take(3, vec![report(1, 1, 9)]);
        assert_eq!(reports.get(&report(1, 0, 0).group), None);
        reports.forget(2);
        assert_eq!(reports.get(&report(0, 0, 0).group), None);
    }

    #[test]
    fn a_peer_is_down_only_after_it_has_been_silent_for_the_whole_window() {
        let reports = PlacementReports::default();
        assert!(!reports.is_down(2), "a peer not asked yet is up");
        reports.forget(2);
        assert!(!reports.is_down(2), "one unanswered ask is not enough");
        // Silent since before the window: down, until it answers again.
        reports.silent_since.write().insert(
            2,
            Instant::now().checked_sub(DOWN_AFTER).expect("a monotonic clock past DOWN_AFTER"),
        );
        reports.forget(2);
        assert!(reports.is_down(2), "a later unanswered ask keeps when the silence began");
        reports.take(2, Vec::new());
        assert!(!reports.is_down(2));
    }
}
