//! The SQS-compatible API, AWS JSON 1.0 protocol: `POST /` with
//! `X-Amz-Target: AmazonSQS.<Action>` and a JSON body, answered with JSON.
//! Translates only: an SQS queue is the core queue of that name (the same one
//! AMQP sees); this module owns the wire shapes, `queues.rs` and
//! `messages.rs` the actions (`move_tasks.rs` DLQ redrive), `message.rs` the message ↔ record mapping,
//! `receipt.rs` receipt handles, `error.rs` the error table.

mod access;
mod error;
pub(crate) mod message; // SNS writes its deliveries with this mapping.
mod messages;
mod move_tasks;
mod queue_attributes;
mod queues;
mod receipt;
mod tags;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use conveyor_core::queue::DeclaredQueue;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

pub use error::SqsError;

use conveyor_core::auth::Principal;

use crate::{HttpState, Signed};

pub const REGION: &str = "us-east-1";
/// A request body larger than this is refused before it is parsed (a batch
/// of ten 1 MiB-limited messages is bounded by SQS at 1 MiB in total).
pub const REQUEST_BYTES_MAX: usize = 2 * 1024 * 1024;
const TARGET_PREFIX: &str = "AmazonSQS.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// What the actions of SQS and of SNS need from a signed request besides
/// its body.
#[derive(Debug)]
pub(crate) struct Context {
    pub state: Arc<HttpState>,
    /// `host[:port]` the client addressed, for the queue URLs we hand out
    /// and the URLs in SNS notifications.
    pub host: String,
    /// The account the request speaks for, in the URLs and ARNs we hand out.
    pub account: String,
    /// Who signed the request.
    pub principal: Principal,
}

impl Context {
    pub fn queue_url(&self, name: &str) -> String {
        format!("http://{}/{}/{name}", self.host, self.account)
    }

    pub fn queue_arn(&self, name: &str) -> String {
        queue_arn(&self.account, name)
    }

    /// The queue a `QueueUrl` names: its last path segment, whatever the host.
    pub fn queue(&self, queue_url: Option<&str>) -> Result<Arc<DeclaredQueue>, SqsError> {
        let url = queue_url
            .filter(|url| !url.is_empty())
            .ok_or_else(|| SqsError::MissingParameter("The request must contain the parameter QueueUrl.".to_owned()))?;
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        self.state
            .broker
            .queue(name)
            .ok_or_else(|| SqsError::QueueDoesNotExist("The specified queue does not exist.".to_owned()))
    }
}

pub fn queue_arn(account: &str, name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{account}:{name}")
}

/// Entry point for `POST /`: reads the (bounded) body, dispatches on the target.
pub(crate) async fn handle(State(state): State<Arc<HttpState>>, headers: HeaderMap, signed: Signed, body: Body) -> Response {
    let request_id = Uuid::new_v4();
    let result = match axum::body::to_bytes(body, REQUEST_BYTES_MAX).await {
        Ok(bytes) => match signed.authenticate(&state, "sqs", &headers, &bytes) {
            Ok(principal) => {
                let context = Context {
                    state,
                    host: host(&headers),
                    account: crate::arn::account_of(&headers),
                    principal,
                };
                dispatch(&context, &headers, &bytes).await
            }
            Err(error) => Err(SqsError::Unauthenticated(error)),
        },
        Err(_) => Err(SqsError::RequestTooLarge(format!(
            "The request body is larger than {REQUEST_BYTES_MAX} bytes or could not be read."
        ))),
    };
    // Named only when the action is one served: the header is client input.
    let served = match &result {
        Err(SqsError::UnknownOperation(_) | SqsError::RequestTooLarge(_) | SqsError::Unauthenticated(_)) => None,
        _ => headers
            .get("x-amz-target")
            .and_then(|value| value.to_str().ok())
            .and_then(|target| target.strip_prefix(TARGET_PREFIX))
            .map(|action| crate::Served {
                protocol: "sqs",
                api: action.to_owned(),
            }),
    };
    let (status, body, query_error) = match result {
        Ok(value) => (StatusCode::OK, value, None),
        Err(error) => {
            let wire = error.wire();
            if wire.status >= 500 {
                tracing::warn!(%error, "SQS request failed");
            }
            let body = json!({ "__type": wire.type_name, "message": error.to_string() });
            let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, body, Some(wire.query_error))
        }
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        headers.insert("x-amzn-requestid", value);
    }
    if let Some(query_error) = query_error {
        headers.insert("x-amzn-query-error", HeaderValue::from_static(query_error));
    }
    if let Some(served) = served {
        response.extensions_mut().insert(served);
    }
    response
}

