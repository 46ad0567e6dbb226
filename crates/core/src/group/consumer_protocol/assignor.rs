//! The server-side assignors of KIP-848 (`group.consumer.assignors`): `uniform`
//! (balanced and sticky: members keep what they own up to their share) and
//! `range` (each topic's partitions in contiguous ranges, as the classic
//! RangeAssignor). Pure functions of members, subscriptions and topic shapes;
//! they know nothing of epochs or reconciliation.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id: what a member owns, is assigned or revokes.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What the assignors know of a subscribed topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicShape {
    pub id: Uuid,
    pub partition_count: u32,
}

/// A member as the assignor sees it: what it subscribes to and what it is
/// assigned now (for stickiness).
#[derive(Debug, Clone)]
pub struct AssignorMember<'a> {
    pub subscribed: &'a BTreeSet<String>,
    pub current: &'a Assignment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    /// The assignor named by a client's `group.remote.assignor`.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "uniform" => Some(Assignor::Uniform),
            "range" => Some(Assignor::Range),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// The target assignment of every member (each member has an entry, maybe
    /// empty). Topics missing from `topics` (not created) are skipped.
    pub fn assign(
        self,
        members: &BTreeMap<String, AssignorMember<'_>>,
        topics: &BTreeMap<String, TopicShape>,
    ) -> BTreeMap<String, Assignment> {
        let mut target: BTreeMap<String, Assignment> = members.keys().map(|id| (id.clone(), Assignment::new())).collect();
        match self {
            Assignor::Uniform => assign_uniform(members, topics, &mut target),
            Assignor::Range => assign_range(members, topics, &mut target),
        }
        target
    }
}

fn subscribers<'m>(members: &'m BTreeMap<String, AssignorMember<'_>>, topic: &str) -> Vec<&'m String> {
    members
        .iter()
        .filter(|(_, member)| member.subscribed.contains(topic))
        .map(|(id, _)| id)
        .collect()
}

fn assign_range(
    members: &BTreeMap<String, AssignorMember<'_>>,
    topics: &BTreeMap<String, TopicShape>,
    target: &mut BTreeMap<String, Assignment>,
) {
    for (name, shape) in topics {
        let subscribers = subscribers(members, name);
        if subscribers.is_empty() {
            continue;
        }
        let count = subscribers.len() as u32;
        let (share, extra) = (shape.partition_count / count, shape.partition_count % count);
        let mut next = 0u32;
        for (index, member_id) in subscribers.into_iter().enumerate() {
            let take = share + u32::from((index as u32) < extra);
            if take > 0 {
                let partitions = (next..next + take).map(|p| p as i32);
                if let Some(assignment) = target.get_mut(member_id) {
                    assignment.entry(shape.id).or_default().extend(partitions);
                }
            }
            next += take;
        }
    }
}

