//! How a partition write travels on a cluster node: proposed through the
//! partition's group when this node leads it (answered once a quorum holds
//! it and this node has applied it), else sent to the node that leads,
//! which proposes it there and answers where it landed. A write whose
//! answer was lost on the way is reported failed, never sent again (it may
//! be in the log). Every write is bounded by the time its caller gives it:
//! a leader cut off from its majority answers `ReplicationTimedOut` then,
//! and the entry may still commit later (as a Kafka produce that timed
//! out may have landed). Knows the groups, the peers' connections and the
//! wire; nothing of what the write means.

use std::sync::Arc;
use std::time::Duration;

use conveyor_core::CoreError;
use conveyor_core::partition_write::{PartitionWrite, Reach};
use conveyor_log::AppendInfo;
use uuid::Uuid;

use crate::network::{CallError, PeerPool};
use crate::partition_groups::{PartitionGroup, PartitionGroups};
use crate::type_config::{Command, GroupId, NodeId};
use crate::wire::{Request, Response, WriteRefusal, Written};

/// How long a leader waits for the commit of a write another node sent it
/// (that node stops waiting when its caller's time runs out).
const FORWARDED_WRITE_TIMEOUT: Duration = conveyor_core::broker::REPLICATED_WRITE_TIMEOUT;
/// Pause between tries while no leader takes the write.
const FORWARD_RETRY: Duration = Duration::from_millis(100);

/// Why this node did not apply a write.
#[derive(Debug)]
pub enum Refusal {
    /// It does not lead the group; the leader it knows of. Nothing written.
    NotLeader(Option<NodeId>),
    /// Applied and refused by the partition, or failed.
    Core(CoreError),
    /// Proposed, and not committed within the time given: it may be
    /// later.
    TimedOut,
}

/// Writes through `group` when this node leads it, waiting at most
/// `timeout` for the commit.
pub async fn write_here(group: &PartitionGroup, write: PartitionWrite, timeout: Duration) -> Result<AppendInfo, Refusal> {
    let request = Uuid::new_v4();
    let outcome = group.machine.wait_for(request);
    let proposed = tokio::time::timeout(timeout, group.raft.client_write(Command::append(request, write))).await;
    // Dropping openraft's wait leaves the entry in the leader's log: it
    // commits once a majority takes it, or a new leader replaces it.
    let Ok(proposed) = proposed else {
        group.machine.forget(&request);
        return Err(Refusal::TimedOut);
    };
    if let Err(error) = proposed {
        group.machine.forget(&request);
        // Retriable whatever the reason (another leader, this one
        // stopping): nothing was committed through this node.
        tracing::debug!(%error, "a partition write was not committed here");
        let leader = error
            .forward_to_leader::<openraft::BasicNode>()
            .and_then(|forward| forward.leader_id);
        return Err(Refusal::NotLeader(leader));
    }
    // Applied here before client_write returned, so answered.
    outcome
        .await
        .unwrap_or_else(|_| Err(CoreError::Replication("the partition's group dropped the write".to_owned())))
        .map_err(Refusal::Core)
}

/// The answer to a write sent to this node by another.
pub async fn answer_write(groups: &PartitionGroups, group: GroupId, command: Command) -> Response {
    let Some(running) = groups.group(&group) else {
        return Response::NoSuchGroup(group);
    };
    let Command::Append {
        batches,
        conditions,
        marker,
        ..
    } = command
    else {
        return Response::Written(Err(WriteRefusal::Failed("not a partition write".to_owned())));
    };
    let write = crate::type_config::partition_write(batches, conditions, marker);
    Response::Written(match write_here(&running, write, FORWARDED_WRITE_TIMEOUT).await {
        Ok(info) => Ok(Written {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            log_start_offset: info.log_start_offset,
            log_append_time_ms: info.log_append_time_ms,
        }),
        Err(Refusal::NotLeader(leader)) => Err(WriteRefusal::NotLeader { leader }),
        Err(Refusal::TimedOut) => Err(WriteRefusal::TimedOut),
        Err(Refusal::Core(CoreError::ConditionFailed(failed))) => Err(WriteRefusal::Condition(failed)),
        Err(Refusal::Core(CoreError::NotEnoughReplicas { in_sync, required, .. })) => {
            Err(WriteRefusal::NotEnoughReplicas { in_sync, required })
        }
        Err(Refusal::Core(error)) => Err(WriteRefusal::Failed(error.to_string())),
    })
}

