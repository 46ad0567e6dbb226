//! An SNS topic as the core keeps it: a durable fanout exchange of the same
//! name whose arguments mark it as a topic and hold its attributes, so the
//! catalog persists them with the exchange:
//!
//! | SNS | exchange |
//! |---|---|
//! | topic name | exchange name (an AMQP client can publish to it: every subscriber gets the raw body) |
//! | — | argument `sns.topic` = `true`: the exchange is a topic |
//! | attribute `NAME` (`DisplayName`, `FifoTopic`, …) | argument `sns.attribute.NAME`, only those set |

use std::collections::BTreeMap;

use conveyor_core::exchange::{Exchange, ExchangeKind};

use super::error::SnsError;

const TOPIC_ARGUMENT: &str = "sns.topic";
const ATTRIBUTE_PREFIX: &str = "sns.attribute.";
/// SNS's limit on a topic name.
const NAME_CHARS_MAX: usize = 256;
/// A message (body and attributes) is at most this long unless the topic's
/// `MaximumMessageSize` says otherwise.
const MESSAGE_BYTES_MAX_DEFAULT: usize = 262_144;
const MESSAGE_BYTES_MAX_RANGE: std::ops::RangeInclusive<usize> = 1024..=1_048_576;

/// Attributes a client may set; the counts and ARNs are computed.
const SETTABLE: [&str; 11] = [
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
    "ContentBasedDeduplication",
    "MaximumMessageSize",
    "ArchivePolicy",
    "FifoThroughputScope",
    "DataProtectionPolicy",
];

/// One SNS topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl Topic {
    /// A new topic as CreateTopic asks for it, checked as SNS does.
    pub fn new(name: &str, attributes: &BTreeMap<String, String>) -> Result<Topic, SnsError> {
        let mut topic = Topic {
            name: name.to_owned(),
            attributes: BTreeMap::new(),
        };
        for (attribute, value) in attributes {
            if attribute == "FifoTopic" {
                match value.to_ascii_lowercase().as_str() {
                    "true" => {
                        topic.attributes.insert("FifoTopic".to_owned(), "true".to_owned());
                    }
                    "false" => {}
                    _ => return Err(invalid_attribute(attribute, "must be true or false")),
                }
            }
        }
        for (attribute, value) in attributes {
            if attribute != "FifoTopic" {
                topic.set_attribute(attribute, value)?;
            }
        }
        check_name(name, topic.is_fifo())?;
        Ok(topic)
    }

    /// The topic an exchange is, if it is one.
    pub fn from_exchange(exchange: &Exchange) -> Option<Topic> {
        if exchange.kind != ExchangeKind::Fanout || exchange.arguments.get(TOPIC_ARGUMENT).map(String::as_str) != Some("true") {
            return None;
        }
        let attributes = exchange
            .arguments
            .iter()
            .filter_map(|(key, value)| Some((key.strip_prefix(ATTRIBUTE_PREFIX)?.to_owned(), value.clone())))
            .collect();
        Some(Topic {
            name: exchange.name.clone(),
            attributes,
        })
    }

    pub fn to_exchange(&self) -> Exchange {
        let mut exchange = Exchange::new(self.name.clone(), ExchangeKind::Fanout);
        exchange.arguments.insert(TOPIC_ARGUMENT.to_owned(), "true".to_owned());
        for (name, value) in &self.attributes {
            exchange.arguments.insert(format!("{ATTRIBUTE_PREFIX}{name}"), value.clone());
        }
        exchange
    }

    pub fn is_fifo(&self) -> bool {
        self.attributes.get("FifoTopic").map(String::as_str) == Some("true")
    }

    pub fn content_based_deduplication(&self) -> bool {
        self.attributes.get("ContentBasedDeduplication").map(String::as_str) == Some("true")
    }

    pub fn message_bytes_max(&self) -> usize {
        self.attributes
            .get("MaximumMessageSize")
            .and_then(|value| value.parse().ok())
            .unwrap_or(MESSAGE_BYTES_MAX_DEFAULT)
    }

    /// Sets one attribute (CreateTopic's `Attributes`, SetTopicAttributes);
    /// an empty value removes it.
    pub fn set_attribute(&mut self, name: &str, value: &str) -> Result<(), SnsError> {
        if name == "FifoTopic" {
            return Err(invalid_attribute(name, "can only be set when the topic is created"));
        }
        if !SETTABLE.contains(&name) && !name.ends_with("FeedbackRoleArn") && !name.ends_with("FeedbackSampleRate") {
            return Err(SnsError::InvalidParameter(format!(
                "Invalid parameter: AttributeName Reason: {name:?} is not a topic attribute"
            )));
        }
        match name {
            "ContentBasedDeduplication" => {
                if !matches!(value, "true" | "false") {
                    return Err(invalid_attribute(name, "must be true or false"));
                }
                if !self.is_fifo() && value == "true" {
                    return Err(invalid_attribute(name, "applies to FIFO topics only"));
                }
            }
            "MaximumMessageSize" if !value.parse().is_ok_and(|bytes: usize| MESSAGE_BYTES_MAX_RANGE.contains(&bytes)) => {
                return Err(invalid_attribute(name, "must be between 1024 and 1048576"));
            }
            "SignatureVersion" if !matches!(value, "1" | "2") => return Err(invalid_attribute(name, "must be 1 or 2")),
            "TracingConfig" if !matches!(value, "PassThrough" | "Active") => {
                return Err(invalid_attribute(name, "must be PassThrough or Active"));
            }
            _ => {}
        }
        if value.is_empty() {
            self.attributes.remove(name);
        } else {
            self.attributes.insert(name.to_owned(), value.to_owned());
        }
        Ok(())
    }

    /// Whether CreateTopic with `attributes` names this topic as it is (SNS
    /// refuses to "create" an existing topic with different attributes).
    pub fn has_attributes(&self, attributes: &BTreeMap<String, String>) -> bool {
        attributes.iter().all(|(name, value)| match name.as_str() {
            "FifoTopic" => value.eq_ignore_ascii_case(&self.is_fifo().to_string()),
            _ => self.attributes.get(name).map(String::as_str).unwrap_or_default() == value,
        })
    }
}

