//! SQS message actions: SendMessage(Batch), ReceiveMessage with long
//! polling, DeleteMessage(Batch), ChangeMessageVisibility(Batch). A receive
//! is one share-cursor consumer (fresh each time) acquiring with the
//! visibility timeout as its lock; a receipt handle names that consumer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::messaging;
use conveyor_core::queue::{ConsumerId, CursorError, DeclaredQueue, QueueError, Visibility};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::error::SqsError;
use super::message::{self, IncomingMessage, MessageAttributes, OutgoingMessage};
use super::receipt::ReceiptHandle;
use super::{Context, queue_attributes};

const BATCH_ENTRIES_MAX: usize = 10;
const BATCH_ID_CHARS_MAX: usize = 80;
/// SQS's maximum payload of a whole batch (bodies and attributes), whatever
/// the queue's `MaximumMessageSize`: AWS's message maximum.
const BATCH_BYTES_MAX: usize = 1_048_576;
const RECEIVE_MESSAGES_MAX: i64 = 10;
const WAIT_SECONDS_MAX: i64 = 20;
const VISIBILITY_SECONDS_MAX: i64 = 43_200;
const DELAY_SECONDS_MAX: i64 = 900;
/// MessageGroupId and MessageDeduplicationId: at most this many characters.
const FIFO_ID_CHARS_MAX: usize = 128;
/// A long poll re-checks the queue at most this often per request: it wakes
/// on publishes, releases and lock deadlines, and ends at its wait time anyway.
const WAKEUPS_MAX: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageInput {
    queue_url: Option<String>,
    #[serde(flatten)]
    entry: SendEntry,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendEntry {
    #[serde(default)]
    id: Option<String>,
    message_body: Option<String>,
    delay_seconds: Option<i64>,
    #[serde(default)]
    message_attributes: MessageAttributes,
    message_group_id: Option<String>,
    message_deduplication_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchInput {
    queue_url: Option<String>,
    #[serde(default)]
    entries: Vec<SendEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessageInput {
    queue_url: Option<String>,
    #[serde(default)]
    attribute_names: Vec<String>,
    #[serde(default)]
    message_system_attribute_names: Vec<String>,
    #[serde(default)]
    message_attribute_names: Vec<String>,
    max_number_of_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    wait_time_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageInput {
    queue_url: Option<String>,
    receipt_handle: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleEntry {
    id: Option<String>,
    receipt_handle: Option<String>,
    visibility_timeout: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleBatchInput {
    queue_url: Option<String>,
    #[serde(default)]
    entries: Vec<HandleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeVisibilityInput {
    queue_url: Option<String>,
    receipt_handle: Option<String>,
    visibility_timeout: Option<i64>,
}

fn in_range(name: &str, value: i64, min: i64, max: i64) -> Result<i64, SqsError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(SqsError::InvalidParameterValue(format!(
            "Value {value} for parameter {name} is invalid. Reason: Must be between {min} and {max}."
        )))
    }
}

/// XML 1.0 characters, the only ones SQS accepts in a body.
fn valid_body_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Checks one entry against the queue's limits and turns it into a message.
fn outgoing(queue: &DeclaredQueue, entry: SendEntry, now_ms: i64) -> Result<OutgoingMessage, SqsError> {
    let body = entry
        .message_body
        .filter(|body| !body.is_empty())
        .ok_or_else(|| SqsError::MissingParameter("The request must contain the parameter MessageBody.".to_owned()))?;
    if !body.chars().all(valid_body_char) {
        return Err(SqsError::InvalidMessageContents(
            "Invalid characters found in the message body.".to_owned(),
        ));
    }
    let attribute_bytes = message::check_attributes(&entry.message_attributes)?;
    let size_max = queue_attributes::value(&queue.definition(), "MaximumMessageSize");
    let size = body.len().saturating_add(attribute_bytes);
    if size as i64 > size_max {
        return Err(SqsError::InvalidParameterValue(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {size_max} bytes."
        )));
    }
    let fifo = queue_attributes::is_fifo(&queue.definition());
    let delay_seconds = match entry.delay_seconds {
        Some(delay) if fifo && delay != 0 => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Value {delay} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
            )));
        }
        Some(delay) => in_range("DelaySeconds", delay, 0, DELAY_SECONDS_MAX)?,
        None => queue_attributes::value(&queue.definition(), "DelaySeconds"),
    };
    let group_id = entry.message_group_id.map(|id| check_fifo_id("MessageGroupId", id)).transpose()?;
    if fifo && group_id.is_none() {
        return Err(SqsError::MissingParameter(
            "The request must contain the parameter MessageGroupId.".to_owned(),
        ));
    }
    let deduplication_id = match entry.message_deduplication_id {
        Some(_) if !fifo => {
            return Err(SqsError::InvalidParameterValue(
                "The request include parameter MessageDeduplicationId that is not valid for this queue type.".to_owned(),
            ));
        }
        Some(id) => Some(check_fifo_id("MessageDeduplicationId", id)?),
        None if fifo && queue_attributes::content_based_deduplication(&queue.definition()) => {
            Some(message::content_deduplication_id(&body))
        }
        None if fifo => {
            return Err(SqsError::InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly.".to_owned(),
            ));
        }
        None => None,
    };
    Ok(OutgoingMessage {
        message_id: Uuid::new_v4(),
        body,
        attributes: entry.message_attributes,
        not_before_ms: (delay_seconds > 0).then(|| now_ms.saturating_add(delay_seconds * 1000)),
        group_id,
        deduplication_id,
    })
}