/// Writes `write` to partition `group` of topic `topic_name`: here when
/// this node leads, else (with [`Reach::AnyNode`]) on the leader, trying
/// again while no leader takes it; all within `timeout`.
pub async fn write(
    groups: Arc<PartitionGroups>,
    pool: Arc<PeerPool>,
    group: GroupId,
    topic_name: String,
    write: PartitionWrite,
    reach: Reach,
    timeout: Duration,
) -> Result<AppendInfo, CoreError> {
    let not_leader = || CoreError::NotLeader {
        topic: topic_name.clone(),
        partition: group.partition,
    };
    let timed_out = || CoreError::ReplicationTimedOut {
        topic: topic_name.clone(),
        partition: group.partition,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    // The replicas to ask in turn while no leader is known.
    let replicas: Vec<NodeId> = groups
        .replicas(group.topic, group.partition)
        .unwrap_or_default()
        .into_iter()
        .filter(|id| *id != groups.node_id())
        .collect();
    let mut next_replica = 0usize;
    let mut leader_hint: Option<NodeId> = None;
    let mut last_reason = String::from("no leader yet");
    loop {
        if let Some(running) = groups.group(&group) {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match write_here(&running, write.clone(), remaining).await {
                Ok(info) => return Ok(info),
                Err(Refusal::Core(error)) => return Err(error),
                Err(Refusal::TimedOut) => return Err(timed_out()),
                Err(Refusal::NotLeader(leader)) => {
                    if reach == Reach::Leader {
                        return Err(not_leader());
                    }
                    leader_hint = leader.filter(|id| *id != groups.node_id());
                }
            }
        } else if reach == Reach::Leader {
            return Err(not_leader());
        }
        let target = leader_hint.take().or_else(|| {
            let target = replicas.get(next_replica % replicas.len().max(1)).copied();
            next_replica += 1;
            target
        });
        if let Some(target) = target
            && let Some(addr) = groups.peer_addr(target)
        {
            let request = Request::Partition {
                group,
                request: Box::new(Request::Write(Command::append(Uuid::new_v4(), write.clone()))),
            };
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match pool.call(&addr.to_string(), &request, remaining).await {
                Ok(Response::Written(Ok(written))) => {
                    return Ok(AppendInfo {
                        base_offset: written.base_offset,
                        last_offset: written.last_offset,
                        log_start_offset: written.log_start_offset,
                        log_append_time_ms: written.log_append_time_ms,
                    });
                }
                Ok(Response::Written(Err(WriteRefusal::NotLeader { leader }))) => {
                    last_reason = format!("node {target} does not lead the partition");
                    leader_hint = leader.filter(|id| *id != target);
                }
                Ok(Response::Written(Err(WriteRefusal::Condition(failed)))) => return Err(CoreError::ConditionFailed(failed)),
                Ok(Response::Written(Err(WriteRefusal::NotEnoughReplicas { in_sync, required }))) => {
                    return Err(CoreError::NotEnoughReplicas {
                        topic: topic_name,
                        partition: group.partition,
                        in_sync,
                        required,
                    });
                }
                Ok(Response::Written(Err(WriteRefusal::Failed(reason)))) => return Err(CoreError::Replication(reason)),
                Ok(Response::Written(Err(WriteRefusal::TimedOut))) => return Err(timed_out()),
                Ok(Response::NoSuchGroup(_)) => last_reason = format!("node {target} runs no group for the partition"),
                Ok(_) => return Err(CoreError::Replication(format!("node {target} answered another request"))),
                // Nothing was sent: another try cannot write it twice.
                Err(CallError::Unreachable(error)) => last_reason = format!("node {target} is unreachable: {error}"),
                // Sent, and no answer in the time left: it may be in the log.
                Err(CallError::Network(error)) if error.kind() == std::io::ErrorKind::TimedOut => return Err(timed_out()),
                // Sent, and the answer lost: it may be in the log.
                Err(CallError::Network(error)) => {
                    return Err(CoreError::Replication(format!("no answer from node {target}: {error}")));
                }
            }
        }
        if tokio::time::Instant::now() + FORWARD_RETRY >= deadline {
            // Nothing was proposed anywhere: no leader took it in time.
            return Err(CoreError::Replication(last_reason));
        }
        tokio::time::sleep(FORWARD_RETRY).await;
    }
}
