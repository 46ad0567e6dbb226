//! The SNS-compatible API, AWS query protocol: `POST /` with a form-encoded
//! body (`Action=Publish&Version=2010-03-31&…`), answered with XML. An SNS
//! topic is a durable fanout exchange of the core and a subscription a
//! binding from it to an SQS queue (`topic.rs`, `subscription.rs` say how);
//! the door keeps no state of its own. This module owns dispatch and the
//! response shapes; `params.rs` decodes requests, `xml.rs` writes replies,
//! `topics.rs`, `subscriptions.rs` and `publish.rs` are the actions,
//! `filter_policy.rs` the matcher, `notification.rs` the JSON envelope,
//! `arn.rs` the ARNs, `error.rs` the error table.

mod access;
mod arn;
mod error;
mod filter_policy;
mod notification;
mod params;
mod publish;
mod subscription;
mod subscriptions;
mod topic;
mod topics;
mod xml;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

pub use error::SnsError;

use crate::sqs::Context;
use crate::{HttpState, Signed};
use params::Params;
use xml::Xml;

const XML_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// A request body larger than this is refused before it is parsed: a batch
/// of ten messages within SNS's 256 KiB batch limit, percent-encoded (up to
/// three bytes per byte), fits with room to spare.
pub const REQUEST_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Actions of SQS's query protocol, which Conveyor does not serve (SQS is
/// served over AWS JSON 1.0): named in the error so the client's owner
/// knows what to change.
const SQS_QUERY_ACTIONS: [&str; 14] = [
    "CreateQueue",
    "DeleteQueue",
    "GetQueueUrl",
    "ListQueues",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "PurgeQueue",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
];

/// SNS metadata changes happen one at a time, so the checks before a change
/// (is this queue already subscribed? does the topic exist?) still hold
/// when it is made. Only CreateTopic, DeleteTopic, Subscribe, Unsubscribe
/// and the Set*Attributes actions take it; publishes never wait for it.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What an action answers: the content of its `<ActionResult>` element, or
/// `None` for actions without output (their response has only metadata).
type Answer = Result<Option<Xml>, SnsError>;

/// Entry point for a form-encoded `POST`: reads the (bounded) body,
/// dispatches on `Action`, writes the XML response or error.
pub(crate) async fn handle(State(state): State<Arc<HttpState>>, headers: HeaderMap, signed: Signed, body: Body) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let mut served_action = None;
    let result = match axum::body::to_bytes(body, REQUEST_BYTES_MAX).await {
        Ok(bytes) => match (signed.authenticate(&state, "sns", &headers, &bytes), Params::parse(&bytes)) {
            (Err(error), _) => Err(SnsError::Unauthenticated(error)),
            (Ok(principal), Ok(params)) => {
                let context = Context {
                    state,
                    host: crate::sqs::host(&headers),
                    account: crate::arn::account_of(&headers),
                    principal,
                };
                match access::check(&context, &params) {
                    Ok(()) => dispatch(&context, &params, &mut served_action).await,
                    Err(error) => Err(error),
                }
            }
            (Ok(_), Err(error)) => Err(error),
        },
        Err(_) => Err(SnsError::RequestTooLarge(format!(
            "The request body is larger than {REQUEST_BYTES_MAX} bytes or could not be read."
        ))),
    };
    let served = served_action.map(|action| crate::Served {
        protocol: "sns",
        api: action.to_owned(),
    });
    let (status, body) = match result {
        Ok((action, answer)) => (StatusCode::OK, success(action, answer, &request_id)),
        Err(error) => {
            let wire = error.wire();
            if wire.status >= 500 {
                tracing::warn!(%error, "SNS request failed");
            }
            let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, failure(&error, &request_id))
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    if let Some(served) = served {
        response.extensions_mut().insert(served);
    }
    response
}

