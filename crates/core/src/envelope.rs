//! The neutral record envelope: the facts about a message the core reads
//! from a record, typed, under `conveyor.*` header names. Each front door
//! writes them at publish from its own protocol (AMQP properties, SQS
//! attributes, the admin API's headers) and the core reads only these —
//! to order by priority, expire, delay, deduplicate, and route a dead
//! letter through a headers exchange. Knows no wire format: it never reads
//! a door's own headers (`amqp.*`, `sqs.*`).
//!
//! | fact | where on the record |
//! |---|---|
//! | routing key, message group | the key |
//! | priority (0–255) | header [`headers::PRIORITY`], decimal text, absent for 0 |
//! | per-message TTL | header [`headers::TTL_MS`], decimal milliseconds |
//! | not-before time | header [`headers::NOT_BEFORE_MS`], decimal ms since the epoch |
//! | deduplication id | header [`deduplication::ID_HEADER`] |
//! | content type | header [`headers::CONTENT_TYPE`], UTF-8 |
//! | application headers (what a headers exchange matches) | header [`headers::APPLICATION_HEADERS`]: a [`FieldTable`] as CBOR, absent when empty |

use crate::exchange::FieldTable;
use crate::queue::deduplication;
use crate::queue::policy::headers;
use conveyor_log::record::Record;

/// What a front door tells the core about a message, beyond its key and
/// body. Written once at publish by [`Envelope::stamp`]; the core reads
/// single facts with the functions below (no full decode on hot paths).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// 0 is no priority (not written).
    pub priority: u8,
    pub ttl_ms: Option<u64>,
    pub not_before_ms: Option<i64>,
    pub deduplication_id: Option<String>,
    pub content_type: Option<String>,
    /// The message's own headers as exchanges see them.
    pub headers: FieldTable,
}

impl Envelope {
    /// `record` with this envelope's headers added.
    pub fn stamp(self, mut record: Record) -> Record {
        if self.priority > 0 {
            record = record.with_header(headers::PRIORITY, Some(self.priority.to_string().into_bytes()));
        }
        if let Some(ttl_ms) = self.ttl_ms {
            record = record.with_header(headers::TTL_MS, Some(ttl_ms.to_string().into_bytes()));
        }
        if let Some(not_before_ms) = self.not_before_ms {
            record = record.with_header(headers::NOT_BEFORE_MS, Some(not_before_ms.to_string().into_bytes()));
        }
        if let Some(id) = self.deduplication_id {
            record = record.with_header(deduplication::ID_HEADER, Some(id.into_bytes()));
        }
        if let Some(content_type) = self.content_type {
            record = record.with_header(headers::CONTENT_TYPE, Some(content_type.into_bytes()));
        }
        if !self.headers.is_empty() {
            let mut bytes = Vec::new();
            // Writing into a Vec cannot fail, and every `HeaderValue` has a
            // CBOR form (floats, NaN and bytes included).
            if ciborium::into_writer(&self.headers, &mut bytes).is_ok() {
                record = record.with_header(headers::APPLICATION_HEADERS, Some(bytes));
            }
        }
        record
    }

    /// Every fact `record` carries (absent ones as defaults).
    pub fn of(record: &Record) -> Envelope {
        Envelope {
            priority: priority(record),
            ttl_ms: ttl_ms(record),
            not_before_ms: not_before_ms(record),
            deduplication_id: text(record, deduplication::ID_HEADER).map(str::to_owned),
            content_type: text(record, headers::CONTENT_TYPE).map(str::to_owned),
            headers: application_headers(record),
        }
    }
}

/// A header's value as UTF-8 text, if it is.
fn text<'a>(record: &'a Record, name: &str) -> Option<&'a str> {
    record
        .header(name)
        .and_then(|header| header.value.as_deref())
        .and_then(|value| std::str::from_utf8(value).ok())
}

/// The message's priority; one the core cannot read counts as none (0).
pub fn priority(record: &Record) -> u8 {
    text(record, headers::PRIORITY)
        .and_then(|text| text.trim().parse::<u8>().ok())
        .unwrap_or(0)
}

/// The message's own TTL in milliseconds.
pub fn ttl_ms(record: &Record) -> Option<u64> {
    text(record, headers::TTL_MS).and_then(|text| text.trim().parse::<u64>().ok())
}

/// Whether the message carries its own TTL (even one the core cannot read).
pub fn has_ttl(record: &Record) -> bool {
    record.header(headers::TTL_MS).is_some()
}

/// Not delivered before this time, in milliseconds since the epoch.
pub fn not_before_ms(record: &Record) -> Option<i64> {
    text(record, headers::NOT_BEFORE_MS).and_then(|text| text.trim().parse::<i64>().ok())
}

/// The message's own headers as a headers exchange matches them (empty
/// when it has none, or when they cannot be read).
pub fn application_headers(record: &Record) -> FieldTable {
    record
        .header(headers::APPLICATION_HEADERS)
        .and_then(|header| header.value.as_deref())
        .and_then(|bytes| ciborium::from_reader(bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::HeaderValue;

    #[test]
    fn every_fact_survives_the_round_trip_through_a_record() {
        let envelope = Envelope {
            priority: 7,
            ttl_ms: Some(5_000),
            not_before_ms: Some(1_700_000_000_000),
            deduplication_id: Some("order-42".into()),
            content_type: Some("application/json".into()),
            headers: [
                ("kind".to_owned(), HeaderValue::String("invoice".into())),
                ("blob".to_owned(), HeaderValue::Bytes(vec![0, 255])),
                ("ratio".to_owned(), HeaderValue::F64(f64::NAN)),
                ("n".to_owned(), HeaderValue::I64(-3)),
            ]
            .into_iter()
            .collect(),
        };
        let record = envelope.clone().stamp(Record::new(Some(b"key".to_vec()), Some(b"body".to_vec())));
        let back = Envelope::of(&record);
        assert_eq!(back.priority, 7);
        assert_eq!(back.ttl_ms, Some(5_000));
        assert_eq!(back.not_before_ms, Some(1_700_000_000_000));
        assert_eq!(back.deduplication_id.as_deref(), Some("order-42"));
        assert_eq!(back.content_type.as_deref(), Some("application/json"));
        // `HeaderValue`'s equality is identity (NaN by bits), so the table compares whole.
        assert_eq!(back.headers, envelope.headers);
        assert!(has_ttl(&record));
    }

    #[test]
    fn an_empty_envelope_adds_no_header_and_unreadable_facts_read_as_absent() {
        let bare = Record::new(None, Some(b"body".to_vec()));
        assert_eq!(Envelope::default().stamp(bare.clone()), bare, "nothing to say, no bytes spent");
        let garbled = bare
            .with_header(headers::PRIORITY, Some(b"high".to_vec()))
            .with_header(headers::TTL_MS, Some(b"-1".to_vec()))
            .with_header(headers::APPLICATION_HEADERS, Some(b"\xff\xff".to_vec()));
        assert_eq!(priority(&garbled), 0);
        assert_eq!(ttl_ms(&garbled), None);
        assert!(has_ttl(&garbled), "present even if unreadable");
        assert!(application_headers(&garbled).is_empty());
    }
}
