//! SQS queue attributes: which ones CreateQueue takes, their ranges and
//! defaults, and how they are kept — as `sqs.<Name>` entries in the core
//! queue definition's arguments (only the ones a client set), so a queue
//! declared over AMQP is an SQS queue with every attribute at its default.

use std::collections::{BTreeMap, HashMap};

use conveyor_core::catalog::QueueDefinition;

use super::error::SqsError;

const ARGUMENT_PREFIX: &str = "sqs.";

/// A settable attribute: name, smallest, largest, default.
struct Setting {
    name: &'static str,
    min: i64,
    max: i64,
    default: i64,
}

const SETTINGS: &[Setting] = &[
    Setting {
        name: "VisibilityTimeout",
        min: 0,
        max: 43_200,
        default: 30,
    },
    Setting {
        name: "DelaySeconds",
        min: 0,
        max: 900,
        default: 0,
    },
    Setting {
        name: "ReceiveMessageWaitTimeSeconds",
        min: 0,
        max: 20,
        default: 0,
    },
    Setting {
        name: "MessageRetentionPeriod",
        min: 60,
        max: 1_209_600,
        default: 345_600,
    },
    Setting {
        name: "MaximumMessageSize",
        min: 1_024,
        max: 1_048_576,
        default: 1_048_576,
    },
];

/// Attributes SQS knows that this slice does not implement yet: refused
/// clearly rather than silently ignored (except a `false` FifoQueue).
const NOT_YET: &[&str] = &[
    "FifoQueue",
    "ContentBasedDeduplication",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "Policy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Checks CreateQueue's attributes; returns them normalized (numbers without
/// sign or leading zeros), keyed by attribute name.
pub fn parse(attributes: &HashMap<String, String>) -> Result<BTreeMap<String, i64>, SqsError> {
    let mut parsed = BTreeMap::new();
    for (name, value) in attributes {
        if let Some(setting) = SETTINGS.iter().find(|setting| setting.name == name) {
            let number = value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|number| (setting.min..=setting.max).contains(number))
                .ok_or_else(|| {
                    SqsError::InvalidAttributeValue(format!(
                        "Invalid value for the parameter {name}: {value:?} is not an integer from {} to {}.",
                        setting.min, setting.max
                    ))
                })?;
            parsed.insert(name.clone(), number);
        } else if name == "FifoQueue" && value.eq_ignore_ascii_case("false") || name == "SqsManagedSseEnabled" {
            // The default behaviour: nothing to keep.
        } else if NOT_YET.contains(&name.as_str()) {
            return Err(SqsError::InvalidAttributeName(format!(
                "The attribute {name} is not supported by Conveyor yet."
            )));
        } else {
            return Err(SqsError::InvalidAttributeName(format!("Unknown Attribute {name}.")));
        }
    }
    Ok(parsed)
}

/// The core definition of a new SQS queue: durable, with the attributes set.
pub fn definition(attributes: &BTreeMap<String, i64>) -> QueueDefinition {
    QueueDefinition {
        durable: true,
        auto_delete: false,
        arguments: attributes
            .iter()
            .map(|(name, value)| (format!("{ARGUMENT_PREFIX}{name}"), value.to_string()))
            .collect(),
    }
}

/// The attribute's value for a queue: what was set, else the default.
pub fn value(definition: &QueueDefinition, name: &str) -> i64 {
    let default = SETTINGS
        .iter()
        .find(|setting| setting.name == name)
        .map(|setting| setting.default)
        .unwrap_or_default();
    definition
        .arguments
        .get(&format!("{ARGUMENT_PREFIX}{name}"))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// True if every attribute in `requested` has that value on the queue
/// (SQS's rule for an idempotent CreateQueue).
pub fn matches(definition: &QueueDefinition, requested: &BTreeMap<String, i64>) -> bool {
    requested.iter().all(|(name, wanted)| value(definition, name) == *wanted)
}

/// The names of the settable attributes, as GetQueueAttributes lists them.
pub fn setting_names() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|setting| setting.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn settings_are_range_checked_and_kept_as_arguments() {
        let parsed = parse(&attributes(&[("VisibilityTimeout", "5"), ("DelaySeconds", "0")])).expect("valid");
        let definition = definition(&parsed);
        assert_eq!(definition.arguments.get("sqs.VisibilityTimeout").map(String::as_str), Some("5"));
        assert_eq!(value(&definition, "VisibilityTimeout"), 5);
        assert_eq!(value(&definition, "ReceiveMessageWaitTimeSeconds"), 0);
        assert!(matches(&definition, &parsed));
        assert!(!matches(
            &definition,
            &parse(&attributes(&[("VisibilityTimeout", "6")])).expect("valid")
        ));
        assert!(parse(&attributes(&[("VisibilityTimeout", "43201")])).is_err());
        assert!(parse(&attributes(&[("ReceiveMessageWaitTimeSeconds", "x")])).is_err());
        assert!(parse(&attributes(&[("Nonsense", "1")])).is_err());
        assert!(parse(&attributes(&[("FifoQueue", "true")])).is_err());
        assert!(parse(&attributes(&[("FifoQueue", "false")])).is_ok());
    }
}
