//! Every group of every protocol in one list (ListGroups): the group
//! coordinator's classic and KIP-848 groups and the share groups, and the
//! lookup of a share group that tells "not a share group" from "no group"
//! (ShareGroupDescribe). A group id held by both a consumer group and a share
//! group is listed once, as the group coordinator has it. Knows no wire
//! format and no filters.

use std::collections::BTreeMap;

use super::Broker;
use crate::group::{GroupDescription, GroupState};
use crate::share_group::{MembershipError, ShareGroup};

impl Broker {
    /// Every known group, sorted by id.
    pub fn list_groups(&self) -> Vec<GroupDescription> {
        let mut groups: BTreeMap<String, GroupDescription> = self
            .share_groups
            .list()
            .into_iter()
            .map(|group| (group.group_id.clone(), group))
            .collect();
        for group in self.groups.list() {
            groups.insert(group.group_id.clone(), group);
        }
        groups.into_values().collect()
    }

    /// A share group's members and epoch; `NotShareGroup` when the id is a
    /// consumer group's, `GroupNotFound` when no group has it, as Kafka
    /// answers ShareGroupDescribe.
    pub fn share_group(&self, group_id: &str) -> Result<ShareGroup, MembershipError> {
        if let Some(group) = self.share_groups.describe(group_id) {
            return Ok(group);
        }
        if self.groups.describe(group_id).state != GroupState::Dead {
            return Err(MembershipError::NotShareGroup(group_id.to_owned()));
        }
        Err(MembershipError::GroupNotFound(group_id.to_owned()))
    }
}
