//! How an AMQP message becomes a record and back — the one place that
//! mapping lives:
//!
//! | AMQP | record |
//! |---|---|
//! | body | value |
//! | routing key | key |
//! | exchange published to | header `amqp.exchange` |
//! | content properties (content type, headers, delivery mode, …) | header `amqp.properties`: the properties as encoded on the wire |
//! | `expiration` property (per-message TTL) | also header `conveyor.ttl-ms`, which the core reads |
//! | `priority` property, when above 0 | also header `conveyor.priority`, which the core reads (a queue with `x-max-priority` orders by it) |
//! | `content_type` property | also header `conveyor.content-type` |
//! | `headers` property | also header `conveyor.headers` (the core's CBOR field table), which a headers exchange matches when the core dead-letters the message |
//! | (dead-lettered by the core: headers `conveyor.death-*`) | `x-death` and `x-first-death-*` headers on delivery (the queue by its name in its vhost) |
//!
//! Also here: AMQP field tables as the core's exchanges see them.

use amq_protocol::frame::WriteContext;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::protocol::basic::{gen_properties, parse_properties};
use amq_protocol::types::ShortString;
use amq_protocol::types::{AMQPValue, FieldTable as AmqpTable};
use conveyor_core::envelope::Envelope;
use conveyor_core::exchange::{FieldTable, HeaderValue};
use conveyor_core::queue::deaths::{self, Death};
use conveyor_core::vhost;
use conveyor_log::record::Record;

use crate::nesting;

pub const EXCHANGE_HEADER: &str = "amqp.exchange";
pub const PROPERTIES_HEADER: &str = "amqp.properties";

/// A message as published.
#[derive(Debug, Clone)]
pub struct Message {
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

impl Message {
    pub fn into_record(self) -> Record {
        let properties_bytes = gen_properties(&self.properties)(WriteContext::from(Vec::new()))
            .map(|context| context.write)
            .unwrap_or_default();
        let properties = &self.properties;
        // What the core reads, in its own envelope: the per-message TTL,
        // the priority, the content type and the headers a headers
        // exchange matches when the core dead-letters the message.
        let envelope = Envelope {
            priority: properties.priority().unwrap_or(0),
            ttl_ms: properties
                .expiration()
                .as_ref()
                .and_then(|ttl| ttl.as_str().trim().parse::<u64>().ok()),
            content_type: properties.content_type().as_ref().map(|content_type| content_type.to_string()),
            headers: properties.headers().as_ref().map(header_table).unwrap_or_default(),
            ..Envelope::default()
        };
        let record = Record::new(Some(self.routing_key.into_bytes()), Some(self.body))
            .with_header(EXCHANGE_HEADER, Some(self.exchange.into_bytes()))
            .with_header(PROPERTIES_HEADER, Some(properties_bytes));
        envelope.stamp(record)
    }

    /// The message a record holds. Records written by other front doors (a
    /// Kafka producer) have no AMQP headers: they get empty properties.
    pub fn from_record(record: Record) -> Message {
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|header| header.key == name)
                .and_then(|header| header.value.clone())
        };
        let exchange = header(EXCHANGE_HEADER)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let mut properties = header(PROPERTIES_HEADER)
            // Any front door may have written this header (a Kafka producer
            // too): hostile nesting is refused before the codec recurses.
            .filter(|bytes| nesting::check_properties(bytes).is_ok())
            .and_then(|bytes| parse_properties(bytes.as_slice()).ok().map(|(_, properties)| properties))
            .unwrap_or_default();
        for death in deaths::deaths(&record) {
            properties = with_death(
                properties,
                &death,
                // The core names the queue broker-wide; the client knows it by its name in the vhost.
                vhost::local_name(&death.queue),
                &exchange,
            );
        }
        Message {
            exchange,
            routing_key: record.key.map(|key| String::from_utf8_lossy(&key).into_owned()).unwrap_or_default(),
            properties,
            body: record.value.unwrap_or_default(),
        }
    }
}

