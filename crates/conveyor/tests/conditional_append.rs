//! Conditional append (Conveyor's optimistic concurrency for event sourcing)
//! through real clients against `conveyor serve`: librdkafka and kafkajs
//! with the `conveyor.expected-*` headers, the REST API's `expected_*`
//! fields, a race of two writers on one aggregate, and the key index across
//! SIGTERM and SIGKILL restarts.

mod support;

use support::{Server, run_script};

#[test]
fn librdkafka_conditional_appends_pass_at_the_expected_offsets_and_a_mismatch_is_invalid_record_naming_both() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/conditional_append_confluent.py", &["basic", "conditional-basic"]);
}

#[test]
fn kafkajs_conditional_appends_pass_and_a_mismatch_is_invalid_record_with_nothing_written() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/conditional_append_kafkajs.js", &[]);
}

#[test]
fn two_writers_race_on_one_aggregate_exactly_one_wins_and_the_key_index_survives_sigterm_and_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = format!("127.0.0.1:{}", support::free_port());
    let args = ["--kafka-addr", kafka.as_str()];
    let mut server = Server::start_with(dir.path(), &args, &[]);
    run_script(&server, "kafka/conditional_append_confluent.py", &["race", "aggregates"]);
    assert!(server.terminate().0.success(), "SIGTERM exits 0");
    let mut server = Server::start_with(dir.path(), &args, &[]);
    run_script(&server, "kafka/conditional_append_confluent.py", &["check", "aggregates"]);
    server.kill();
    let server = Server::start_with(dir.path(), &args, &[]);
    run_script(&server, "kafka/conditional_append_confluent.py", &["check", "aggregates"]);
}

/// POSTs `json` to the admin API; the status and the parsed answer.
fn post(server: &Server, path: &str, json: &str) -> (u16, serde_json::Value) {
    let (status, body) = support::http_send(server.http_addr, "POST", path, json);
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn the_rest_api_appends_at_the_expected_offsets_and_answers_409_with_the_actual_one() {
    let (_dir, server) = Server::start_in_tempdir();
    let (status, _) = post(&server, "/api/v1/topics", r#"{"name":"carts","partitions":1}"#);
    assert_eq!(status, 201);
    let path = "/api/v1/topics/carts/messages";
    let (status, answer) = post(&server, path, r#"{"key":"cart-1","value":"created","expected_key_offset":-1}"#);
    assert_eq!((status, answer["offset"].as_u64()), (201, Some(0)), "{answer}");
    let (status, answer) = post(&server, path, r#"{"key":"cart-1","value":"again","expected_key_offset":-1}"#);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "conflict");
    assert_eq!(
        (
            answer["error"]["expected_offset"].as_i64(),
            answer["error"]["actual_offset"].as_i64()
        ),
        (Some(-1), Some(0))
    );
    let (status, answer) = post(&server, path, r#"{"key":"cart-2","value":"created","expected_offset":7}"#);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        (
            answer["error"]["expected_offset"].as_i64(),
            answer["error"]["actual_offset"].as_i64()
        ),
        (Some(7), Some(1))
    );
    let (status, answer) = post(
        &server,
        path,
        r#"{"key":"cart-1","value":"paid","expected_key_offset":0,"expected_offset":1}"#,
    );
    assert_eq!((status, answer["offset"].as_u64()), (201, Some(1)), "{answer}");
    let (status, answer) = post(&server, path, r#"{"value":"keyless","expected_key_offset":-1}"#);
    assert_eq!(status, 400, "a key condition needs a key: {answer}");
    let (status, answer) = post(
        &server,
        "/api/v1/topics/carts/messages/batch",
        r#"{"messages":[{"key":"a","expected_offset":2}]}"#,
    );
    assert_eq!(status, 400, "a batch publish takes no conditions: {answer}");
    let (status, answer) = server.http_get("/api/v1/topics/carts/partitions/0/messages?offset=0");
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(
        answer["messages"].as_array().map(Vec::len),
        Some(2),
        "refused publishes were stored: {answer}"
    );
}
