//! How an SQS message becomes a record and back — the one place that mapping
//! lives — and the MD5 digests AWS clients verify:
//!
//! | SQS | record |
//! |---|---|
//! | `MessageBody` | value (what an AMQP consumer or a Kafka reader sees as the body) |
//! | `MessageId` | header `sqs.message_id` (a UUID); a record without it (published over AMQP) gets one derived from the queue id and offset |
//! | `MessageAttributes` | header `sqs.attributes`: JSON `{name: {DataType, StringValue \| BinaryValue (base64)}}`, absent when there are none |
//! | `DelaySeconds` (message or queue) | header `conveyor.not-before-ms`: not received before this time (ms since the epoch); the core holds it back |
//! | `SentTimestamp` | the record's timestamp |
//! | `ApproximateReceiveCount` | the share cursor's delivery count |
//! | `MessageGroupId` | the key (the core's message group on a FIFO queue; an AMQP routing key reads as one); in a dead-letter queue, the key it had before |
//! | `MessageDeduplicationId` | header `conveyor.deduplication-id`, with the MessageId again in `conveyor.deduplication-token` (FIFO queues; the core rebuilds its deduplication window from them on start; the id is the SHA-256 of the body with content-based deduplication) |
//! | `SequenceNumber` | the offset, as 20 decimal digits |
//!
//! Knows nothing about HTTP or queues' delivery state.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use conveyor_core::envelope::Envelope;
use conveyor_core::queue::deduplication;
use conveyor_core::queue::policy::headers;
use conveyor_log::record::Record;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::SqsError;

pub const MESSAGE_ID_HEADER: &str = "sqs.message_id";
pub const ATTRIBUTES_HEADER: &str = "sqs.attributes";

/// At most this many message attributes per message, as in SQS.
pub const ATTRIBUTES_MAX: usize = 10;
const ATTRIBUTE_NAME_BYTES_MAX: usize = 256;
const DATA_TYPE_BYTES_MAX: usize = 256;

/// One message attribute as the JSON protocol carries it (`BinaryValue` base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageAttributeValue {
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
    /// Reserved by AWS and refused by SQS; accepted here only to refuse it clearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_list_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_list_values: Option<Vec<String>>,
}

pub type MessageAttributes = BTreeMap<String, MessageAttributeValue>;

/// A message as sent, checked.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub message_id: Uuid,
    pub body: String,
    pub attributes: MessageAttributes,
    pub not_before_ms: Option<i64>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

impl OutgoingMessage {
    /// What counts towards SQS's size limits: the body and the attributes'
    /// names, types and values (the attributes were checked when it was built).
    pub fn payload_bytes(&self) -> usize {
        self.body.len() + check_attributes(&self.attributes).unwrap_or_default()
    }

    pub fn into_record(self) -> Record {
        let mut record = Record::new(self.group_id.map(String::into_bytes), Some(self.body.into_bytes()))
            .with_header(MESSAGE_ID_HEADER, Some(self.message_id.to_string().into_bytes()));
        if self.deduplication_id.is_some() {
            record = record.with_header(deduplication::TOKEN_HEADER, Some(self.message_id.to_string().into_bytes()));
        }
        if !self.attributes.is_empty() {
            // Serializing a map of strings cannot fail; an empty header would only lose the attributes.
            let json = serde_json::to_vec(&self.attributes).unwrap_or_default();
            record = record.with_header(ATTRIBUTES_HEADER, Some(json));
        }
        // What the core reads: the not-before time and the deduplication id.
        Envelope {
            not_before_ms: self.not_before_ms,
            deduplication_id: self.deduplication_id,
            ..Envelope::default()
        }
        .stamp(record)
    }
}

/// A record as an SQS receiver sees it.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub message_id: String,
    pub body: String,
    pub attributes: MessageAttributes,
    pub sent_timestamp_ms: i64,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

impl IncomingMessage {
    /// Records written by other front doors have no SQS headers: their value
    /// is the body (lossily as UTF-8: SQS bodies are text) and the message id
    /// is derived from where the record sits.
    pub fn from_record(record: &Record, queue_id: Uuid, offset: u64) -> IncomingMessage {
        let header = |name: &str| record.header(name).and_then(|header| header.value.as_deref());
        let message_id = header(MESSAGE_ID_HEADER)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::from_u64_pair(queue_id.as_u64_pair().0, offset).to_string());
        let attributes = header(ATTRIBUTES_HEADER)
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        IncomingMessage {
            message_id,
            body: String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned(),
            attributes,
            sent_timestamp_ms: record.timestamp_ms.unwrap_or_default(),
            // Dead-lettering replaced the key with the dead-letter routing key
            // and kept the original, the group the message was sent with.
            group_id: header(headers::DEATH_ROUTING_KEY)
                .filter(|key| !key.is_empty())
                .or(record.key.as_deref())
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            deduplication_id: header(deduplication::ID_HEADER).map(|bytes| String::from_utf8_lossy(bytes).into_owned()),
        }
    }
}