/// MessageGroupId and MessageDeduplicationId: 1 to 128 alphanumeric or
/// punctuation characters.
fn check_fifo_id(name: &str, id: String) -> Result<String, SqsError> {
    let valid =
        !id.is_empty() && id.len() <= FIFO_ID_CHARS_MAX && id.chars().all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation());
    if valid {
        Ok(id)
    } else {
        Err(SqsError::InvalidParameterValue(format!(
            "Value {id} for parameter {name} is invalid. Reason: it must be 1 to {FIFO_ID_CHARS_MAX} alphanumeric or punctuation characters."
        )))
    }
}

/// What a send answers for one message: its id and, on a FIFO queue, its
/// sequence number (a duplicate gets the original's).
#[derive(Debug, Clone)]
struct Stored {
    message_id: String,
    sequence_number: Option<String>,
}

fn sent(message: &OutgoingMessage, stored: &Stored) -> Map<String, Value> {
    let mut output = Map::new();
    output.insert("MessageId".to_owned(), stored.message_id.clone().into());
    // The body sent, not the original's: SDKs check it against what they sent.
    output.insert("MD5OfMessageBody".to_owned(), message::md5_of_body(&message.body).into());
    if let Some(md5) = message::md5_of_attributes(&message.attributes) {
        output.insert("MD5OfMessageAttributes".to_owned(), md5.into());
    }
    if let Some(sequence_number) = &stored.sequence_number {
        output.insert("SequenceNumber".to_owned(), sequence_number.clone().into());
    }
    output
}

/// Appends the messages as one batch and waits until they are durable,
/// once the resource alarms admit their bytes (`disk_admission.rs`). On
/// a FIFO queue the core's deduplication window answers messages whose
/// deduplication id it saw in the last five minutes with the original's
/// MessageId and SequenceNumber, without appending them again.
async fn store(
    context: &Context,
    queue: &Arc<DeclaredQueue>,
    messages: &[OutgoingMessage],
) -> Result<Vec<Result<Stored, SqsError>>, SqsError> {
    let fifo = queue_attributes::is_fifo(&queue.definition());
    let records: Vec<_> = messages.iter().map(|message| message.clone().into_record()).collect();
    let bytes: usize = messages.iter().map(|message| message.body.len()).sum();
    crate::disk_admission::admit(context.state.broker.alarms(), bytes as u64)
        .await
        .map_err(|held| SqsError::ServiceUnavailable(held.message()))?;
    let outcomes = context
        .state
        .broker
        .publish_batch_to_queue(queue, records)
        .await
        .map_err(|error| SqsError::Internal(format!("storing the message failed: {error}")))?;
    Ok(messages
        .iter()
        .zip(outcomes)
        .map(|(message, outcome)| match outcome {
            messaging::Stored::Appended { offset } => Ok(Stored {
                message_id: message.message_id.to_string(),
                sequence_number: fifo.then(|| message::sequence_number(offset)),
            }),
            messaging::Stored::Duplicate {
                token,
                offset: Some(offset),
            } => Ok(Stored {
                message_id: token,
                sequence_number: Some(message::sequence_number(offset)),
            }),
            messaging::Stored::Duplicate { offset: None, .. } => Err(SqsError::Internal(
                "storing the original of this duplicate failed; send it again".to_owned(),
            )),
            messaging::Stored::Refused => Err(SqsError::OverLimit(format!(
                "Queue {} is full: its x-max-length or x-max-length-bytes is reached and its x-overflow refuses new messages.",
                queue.name
            ))),
        })
        .collect())
}