async fn dispatch(context: &Context, headers: &HeaderMap, body: &[u8]) -> Result<Value, SqsError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| SqsError::UnknownOperation("Missing X-Amz-Target; only the AWS JSON 1.0 protocol is served.".to_owned()))?;
    let action = target
        .strip_prefix(TARGET_PREFIX)
        .ok_or_else(|| SqsError::UnknownOperation(format!("Unknown target {target:?}.")))?;
    access::check(context, action, body)?;
    match action {
        "CreateQueue" => queues::create_queue(context, parse(body)?).await,
        "GetQueueUrl" => queues::get_queue_url(context, parse(body)?),
        "ListQueues" => queues::list_queues(context, parse(body)?),
        "DeleteQueue" => queues::delete_queue(context, parse(body)?).await,
        "GetQueueAttributes" => queues::get_queue_attributes(context, parse(body)?),
        "SetQueueAttributes" => queues::set_queue_attributes(context, parse(body)?).await,
        "PurgeQueue" => queues::purge_queue(context, parse(body)?).await,
        "ListDeadLetterSourceQueues" => queues::list_dead_letter_source_queues(context, parse(body)?),
        "TagQueue" => queues::tag_queue(context, parse(body)?).await,
        "UntagQueue" => queues::untag_queue(context, parse(body)?).await,
        "ListQueueTags" => queues::list_queue_tags(context, parse(body)?),
        "SendMessage" => messages::send_message(context, parse(body)?).await,
        "SendMessageBatch" => messages::send_message_batch(context, parse(body)?).await,
        "ReceiveMessage" => messages::receive_message(context, parse(body)?).await,
        "DeleteMessage" => messages::delete_message(context, parse(body)?).await,
        "DeleteMessageBatch" => messages::delete_message_batch(context, parse(body)?).await,
        "ChangeMessageVisibility" => messages::change_message_visibility(context, parse(body)?),
        "ChangeMessageVisibilityBatch" => messages::change_message_visibility_batch(context, parse(body)?),
        "StartMessageMoveTask" => move_tasks::start_message_move_task(context, parse(body)?),
        "ListMessageMoveTasks" => move_tasks::list_message_move_tasks(context, parse(body)?),
        "CancelMessageMoveTask" => move_tasks::cancel_message_move_task(context, parse(body)?),
        other => Err(SqsError::UnknownOperation(format!(
            "The action {other} is not supported by Conveyor yet."
        ))),
    }
}

/// The action's input; an empty body is an empty object.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, SqsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| SqsError::Serialization(format!("The request body is not valid: {error}")))
}

/// The Host header if it looks like `host[:port]`; the URLs we build from it
/// must not carry anything else.
pub(crate) fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host.len() <= 255
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_anything_but_a_name_and_port_fall_back() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(host(&headers), "127.0.0.1:8080");
        headers.insert(header::HOST, HeaderValue::from_static("evil/path?x"));
        assert_eq!(host(&headers), "localhost");
    }

    #[test]
    fn malformed_json_is_a_serialization_error() {
        let result: Result<Value, SqsError> = parse(b"{not json");
        assert!(matches!(result, Err(SqsError::Serialization(_))));
        let empty: Value = parse(b"").expect("empty body is {}");
        assert_eq!(empty, json!({}));
    }
}