/// A FIFO queue's `SequenceNumber` for the message at `offset`: increasing
/// per queue, 20 digits as AWS's are.
pub fn sequence_number(offset: u64) -> String {
    format!("{offset:020}")
}

/// The deduplication id of a body under content-based deduplication: its
/// SHA-256 in hex, as AWS computes it.
pub fn content_deduplication_id(body: &str) -> String {
    hex(&sha2::Sha256::digest(body.as_bytes()))
}

/// Hex MD5 of the body (`MD5OfMessageBody`, `MD5OfBody`).
pub fn md5_of_body(body: &str) -> String {
    hex(&Md5::digest(body.as_bytes()))
}

/// `MD5OfMessageAttributes` as AWS documents it: attributes sorted by name;
/// for each, the name, the data type (each as a 4-byte big-endian length and
/// UTF-8 bytes), one transport byte (1 string/number, 2 binary), then the
/// value as a 4-byte length and its bytes (binary values decoded). `None`
/// when there are no attributes (AWS then omits the field).
pub fn md5_of_attributes(attributes: &MessageAttributes) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    fn push(hasher: &mut Md5, bytes: &[u8]) {
        hasher.update((bytes.len() as u32).to_be_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Md5::new();
    for (name, value) in attributes {
        push(&mut hasher, name.as_bytes());
        push(&mut hasher, value.data_type.as_bytes());
        match &value.binary_value {
            Some(binary) if value.data_type.starts_with("Binary") => {
                hasher.update([2u8]);
                push(&mut hasher, &BASE64.decode(binary).unwrap_or_default());
            }
            _ => {
                hasher.update([1u8]);
                push(&mut hasher, value.string_value.as_deref().unwrap_or_default().as_bytes());
            }
        }
    }
    Some(hex(&hasher.finalize()))
}

/// Checks attributes as SQS does; returns their size in bytes (names, types
/// and values count towards the message size).
pub fn check_attributes(attributes: &MessageAttributes) -> Result<usize, SqsError> {
    if attributes.len() > ATTRIBUTES_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{ATTRIBUTES_MAX}].",
            attributes.len()
        )));
    }
    let mut bytes = 0usize;
    for (name, value) in attributes {
        check_attribute_name(name)?;
        let data_type = value.data_type.as_str();
        if data_type.is_empty() || data_type.len() > DATA_TYPE_BYTES_MAX {
            return Err(SqsError::InvalidParameterValue(format!(
                "The message attribute '{name}' must contain a DataType."
            )));
        }
        if value.string_list_values.is_some() || value.binary_list_values.is_some() {
            return Err(SqsError::InvalidParameterValue(format!(
                "Message attribute list values in '{name}' are not supported."
            )));
        }
        let base = data_type.split('.').next().unwrap_or_default();
        let value_bytes = match base {
            "String" | "Number" => {
                let Some(text) = value.string_value.as_deref() else {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "The message attribute '{name}' with type '{data_type}' must use field 'String'."
                    )));
                };
                if text.is_empty() {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value."
                    )));
                }
                if base == "Number" && !is_number(text) {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
                text.len()
            }
            "Binary" => {
                let Some(binary) = value.binary_value.as_deref() else {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                    )));
                };
                match BASE64.decode(binary) {
                    Ok(decoded) if !decoded.is_empty() => decoded.len(),
                    _ => {
                        return Err(SqsError::InvalidParameterValue(format!(
                            "The message attribute '{name}' must contain a non-empty base64 binary value."
                        )));
                    }
                }
            }
            _ => {
                return Err(SqsError::InvalidParameterValue(format!(
                    "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
                )));
            }
        };
        bytes = bytes.saturating_add(name.len() + data_type.len() + value_bytes);
    }
    Ok(bytes)
}

fn check_attribute_name(name: &str) -> Result<(), SqsError> {
    let valid = !name.is_empty()
        && name.len() <= ATTRIBUTE_NAME_BYTES_MAX
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.to_ascii_lowercase().starts_with("aws.")
        && !name.to_ascii_lowercase().starts_with("amazon.");
    if valid {
        Ok(())
    } else {
        Err(SqsError::InvalidParameterValue(format!(
            "Message (user) attribute name '{name}' is invalid."
        )))
    }
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next().unwrap_or_default();
    !(whole.is_empty() && fraction.is_empty())
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.chars().all(|c| c.is_ascii_digit())
        && whole.len() + fraction.len() <= 38
}