pub async fn send_message(context: &Context, input: SendMessageInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let message = outgoing(&queue, input.entry, context.state.broker.clock().now_ms())?;
    let stored = store(context, &queue, std::slice::from_ref(&message))
        .await?
        .pop()
        .ok_or_else(|| SqsError::Internal("the message was not stored".to_owned()))??;
    Ok(Value::Object(sent(&message, &stored)))
}

/// Checks a batch's entry ids as SQS does: 1 to 10 entries, ids distinct and well formed.
fn check_batch_ids<'a>(ids: impl Iterator<Item = Option<&'a str>>) -> Result<(), SqsError> {
    let ids: Vec<Option<&str>> = ids.collect();
    if ids.is_empty() {
        return Err(SqsError::EmptyBatchRequest(
            "There should be at least one entry in the request.".to_owned(),
        ));
    }
    if ids.len() > BATCH_ENTRIES_MAX {
        return Err(SqsError::TooManyEntriesInBatchRequest(format!(
            "Maximum number of entries per request are {BATCH_ENTRIES_MAX}. You have sent {}.",
            ids.len()
        )));
    }
    let mut seen = HashSet::new();
    for id in ids {
        let id = id.unwrap_or_default();
        let valid =
            !id.is_empty() && id.len() <= BATCH_ID_CHARS_MAX && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(SqsError::InvalidBatchEntryId(format!(
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most {BATCH_ID_CHARS_MAX} letters long (got {id:?})."
            )));
        }
        if !seen.insert(id) {
            return Err(SqsError::BatchEntryIdsNotDistinct(format!("Id {id} repeated.")));
        }
    }
    Ok(())
}

fn failed(id: &str, error: &SqsError) -> Value {
    json!({ "Id": id, "SenderFault": error.sender_fault(), "Code": error.batch_code(), "Message": error.to_string() })
}

