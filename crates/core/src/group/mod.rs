//! Consumer groups: membership (the coordinator's state machine) and
//! committed offsets (a log of their own); what of a kind of group survives
//! a restart (`store.rs`, also the share groups'). Front doors translate to it.

mod consumer_protocol;
pub(crate) mod coordination;
mod coordinator;
mod membership;
mod offsets;
pub(crate) mod store;

pub use consumer_protocol::{
    Assignment, Assignor, ConsumerGroupDescription, ConsumerGroupError, ConsumerGroupStore, ConsumerHeartbeat, ConsumerMemberDescription,
    HeartbeatReply, SubscribedRegex, TopicLookup, TopicShape,
};
pub use coordination::{Coordination, Coordinator};
pub use coordinator::{
    GroupConfig, GroupCoordinator, GroupDescription, GroupError, GroupState, GroupType, JoinRequest, JoinResult, MemberDescription,
    OffsetCommit,
};
pub use offsets::{CommittedOffset, CommittedOffsets, OffsetChange, OffsetKey, OffsetStore};
