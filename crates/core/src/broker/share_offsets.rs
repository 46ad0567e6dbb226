//! The share-group offsets admin (KIP-932's DescribeShareGroupOffsets,
//! AlterShareGroupOffsets and DeleteShareGroupOffsets) in the broker's
//! terms: topics named, looked up and checked here, the share-group
//! coordinator's blocking work done on a blocking thread, and the rule that
//! only a share group's id (an empty one, to change anything) has start
//! offsets, as Kafka 4.1's `GroupCoordinatorService` answers. Knows no wire
//! format.

use std::sync::Arc;

use uuid::Uuid;

use super::Broker;
use crate::queue::CursorStart;
use crate::share_group::MembershipError;

/// Why one partition's (or one topic's) start offset was not read, set or
/// deleted; Kafka's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareOffsetError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    /// DeleteShareGroupOffsets on a topic the group has no state over.
    #[error("There is no offset information to delete.")]
    NoOffsets,
    #[error("{0}")]
    Storage(String),
}

/// One topic of an answer: its name, its id when it exists, and a result
/// for each partition asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareTopicResult<T> {
    pub name: String,
    pub id: Option<Uuid>,
    pub partitions: Vec<(i32, Result<T, ShareOffsetError>)>,
}

/// A topic asked about by name, found or not, with the partitions asked.
type AskedTopic = (String, Option<Arc<crate::Topic>>, Vec<i32>);

impl Broker {
    /// Each asked partition's share-partition start offset for `group`
    /// (`None`: the group has no state there, Kafka's -1); `topics: None`
    /// asks for every partition the group has state over. A topic that
    /// does not exist is answered with `None`s, not an error, and the group
    /// need not exist, as Kafka answers.
    pub async fn share_group_offsets(&self, group: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> Vec<ShareTopicResult<Option<u64>>> {
        let (coordinator, group) = (Arc::clone(&self.share_groups), group.to_owned());
        // Looked up now; the group's share-partitions are listed on the blocking thread.
        let asked: Option<Vec<AskedTopic>> = topics.map(|topics| {
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    let topic = self.topic(&name);
                    (name, topic, partitions)
                })
                .collect()
        });
        let every_topic = self.topics();
        let read = tokio::task::spawn_blocking(move || {
            let asked = asked.unwrap_or_else(|| {
                coordinator
                    .initialized_partitions(&group)
                    .into_iter()
                    .filter_map(|(id, partitions)| {
                        let topic = every_topic.iter().find(|topic| topic.id == id)?;
                        let partitions = partitions.into_iter().filter_map(|index| i32::try_from(index).ok()).collect();
                        Some((topic.name.clone(), Some(Arc::clone(topic)), partitions))
                    })
                    .collect()
            });
            asked
                .into_iter()
                .map(|(name, topic, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|index| {
                            let start = match (&topic, u32::try_from(index)) {
                                (Some(topic), Ok(at)) if at < topic.partition_count() => coordinator
                                    .start_offset(&group, topic, at)
                                    .map_err(|error| ShareOffsetError::Storage(error.to_string())),
                                _ => Ok(None),
                            };
                            (index, start)
                        })
                        .collect();
                    ShareTopicResult {
                        name,
                        id: topic.map(|topic| topic.id),
                        partitions,
                    }
                })
                .collect()
        });
        read.await.unwrap_or_default()
    }

    /// Sets `group`'s share-partitions anew at the given start offsets (a
    /// negative one: where `share.auto.offset.reset` says), their delivery
    /// state dropped. The group must be a share group without members
    /// (`NotShareGroup`, `GroupNotFound`, `NonEmptyGroup`); a topic or
    /// partition that does not exist is answered per partition.
    pub async fn alter_share_group_offsets(
        &self,
        group: &str,
        topics: Vec<(String, Vec<(i32, i64)>)>,
    ) -> Result<Vec<ShareTopicResult<()>>, MembershipError> {
        self.share_group(group)?;
        let reset = self.group_settings(group).share_auto_offset_reset;
        let mut answers = Vec::with_capacity(topics.len());
        let mut changes = Vec::new();
        for (name, partitions) in topics {
            let topic = self.topic(&name);
            let partitions = partitions
                .into_iter()
                .map(|(index, offset)| {
                    let at = topic
                        .as_ref()
                        .and_then(|topic| u32::try_from(index).ok().filter(|at| *at < topic.partition_count()));
                    let Some((topic, at)) = topic.as_ref().zip(at) else {
                        return (index, Err(ShareOffsetError::UnknownTopicOrPartition));
                    };
                    let start = u64::try_from(offset).map_or(reset, CursorStart::At);
                    changes.push((Arc::clone(topic), at, start));
                    (index, Ok(()))
                })
                .collect();
            answers.push(ShareTopicResult {
                name,
                id: topic.map(|topic| topic.id),
                partitions,
            });
        }
        let count = changes.len();
        let (coordinator, group) = (Arc::clone(&self.share_groups), group.to_owned());
        let made: Vec<Option<String>> = match tokio::task::spawn_blocking(move || coordinator.alter_start_offsets(&group, &changes)).await {
            Ok(made) => made?.into_iter().map(|made| made.err().map(|error| error.to_string())).collect(),
            Err(error) => vec![Some(error.to_string()); count],
        };
        // The changes were made in the order the accepted partitions were collected.
        let mut made = made.into_iter();
        for answer in &mut answers {
            for (_, result) in &mut answer.partitions {
                if result.is_ok()
                    && let Some(Some(error)) = made.next()
                {
                    *result = Err(ShareOffsetError::Storage(error));
                }
            }
        }
        Ok(answers)
    }

    /// Deletes `group`'s state over each named topic: for each, its id when
    /// it exists and whether there was state to delete. The group must be a
    /// share group without members, as for
    /// [`Broker::alter_share_group_offsets`].
    pub async fn delete_share_group_offsets(
        &self,
        group: &str,
        topics: Vec<String>,
    ) -> Result<Vec<(String, Option<Uuid>, Result<(), ShareOffsetError>)>, MembershipError> {
        self.share_group(group)?;
        let found: Vec<(String, Option<Uuid>)> = topics
            .into_iter()
            .map(|name| {
                let id = self.topic(&name).map(|topic| topic.id);
                (name, id)
            })
            .collect();
        let ids: Vec<Uuid> = found.iter().filter_map(|(_, id)| *id).collect();
        let (coordinator, group) = (Arc::clone(&self.share_groups), group.to_owned());
        let deleted = match tokio::task::spawn_blocking(move || coordinator.delete_start_offsets(&group, &ids)).await {
            Ok(deleted) => deleted?,
            Err(_) => Vec::new(),
        };
        let mut deleted = deleted.into_iter();
        Ok(found
            .into_iter()
            .map(|(name, id)| {
                let result = match id {
                    None => Err(ShareOffsetError::UnknownTopicOrPartition),
                    Some(_) if deleted.next() == Some(true) => Ok(()),
                    Some(_) => Err(ShareOffsetError::NoOffsets),
                };
                (name, id, result)
            })
            .collect())
    }
}
