//! Consumer groups: membership (the coordinator's state machine) and
//! committed offsets (a log of their own). Front doors translate to it.

mod coordinator;
mod membership;
mod offsets;

pub use coordinator::{
    GroupConfig, GroupCoordinator, GroupDescription, GroupError, GroupState, JoinRequest, JoinResult, MemberDescription, OffsetCommit,
};
pub use offsets::{CommittedOffset, OffsetStore};
