//! SQS message move tasks (DLQ redrive): StartMessageMoveTask,
//! ListMessageMoveTasks, CancelMessageMoveTask. A task is the core's
//! background redrive (`conveyor_core::redrive`); this module checks the
//! request as SQS does and speaks its shapes. A task handle is, as in AWS,
//! base64 of `{"taskId": …, "sourceArn": …}`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use conveyor_core::CoreError;
use conveyor_core::queue::DeclaredQueue;
use conveyor_core::redrive::{CancelError, RedriveTask, StartError, TaskStatus};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::SqsError;
use super::{Context, queue_attributes};

const RATE_PER_SECOND_MAX: i64 = 500;
const LIST_RESULTS_MAX: i64 = 10;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartInput {
    source_arn: Option<String>,
    destination_arn: Option<String>,
    max_number_of_messages_per_second: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    source_arn: Option<String>,
    max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelInput {
    task_handle: Option<String>,
}

#[derive(Debug, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskHandle {
    task_id: Uuid,
    source_arn: String,
}

impl TaskHandle {
    fn encode(&self) -> String {
        // Serializing two strings cannot fail.
        BASE64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> Option<TaskHandle> {
        serde_json::from_slice(&BASE64.decode(text).ok()?).ok()
    }
}

/// The queue an ARN parameter names; a missing one is ResourceNotFoundException, as in SQS.
fn queue_of_arn(context: &Context, arn: Option<&str>, parameter: &str) -> Result<Arc<DeclaredQueue>, SqsError> {
    let arn = arn
        .filter(|arn| !arn.is_empty())
        .ok_or_else(|| SqsError::MissingParameter(format!("The request must contain the parameter {parameter}.")))?;
    let name = crate::arn::queue_name(arn).ok_or_else(|| {
        SqsError::InvalidParameterValue(format!(
            "Value {arn} for parameter {parameter} is invalid. Reason: not an SQS queue ARN."
        ))
    })?;
    context.state.broker.queue(name).ok_or_else(|| {
        SqsError::ResourceNotFound(format!(
            "The resource that you specified for the {parameter} parameter doesn't exist."
        ))
    })
}

/// True if some queue's RedrivePolicy names `queue` as its dead-letter queue.
fn is_dead_letter_queue(context: &Context, queue: &DeclaredQueue) -> bool {
    context
        .state
        .broker
        .queues()
        .iter()
        .any(|source| queue_attributes::Redrive::of(&source.definition()).is_some_and(|redrive| redrive.dead_letter_queue == queue.name))
}

pub fn start_message_move_task(context: &Context, input: StartInput) -> Result<Value, SqsError> {
    let source = queue_of_arn(context, input.source_arn.as_deref(), "SourceArn")?;
    let rate_per_second = match input.max_number_of_messages_per_second {
        None => None,
        Some(rate @ 1..=RATE_PER_SECOND_MAX) => Some(rate as u32),
        Some(rate) => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: You must enter a number that's between 1 and {RATE_PER_SECOND_MAX}."
            )));
        }
    };
    if !is_dead_letter_queue(context, &source) {
        return Err(SqsError::InvalidParameterValue(
            "Source queue must be configured as a Dead Letter Queue.".to_owned(),
        ));
    }
    let destination = match input.destination_arn.as_deref().filter(|arn| !arn.is_empty()) {
        None => None,
        Some(arn) => {
            let destination = queue_of_arn(context, Some(arn), "DestinationArn")?;
            if destination.id == source.id {
                return Err(SqsError::InvalidParameterValue(
                    "Value for parameter DestinationArn is invalid. Reason: the destination is the source queue.".to_owned(),
                ));
            }
            if queue_attributes::is_fifo(&destination.definition()) != queue_attributes::is_fifo(&source.definition()) {
                return Err(SqsError::InvalidParameterValue(
                    "The source queue and destination queue must be of the same queue type.".to_owned(),
                ));
            }
            Some(destination)
        }
    };
    let task =
        conveyor_core::redrive::start_task(&context.state.broker, &source, destination, rate_per_second).map_err(|error| match error {
            StartError::AlreadyRunning(_) => SqsError::InvalidParameterValue(
                "There is already a task running. Only one active task is allowed for a source queue arn at a given time.".to_owned(),
            ),
        })?;
    Ok(json!({ "TaskHandle": handle_of(context, &task) }))
}

