//! KIP-848 consumer groups (`group.protocol=consumer`): the group state
//! machine with member epochs and revoke-before-assign reconciliation
//! (`consumer_group.rs`), the server-side assignors (`assignor.rs`), what a subscription
//! (names and a regex) resolves to (`subscription.rs`), the
//! coordinator's entry points for them (`coordination.rs`) and what
//! ConsumerGroupDescribe shows of a group (`description.rs`); what of the
//! groups survives a restart (`store.rs`). The classic
//! protocol is `../membership.rs`; offsets are shared (`../offsets.rs`).

mod assignor;
mod consumer_group;
mod coordination;
mod description;
mod store;
mod subscription;

pub use assignor::{Assignment, Assignor, TopicShape};
pub(super) use consumer_group::ConsumerGroup;
pub use consumer_group::{ConsumerGroupError, ConsumerHeartbeat, HeartbeatReply};
pub use description::{ConsumerGroupDescription, ConsumerMemberDescription};
pub use store::ConsumerGroupStore;
pub use subscription::{SubscribedRegex, TopicLookup};
