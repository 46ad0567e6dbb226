//! A storm of random and mutated SQS requests through the HTTP router, in
//! process: unknown and mangled targets, valid requests with fields removed,
//! replaced by random JSON (oversized strings, invalid names, wrong types) or
//! added, bodies with random bytes inserted or deleted. Every answer must be
//! an AWS JSON 1.0 success or error an SDK can parse, never a 5xx, never a
//! hang; and a message sent before the storm, to a queue the storm never
//! names, must still be receivable after it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use conveyor_core::{Broker, BrokerConfig};
use conveyor_http::{HttpState, router};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// No request may take longer: long polls are cut to 0 s (see [`bounded_wait`]).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const STORM_QUEUE: &str = "http://localhost/000000000000/storm";
const FIFO_QUEUE: &str = "http://localhost/000000000000/storm.fifo";
/// The queue the storm must leave alone; no generated request contains its name.
const SENTINEL: &str = "sentinel";
const SENTINEL_QUEUE: &str = "http://localhost/000000000000/sentinel";

const ACTIONS: &[&str] = &[
    "CreateQueue",
    "GetQueueUrl",
    "ListQueues",
    "DeleteQueue",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "PurgeQueue",
    "ListDeadLetterSourceQueues",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "TagQueue",
    "UntagQueue",
    "ListQueueTags",
    "StartMessageMoveTask",
    "ListMessageMoveTasks",
    "CancelMessageMoveTask",
];

/// A broker in a temporary directory behind the router, and a runtime to drive it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

/// What the router answered.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    query_error: bool,
    body: Vec<u8>,
}

impl Harness {
    fn start() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("open broker"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Harness {
            runtime,
            router: router(HttpState::new(Arc::clone(&broker))),
            broker,
            _dir: dir,
        }
    }

    fn send(&self, path: &str, target: Option<&str>, body: Vec<u8>) -> Result<Answer, String> {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, CONTENT_TYPE);
        if let Some(target) = target {
            request = request.header("x-amz-target", target);
        }
        let request = request.body(Body::from(body)).map_err(|error| format!("request: {error}"))?;
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let response = tokio::time::timeout(REQUEST_TIMEOUT, router.oneshot(request))
                .await
                .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
                .map_err(|error| format!("router: {error}"))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let query_error = response.headers().contains_key("x-amzn-query-error");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .map_err(|error| format!("body: {error}"))?;
            Ok(Answer {
                status,
                content_type,
                query_error,
                body: body.to_vec(),
            })
        })
    }

    /// A call that must succeed.
    fn call(&self, action: &str, input: Value) -> Value {
        let answer = self
            .send("/", Some(&format!("AmazonSQS.{action}")), input.to_string().into_bytes())
            .unwrap_or_else(|error| panic!("{action}: {error}"));
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, StatusCode::OK, "{action}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("{action}: {error}: {body}"))
    }
}

/// What every answer must look like: a JSON object in AWS JSON 1.0, an
/// error with its `__type`, message and query code, and no 5xx.
fn check_answer(answer: &Answer) -> Result<(), String> {
    let body = String::from_utf8_lossy(&answer.body);
    if answer.status.is_server_error() {
        return Err(format!("a {} answer: {body}", answer.status));
    }
    if answer.content_type.as_deref() != Some(CONTENT_TYPE) {
        return Err(format!("content type {:?}: {body}", answer.content_type));
    }
    let value: Value = serde_json::from_slice(&answer.body).map_err(|error| format!("not JSON ({error}): {body}"))?;
    let object = value.as_object().ok_or_else(|| format!("not a JSON object: {body}"))?;
    if answer.status == StatusCode::OK {
        if object.contains_key("__type") {
            return Err(format!("a success with an error type: {body}"));
        }
        return Ok(());
    }
    let type_name = object.get("__type").and_then(Value::as_str).unwrap_or_default();
    let aws_type = ["com.amazonaws.sqs#", "com.amazon.coral.service#"]
        .iter()
        .any(|namespace| type_name.strip_prefix(namespace).is_some_and(|name| !name.is_empty()));
    if !aws_type || !object.get("message").is_some_and(Value::is_string) {
        return Err(format!("an error {} without an SQS __type and message: {body}", answer.status));
    }
    if !answer.query_error {
        return Err(format!("an error without x-amzn-query-error: {body}"));
    }
    Ok(())
}

