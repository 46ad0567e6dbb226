//! SNS Publish and PublishBatch: a message published to a topic is appended
//! to every subscribed queue whose filter policy it passes — as the JSON
//! notification envelope, or with raw delivery as the bare message with its
//! attributes as SQS message attributes — through the core's
//! `publish_to_queue` (so queue length limits apply), and the answer waits
//! until every append is durable. Records are written with the SQS mapping
//! (`sqs/message.rs`), so SQS receivers get correct MD5s.

use std::collections::HashSet;

use serde_json::{Map, Value};
use tracing::debug;
use uuid::Uuid;

use crate::sqs::message::{self, MessageAttributes, OutgoingMessage};

use super::arn::{subscription_arn, topic_arn};
use super::error::SnsError;
use super::filter_policy::attributes_as_json;
use super::notification::Envelope;
use super::params::Params;
use super::subscription::Subscription;
use super::topic::Topic;
use super::topics::{topic, topic_of};
use super::xml::Xml;
use super::{Answer, Context};

const SUBJECT_CHARS_MAX: usize = 100;
const BATCH_ENTRIES_MAX: usize = 10;
const BATCH_ID_CHARS_MAX: usize = 80;
/// SNS's limit on a whole PublishBatch (messages and attributes).
const BATCH_BYTES_MAX: usize = 262_144;
const GROUP_ID_CHARS_MAX: usize = 128;

/// One message as published, checked.
#[derive(Debug)]
struct Published {
    message_id: String,
    /// What SQS subscribers get: the message, or with `MessageStructure=json`
    /// its `sqs` (else `default`) member.
    message: String,
    subject: Option<String>,
    attributes: MessageAttributes,
    /// FIFO topics: carried into the subscribed queues, so a FIFO queue
    /// keeps the group's order and deduplicates.
    group_id: Option<String>,
    deduplication_id: Option<String>,
}

/// The topic a Publish names by `TopicArn` or `TargetArn`.
fn target(context: &Context, params: &Params) -> Result<Topic, SnsError> {
    if params.get("PhoneNumber").is_some() {
        return Err(SnsError::InvalidParameter(
            "Invalid parameter: PhoneNumber Reason: Conveyor publishes to topics only".to_owned(),
        ));
    }
    let arn = params
        .get("TopicArn")
        .or_else(|| params.get("TargetArn"))
        .filter(|arn| !arn.is_empty())
        .ok_or_else(|| {
            SnsError::InvalidParameter("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter".to_owned())
        })?;
    topic(context, super::arn::parse_topic_arn(arn, "TopicArn")?)
}

/// Checks one message (Publish's parameters or one batch entry) as SNS does.
fn check(topic: &Topic, params: &Params) -> Result<Published, SnsError> {
    let message = params
        .get("Message")
        .filter(|message| !message.is_empty())
        .ok_or_else(|| SnsError::InvalidParameter("Invalid parameter: Empty message".to_owned()))?;
    let message = match params.get("MessageStructure") {
        None | Some("") => message.to_owned(),
        Some("json") => structured(message)?,
        Some(other) => {
            return Err(SnsError::InvalidParameter(format!(
                "Invalid parameter: MessageStructure Reason: {other:?} is not json"
            )));
        }
    };
    let subject = match params.get("Subject") {
        None => None,
        Some(subject) => {
            let valid = !subject.is_empty()
                && subject.chars().count() <= SUBJECT_CHARS_MAX
                && !subject.chars().any(char::is_control)
                && !subject.starts_with(char::is_whitespace);
            if !valid {
                return Err(SnsError::InvalidParameter(format!(
                    "Invalid parameter: Subject Reason: must be 1 to {SUBJECT_CHARS_MAX} characters, start with a letter, number or \
                     punctuation mark, and hold no line breaks or control characters"
                )));
            }
            Some(subject.to_owned())
        }
    };
    let attributes = params.message_attributes("MessageAttributes")?;
    let attribute_bytes = message::check_attributes(&attributes).map_err(|error| SnsError::InvalidParameterValue(error.to_string()))?;
    for (name, attribute) in &attributes {
        let is_array = attribute.data_type == "String.Array";
        if is_array
            && !matches!(
                attribute.string_value.as_deref().map(serde_json::from_str::<Value>),
                Some(Ok(Value::Array(_)))
            )
        {
            return Err(SnsError::InvalidParameterValue(format!(
                "Invalid parameter: MessageAttributes Reason: the String.Array attribute {name} must hold a JSON array"
            )));
        }
    }
    let size = message.len().saturating_add(attribute_bytes);
    if size > topic.message_bytes_max() {
        return Err(SnsError::InvalidParameter(format!(
            "Invalid parameter: Message too long: {size} bytes, at most {}",
            topic.message_bytes_max()
        )));
    }
    check_fifo(topic, params)?;
    Ok(Published {
        message_id: Uuid::new_v4().to_string(),
        message,
        subject,
        attributes,
        group_id: params.get("MessageGroupId").map(str::to_owned),
        deduplication_id: params.get("MessageDeduplicationId").map(str::to_owned),
    })
}