/// Adds RabbitMQ's dead-lettering headers: an `x-death` entry (incremented
/// when the message died the same way in the same queue before) and the
/// `x-first-death-*` headers.
fn with_death(properties: BasicProperties, death: &Death, queue: &str, exchange: &str) -> BasicProperties {
    let (reason, routing_key, time_ms) = (death.reason.as_str(), death.routing_key.as_str(), death.time_ms);
    let mut table = properties.headers().clone().unwrap_or_default();
    let mut deaths: Vec<AMQPValue> = match table.inner().get("x-death") {
        Some(AMQPValue::FieldArray(array)) => array.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let same = |entry: &AMQPValue| match entry {
        AMQPValue::FieldTable(entry) => {
            matches!(entry.inner().get("queue"), Some(AMQPValue::LongString(q)) if q.as_bytes() == queue.as_bytes())
                && matches!(entry.inner().get("reason"), Some(AMQPValue::LongString(r)) if r.as_bytes() == reason.as_bytes())
        }
        _ => false,
    };
    let count = match deaths.iter().position(same) {
        Some(index) => {
            let previous = match &deaths[index] {
                AMQPValue::FieldTable(entry) => match entry.inner().get("count") {
                    Some(AMQPValue::LongLongInt(count)) => *count,
                    _ => 0,
                },
                _ => 0,
            };
            deaths.remove(index);
            previous + death.count as i64
        }
        None => death.count as i64,
    };
    let mut entry = AmqpTable::default();
    entry.insert(ShortString::from("count"), AMQPValue::LongLongInt(count));
    entry.insert(ShortString::from("reason"), AMQPValue::LongString(reason.into()));
    entry.insert(ShortString::from("queue"), AMQPValue::LongString(queue.into()));
    entry.insert(ShortString::from("time"), AMQPValue::Timestamp((time_ms / 1000).max(0) as u64));
    entry.insert(ShortString::from("exchange"), AMQPValue::LongString(exchange.into()));
    entry.insert(
        ShortString::from("routing-keys"),
        AMQPValue::FieldArray(vec![AMQPValue::LongString(routing_key.into())].into()),
    );
    deaths.insert(0, AMQPValue::FieldTable(entry));
    if !table.contains_key("x-first-death-reason") {
        table.insert(ShortString::from("x-first-death-reason"), AMQPValue::LongString(reason.into()));
        table.insert(ShortString::from("x-first-death-queue"), AMQPValue::LongString(queue.into()));
        table.insert(ShortString::from("x-first-death-exchange"), AMQPValue::LongString(exchange.into()));
    }
    table.insert(ShortString::from("x-death"), AMQPValue::FieldArray(deaths.into()));
    properties.with_headers(table)
}

/// A field table as the core's exchanges see it (headers routing, binding arguments).
pub fn header_table(table: &AmqpTable) -> FieldTable {
    table
        .inner()
        .iter()
        .map(|(key, value)| (key.to_string(), header_value(value)))
        .collect()
}

fn header_value(value: &AMQPValue) -> HeaderValue {
    match value {
        AMQPValue::Boolean(value) => HeaderValue::Bool(*value),
        AMQPValue::ShortShortInt(value) => HeaderValue::I8(*value),
        AMQPValue::ShortShortUInt(value) => HeaderValue::U8(*value),
        AMQPValue::ShortInt(value) => HeaderValue::I16(*value),
        AMQPValue::ShortUInt(value) => HeaderValue::U16(*value),
        AMQPValue::LongInt(value) => HeaderValue::I32(*value),
        AMQPValue::LongUInt(value) => HeaderValue::U32(*value),
        AMQPValue::LongLongInt(value) => HeaderValue::I64(*value),
        AMQPValue::Float(value) => HeaderValue::F32(*value),
        AMQPValue::Double(value) => HeaderValue::F64(*value),
        AMQPValue::DecimalValue(decimal) => HeaderValue::Decimal {
            scale: decimal.scale,
            value: decimal.value,
        },
        AMQPValue::ShortString(text) => HeaderValue::String(text.to_string()),
        AMQPValue::LongString(bytes) => match std::str::from_utf8(bytes.as_bytes()) {
            Ok(text) => HeaderValue::String(text.to_owned()),
            Err(_) => HeaderValue::Bytes(bytes.as_bytes().to_vec()),
        },
        AMQPValue::ByteArray(bytes) => HeaderValue::Bytes(bytes.as_slice().to_vec()),
        AMQPValue::FieldArray(array) => HeaderValue::Array(array.as_slice().iter().map(header_value).collect()),
        AMQPValue::Timestamp(seconds) => HeaderValue::Timestamp(*seconds),
        AMQPValue::FieldTable(table) => HeaderValue::Table(header_table(table)),
        AMQPValue::Void => HeaderValue::Void,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::FieldTable;
    use conveyor_core::queue::policy::headers;

    #[test]
    fn a_message_survives_the_round_trip_through_a_record() {
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("x-trace"), AMQPValue::LongInt(7));
        let message = Message {
            exchange: "orders".into(),
            routing_key: "order.placed".into(),
            properties: BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from("application/json"))
                .with_headers(headers),
            body: b"{}".to_vec(),
        };
        let back = Message::from_record(message.clone().into_record());
        assert_eq!(back.exchange, "orders");
        assert_eq!(back.routing_key, "order.placed");
        assert_eq!(back.body, b"{}");
        assert_eq!(back.properties, message.properties);
    }

    #[test]
    fn the_core_reads_content_type_ttl_and_headers_from_the_envelope_not_the_properties() {
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("kind"), AMQPValue::LongString("invoice".into()));
        headers.insert(ShortString::from("attempt"), AMQPValue::LongInt(2));
        let message = Message {
            exchange: String::new(),
            routing_key: "typed".into(),
            properties: BasicProperties::default()
                .with_content_type(ShortString::from("application/json"))
                .with_expiration(ShortString::from("5000"))
                .with_headers(headers),
            body: b"{}".to_vec(),
        };
        let record = message.into_record();
        let envelope = Envelope::of(&record);
        assert_eq!(envelope.content_type.as_deref(), Some("application/json"));
        assert_eq!(envelope.ttl_ms, Some(5000));
        assert_eq!(envelope.priority, 0);
        assert_eq!(envelope.headers.get("kind"), Some(&HeaderValue::String("invoice".into())));
        assert_eq!(envelope.headers.get("attempt"), Some(&HeaderValue::I32(2)));
        let bare = Message {
            exchange: String::new(),
            routing_key: "typed".into(),
            properties: BasicProperties::default(),
            body: Vec::new(),
        }
        .into_record();
        assert_eq!(Envelope::of(&bare), Envelope::default(), "nothing written for absent properties");
    }

    #[test]
    fn a_priority_is_also_in_the_header_the_core_reads() {
        let with = |properties: BasicProperties| {
            let message = Message {
                exchange: String::new(),
                routing_key: "jobs".into(),
                properties,
                body: Vec::new(),
            };
            let record = message.into_record();
            record.header(headers::PRIORITY).and_then(|header| header.value.clone())
        };
        assert_eq!(with(BasicProperties::default().with_priority(7)), Some(b"7".to_vec()));
        assert_eq!(with(BasicProperties::default().with_priority(0)), None, "0 is the default");
        assert_eq!(with(BasicProperties::default()), None);
    }
}