/// The attributes a receiver asked for: `All`, `.*`, a `prefix.*`, or exact names.
pub fn select_attributes(attributes: &MessageAttributes, names: &[String]) -> MessageAttributes {
    attributes
        .iter()
        .filter(|(name, _)| {
            names.iter().any(|wanted| {
                wanted == "All"
                    || wanted == ".*"
                    || wanted == *name
                    || wanted
                        .strip_suffix(".*")
                        .is_some_and(|prefix| name.starts_with(&format!("{prefix}.")))
            })
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(data_type: &str, value: &str) -> MessageAttributeValue {
        MessageAttributeValue {
            data_type: data_type.to_owned(),
            string_value: Some(value.to_owned()),
            binary_value: None,
            string_list_values: None,
            binary_list_values: None,
        }
    }

    #[test]
    fn md5_of_body_is_the_hex_md5_of_the_utf8_bytes() {
        assert_eq!(md5_of_body(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_of_body("hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn md5_of_attributes_matches_the_value_aws_returns_for_one_number() {
        // SendMessage with attribute timestamp (Number) = 1493147359900, as AWS answered it.
        let attributes = MessageAttributes::from([("timestamp".to_owned(), string("Number", "1493147359900"))]);
        assert_eq!(md5_of_attributes(&attributes).as_deref(), Some("235c5c510d26fb653d073faed50ae77c"));
    }

    #[test]
    fn md5_of_attributes_sorts_by_name() {
        let attributes = MessageAttributes::from([
            ("ordinal".to_owned(), string("Number", "1")),
            ("category".to_owned(), string("String", "test")),
        ]);
        assert_eq!(md5_of_attributes(&attributes).as_deref(), Some("d21ae90c49061e927f57df5f5d72be1f"));
        let one = MessageAttributes::from([("SellerName".to_owned(), string("String", "Example Store"))]);
        assert_eq!(md5_of_attributes(&one).as_deref(), Some("cd28f3b68aeee4b2eac9c66f2f694b58"));
    }

    #[test]
    fn md5_of_no_attributes_is_absent() {
        assert_eq!(md5_of_attributes(&MessageAttributes::new()), None);
    }

    #[test]
    fn binary_attributes_hash_their_decoded_bytes_with_transport_byte_two() {
        let attributes = MessageAttributes::from([(
            "b".to_owned(),
            MessageAttributeValue {
                data_type: "Binary".to_owned(),
                string_value: None,
                binary_value: Some(BASE64.encode([0u8, 1, 2])),
                string_list_values: None,
                binary_list_values: None,
            },
        )]);
        let mut expected = Vec::new();
        for part in [&b"b"[..], &b"Binary"[..]] {
            expected.extend((part.len() as u32).to_be_bytes());
            expected.extend(part);
        }
        expected.push(2);
        expected.extend(3u32.to_be_bytes());
        expected.extend([0u8, 1, 2]);
        assert_eq!(md5_of_attributes(&attributes), Some(hex(&Md5::digest(&expected))));
    }

    #[test]
    fn a_record_round_trips_body_id_and_attributes() {
        let message_id = Uuid::new_v4();
        let attributes = MessageAttributes::from([("k".to_owned(), string("String", "v"))]);
        let mut record = OutgoingMessage {
            message_id,
            body: "body".to_owned(),
            attributes: attributes.clone(),
            not_before_ms: Some(5),
            group_id: Some("group".to_owned()),
            deduplication_id: Some("dedup".to_owned()),
        }
        .into_record();
        record.timestamp_ms = Some(42);
        let incoming = IncomingMessage::from_record(&record, Uuid::new_v4(), 0);
        assert_eq!(incoming.message_id, message_id.to_string());
        assert_eq!(incoming.body, "body");
        assert_eq!(incoming.attributes, attributes);
        assert_eq!(incoming.sent_timestamp_ms, 42);
        assert_eq!(
            record.header(headers::NOT_BEFORE_MS).and_then(|header| header.value.as_deref()),
            Some(&b"5"[..]),
            "the core's not-before header"
        );
        assert_eq!(incoming.group_id.as_deref(), Some("group"));
        assert_eq!(incoming.deduplication_id.as_deref(), Some("dedup"));
    }

    #[test]
    fn content_deduplication_ids_are_the_hex_sha256_of_the_body() {
        assert_eq!(
            content_deduplication_id("hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(sequence_number(42), "00000000000000000042");
    }

    #[test]
    fn attribute_checks_refuse_bad_names_types_and_numbers() {
        let bad =
            |name: &str, value: MessageAttributeValue| check_attributes(&MessageAttributes::from([(name.to_owned(), value)])).is_err();
        assert!(bad("AWS.x", string("String", "v")));
        assert!(bad("a..b", string("String", "v")));
        assert!(bad("n", string("Number", "1x")));
        assert!(bad("n", string("Float", "1")));
        assert!(bad("n", string("String", "")));
        assert!(!bad("n", string("Number.int", "-12.5")));
        assert!(!bad("n", string("String.custom", "x")));
    }

    #[test]
    fn select_attributes_takes_all_prefixes_and_exact_names() {
        let attributes = MessageAttributes::from([("a.x".to_owned(), string("String", "1")), ("b".to_owned(), string("String", "2"))]);
        assert_eq!(select_attributes(&attributes, &["All".to_owned()]).len(), 2);
        assert_eq!(select_attributes(&attributes, &["a.*".to_owned()]).len(), 1);
        assert_eq!(select_attributes(&attributes, &["b".to_owned()]).len(), 1);
        assert!(select_attributes(&attributes, &[]).is_empty());
    }
}