pub async fn send_message_batch(context: &Context, input: SendMessageBatchInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    check_batch_ids(input.entries.iter().map(|entry| entry.id.as_deref()))?;
    let now_ms = context.state.broker.clock().now_ms();
    let mut accepted = Vec::new();
    let mut failures = Vec::new();
    for entry in input.entries {
        let id = entry.id.clone().unwrap_or_default();
        match outgoing(&queue, entry, now_ms) {
            Ok(message) => accepted.push((id, message)),
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    let total: usize = accepted.iter().map(|(_, message)| message.payload_bytes()).sum();
    if total > BATCH_BYTES_MAX {
        return Err(SqsError::BatchRequestTooLong(format!(
            "Batch requests cannot be longer than {BATCH_BYTES_MAX} bytes. You have sent {total} bytes."
        )));
    }
    let messages: Vec<OutgoingMessage> = accepted.iter().map(|(_, message)| message.clone()).collect();
    let stored = if messages.is_empty() {
        Vec::new()
    } else {
        store(context, &queue, &messages).await?
    };
    let mut successful = Vec::new();
    for ((id, message), stored) in accepted.iter().zip(stored) {
        match stored {
            Ok(stored) => {
                let mut entry = sent(message, &stored);
                entry.insert("Id".to_owned(), id.clone().into());
                successful.push(Value::Object(entry));
            }
            Err(error) => failures.push(failed(id, &error)),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failures }))
}

/// One message handed out by a receive.
struct Received {
    offset: u64,
    delivery_count: u32,
    first_received_ms: i64,
    message: IncomingMessage,
}

/// One acquire (the core holds back messages whose `DelaySeconds` has not
/// passed). Waits until the delivery counts are durable.
async fn acquire_visible(
    context: &Context,
    queue: &Arc<DeclaredQueue>,
    consumer: ConsumerId,
    max: usize,
    lock_ms: i64,
) -> Result<Vec<Received>, SqsError> {
    let (acquiring, broker) = (Arc::clone(queue), Arc::clone(&context.state.broker));
    // Messages past the queue's delivery limit (RedrivePolicy's maxReceiveCount)
    // move to its dead-letter queue instead of being received.
    let deliveries = tokio::task::spawn_blocking(move || broker.acquire_live(&acquiring, consumer, max, lock_ms, Visibility::Durable))
        .await
        .map_err(|error| SqsError::Internal(format!("receive failed: {error}")))??;
    for moved in deliveries.dead_letters {
        moved.await?;
    }
    let received = deliveries
        .messages
        .into_iter()
        .map(|delivery| Received {
            offset: delivery.offset,
            delivery_count: delivery.delivery_count,
            first_received_ms: delivery.first_delivered_ms,
            message: IncomingMessage::from_record(&delivery.record, queue.id, delivery.offset),
        })
        .collect();
    if let Some(durable) = deliveries.durable {
        durable.await?;
    }
    Ok(received)
}

pub async fn receive_message(context: &Context, input: ReceiveMessageInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let max = in_range(
        "MaxNumberOfMessages",
        input.max_number_of_messages.unwrap_or(1),
        1,
        RECEIVE_MESSAGES_MAX,
    )? as usize;
    let wait_seconds = match input.wait_time_seconds {
        Some(wait) => in_range("WaitTimeSeconds", wait, 0, WAIT_SECONDS_MAX)?,
        None => queue_attributes::value(&queue.definition(), "ReceiveMessageWaitTimeSeconds"),
    };
    let visibility_seconds = match input.visibility_timeout {
        Some(visibility) => in_range("VisibilityTimeout", visibility, 0, VISIBILITY_SECONDS_MAX)?,
        None => queue_attributes::value(&queue.definition(), "VisibilityTimeout"),
    };
    let consumer = queue.new_consumer();
    let deadline = Instant::now() + Duration::from_secs(wait_seconds as u64);
    let mut high_watermark = queue.queue()?.subscribe();
    let mut received = Vec::new();
    for _ in 0..WAKEUPS_MAX {
        // Interest first, then the check: nothing that happens in between is missed.
        let available = queue.available();
        tokio::pin!(available);
        available.as_mut().enable();
        high_watermark.borrow_and_update();
        received = acquire_visible(context, &queue, consumer, max, visibility_seconds * 1000).await?;
        let now = Instant::now();
        if !received.is_empty() || now >= deadline {
            break;
        }
        if context.state.broker.queue(&queue.name).is_none_or(|current| current.id != queue.id) {
            break; // Deleted while we waited.
        }
        // Expired visibility timeouts and elapsed delays make messages
        // available without any notification: wake for the next one.
        let wake_at = match queue.queue()?.next_deadline_ms() {
            Some(deadline_ms) => {
                let in_ms = deadline_ms.saturating_sub(context.state.broker.clock().now_ms()).clamp(1, i64::MAX) as u64;
                deadline.min(now + Duration::from_millis(in_ms))
            }
            None => deadline,
        };
        tokio::select! {
            () = &mut available => {}
            changed = high_watermark.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = tokio::time::sleep_until(wake_at) => {}
        }
    }
    let system_names: Vec<&String> = input.attribute_names.iter().chain(&input.message_system_attribute_names).collect();
    let messages: Vec<Value> = received
        .into_iter()
        .map(|received| received_json(context, &queue, consumer, received, &system_names, &input.message_attribute_names))
        .collect();
    if messages.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Messages": messages }))
}

fn received_json(
    context: &Context,
    queue: &DeclaredQueue,
    consumer: ConsumerId,
    received: Received,
    system_names: &[&String],
    attribute_names: &[String],
) -> Value {
    let handle = ReceiptHandle {
        queue_id: queue.id,
        offset: received.offset,
        consumer,
    };
    let message = received.message;
    let wants = |name: &str| system_names.iter().any(|wanted| *wanted == "All" || *wanted == name);
    let mut system = Map::new();
    if wants("SenderId") {
        system.insert("SenderId".to_owned(), context.account.clone().into());
    }
    if wants("SentTimestamp") {
        system.insert("SentTimestamp".to_owned(), message.sent_timestamp_ms.to_string().into());
    }
    if wants("ApproximateReceiveCount") {
        system.insert("ApproximateReceiveCount".to_owned(), received.delivery_count.to_string().into());
    }
    if wants("ApproximateFirstReceiveTimestamp") {
        system.insert(
            "ApproximateFirstReceiveTimestamp".to_owned(),
            received.first_received_ms.to_string().into(),
        );
    }
    if queue_attributes::is_fifo(&queue.definition()) {
        if wants("MessageGroupId")
            && let Some(group_id) = &message.group_id
        {
            system.insert("MessageGroupId".to_owned(), group_id.clone().into());
        }
        if wants("MessageDeduplicationId")
            && let Some(deduplication_id) = &message.deduplication_id
        {
            system.insert("MessageDeduplicationId".to_owned(), deduplication_id.clone().into());
        }
        if wants("SequenceNumber") {
            system.insert("SequenceNumber".to_owned(), message::sequence_number(received.offset).into());
        }
    }
    let mut output = Map::new();
    output.insert("MessageId".to_owned(), message.message_id.into());
    output.insert("ReceiptHandle".to_owned(), handle.encode().into());
    output.insert("MD5OfBody".to_owned(), message::md5_of_body(&message.body).into());
    output.insert("Body".to_owned(), message.body.into());
    if !system.is_empty() {
        output.insert("Attributes".to_owned(), Value::Object(system));
    }
    let attributes = message::select_attributes(&message.attributes, attribute_names);
    if let Some(md5) = message::md5_of_attributes(&attributes) {
        output.insert("MD5OfMessageAttributes".to_owned(), md5.into());
        output.insert(
            "MessageAttributes".to_owned(),
            serde_json::to_value(&attributes).unwrap_or_default(),
        );
    }
    Value::Object(output)
}

/// The receipt handle, if it names a message of this queue.
fn handle_for(queue: &DeclaredQueue, text: Option<&str>) -> Result<ReceiptHandle, SqsError> {
    let text = text.ok_or_else(|| SqsError::MissingParameter("The request must contain the parameter ReceiptHandle.".to_owned()))?;
    ReceiptHandle::decode(text)
        .filter(|handle| handle.queue_id == queue.id)
        .ok_or_else(|| SqsError::ReceiptHandleIsInvalid(format!("The input receipt handle \"{text}\" is not a valid receipt handle.")))
}

/// Deletes each message whose receive still holds it. As in SQS, a handle
/// from an earlier receive of a message received again since (or already
/// deleted) succeeds without deleting anything. Every acknowledgement is
/// enqueued on the journal, in one blocking call, before any is awaited, so
/// a batch costs one group commit rather than one `fdatasync` per entry.
async fn delete(queue: &Arc<DeclaredQueue>, handles: Vec<ReceiptHandle>) -> Result<Vec<Result<(), SqsError>>, SqsError> {
    let deleting = Arc::clone(queue);
    let acked = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|handle| deleting.queue()?.ack(handle.consumer, handle.offset))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|error| SqsError::Internal(format!("delete failed: {error}")))?;
    let mut results = Vec::with_capacity(acked.len());
    for ack in acked {
        results.push(match ack {
            Ok(durable) => durable.await.map_err(SqsError::from),
            Err(QueueError::Cursor(_)) => Ok(()),
            Err(error) => Err(error.into()),
        });
    }
    Ok(results)
}