/// Valid requests, one per action, against the storm's queues.
fn templates(receipt_handle: &str) -> Vec<(&'static str, Value)> {
    let attribute = json!({ "a": { "DataType": "String", "StringValue": "v" }, "n": { "DataType": "Number", "StringValue": "1.5" } });
    vec![
        (
            "CreateQueue",
            json!({ "QueueName": "storm-new", "Attributes": { "VisibilityTimeout": "30", "DelaySeconds": "0", "MaximumMessageSize": "1024" }, "tags": { "team": "x" } }),
        ),
        (
            "CreateQueue",
            json!({ "QueueName": "storm-new.fifo", "Attributes": { "FifoQueue": "true", "ContentBasedDeduplication": "true" } }),
        ),
        ("GetQueueUrl", json!({ "QueueName": "storm" })),
        (
            "ListQueues",
            json!({ "QueueNamePrefix": "st", "MaxResults": 5, "NextToken": "storm" }),
        ),
        ("DeleteQueue", json!({ "QueueUrl": "http://localhost/000000000000/storm-new" })),
        ("GetQueueAttributes", json!({ "QueueUrl": STORM_QUEUE, "AttributeNames": ["All"] })),
        (
            "SetQueueAttributes",
            json!({ "QueueUrl": STORM_QUEUE, "Attributes": { "VisibilityTimeout": "20" } }),
        ),
        ("PurgeQueue", json!({ "QueueUrl": STORM_QUEUE })),
        ("ListDeadLetterSourceQueues", json!({ "QueueUrl": STORM_QUEUE, "MaxResults": 2 })),
        (
            "SendMessage",
            json!({ "QueueUrl": STORM_QUEUE, "MessageBody": "hello", "DelaySeconds": 0, "MessageAttributes": attribute }),
        ),
        (
            "SendMessage",
            json!({ "QueueUrl": FIFO_QUEUE, "MessageBody": "hello", "MessageGroupId": "g", "MessageDeduplicationId": "d" }),
        ),
        (
            "SendMessageBatch",
            json!({ "QueueUrl": STORM_QUEUE, "Entries": [
                { "Id": "a", "MessageBody": "one" },
                { "Id": "b", "MessageBody": "two", "DelaySeconds": 1, "MessageAttributes": attribute },
            ] }),
        ),
        (
            "ReceiveMessage",
            json!({ "QueueUrl": STORM_QUEUE, "MaxNumberOfMessages": 10, "VisibilityTimeout": 0, "WaitTimeSeconds": 0,
                    "AttributeNames": ["All"], "MessageSystemAttributeNames": ["SentTimestamp"], "MessageAttributeNames": ["All"] }),
        ),
        (
            "ReceiveMessage",
            json!({ "QueueUrl": FIFO_QUEUE, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 0 }),
        ),
        ("DeleteMessage", json!({ "QueueUrl": STORM_QUEUE, "ReceiptHandle": receipt_handle })),
        (
            "DeleteMessageBatch",
            json!({ "QueueUrl": STORM_QUEUE, "Entries": [{ "Id": "a", "ReceiptHandle": receipt_handle }] }),
        ),
        (
            "ChangeMessageVisibility",
            json!({ "QueueUrl": STORM_QUEUE, "ReceiptHandle": receipt_handle, "VisibilityTimeout": 5 }),
        ),
        (
            "ChangeMessageVisibilityBatch",
            json!({ "QueueUrl": STORM_QUEUE, "Entries": [{ "Id": "a", "ReceiptHandle": receipt_handle, "VisibilityTimeout": 0 }] }),
        ),
        ("TagQueue", json!({ "QueueUrl": STORM_QUEUE, "Tags": { "team": "x" } })),
        ("UntagQueue", json!({ "QueueUrl": STORM_QUEUE, "TagKeys": ["team"] })),
        ("ListQueueTags", json!({ "QueueUrl": STORM_QUEUE })),
        (
            "StartMessageMoveTask",
            json!({ "SourceArn": "arn:aws:sqs:us-east-1:000000000000:storm", "MaxNumberOfMessagesPerSecond": 10 }),
        ),
        (
            "ListMessageMoveTasks",
            json!({ "SourceArn": "arn:aws:sqs:us-east-1:000000000000:storm" }),
        ),
    ]
}