/// `MessageStructure=json`: an object of per-protocol messages with a
/// `default`; SQS subscribers get `sqs` if there is one.
fn structured(message: &str) -> Result<String, SnsError> {
    let invalid = |reason: &str| SnsError::InvalidParameter(format!("Invalid parameter: Message Structure - {reason}"));
    let object: Map<String, Value> = serde_json::from_str(message).map_err(|_| invalid("JSON message body failed to parse"))?;
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    let default = text("default").ok_or_else(|| invalid("No default entry in JSON message body"))?;
    Ok(text("sqs").unwrap_or(default))
}

/// FIFO topics need a message group, and a deduplication id unless content
/// deduplication is on. Both are accepted and checked; Conveyor does not
/// (yet) carry them into the subscribed queues.
fn check_fifo(topic: &Topic, params: &Params) -> Result<(), SnsError> {
    for name in ["MessageGroupId", "MessageDeduplicationId"] {
        if let Some(value) = params.get(name)
            && (value.is_empty() || value.chars().count() > GROUP_ID_CHARS_MAX || !value.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(SnsError::InvalidParameter(format!(
                "Invalid parameter: {name} Reason: must be 1 to {GROUP_ID_CHARS_MAX} alphanumeric or punctuation characters"
            )));
        }
    }
    if topic.is_fifo() {
        if params.get("MessageGroupId").is_none() {
            return Err(SnsError::InvalidParameter(
                "Invalid parameter: The MessageGroupId parameter is required for FIFO topics".to_owned(),
            ));
        }
        if params.get("MessageDeduplicationId").is_none() && !topic.content_based_deduplication() {
            return Err(SnsError::InvalidParameter(
                "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// Appends each message to each subscribed queue whose filter it passes;
/// returns once every append is durable.
async fn deliver(context: &Context, topic: &Topic, messages: &[Published]) -> Result<(), SnsError> {
    let broker = &context.state.broker;
    let subscriptions: Vec<Subscription> = broker
        .bindings(&topic.name)?
        .iter()
        .filter_map(Subscription::from_binding)
        .collect();
    // Every subscribed queue stores a copy: admitted against the resource
    // alarms before any is written (`disk_admission.rs`).
    let bytes: usize = messages.iter().map(|message| message.message.len()).sum();
    crate::disk_admission::admit(broker.alarms(), (bytes * subscriptions.len()) as u64)
        .await
        .map_err(|held| SnsError::ServiceUnavailable(held.message()))?;
    let topic_arn = topic_arn(&context.account, &topic.name);
    let timestamp_ms = broker.clock().now_ms();
    let matched_attributes: Vec<Map<String, Value>> = messages.iter().map(|message| attributes_as_json(&message.attributes)).collect();
    let mut appends = Vec::new();
    for subscription in &subscriptions {
        // A subscribed queue deleted since is skipped; its binding went with it.
        let Some(queue) = broker.queue(&subscription.queue) else {
            continue;
        };
        let subscription_arn = subscription_arn(&context.account, &topic.name, &subscription.id);
        let filter = subscription.filter();
        for (message, attributes) in messages.iter().zip(&matched_attributes) {
            if !filter.accepts(attributes, &message.message) {
                continue;
            }
            let outgoing = if subscription.raw_message_delivery {
                OutgoingMessage {
                    message_id: Uuid::new_v4(),
                    body: message.message.clone(),
                    attributes: message.attributes.clone(),
                    not_before_ms: None,
                    group_id: message.group_id.clone(),
                    deduplication_id: message.deduplication_id.clone(),
                }
            } else {
                let envelope = Envelope {
                    message_id: &message.message_id,
                    topic_arn: &topic_arn,
                    subject: message.subject.as_deref(),
                    message: &message.message,
                    attributes: &message.attributes,
                    timestamp_ms,
                    host: &context.host,
                };
                OutgoingMessage {
                    message_id: Uuid::new_v4(),
                    body: envelope.render(&subscription_arn),
                    attributes: MessageAttributes::new(),
                    not_before_ms: None,
                    group_id: message.group_id.clone(),
                    deduplication_id: message.deduplication_id.clone(),
                }
            };
            let published = broker.publish_to_queue(&queue, outgoing.into_record());
            if published.refused {
                // As in SNS, a queue that refuses a delivery does not fail the publish.
                debug!(queue = subscription.queue, "a full queue refused an SNS delivery");
            }
            appends.extend(published.appends);
        }
    }
    for append in appends {
        append
            .await
            .map_err(|error| SnsError::Internal(format!("storing the message failed: {error}")))?;
    }
    Ok(())
}

pub async fn publish(context: &Context, params: &Params) -> Answer {
    let topic = target(context, params)?;
    let message = check(&topic, params)?;
    deliver(context, &topic, std::slice::from_ref(&message)).await?;
    let mut xml = Xml::new();
    xml.element("MessageId", &message.message_id);
    Ok(Some(xml))
}

/// Checks a batch's entry ids as SNS does: 1 to 10 entries, ids distinct and well formed.
fn check_batch_ids(entries: &[Params]) -> Result<(), SnsError> {
    if entries.is_empty() {
        return Err(SnsError::EmptyBatchRequest(
            "The batch request doesn't contain any entries".to_owned(),
        ));
    }
    if entries.len() > BATCH_ENTRIES_MAX {
        return Err(SnsError::TooManyEntriesInBatchRequest(format!(
            "The batch request contains more entries than permissible ({BATCH_ENTRIES_MAX})"
        )));
    }
    let mut seen = HashSet::new();
    for entry in entries {
        let id = entry.get("Id").unwrap_or_default();
        let valid =
            !id.is_empty() && id.len() <= BATCH_ID_CHARS_MAX && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(SnsError::InvalidBatchEntryId(format!(
                "The Id of a batch entry in a batch request doesn't abide by the specification (got {id:?})"
            )));
        }
        if !seen.insert(id) {
            return Err(SnsError::BatchEntryIdsNotDistinct(format!(
                "Two or more batch entries in the request have the same Id ({id})"
            )));
        }
    }
    Ok(())
}

pub async fn publish_batch(context: &Context, params: &Params) -> Answer {
    let topic = topic_of(context, params)?;
    let entries = params.members("PublishBatchRequestEntries")?;
    check_batch_ids(&entries)?;
    // Accepted entries' ids, in step with their messages.
    let mut ids = Vec::new();
    let mut messages = Vec::new();
    let mut failed = Vec::new();
    let mut batch_bytes = 0usize;
    for entry in &entries {
        let id = entry.get("Id").unwrap_or_default().to_owned();
        match check(&topic, entry) {
            Ok(message) => {
                batch_bytes = batch_bytes.saturating_add(message.message.len());
                ids.push(id);
                messages.push(message);
            }
            Err(error) => failed.push((id, error)),
        }
    }
    if batch_bytes > BATCH_BYTES_MAX {
        return Err(SnsError::BatchRequestTooLong(format!(
            "The length of all the messages put together is more than the limit ({BATCH_BYTES_MAX} bytes)"
        )));
    }
    deliver(context, &topic, &messages).await?;
    let mut xml = Xml::new();
    xml.open("Successful");
    for (id, message) in ids.iter().zip(&messages) {
        xml.open("member")
            .element("Id", id)
            .element("MessageId", &message.message_id)
            .close("member");
    }
    xml.close("Successful").open("Failed");
    for (id, error) in &failed {
        xml.open("member")
            .element("Id", id)
            .element("Code", error.wire().code)
            .element("Message", &error.to_string())
            .element("SenderFault", &error.sender_fault().to_string())
            .close("member");
    }
    xml.close("Failed");
    Ok(Some(xml))
}