/// Sticky and balanced: first every member keeps the partitions it holds, up
/// to the floor of its fair share among the members subscribed to that
/// topic; then each remaining partition goes to the least-loaded subscriber
/// (its previous owner on a tie, else the smallest member id).
fn assign_uniform(
    members: &BTreeMap<String, AssignorMember<'_>>,
    topics: &BTreeMap<String, TopicShape>,
    target: &mut BTreeMap<String, Assignment>,
) {
    let mut load: BTreeMap<&String, usize> = members.keys().map(|id| (id, 0)).collect();
    let mut remaining: Vec<(Uuid, i32, Vec<&String>, Option<&String>)> = Vec::new();
    for (name, shape) in topics {
        let subscribers = subscribers(members, name);
        if subscribers.is_empty() {
            continue;
        }
        let share_floor = (shape.partition_count as usize) / subscribers.len();
        let mut kept: BTreeMap<&String, usize> = BTreeMap::new();
        for partition in 0..shape.partition_count as i32 {
            let owner = subscribers
                .iter()
                .copied()
                .find(|id| members[*id].current.get(&shape.id).is_some_and(|owned| owned.contains(&partition)));
            match owner {
                Some(owner) if kept.get(owner).copied().unwrap_or(0) < share_floor => {
                    *kept.entry(owner).or_default() += 1;
                    *load.entry(owner).or_default() += 1;
                    if let Some(assignment) = target.get_mut(owner) {
                        assignment.entry(shape.id).or_default().insert(partition);
                    }
                }
                _ => remaining.push((shape.id, partition, subscribers.clone(), owner)),
            }
        }
    }
    for (topic_id, partition, subscribers, previous) in remaining {
        let least = subscribers.iter().map(|id| load.get(id).copied().unwrap_or(0)).min().unwrap_or(0);
        let chosen = previous
            .filter(|id| load.get(id).copied().unwrap_or(0) == least)
            .or_else(|| subscribers.iter().copied().find(|id| load.get(id).copied().unwrap_or(0) == least));
        if let Some(chosen) = chosen {
            *load.entry(chosen).or_default() += 1;
            if let Some(assignment) = target.get_mut(chosen) {
                assignment.entry(topic_id).or_default().insert(partition);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members `ids`, each subscribed to `subscribed` and owning `current`.
    fn newcomers<'a>(ids: &[&str], subscribed: &'a BTreeSet<String>, current: &'a Assignment) -> BTreeMap<String, AssignorMember<'a>> {
        ids.iter()
            .map(|id| ((*id).to_owned(), AssignorMember { subscribed, current }))
            .collect()
    }

    fn topic(name: &str, id: u128, partition_count: u32) -> (String, TopicShape) {
        (
            name.to_owned(),
            TopicShape {
                id: Uuid::from_u128(id),
                partition_count,
            },
        )
    }

    fn count(assignment: &Assignment) -> usize {
        assignment.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_splits_four_partitions_two_and_two_and_keeps_owned_ones() {
        let subscribed: BTreeSet<String> = ["t".to_owned()].into();
        let topics: BTreeMap<_, _> = [topic("t", 1, 4)].into();
        let owns_all: Assignment = [(Uuid::from_u128(1), [0, 1, 2, 3].into())].into();
        let none = Assignment::new();
        let members: BTreeMap<String, AssignorMember<'_>> = [
            (
                "a".to_owned(),
                AssignorMember {
                    subscribed: &subscribed,
                    current: &owns_all,
                },
            ),
            (
                "b".to_owned(),
                AssignorMember {
                    subscribed: &subscribed,
                    current: &none,
                },
            ),
        ]
        .into();
        let target = Assignor::Uniform.assign(&members, &topics);
        assert_eq!(count(&target["a"]), 2);
        assert_eq!(count(&target["b"]), 2);
        assert_eq!(
            target["a"][&Uuid::from_u128(1)],
            [0, 1].into(),
            "a keeps the first of what it owned"
        );
        assert_eq!(target["b"][&Uuid::from_u128(1)], [2, 3].into());
    }

    #[test]
    fn uniform_balances_a_remainder_and_skips_unsubscribed_topics() {
        let subscribed: BTreeSet<String> = ["t".to_owned()].into();
        let topics: BTreeMap<_, _> = [topic("t", 1, 5), topic("other", 2, 3)].into();
        let none = Assignment::new();
        let members = newcomers(&["a", "b", "c"], &subscribed, &none);
        let target = Assignor::Uniform.assign(&members, &topics);
        let mut counts: Vec<usize> = target.values().map(count).collect();
        counts.sort();
        assert_eq!(counts, vec![1, 2, 2]);
        assert!(target.values().all(|assignment| !assignment.contains_key(&Uuid::from_u128(2))));
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let subscribed: BTreeSet<String> = ["t".to_owned()].into();
        let topics: BTreeMap<_, _> = [topic("t", 1, 5)].into();
        let none = Assignment::new();
        let members = newcomers(&["a", "b"], &subscribed, &none);
        let target = Assignor::Range.assign(&members, &topics);
        assert_eq!(target["a"][&Uuid::from_u128(1)], [0, 1, 2].into());
        assert_eq!(target["b"][&Uuid::from_u128(1)], [3, 4].into());
    }
}
