//! SQS queue actions: CreateQueue, GetQueueUrl, ListQueues, DeleteQueue,
//! GetQueueAttributes, SetQueueAttributes, PurgeQueue, TagQueue, UntagQueue, ListQueueTags — each a call or two on the broker's queues.

use std::collections::HashMap;
use std::sync::Arc;

use conveyor_core::catalog::QueueDefinition;
use conveyor_core::{CoreError, VirtualHost};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::SqsError;
use super::{Context, queue_attributes, tags};

const QUEUE_NAME_CHARS_MAX: usize = 80;
const LIST_RESULTS_MAX: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueInput {
    queue_name: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    /// Lowercase in SQS's model, unlike every other member.
    #[serde(default, rename = "tags")]
    tags: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagQueueInput {
    queue_url: Option<String>,
    #[serde(default)]
    tags: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagQueueInput {
    queue_url: Option<String>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueNameInput {
    queue_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesInput {
    queue_name_prefix: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueUrlInput {
    queue_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetQueueAttributesInput {
    queue_url: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributesInput {
    queue_url: Option<String>,
    #[serde(default)]
    attribute_names: Vec<String>,
}

/// Checks a queue name as SQS does: a FIFO queue's ends with `.fifo`, and
/// only a FIFO queue's does.
fn check_queue_name(name: Option<&str>, fifo: bool) -> Result<&str, SqsError> {
    let name = name.ok_or_else(|| SqsError::MissingParameter("The request must contain the parameter QueueName.".to_owned()))?;
    let base = match name.strip_suffix(".fifo") {
        Some(base) if fifo => base,
        Some(_) => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Can only end with .fifo when the FifoQueue attribute is true (got {name:?})."
            )));
        }
        None if fifo => {
            return Err(SqsError::InvalidParameterValue(format!(
                "The name of a FIFO queue must end with the .fifo suffix (got {name:?})."
            )));
        }
        None => name,
    };
    let valid =
        !base.is_empty() && name.len() <= QUEUE_NAME_CHARS_MAX && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(SqsError::InvalidParameterValue(format!(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to {QUEUE_NAME_CHARS_MAX} in length (got {name:?})."
        )))
    }
}

/// A RedrivePolicy must name an existing queue of the same kind whose
/// RedriveAllowPolicy, if it has one, lets the queue named `source` use it.
fn check_redrive(context: &Context, source: &str, requested: &queue_attributes::Requested) -> Result<(), SqsError> {
    let Some(redrive) = &requested.redrive else {
        return Ok(());
    };
    let Some(target) = context.state.broker.queue(&redrive.dead_letter_queue) else {
        return Err(SqsError::InvalidAttributeValue(format!(
            "Value for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist: {}.",
            redrive.dead_letter_queue
        )));
    };
    if queue_attributes::is_fifo(&target.definition()) != requested.fifo {
        return Err(SqsError::InvalidAttributeValue(
            "Value for parameter RedrivePolicy is invalid. Reason: Dead-letter queue of a FIFO queue must be a FIFO queue, and of a standard queue a standard queue.".to_owned(),
        ));
    }
    if queue_attributes::RedriveAllow::of(&target.definition()).is_some_and(|allow| !allow.allows(source)) {
        return Err(SqsError::InvalidParameterValue(format!(
            "Value {} for parameter RedrivePolicy is invalid. Reason: The RedriveAllowPolicy of {} does not allow {} to use it as its dead-letter queue.",
            redrive.to_json(&context.account),
            context.queue_arn(&target.name),
            context.queue_arn(source)
        )));
    }
    Ok(())
}

pub async fn create_queue(context: &Context, input: CreateQueueInput) -> Result<Value, SqsError> {
    let requested = queue_attributes::parse(&input.attributes)?;
    let name = check_queue_name(input.queue_name.as_deref(), requested.fifo)?;
    check_redrive(context, name, &requested)?;
    let exists_differently = || SqsError::QueueNameExists(format!("A queue already exists with the name {name} and different attributes."));
    if let Some(existing) = context.state.broker.queue(name) {
        // Declared before (over SQS or AMQP): same attributes, same queue.
        return if queue_attributes::matches(&existing.definition(), &requested) {
            Ok(json!({ "QueueUrl": context.queue_url(name) }))
        } else {
            Err(exists_differently())
        };
    }
    let mut definition = queue_attributes::definition(&requested);
    // Tags at creation only: an existing queue keeps its own (as in SQS).
    definition.arguments = tags::added(&definition.arguments, &input.tags)?;
    // Declared concurrently by someone else (the core compares no SQS
    // attributes): the same queue only if its attributes match.
    let declared_meanwhile = match context.state.broker.declare_queue(name, definition).await {
        Ok((_, true)) => return Ok(json!({ "QueueUrl": context.queue_url(name) })),
        Ok((existing, false)) => Some(existing),
        Err(CoreError::QueueMismatch { .. }) => context.state.broker.queue(name),
        Err(error) => return Err(error.into()),
    };
    match declared_meanwhile {
        Some(existing) if queue_attributes::matches(&existing.definition(), &requested) => {
            Ok(json!({ "QueueUrl": context.queue_url(name) }))
        }
        _ => Err(exists_differently()),
    }
}

pub fn get_queue_url(context: &Context, input: QueueNameInput) -> Result<Value, SqsError> {
    let name = input
        .queue_name
        .ok_or_else(|| SqsError::MissingParameter("The request must contain the parameter QueueName.".to_owned()))?;
    match context.state.broker.queue(&name) {
        Some(_) => Ok(json!({ "QueueUrl": context.queue_url(&name) })),
        None => Err(SqsError::QueueDoesNotExist("The specified queue does not exist.".to_owned())),
    }
}

/// Queues in name order; with MaxResults, pages continue after the name in NextToken.
/// ListDeadLetterSourceQueues: the queues whose RedrivePolicy names this one.
pub fn list_dead_letter_source_queues(context: &Context, input: QueueUrlInput) -> Result<Value, SqsError> {
    let target = context.queue(input.queue_url.as_deref())?;
    let mut names: Vec<String> = context
        .state
        .broker
        .queues()
        .iter()
        .filter(|queue| queue_attributes::Redrive::of(&queue.definition()).is_some_and(|redrive| redrive.dead_letter_queue == target.name))
        .map(|queue| queue.name.clone())
        .collect();
    names.sort_unstable();
    let urls: Vec<Value> = names.iter().map(|name| Value::String(context.queue_url(name))).collect();
    Ok(json!({ "queueUrls": urls }))
}

pub fn list_queues(context: &Context, input: ListQueuesInput) -> Result<Value, SqsError> {
    let limit = match input.max_results {
        None => LIST_RESULTS_MAX,
        Some(max) if (1..=LIST_RESULTS_MAX as i64).contains(&max) => max as usize,
        Some(max) => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Value {max} for parameter MaxResults is invalid. Reason: must be between 1 and {LIST_RESULTS_MAX}."
            )));
        }
    };
    let prefix = input.queue_name_prefix.unwrap_or_default();
    let mut names: Vec<String> = context
        .state
        .broker
        .queues()
        .iter()
        .map(|queue| queue.name.clone())
        // SQS queues are the default vhost's; the other AMQP vhosts' are not SQS's to list.
        .filter(|name| VirtualHost::default().contains(name))
        .filter(|name| name.starts_with(&prefix))
        .filter(|name| input.next_token.as_ref().is_none_or(|after| name > after))
        .collect();
    names.sort_unstable();
    let more = names.len() > limit;
    names.truncate(limit);
    let mut output = Map::new();
    if more
        && input.max_results.is_some()
        && let Some(last) = names.last()
    {
        output.insert("NextToken".to_owned(), Value::String(last.clone()));
    }
    let urls: Vec<Value> = names.iter().map(|name| Value::String(context.queue_url(name))).collect();
    output.insert("QueueUrls".to_owned(), Value::Array(urls));
    Ok(Value::Object(output))
}