/// SNS's name rules: 1 to 256 ASCII letters, digits, `-` and `_`, plus a
/// `.fifo` suffix exactly when the topic is FIFO.
pub fn check_name(name: &str, fifo: bool) -> Result<(), SnsError> {
    let stem = match (name.strip_suffix(".fifo"), fifo) {
        (Some(stem), true) => stem,
        (None, false) => name,
        (Some(_), false) => {
            return Err(SnsError::InvalidParameter(
                "Invalid parameter: Topic Name Reason: a name ending in .fifo needs the FifoTopic attribute true".to_owned(),
            ));
        }
        (None, true) => {
            return Err(SnsError::InvalidParameter(
                "Invalid parameter: Topic Name Reason: a FIFO topic's name must end with .fifo".to_owned(),
            ));
        }
    };
    let valid = !stem.is_empty() && name.len() <= NAME_CHARS_MAX && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(SnsError::InvalidParameter(
            "Invalid parameter: Topic Name Reason: must be 1 to 256 ASCII letters, digits, hyphens and underscores".to_owned(),
        ))
    }
}

fn invalid_attribute(name: &str, reason: &str) -> SnsError {
    SnsError::InvalidParameter(format!("Invalid parameter: Attributes Reason: {name} {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_topic_round_trips_through_its_exchange() {
        let topic = Topic::new("orders.fifo", &attributes(&[("FifoTopic", "true"), ("DisplayName", "Orders")])).expect("valid");
        let exchange = topic.to_exchange();
        assert_eq!(exchange.kind, ExchangeKind::Fanout);
        assert!(exchange.durable);
        assert_eq!(Topic::from_exchange(&exchange), Some(topic.clone()));
        assert!(topic.is_fifo());
        // An AMQP fanout exchange is not a topic.
        assert_eq!(Topic::from_exchange(&Exchange::new("plain", ExchangeKind::Fanout)), None);
    }

    #[test]
    fn names_and_attribute_values_are_checked() {
        assert!(Topic::new("ok_Name-1", &BTreeMap::new()).is_ok());
        for bad in ["", "has space", "dot.name", "x.fifo", &"a".repeat(257)] {
            assert!(Topic::new(bad, &BTreeMap::new()).is_err(), "{bad}");
        }
        assert!(Topic::new("y", &attributes(&[("FifoTopic", "true")])).is_err());
        assert!(Topic::new("y", &attributes(&[("ContentBasedDeduplication", "true")])).is_err());
        assert!(Topic::new("y", &attributes(&[("MaximumMessageSize", "10")])).is_err());
        assert!(Topic::new("y", &attributes(&[("Bogus", "1")])).is_err());
        let topic = Topic::new("y", &attributes(&[("DisplayName", "Y")])).expect("valid");
        assert!(topic.has_attributes(&attributes(&[("DisplayName", "Y"), ("FifoTopic", "false")])));
        assert!(!topic.has_attributes(&attributes(&[("DisplayName", "Z")])));
        assert_eq!(topic.message_bytes_max(), MESSAGE_BYTES_MAX_DEFAULT);
    }
}
