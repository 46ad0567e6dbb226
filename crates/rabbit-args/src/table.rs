//! A declaration's typed arguments (an AMQP field table, or the admin
//! API's JSON mapped onto one) as the text a definition keeps, with
//! RabbitMQ's type checks, so every way in declares alike.

use std::collections::BTreeMap;

use conveyor_core::exchange::{FieldTable, HeaderValue};

use crate::arguments;

/// Queue arguments that must be integers, as RabbitMQ checks their type
/// (`check_int_arg`; their values are [`crate::policy`]'s to
/// check; as text they lose their type).
const INTEGER_ARGUMENTS: [&str; 8] = [
    arguments::EXPIRES,
    arguments::MESSAGE_TTL,
    arguments::MAX_LENGTH,
    arguments::MAX_LENGTH_BYTES,
    arguments::MAX_PRIORITY,
    arguments::CONSUMER_TIMEOUT,
    arguments::QUORUM_INITIAL_GROUP_SIZE,
    arguments::STREAM_MAX_SEGMENT_SIZE_BYTES,
];

/// Queue arguments that must be strings (RabbitMQ's `check_dlxname_arg`,
/// `check_dlxrk_arg`): a dead-letter exchange given as a number is refused,
/// not read as the exchange of that name.
const STRING_ARGUMENTS: [&str; 2] = [arguments::DEAD_LETTER_EXCHANGE, arguments::DEAD_LETTER_ROUTING_KEY];

/// A declaration's typed arguments as the text its definition keeps (so a
/// redeclaration compares them), or RabbitMQ's refusal of an argument of
/// the wrong type (`queue` and `vhost` as the client names them): "invalid
/// arg 'x-max-length' for queue 'q' in vhost '/': "expected integer, got
/// longstr"" (RabbitMQ 3.10 on), "invalid arg 'x-dead-letter-exchange' for
/// queue 'q' in vhost '/': {unacceptable_type,signedint}".
pub fn arguments_from_table(table: &FieldTable, queue: &str, vhost: &str) -> Result<BTreeMap<String, String>, String> {
    for name in INTEGER_ARGUMENTS.iter().chain(&STRING_ARGUMENTS) {
        let Some(value) = table.get(*name) else { continue };
        let refusal = if INTEGER_ARGUMENTS.contains(name) {
            (!value.is_integer()).then(|| format!("\"expected integer, got {}\"", value.type_name()))
        } else {
            (!matches!(value, HeaderValue::String(_))).then(|| format!("{{unacceptable_type,{}}}", value.type_name()))
        };
        if let Some(refusal) = refusal {
            return Err(format!("invalid arg '{name}' for queue '{queue}' in vhost '{vhost}': {refusal}"));
        }
    }
    Ok(argument_texts(table))
}

/// A declaration's typed arguments as text, unchecked: what a declaration
/// of an existing queue is compared with it by, before (and without) the
/// checks of [`arguments_from_table`], as RabbitMQ compares first.
pub fn argument_texts(table: &FieldTable) -> BTreeMap<String, String> {
    table.iter().map(|(key, value)| (key.clone(), argument_text(value))).collect()
}

/// An argument's value as text: strings as they are, numbers and booleans
/// as written, anything else in a debugging form that no policy reads.
fn argument_text(value: &HeaderValue) -> String {
    match value {
        HeaderValue::String(text) => text.clone(),
        HeaderValue::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        HeaderValue::Bool(value) => value.to_string(),
        HeaderValue::I8(value) => value.to_string(),
        HeaderValue::U8(value) => value.to_string(),
        HeaderValue::I16(value) => value.to_string(),
        HeaderValue::U16(value) => value.to_string(),
        HeaderValue::I32(value) => value.to_string(),
        HeaderValue::U32(value) => value.to_string(),
        HeaderValue::I64(value) => value.to_string(),
        HeaderValue::F32(value) => value.to_string(),
        HeaderValue::F64(value) => value.to_string(),
        HeaderValue::Timestamp(value) => value.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_exchange_or_routing_key_that_is_no_string_is_refused_as_rabbitmq_does() {
        for name in ["x-dead-letter-exchange", "x-dead-letter-routing-key"] {
            let table: FieldTable = [(name.to_owned(), HeaderValue::I32(7))].into_iter().collect();
            assert_eq!(
                arguments_from_table(&table, "q", "/"),
                Err(format!(
                    "invalid arg '{name}' for queue 'q' in vhost '/': {{unacceptable_type,signedint}}"
                ))
            );
            let table: FieldTable = [(name.to_owned(), HeaderValue::String("dlx".into()))].into_iter().collect();
            assert!(arguments_from_table(&table, "q", "/").is_ok());
        }
    }

    #[test]
    fn typed_arguments_become_text_and_a_non_integer_priority_is_refused_as_rabbitmq_does() {
        let table: FieldTable = [
            ("x-message-ttl", HeaderValue::I64(5000)),
            ("x-dead-letter-exchange", HeaderValue::String("dlx".into())),
            ("x-retry-backoff", HeaderValue::F64(2.5)),
            ("x-single-active-consumer", HeaderValue::Bool(true)),
            ("x-max-priority", HeaderValue::U8(9)),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let text = arguments_from_table(&table, "jobs", "/").expect("valid");
        assert_eq!(text["x-message-ttl"], "5000");
        assert_eq!(text["x-dead-letter-exchange"], "dlx");
        assert_eq!(text["x-retry-backoff"], "2.5");
        assert_eq!(text["x-single-active-consumer"], "true");
        assert_eq!(text["x-max-priority"], "9");
        assert!(crate::policy(&text).expect("valid").single_active_consumer);
        let text_priority: FieldTable = [("x-max-priority".to_owned(), HeaderValue::String("9".into()))]
            .into_iter()
            .collect();
        assert_eq!(
            arguments_from_table(&text_priority, "jobs", "staging").expect_err("a string priority"),
            "invalid arg 'x-max-priority' for queue 'jobs' in vhost 'staging': \"expected integer, got longstr\""
        );
    }
}
