//! Which RabbitMQ permission each SNS action needs, on which topic: an SNS
//! topic is an exchange of vhost `/`, so its user's permission entry there
//! decides — publishing is write, reading a topic's attributes and
//! subscriptions read, creating, deleting and changing topics and
//! subscriptions configure. Asked of the core's authorizer before the
//! action runs; a refusal is SNS's AuthorizationError. Knows the actions'
//! parameters; not how they are carried out.

use conveyor_core::auth::{Operation, Resource};

use super::params::Params;
use super::{Context, SnsError};

/// The vhost every SNS topic is in.
const VHOST: &str = "/";

/// Refuses the action with AuthorizationError unless the signer may do it.
pub(super) fn check(context: &Context, params: &Params) -> Result<(), SnsError> {
    let operation = match params.get("Action").unwrap_or_default() {
        "Publish" | "PublishBatch" => Some(Operation::Write),
        "GetTopicAttributes" | "ListSubscriptionsByTopic" | "GetSubscriptionAttributes" => Some(Operation::Read),
        "CreateTopic" | "DeleteTopic" | "SetTopicAttributes" | "Subscribe" | "Unsubscribe" | "SetSubscriptionAttributes" => {
            Some(Operation::Configure)
        }
        _ => None,
    };
    let topic = params
        .get("Name")
        .or_else(|| {
            params
                .get("TopicArn")
                .and_then(|arn| super::arn::parse_topic_arn(arn, "TopicArn").ok())
        })
        .or_else(|| {
            params
                .get("SubscriptionArn")
                .and_then(|arn| super::arn::parse_subscription_arn(arn).ok())
                .map(|(topic, _)| topic)
        });
    let (resource, operation) = match (operation, topic) {
        (Some(operation), Some(name)) => (Resource::Exchange { vhost: VHOST, name }, operation),
        _ => (Resource::Vhost(VHOST), Operation::Access),
    };
    context
        .state
        .broker
        .authorizer()
        .check("sns", &context.principal, None, &resource, operation)
        .map_err(|denied| SnsError::AuthorizationError(format!("User is not authorized to perform this action: {denied}")))
}