pub async fn delete_queue(context: &Context, input: QueueUrlInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    context.state.broker.delete_queue(&queue.name, false).await?;
    Ok(json!({}))
}

pub fn get_queue_attributes(context: &Context, input: GetQueueAttributesInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let mut all = Map::new();
    let delayed = queue.delayed_count();
    all.insert(
        "ApproximateNumberOfMessages".to_owned(),
        queue.available_count().saturating_sub(delayed).to_string().into(),
    );
    all.insert(
        "ApproximateNumberOfMessagesNotVisible".to_owned(),
        queue.acquired_count().to_string().into(),
    );
    all.insert("ApproximateNumberOfMessagesDelayed".to_owned(), delayed.to_string().into());
    let created_seconds = (queue.created_ms / 1000).to_string();
    all.insert("CreatedTimestamp".to_owned(), created_seconds.clone().into());
    all.insert("LastModifiedTimestamp".to_owned(), created_seconds.into());
    all.insert("QueueArn".to_owned(), context.queue_arn(&queue.name).into());
    for name in queue_attributes::setting_names() {
        all.insert(
            name.to_owned(),
            queue_attributes::value(&queue.definition(), name).to_string().into(),
        );
    }
    all.insert("SqsManagedSseEnabled".to_owned(), "false".into());
    if let Some(redrive) = queue_attributes::Redrive::of(&queue.definition()) {
        all.insert("RedrivePolicy".to_owned(), redrive.to_json(&context.account).into());
    }
    if let Some(allow) = queue_attributes::RedriveAllow::of(&queue.definition()) {
        all.insert("RedriveAllowPolicy".to_owned(), allow.to_json(&context.account).into());
    }
    if queue_attributes::is_fifo(&queue.definition()) {
        all.insert(queue_attributes::FIFO_QUEUE.to_owned(), "true".into());
        all.insert(
            queue_attributes::CONTENT_BASED_DEDUPLICATION.to_owned(),
            queue_attributes::content_based_deduplication(&queue.definition())
                .to_string()
                .into(),
        );
        all.insert("DeduplicationScope".to_owned(), "queue".into());
        all.insert("FifoThroughputLimit".to_owned(), "perQueue".into());
    }
    let wanted = &input.attribute_names;
    let attributes: Map<String, Value> = if wanted.iter().any(|name| name == "All") {
        all
    } else {
        let mut selected = Map::new();
        for name in wanted {
            let value = all
                .get(name)
                .cloned()
                .ok_or_else(|| SqsError::InvalidAttributeName(format!("Unknown Attribute {name}.")))?;
            selected.insert(name.clone(), value);
        }
        selected
    };
    if attributes.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Attributes": attributes }))
}