/// Random JSON: every type, oversized strings, names SQS refuses, characters
/// a message body may not hold.
fn random_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..50).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)),
        "\\PC{0,24}".prop_map(Value::from),
        "[a-zA-Z0-9_.-]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "",
            " ",
            "bad name!",
            "a/b",
            "x.fifo",
            "All",
            "true",
            "-1",
            "1e9",
            "\u{0}",
            "\u{fffe}"
        ])
        .prop_map(Value::from),
        (
            prop::sample::select(vec![81usize, 129, 257, 262_145, 1_048_577]),
            prop::char::range('a', 'z')
        )
            .prop_map(|(length, c)| Value::from(c.to_string().repeat(length))),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[A-Za-z]{1,12}", inner, 0..4).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// One change to a request's JSON: `selector` picks the field.
#[derive(Debug, Clone)]
enum FieldChange {
    Remove(usize),
    Replace(usize, Value),
    Add(String, Value),
}

fn field_change() -> impl Strategy<Value = FieldChange> {
    let names = prop_oneof![
        "[A-Za-z]{1,20}",
        prop::sample::select(vec![
            "QueueUrl",
            "QueueName",
            "MessageBody",
            "Entries",
            "Attributes",
            "MaxNumberOfMessages",
            "VisibilityTimeout",
            "DelaySeconds",
            "MessageGroupId",
            "MessageDeduplicationId",
            "ReceiptHandle",
            "MessageAttributes",
        ])
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        any::<usize>().prop_map(FieldChange::Remove),
        (any::<usize>(), random_value()).prop_map(|(selector, value)| FieldChange::Replace(selector, value)),
        (names, random_value()).prop_map(|(name, value)| FieldChange::Add(name, value)),
    ]
}

