//! Arguments in JSON: how the admin API writes AMQP field-table values
//! (binding arguments, and the queue and exchange arguments of a
//! declaration) and reads them back, as RabbitMQ's management API does — a
//! JSON integer is an AMQP `long`, another number a `double`, a string a
//! `longstr`, `true`/`false` a `bool`, `null` a `void`, an array an array
//! and an object a table. Knows the mapping only; what an argument means is
//! the core's.

use conveyor_core::exchange::{FieldTable, HeaderValue};
use serde_json::{Map, Value};

/// A JSON object of arguments as the field table an AMQP client would send.
pub fn table(arguments: &Map<String, Value>) -> FieldTable {
    arguments.iter().map(|(key, value)| (key.clone(), field(value))).collect()
}

/// One JSON value as an AMQP field value.
pub fn field(value: &Value) -> HeaderValue {
    match value {
        Value::Null => HeaderValue::Void,
        Value::Bool(value) => HeaderValue::Bool(*value),
        Value::Number(number) => match (number.as_i64(), number.as_f64()) {
            (Some(integer), _) => HeaderValue::I64(integer),
            // Above i64::MAX: RabbitMQ would refuse it too; a double keeps the value readable.
            (None, Some(float)) => HeaderValue::F64(float),
            (None, None) => HeaderValue::String(number.to_string()),
        },
        Value::String(text) => HeaderValue::String(text.clone()),
        Value::Array(values) => HeaderValue::Array(values.iter().map(field).collect()),
        Value::Object(object) => HeaderValue::Table(table(object)),
    }
}

/// An AMQP field table as a JSON object.
pub fn json_table(table: &FieldTable) -> Value {
    Value::Object(table.iter().map(|(key, value)| (key.clone(), json(value))).collect())
}

/// An AMQP field value as plain JSON.
pub fn json(value: &HeaderValue) -> Value {
    match value {
        HeaderValue::Void => Value::Null,
        HeaderValue::Bool(value) => Value::Bool(*value),
        HeaderValue::I8(value) => (*value).into(),
        HeaderValue::U8(value) => (*value).into(),
        HeaderValue::I16(value) => (*value).into(),
        HeaderValue::U16(value) => (*value).into(),
        HeaderValue::I32(value) => (*value).into(),
        HeaderValue::U32(value) => (*value).into(),
        HeaderValue::I64(value) => (*value).into(),
        HeaderValue::F32(value) => (*value).into(),
        HeaderValue::F64(value) => (*value).into(),
        HeaderValue::Decimal { scale, value } => (f64::from(*value) / 10f64.powi(i32::from(*scale))).into(),
        HeaderValue::Timestamp(value) => (*value).into(),
        HeaderValue::String(value) => value.clone().into(),
        HeaderValue::Bytes(value) => String::from_utf8_lossy(value).into_owned().into(),
        HeaderValue::Array(values) => Value::Array(values.iter().map(json).collect()),
        HeaderValue::Table(table) => json_table(table),
    }
}

/// Arguments RabbitMQ takes as strings only, whatever their text looks like.
const STRING_ARGUMENTS: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-overflow",
    "x-queue-type",
    "x-queue-mode",
    "x-queue-master-locator",
    "x-queue-leader-locator",
    "x-dead-letter-strategy",
    "alternate-exchange",
];

/// A queue argument kept as text (the core's definitions), back as JSON
/// for an export: an integer's text as a JSON integer, `true`/`false` as a
/// boolean, anything else (and the arguments RabbitMQ wants as strings) as
/// a string — what declaring it again needs.
pub fn json_of_text(key: &str, text: &str) -> Value {
    if STRING_ARGUMENTS.contains(&key) {
        return Value::String(text.to_owned());
    }
    if let Ok(integer) = text.parse::<i64>() {
        return integer.into();
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_maps_onto_amqp_types_as_rabbitmqs_management_api_does() {
        let arguments = json!({"x-message-ttl": 5000, "x-backoff": 2.5, "x-dead-letter-exchange": "dlx", "flag": true, "none": null, "list": [1, "a"], "nested": {"k": 1}});
        let table = table(arguments.as_object().expect("object"));
        assert_eq!(table["x-message-ttl"], HeaderValue::I64(5000));
        assert_eq!(table["x-backoff"], HeaderValue::F64(2.5));
        assert_eq!(table["x-dead-letter-exchange"], HeaderValue::String("dlx".into()));
        assert_eq!(table["flag"], HeaderValue::Bool(true));
        assert_eq!(table["none"], HeaderValue::Void);
        assert_eq!(
            table["list"],
            HeaderValue::Array(vec![HeaderValue::I64(1), HeaderValue::String("a".into())])
        );
        assert_eq!(json_table(&table), arguments, "and back");
    }

    #[test]
    fn text_arguments_come_back_with_the_type_a_redeclaration_needs() {
        assert_eq!(json_of_text("x-max-length", "10"), json!(10));
        assert_eq!(json_of_text("x-single-active-consumer", "true"), json!(true));
        assert_eq!(json_of_text("x-dead-letter-exchange", "dlx"), json!("dlx"));
        assert_eq!(json_of_text("x-dead-letter-routing-key", "10"), json!("10"));
        assert_eq!(json_of_text("x-retry-backoff", "2.5"), json!("2.5"));
    }
}