/// SetQueueAttributes: the queue's changeable attributes, recorded in the
/// catalog so they survive a restart, in effect for the next request.
pub async fn set_queue_attributes(context: &Context, input: SetQueueAttributesInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let update = |definition: &QueueDefinition| -> Result<QueueDefinition, SqsError> {
        let (updated, requested) = queue_attributes::updated(definition, &input.attributes)?;
        check_redrive(context, &queue.name, &requested)?;
        Ok(updated)
    };
    context.state.broker.redefine_queue(&queue.name, update).await??;
    Ok(json!({}))
}

/// TagQueue: adds tags or replaces those of the same keys.
pub async fn tag_queue(context: &Context, input: TagQueueInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let update = |definition: &QueueDefinition| {
        Ok::<_, SqsError>(QueueDefinition {
            arguments: tags::added(&definition.arguments, &input.tags)?,
            ..definition.clone()
        })
    };
    context.state.broker.redefine_queue(&queue.name, update).await??;
    Ok(json!({}))
}

/// UntagQueue: removes the tags of the keys given.
pub async fn untag_queue(context: &Context, input: UntagQueueInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let update = |definition: &QueueDefinition| {
        Ok::<_, SqsError>(QueueDefinition {
            arguments: tags::removed(&definition.arguments, &input.tag_keys),
            ..definition.clone()
        })
    };
    context.state.broker.redefine_queue(&queue.name, update).await??;
    Ok(json!({}))
}

pub fn list_queue_tags(context: &Context, input: QueueUrlInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let tags = tags::of(&queue.definition());
    if tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Tags": tags }))
}

/// Settles every message available now. Messages in flight stay (their
/// receivers may still delete them); SQS purges those too, eventually.
pub async fn purge_queue(context: &Context, input: QueueUrlInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let broker = Arc::clone(&context.state.broker);
    match tokio::task::spawn_blocking(move || broker.purge_queue(&queue)).await {
        Ok(result) => result.map(|_| json!({})).map_err(SqsError::from),
        Err(error) => Err(SqsError::Internal(format!("purge failed: {error}"))),
    }
}