/// Every object field and array element in `value`, depth first, as paths.
fn paths(value: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(PathStep::Key(key.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(PathStep::Index(index));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// The parent of the node at `path` and the last step to it.
fn parent_mut<'a>(value: &'a mut Value, path: &[PathStep]) -> Option<(&'a mut Value, PathStep)> {
    let (last, parents) = path.split_last()?;
    let mut node = value;
    for step in parents {
        node = match step {
            PathStep::Key(key) => node.get_mut(key.as_str())?,
            PathStep::Index(index) => node.get_mut(*index)?,
        };
    }
    Some((node, last.clone()))
}

fn apply(value: &mut Value, change: &FieldChange) {
    let mut all = Vec::new();
    paths(value, &mut Vec::new(), &mut all);
    match change {
        FieldChange::Add(name, new) => {
            if let Value::Object(map) = value {
                map.insert(name.clone(), new.clone());
            }
        }
        FieldChange::Remove(selector) | FieldChange::Replace(selector, _) if !all.is_empty() => {
            let path = &all[selector % all.len()];
            let Some((parent, step)) = parent_mut(value, path) else { return };
            match (change, step, parent) {
                (FieldChange::Remove(_), PathStep::Key(key), Value::Object(map)) => {
                    map.remove(&key);
                }
                (FieldChange::Remove(_), PathStep::Index(index), Value::Array(items)) if index < items.len() => {
                    items.remove(index);
                }
                (FieldChange::Replace(_, new), PathStep::Key(key), Value::Object(map)) => {
                    map.insert(key, new.clone());
                }
                (FieldChange::Replace(_, new), PathStep::Index(index), Value::Array(items)) if index < items.len() => {
                    items[index] = new.clone();
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Long polls end at once: a mutated `WaitTimeSeconds` of up to 20 s (or a
/// queue whose default a mutated CreateQueue raised) would otherwise make
/// the storm take minutes. Long polling has its own interop tests.
fn bounded_wait(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            let waits = match map.get("WaitTimeSeconds") {
                None => true,
                Some(wait) => wait.as_f64().is_some_and(|seconds| seconds > 0.0),
            };
            if waits {
                map.insert("WaitTimeSeconds".to_owned(), Value::from(0));
            }
            Value::Object(map).to_string().into_bytes()
        }
        _ => body.to_vec(),
    }
}

/// One storm request: the path, the target header and the body.
#[derive(Debug, Clone)]
struct StormRequest {
    path: &'static str,
    target: Option<String>,
    body: Vec<u8>,
}

fn storm_request(templates: Vec<(&'static str, Value)>) -> impl Strategy<Value = StormRequest> {
    let count = templates.len();
    let target = prop_oneof![
        6 => Just(None::<String>),
        2 => prop::sample::select(ACTIONS).prop_map(|action| Some(format!("AmazonSQS.{action}"))),
        1 => "\\PC{0,30}".prop_map(Some),
        1 => "AmazonSQS\\.[A-Za-z]{0,20}".prop_map(Some),
        1 => Just(Some("amazonsqs.sendmessage".to_owned())),
        1 => Just(Some(String::new())),
    ];
    let byte_edits = prop_oneof![
        3 => Just(Vec::new()),
        1 => prop::collection::vec((any::<usize>(), prop::option::of(any::<u8>())), 1..6),
    ];
    (
        0..count,
        target,
        prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(field_change(), 1..4)],
        byte_edits,
        prop::sample::select(vec!["/", "/000000000000/storm", "/x/y/z"]),
        0..20u8,
    )
        .prop_map(move |(index, target, changes, edits, path, missing_target)| {
            let (action, template) = &templates[index];
            let mut value = template.clone();
            for change in &changes {
                apply(&mut value, change);
            }
            let mut body = bounded_wait(value.to_string().as_bytes());
            for (position, byte) in edits {
                match byte {
                    Some(byte) => body.insert(position % (body.len() + 1), byte),
                    None if !body.is_empty() => {
                        let at = position % body.len();
                        body.remove(at);
                    }
                    None => {}
                }
            }
            let body = bounded_wait(&body);
            // Mostly the template's own action; sometimes another, a mangled one, or none at all.
            let target = match (missing_target, target) {
                (0, _) => None,
                (_, Some(target)) => Some(target),
                (_, None) => Some(format!("AmazonSQS.{action}")),
            };
            StormRequest { path, target, body }
        })
}

fn mentions_sentinel(request: &StormRequest) -> bool {
    String::from_utf8_lossy(&request.body).contains(SENTINEL) || request.target.as_deref().is_some_and(|target| target.contains(SENTINEL))
}

#[test]
fn random_mutated_and_oversized_sqs_requests_get_parseable_aws_errors_never_a_5xx_and_lose_no_message() {
    let harness = Harness::start();
    harness.call("CreateQueue", json!({ "QueueName": "storm" }));
    harness.call(
        "CreateQueue",
        json!({ "QueueName": "storm.fifo", "Attributes": { "FifoQueue": "true", "ContentBasedDeduplication": "true" } }),
    );
    harness.call("CreateQueue", json!({ "QueueName": SENTINEL }));
    let sent = harness.call(
        "SendMessage",
        json!({ "QueueUrl": SENTINEL_QUEUE, "MessageBody": "survives the storm" }),
    );
    // A real receipt handle, for the storm to mutate.
    harness.call("SendMessage", json!({ "QueueUrl": STORM_QUEUE, "MessageBody": "to be received" }));
    let received = harness.call(
        "ReceiveMessage",
        json!({ "QueueUrl": STORM_QUEUE, "WaitTimeSeconds": 0, "VisibilityTimeout": 600 }),
    );
    let receipt_handle = received["Messages"][0]["ReceiptHandle"]
        .as_str()
        .expect("a receipt handle")
        .to_owned();

    // Fixed cases first: each must get its documented error.
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (None, b"{}".to_vec(), 400, "UnknownOperation"),
        (Some("AmazonSQS.Nope"), b"{}".to_vec(), 400, "UnknownOperation"),
        (Some("AmazonSQS.SendMessage"), b"{not json".to_vec(), 400, "SerializationException"),
        (
            Some("AmazonSQS.SendMessage"),
            br#"{"QueueUrl": 5}"#.to_vec(),
            400,
            "SerializationException",
        ),
        (
            Some("AmazonSQS.CreateQueue"),
            br#"{"QueueName": "bad name!"}"#.to_vec(),
            400,
            "InvalidParameterValue",
        ),
        (
            Some("AmazonSQS.SendMessage"),
            format!(r#"{{"QueueUrl": "{STORM_QUEUE}", "MessageBody": "{}"}}"#, "x".repeat(1_048_577)).into_bytes(),
            400,
            "InvalidParameterValue",
        ),
        (Some("AmazonSQS.ListQueues"), vec![b' '; 3 * 1024 * 1024], 413, "RequestTooLarge"),
        (
            Some("AmazonSQS.GetQueueUrl"),
            br#"{"QueueName": "no-such-queue"}"#.to_vec(),
            400,
            "QueueDoesNotExist",
        ),
    ];
    for (target, body, status, type_suffix) in cases {
        let answer = harness.send("/", target, body).expect("an answer");
        check_answer(&answer).expect("a parseable answer");
        let text = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status.as_u16(), status, "{target:?}: {text}");
        assert!(text.contains(type_suffix), "{target:?}: expected {type_suffix}: {text}");
    }

    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    let successes = std::cell::Cell::new(0u32);
    let result = runner.run(&storm_request(templates(&receipt_handle)), |request| {
        if mentions_sentinel(&request) {
            return Ok(());
        }
        let answer = harness
            .send(request.path, request.target.as_deref(), request.body.clone())
            .map_err(TestCaseError::fail)?;
        if answer.status == StatusCode::OK {
            successes.set(successes.get() + 1);
        }
        check_answer(&answer).map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    // A storm of nothing but errors would not exercise the actions themselves.
    assert!(successes.get() >= 50, "only {} of the storm's requests succeeded", successes.get());

    // The storm touched every other queue; the sentinel's message is intact.
    let after = harness.call(
        "ReceiveMessage",
        json!({ "QueueUrl": SENTINEL_QUEUE, "WaitTimeSeconds": 0, "MaxNumberOfMessages": 10 }),
    );
    let messages = after["Messages"].as_array().expect("the sentinel message");
    assert_eq!(messages.len(), 1, "{after}");
    assert_eq!(messages[0]["Body"], "survives the storm");
    assert_eq!(messages[0]["MessageId"], sent["MessageId"]);
    assert_eq!(messages[0]["MD5OfBody"], sent["MD5OfMessageBody"]);
    let mut delete = Map::new();
    delete.insert("QueueUrl".to_owned(), SENTINEL_QUEUE.into());
    delete.insert("ReceiptHandle".to_owned(), messages[0]["ReceiptHandle"].clone());
    harness.call("DeleteMessage", Value::Object(delete));
    harness.broker.close().expect("close the broker");
}