/// Runs the action; returns its name (a constant, used as the response's
/// element names) with its answer. `served` names the action once it is
/// known to be one served, failed or not, for the latency metric.
async fn dispatch(context: &Context, params: &Params, served: &mut Option<&'static str>) -> Result<(&'static str, Option<Xml>), SnsError> {
    let Some(action) = params.get("Action") else {
        return Err(SnsError::InvalidAction(
            "The request has no Action parameter. Conveyor serves SNS over the AWS query protocol and SQS over AWS JSON 1.0 \
             (X-Amz-Target: AmazonSQS.*)."
                .to_owned(),
        ));
    };
    macro_rules! actions {
        ($($name:literal => $call:expr),* $(,)?) => {
            match action {
                $($name => {
                    *served = Some($name);
                    $call.map(|answer| ($name, answer))
                })*
                sqs if SQS_QUERY_ACTIONS.contains(&sqs) => Err(SnsError::InvalidAction(format!(
                    "{sqs} is an SQS action in the AWS query protocol, which Conveyor does not serve: use an SDK that speaks AWS JSON 1.0 \
                     (X-Amz-Target: AmazonSQS.{sqs}), as current AWS SDKs and boto3 do."
                ))),
                other => Err(SnsError::InvalidAction(format!(
                    "The action {other} is not valid for this endpoint or not supported by Conveyor."
                ))),
            }
        };
    }
    actions! {
        "CreateTopic" => topics::create_topic(context, params).await,
        "DeleteTopic" => topics::delete_topic(context, params).await,
        "ListTopics" => topics::list_topics(context, params),
        "GetTopicAttributes" => topics::get_topic_attributes(context, params),
        "SetTopicAttributes" => topics::set_topic_attributes(context, params).await,
        "Subscribe" => subscriptions::subscribe(context, params).await,
        "Unsubscribe" => subscriptions::unsubscribe(context, params).await,
        "ListSubscriptions" => subscriptions::list_subscriptions(context, params),
        "ListSubscriptionsByTopic" => subscriptions::list_subscriptions_by_topic(context, params),
        "GetSubscriptionAttributes" => subscriptions::get_subscription_attributes(context, params),
        "SetSubscriptionAttributes" => subscriptions::set_subscription_attributes(context, params).await,
        "Publish" => publish::publish(context, params).await,
        "PublishBatch" => publish::publish_batch(context, params).await,
    }
}

/// `<ActionResponse xmlns=…><ActionResult>…</ActionResult><ResponseMetadata>…`
fn success(action: &str, answer: Option<Xml>, request_id: &str) -> String {
    let response = format!("{action}Response");
    let mut xml = Xml::new();
    xml.raw(&format!("<{response} xmlns=\"{XML_NAMESPACE}\">"));
    if let Some(result) = answer {
        let result_tag = format!("{action}Result");
        xml.open(&result_tag).append(&result).close(&result_tag);
    }
    xml.open("ResponseMetadata")
        .element("RequestId", request_id)
        .close("ResponseMetadata");
    xml.close(&response);
    xml.into_string()
}

/// `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>…`
fn failure(error: &SnsError, request_id: &str) -> String {
    let mut xml = Xml::new();
    xml.raw(&format!("<ErrorResponse xmlns=\"{XML_NAMESPACE}\">"))
        .open("Error")
        .element("Type", error.fault())
        .element("Code", error.wire().code)
        .element("Message", &error.to_string())
        .close("Error")
        .element("RequestId", request_id)
        .close("ErrorResponse");
    xml.into_string()
}

/// Whether a request without `X-Amz-Target` is for this API: a form body.
pub fn is_query_request(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| {
            content_type
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_and_errors_have_the_query_protocol_shape() {
        let mut result = Xml::new();
        result.element("TopicArn", "arn:x");
        let body = success("CreateTopic", Some(result), "r-1");
        assert_eq!(
            body,
            "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult><TopicArn>arn:x</TopicArn>\
             </CreateTopicResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></CreateTopicResponse>"
        );
        let body = failure(&SnsError::NotFound("Topic does not exist".to_owned()), "r-2");
        assert!(body.contains("<Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error>"));
    }

    #[test]
    fn only_form_bodies_are_query_requests() {
        let mut headers = HeaderMap::new();
        assert!(!is_query_request(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert!(is_query_request(&headers));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
        assert!(!is_query_request(&headers));
    }
}