pub async fn delete_message(context: &Context, input: DeleteMessageInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let handle = handle_for(&queue, input.receipt_handle.as_deref())?;
    delete(&queue, vec![handle])
        .await?
        .pop()
        .unwrap_or_else(|| Err(SqsError::Internal("the delete had no result".to_owned())))?;
    Ok(json!({}))
}

pub async fn delete_message_batch(context: &Context, input: HandleBatchInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    check_batch_ids(input.entries.iter().map(|entry| entry.id.as_deref()))?;
    let handles: Vec<Result<ReceiptHandle, SqsError>> = input
        .entries
        .iter()
        .map(|entry| handle_for(&queue, entry.receipt_handle.as_deref()))
        .collect();
    let valid = handles.iter().filter_map(|handle| handle.as_ref().ok().copied()).collect();
    let mut deleted = delete(&queue, valid).await?.into_iter();
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for (entry, handle) in input.entries.iter().zip(handles) {
        let id = entry.id.clone().unwrap_or_default();
        let result = handle.and_then(|_| {
            deleted
                .next()
                .unwrap_or_else(|| Err(SqsError::Internal("the delete had no result".to_owned())))
        });
        match result {
            Ok(()) => successful.push(json!({ "Id": id })),
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failures }))
}

/// Moves the message's visibility deadline to `seconds` from now; 0 makes
/// it visible at once (and wakes waiting receivers and AMQP consumers).
fn change_visibility(queue: &DeclaredQueue, handle: ReceiptHandle, seconds: Option<i64>) -> Result<(), SqsError> {
    let seconds =
        seconds.ok_or_else(|| SqsError::MissingParameter("The request must contain the parameter VisibilityTimeout.".to_owned()))?;
    let seconds = in_range("VisibilityTimeout", seconds, 0, VISIBILITY_SECONDS_MAX)?;
    let result = if seconds == 0 {
        queue.queue()?.release(handle.consumer, handle.offset, 0)
    } else {
        queue.queue()?.renew(handle.consumer, handle.offset, seconds * 1000)
    };
    match result {
        Ok(()) => {
            if seconds == 0 {
                queue.notify_available();
            }
            Ok(())
        }
        Err(QueueError::Cursor(CursorError::UnknownOffset { .. } | CursorError::NotAcquired { .. } | CursorError::NotHolder { .. })) => {
            Err(SqsError::MessageNotInflight(
                "The message referred to isn't in flight (deleted, or received again since).".to_owned(),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

pub fn change_message_visibility(context: &Context, input: ChangeVisibilityInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    let handle = handle_for(&queue, input.receipt_handle.as_deref())?;
    change_visibility(&queue, handle, input.visibility_timeout)?;
    Ok(json!({}))
}

pub fn change_message_visibility_batch(context: &Context, input: HandleBatchInput) -> Result<Value, SqsError> {
    let queue = context.queue(input.queue_url.as_deref())?;
    check_batch_ids(input.entries.iter().map(|entry| entry.id.as_deref()))?;
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for entry in &input.entries {
        let id = entry.id.clone().unwrap_or_default();
        let result = handle_for(&queue, entry.receipt_handle.as_deref())
            .and_then(|handle| change_visibility(&queue, handle, entry.visibility_timeout));
        match result {
            Ok(()) => successful.push(json!({ "Id": id })),
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failures }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_must_be_present_distinct_well_formed_and_at_most_ten() {
        assert!(matches!(check_batch_ids([].into_iter()), Err(SqsError::EmptyBatchRequest(_))));
        assert!(matches!(
            check_batch_ids([Some("a"), Some("a")].into_iter()),
            Err(SqsError::BatchEntryIdsNotDistinct(_))
        ));
        assert!(matches!(
            check_batch_ids([Some("a b")].into_iter()),
            Err(SqsError::InvalidBatchEntryId(_))
        ));
        assert!(matches!(check_batch_ids([None].into_iter()), Err(SqsError::InvalidBatchEntryId(_))));
        let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert!(matches!(
            check_batch_ids(eleven.iter().map(|id| Some(id.as_str()))),
            Err(SqsError::TooManyEntriesInBatchRequest(_))
        ));
        assert!(check_batch_ids([Some("a"), Some("b-1_")].into_iter()).is_ok());
    }

    #[test]
    fn bodies_take_only_xml_characters() {
        assert!("hello\n\tworld ✓ 🦀".chars().all(valid_body_char));
        assert!(!valid_body_char('\u{0}'));
        assert!(!valid_body_char('\u{fffe}'));
    }
}
