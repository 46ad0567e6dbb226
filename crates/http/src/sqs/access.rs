//! Which RabbitMQ permission each SQS action needs, on which queue: an SQS
//! queue is a queue of vhost `/`, so its user's permission entry there
//! decides — sending is write, receiving, deleting and reading a queue's
//! state are read, creating, deleting and changing queues configure (a
//! move task configures its source). Asked of the core's authorizer before
//! the action runs; a refusal is SQS's AccessDenied. Knows the actions'
//! parameters; not how they are carried out.

use conveyor_core::auth::{Operation, Resource};
use serde_json::Value;

use super::{Context, SqsError};

/// The vhost every SQS queue is in.
const VHOST: &str = "/";

/// Refuses `action` with AccessDenied unless the signer may do it.
pub(super) fn check(context: &Context, action: &str, body: &[u8]) -> Result<(), SqsError> {
    let Some(operation) = operation(action) else {
        // Unknown actions fail on their own; listing needs the vhost.
        return allowed(context, &Resource::Vhost(VHOST), Operation::Access);
    };
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match queue_name(&input) {
        Some(name) => allowed(context, &Resource::Queue { vhost: VHOST, name: &name }, operation),
        None => allowed(context, &Resource::Vhost(VHOST), Operation::Access),
    }
}

fn allowed(context: &Context, resource: &Resource<'_>, operation: Operation) -> Result<(), SqsError> {
    context
        .state
        .broker
        .authorizer()
        .check("sqs", &context.principal, None, resource, operation)
        .map_err(|denied| SqsError::AccessDenied(format!("Access to the resource is denied: {denied}.")))
}

/// The permission kind of each action that names a queue; `None` for those that name none.
fn operation(action: &str) -> Option<Operation> {
    Some(match action {
        "SendMessage" | "SendMessageBatch" => Operation::Write,
        "ReceiveMessage"
        | "DeleteMessage"
        | "DeleteMessageBatch"
        | "ChangeMessageVisibility"
        | "ChangeMessageVisibilityBatch"
        | "PurgeQueue"
        | "GetQueueUrl"
        | "GetQueueAttributes"
        | "ListQueueTags"
        | "ListDeadLetterSourceQueues"
        | "ListMessageMoveTasks" => Operation::Read,
        "CreateQueue" | "DeleteQueue" | "SetQueueAttributes" | "TagQueue" | "UntagQueue" | "StartMessageMoveTask" => Operation::Configure,
        _ => return None,
    })
}

/// The queue the input names: `QueueName`, the last segment of `QueueUrl`,
/// or the queue of `SourceArn`.
fn queue_name(input: &Value) -> Option<String> {
    if let Some(name) = input.get("QueueName").and_then(Value::as_str) {
        return Some(name.to_owned());
    }
    if let Some(url) = input.get("QueueUrl").and_then(Value::as_str) {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        return path.trim_end_matches('/').rsplit('/').next().map(str::to_owned);
    }
    input
        .get("SourceArn")
        .and_then(Value::as_str)
        .and_then(crate::arn::queue_name)
        .map(str::to_owned)
}