fn handle_of(context: &Context, task: &RedriveTask) -> String {
    TaskHandle {
        task_id: task.id,
        source_arn: context.queue_arn(&task.source),
    }
    .encode()
}

pub fn list_message_move_tasks(context: &Context, input: ListInput) -> Result<Value, SqsError> {
    let source = queue_of_arn(context, input.source_arn.as_deref(), "SourceArn")?;
    let max = match input.max_results {
        None => 1,
        Some(max @ 1..=LIST_RESULTS_MAX) => max,
        Some(max) => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Value {max} for parameter MaxResults is invalid. Reason: Must be between 1 and {LIST_RESULTS_MAX}."
            )));
        }
    };
    let results: Vec<Value> = context
        .state
        .broker
        .redrive_tasks()
        .list(&source.name, max as usize)
        .iter()
        .map(|task| entry(context, task))
        .collect();
    Ok(json!({ "Results": results }))
}

/// One ListMessageMoveTasks entry: optional members only when they apply, as in SQS.
fn entry(context: &Context, task: &RedriveTask) -> Value {
    let status = task.status();
    let mut entry = Map::new();
    if status == TaskStatus::Running {
        entry.insert("TaskHandle".to_owned(), handle_of(context, task).into());
    }
    entry.insert("Status".to_owned(), status_name(status).into());
    entry.insert("SourceArn".to_owned(), context.queue_arn(&task.source).into());
    if let Some(destination) = &task.destination {
        entry.insert("DestinationArn".to_owned(), context.queue_arn(destination).into());
    }
    if let Some(rate) = task.rate_per_second {
        entry.insert("MaxNumberOfMessagesPerSecond".to_owned(), rate.into());
    }
    entry.insert("ApproximateNumberOfMessagesMoved".to_owned(), task.moved().into());
    entry.insert("ApproximateNumberOfMessagesToMove".to_owned(), task.to_move.into());
    if let Some(failure) = task.failure() {
        entry.insert("FailureReason".to_owned(), failure_reason(&failure).into());
    }
    entry.insert("StartedTimestamp".to_owned(), task.started_ms.into());
    Value::Object(entry)
}

fn status_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Running => "RUNNING",
        TaskStatus::Completed => "COMPLETED",
        TaskStatus::Cancelling => "CANCELLING",
        TaskStatus::Cancelled => "CANCELLED",
        TaskStatus::Failed => "FAILED",
    }
}

/// A failed task's FailureReason: SQS's error code for what stopped it.
fn failure_reason(error: &CoreError) -> &'static str {
    match error {
        CoreError::UnknownQueue(_) => "AWS.SimpleQueueService.NonExistentQueue",
        _ => "InternalError",
    }
}

pub fn cancel_message_move_task(context: &Context, input: CancelInput) -> Result<Value, SqsError> {
    let text = input
        .task_handle
        .ok_or_else(|| SqsError::MissingParameter("The request must contain the parameter TaskHandle.".to_owned()))?;
    let handle = TaskHandle::decode(&text)
        .ok_or_else(|| SqsError::InvalidParameterValue("Value for parameter TaskHandle is invalid.".to_owned()))?;
    let source = queue_of_arn(context, Some(&handle.source_arn), "SourceArn")?;
    let task = context
        .state
        .broker
        .redrive_tasks()
        .cancel(&source.name, handle.task_id)
        .map_err(|error| match error {
            CancelError::UnknownTask => SqsError::ResourceNotFound("Task does not exist.".to_owned()),
            CancelError::NotRunning => SqsError::InvalidParameterValue("Only a task in status RUNNING can be cancelled.".to_owned()),
        })?;
    Ok(json!({ "ApproximateNumberOfMessagesMoved": task.moved() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_handles_are_base64_json_as_in_aws_and_garbage_is_refused() {
        let handle = TaskHandle {
            task_id: Uuid::new_v4(),
            source_arn: super::super::queue_arn("123456789012", "dlq"),
        };
        let decoded = TaskHandle::decode(&handle.encode()).expect("round trip");
        assert_eq!(
            (decoded.task_id, decoded.source_arn.as_str()),
            (handle.task_id, handle.source_arn.as_str())
        );
        let json: Value = serde_json::from_slice(&BASE64.decode(handle.encode()).expect("base64")).expect("json");
        assert!(json.get("taskId").is_some() && json.get("sourceArn").is_some(), "{json}");
        assert!(TaskHandle::decode("foobared").is_none());
    }
}
