//! SQS queue attributes: which ones CreateQueue takes, their ranges and
//! defaults, and how they are kept — the core queue policy's fields where
//! the core enforces them (retention, the redrive policy, FIFO, delays),
//! filled here, with the `x-…` arguments that say the same to RabbitMQ
//! clients; and as `sqs.<Name>` entries in the definition's arguments
//! (only the ones a client set), so a queue declared over AMQP is an SQS
//! queue with every attribute at its default. A FIFO queue is a core queue
//! with message groups.

use std::collections::{BTreeMap, HashMap};

use conveyor_core::catalog::QueueDefinition;
use conveyor_core::queue::QueuePolicy;
use conveyor_rabbit_args::arguments;

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
/// clearly rather than silently ignored (except the default values of the
/// FIFO throughput settings).
const NOT_YET: &[&str] = &[
    "Policy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

pub const FIFO_QUEUE: &str = "FifoQueue";
const MESSAGE_RETENTION_PERIOD: &str = "MessageRetentionPeriod";
pub const CONTENT_BASED_DEDUPLICATION: &str = "ContentBasedDeduplication";

/// CreateQueue's attributes, checked: the numeric settings (normalized),
/// the redrive policy and the FIFO flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    pub settings: BTreeMap<String, i64>,
    pub redrive: Option<Redrive>,
    /// `Some(None)`: RedriveAllowPolicy given empty (SetQueueAttributes removes it).
    pub redrive_allow: Option<Option<RedriveAllow>>,
    pub fifo: bool,
    /// Only with `fifo`; `None` when not given.
    pub content_based_deduplication: Option<bool>,
}

/// RedrivePolicy: after `max_receive_count` receives a message moves to the
/// dead-letter queue. Kept in the core as the queue's dead-letter route
/// (the default exchange, routing key = the DLQ's name) and delivery limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    pub dead_letter_queue: String,
    pub max_receive_count: u32,
}

const REDRIVE_POLICY: &str = "RedrivePolicy";

impl Redrive {
    fn parse(value: &str) -> Result<Redrive, SqsError> {
        let invalid =
            |why: &str| SqsError::InvalidAttributeValue(format!("Value {value} for parameter RedrivePolicy is invalid. Reason: {why}"));
        let policy: serde_json::Value = serde_json::from_str(value).map_err(|_| invalid("Redrive policy is not a valid JSON map."))?;
        let arn = policy
            .get("deadLetterTargetArn")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid("Redrive policy does not contain mandatory attribute: deadLetterTargetArn."))?;
        let count = match policy.get("maxReceiveCount") {
            Some(serde_json::Value::Number(number)) => number.as_u64(),
            Some(serde_json::Value::String(text)) => text.trim().parse().ok(),
            _ => None,
        }
        .filter(|count| (1..=1000).contains(count))
        .ok_or_else(|| invalid("Invalid value for maxReceiveCount: must be an integer from 1 to 1000."))?;
        let name = arn
            .rsplit(':')
            .next()
            .filter(|name| !name.is_empty() && arn.starts_with("arn:"))
            .ok_or_else(|| invalid("Invalid value for deadLetterTargetArn."))?;
        Ok(Redrive {
            dead_letter_queue: name.to_owned(),
            max_receive_count: count as u32,
        })
    }

    /// The policy as SQS shows it to `account`.
    pub fn to_json(&self, account: &str) -> String {
        serde_json::json!({
            "deadLetterTargetArn": super::queue_arn(account, &self.dead_letter_queue),
            "maxReceiveCount": self.max_receive_count,
        })
        .to_string()
    }

    /// The queue's redrive policy, if its policy has one: dead letters
    /// routed by the default exchange to a queue, after a delivery limit
    /// (whichever door declared it).
    pub fn of(definition: &QueueDefinition) -> Option<Redrive> {
        let policy = &definition.policy;
        let queue = policy.dead_letter_routing_key.as_ref()?;
        let count = policy.delivery_limit?;
        (policy.dead_letter_exchange.as_deref() == Some("")).then(|| Redrive {
            dead_letter_queue: queue.clone(),
            max_receive_count: count,
        })
    }
}

/// RedriveAllowPolicy: which queues may name this one as their dead-letter
/// queue. Kept as the `sqs.RedriveAllowPolicy` argument, normalized; checked
/// when a RedrivePolicy names the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveAllow {
    AllowAll,
    DenyAll,
    /// Queue names (the ARNs' last part: queues are one namespace).
    ByQueue(Vec<String>),
}

const REDRIVE_ALLOW_POLICY: &str = "RedriveAllowPolicy";
/// At most this many source queues in a `byQueue` policy, as in SQS.
const REDRIVE_ALLOW_SOURCES_MAX: usize = 10;

fn redrive_allow_argument() -> String {
    format!("{ARGUMENT_PREFIX}{REDRIVE_ALLOW_POLICY}")
}

impl RedriveAllow {
    fn parse(value: &str) -> Result<RedriveAllow, SqsError> {
        let invalid = |why: &str| {
            SqsError::InvalidParameterValue(format!(
                "Value {value} for parameter {REDRIVE_ALLOW_POLICY} is invalid. Reason: {why}"
            ))
        };
        let policy: serde_json::Value =
            serde_json::from_str(value).map_err(|_| invalid("Redrive allow policy is not a valid JSON map."))?;
        let sources = policy.get("sourceQueueArns");
        let allow = match policy.get("redrivePermission").and_then(serde_json::Value::as_str) {
            Some("allowAll") if sources.is_none() => RedriveAllow::AllowAll,
            Some("denyAll") if sources.is_none() => RedriveAllow::DenyAll,
            Some("allowAll" | "denyAll") => return Err(invalid("sourceQueueArns is only allowed with redrivePermission byQueue.")),
            Some("byQueue") => {
                let arns = sources
                    .and_then(serde_json::Value::as_array)
                    .filter(|arns| (1..=REDRIVE_ALLOW_SOURCES_MAX).contains(&arns.len()))
                    .ok_or_else(|| {
                        invalid(&format!(
                            "sourceQueueArns must be a list of 1 to {REDRIVE_ALLOW_SOURCES_MAX} queue ARNs with redrivePermission byQueue."
                        ))
                    })?;
                let names = arns
                    .iter()
                    .map(|arn| arn.as_str().and_then(crate::arn::queue_name).map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| invalid("sourceQueueArns holds something that is not an SQS queue ARN."))?;
                RedriveAllow::ByQueue(names)
            }
            _ => return Err(invalid("redrivePermission must be allowAll, denyAll or byQueue.")),
        };
        Ok(allow)
    }

    /// The policy as SQS shows it to `account`.
    pub fn to_json(&self, account: &str) -> String {
        match self {
            RedriveAllow::AllowAll => serde_json::json!({ "redrivePermission": "allowAll" }),
            RedriveAllow::DenyAll => serde_json::json!({ "redrivePermission": "denyAll" }),
            RedriveAllow::ByQueue(names) => serde_json::json!({
                "redrivePermission": "byQueue",
                "sourceQueueArns": names.iter().map(|name| super::queue_arn(account, name)).collect::<Vec<_>>(),
            }),
        }
        .to_string()
    }

    /// The queue's policy, if it has one.
    pub fn of(definition: &QueueDefinition) -> Option<RedriveAllow> {
        definition
            .arguments
            .get(&redrive_allow_argument())
            .and_then(|value| RedriveAllow::parse(value).ok())
    }

    /// Whether the queue named `source` may use this queue as its dead-letter queue.
    pub fn allows(&self, source: &str) -> bool {
        match self {
            RedriveAllow::AllowAll => true,
            RedriveAllow::DenyAll => false,
            RedriveAllow::ByQueue(names) => names.iter().any(|name| name == source),
        }
    }
}

/// Checks CreateQueue's attributes; returns them normalized (numbers without
/// sign or leading zeros), keyed by attribute name.
pub fn parse(attributes: &HashMap<String, String>) -> Result<Requested, SqsError> {
    let mut parsed = BTreeMap::new();
    let mut redrive = None;
    let mut redrive_allow = None;
    let mut fifo = false;
    let mut content_based_deduplication = None;
    for (name, value) in attributes {
        if name == FIFO_QUEUE {
            fifo = boolean(name, value)?;
            continue;
        }
        if name == CONTENT_BASED_DEDUPLICATION {
            content_based_deduplication = Some(boolean(name, value)?);
            continue;
        }
        if (name == "DeduplicationScope" && value == "queue") || (name == "FifoThroughputLimit" && value == "perQueue") {
            // FIFO's default throughput settings: what Conveyor does anyway.
            continue;
        }
        if name == REDRIVE_POLICY {
            redrive = Some(Redrive::parse(value)?);
            continue;
        }
        if name == REDRIVE_ALLOW_POLICY {
            redrive_allow = Some((!value.trim().is_empty()).then(|| RedriveAllow::parse(value)).transpose()?);
            continue;
        }
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
        } else if name == "SqsManagedSseEnabled" {
            // The default behaviour: nothing to keep.
        } else if NOT_YET.contains(&name.as_str()) {
            return Err(SqsError::InvalidAttributeName(format!(
                "The attribute {name} is not supported by Conveyor yet."
            )));
        } else {
            return Err(SqsError::InvalidAttributeName(format!("Unknown Attribute {name}.")));
        }
    }
    if content_based_deduplication.is_some() && !fifo {
        return Err(SqsError::InvalidAttributeName(format!(
            "Unknown Attribute {CONTENT_BASED_DEDUPLICATION}: it applies to FIFO queues only."
        )));
    }
    Ok(Requested {
        settings: parsed,
        redrive,
        redrive_allow,
        fifo,
        content_based_deduplication,
    })
}

fn boolean(name: &str, value: &str) -> Result<bool, SqsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SqsError::InvalidAttributeValue(format!(
            "Invalid value for the parameter {name}: {value:?} is not true or false."
        ))),
    }
}

/// True for a FIFO queue: one with message groups (declared over SQS with
/// FifoQueue, or over AMQP with `x-message-groups`).
pub fn is_fifo(definition: &QueueDefinition) -> bool {
    definition.policy.message_groups
}

pub fn content_based_deduplication(definition: &QueueDefinition) -> bool {
    definition
        .arguments
        .get(&format!("{ARGUMENT_PREFIX}{CONTENT_BASED_DEDUPLICATION}"))
        .map(String::as_str)
        == Some("true")
}

/// The core definition of a new SQS queue: durable, its policy what the
/// attributes set (a queue whose messages may be delayed, with message
/// groups if FIFO), the attributes themselves kept as `sqs.<Name>`
/// arguments for GetQueueAttributes.
pub fn definition(requested: &Requested) -> QueueDefinition {
    let mut definition = QueueDefinition {
        durable: true,
        auto_delete: false,
        arguments: BTreeMap::new(),
        policy: QueuePolicy {
            // DelaySeconds: the core holds a message back until its not-before time.
            message_delays: true,
            message_groups: requested.fifo,
            ..QueuePolicy::default()
        },
    };
    definition.arguments.insert(arguments::MESSAGE_DELAYS.to_owned(), "true".to_owned());
    if requested.fifo {
        definition.arguments.insert(arguments::MESSAGE_GROUPS.to_owned(), "true".to_owned());
    }
    set(&mut definition, requested);
    definition
}

/// Sets what `requested` gives on `definition`: its settings as `sqs.<Name>`
/// arguments, MessageRetentionPeriod also as the policy's retention (which
/// the core enforces), a RedrivePolicy as the policy's dead-letter route
/// (the default exchange, routing key = the DLQ's name) and delivery limit,
/// RedriveAllowPolicy and ContentBasedDeduplication as arguments. The
/// `x-…` arguments of the policy fields set here say the same, for what
/// RabbitMQ clients see of the queue (a definitions export, which an
/// import declares again; a redeclaration's comparison); the core reads
/// only the policy.
fn set(definition: &mut QueueDefinition, requested: &Requested) {
    let (arguments, policy) = (&mut definition.arguments, &mut definition.policy);
    for (name, value) in &requested.settings {
        arguments.insert(format!("{ARGUMENT_PREFIX}{name}"), value.to_string());
        if name == MESSAGE_RETENTION_PERIOD {
            policy.retention_ms = Some(value.saturating_mul(1000));
            arguments.insert(arguments::RETENTION.to_owned(), value.saturating_mul(1000).to_string());
        }
    }
    if let Some(redrive) = &requested.redrive {
        policy.dead_letter_exchange = Some(String::new());
        policy.dead_letter_routing_key = Some(redrive.dead_letter_queue.clone());
        policy.delivery_limit = Some(redrive.max_receive_count);
        arguments.insert(arguments::DEAD_LETTER_EXCHANGE.to_owned(), String::new());
        arguments.insert(arguments::DEAD_LETTER_ROUTING_KEY.to_owned(), redrive.dead_letter_queue.clone());
        arguments.insert(arguments::DELIVERY_LIMIT.to_owned(), redrive.max_receive_count.to_string());
    }
    match &requested.redrive_allow {
        Some(Some(allow)) => {
            arguments.insert(redrive_allow_argument(), allow.to_json(crate::arn::DEFAULT_ACCOUNT_ID));
        }
        Some(None) => {
            arguments.remove(&redrive_allow_argument());
        }
        None => {}
    }
    let content_based = format!("{ARGUMENT_PREFIX}{CONTENT_BASED_DEDUPLICATION}");
    match requested.content_based_deduplication {
        Some(true) => {
            arguments.insert(content_based, "true".to_owned());
        }
        Some(false) => {
            arguments.remove(&content_based);
        }
        None => {}
    }
}

/// The `x-…` arguments a redrive policy is in the policy's terms.
fn remove_redrive_arguments(arguments: &mut BTreeMap<String, String>) {
    for name in [
        arguments::DEAD_LETTER_EXCHANGE,
        arguments::DEAD_LETTER_ROUTING_KEY,
        arguments::DELIVERY_LIMIT,
    ] {
        arguments.remove(name);
    }
}

/// The queue's definition after SetQueueAttributes: the attributes given
/// replace those the queue has; an empty RedrivePolicy removes it. FifoQueue
/// cannot change.
pub fn updated(definition: &QueueDefinition, attributes: &HashMap<String, String>) -> Result<(QueueDefinition, Requested), SqsError> {
    let mut attributes = attributes.clone();
    let remove_redrive = attributes.get(REDRIVE_POLICY).is_some_and(|value| value.trim().is_empty());
    if remove_redrive {
        attributes.remove(REDRIVE_POLICY);
    }
    let fifo = is_fifo(definition);
    if let Some(value) = attributes.get(FIFO_QUEUE)
        && boolean(FIFO_QUEUE, value)? != fifo
    {
        return Err(SqsError::InvalidAttributeValue(format!(
            "Invalid value for the parameter {FIFO_QUEUE}: a queue cannot change between standard and FIFO."
        )));
    }
    if fifo {
        // So that the FIFO-only attributes are accepted.
        attributes.insert(FIFO_QUEUE.to_owned(), "true".to_owned());
    }
    let requested = parse(&attributes)?;
    let mut updated = definition.clone();
    if remove_redrive {
        updated.policy.dead_letter_exchange = None;
        updated.policy.dead_letter_routing_key = None;
        updated.policy.delivery_limit = None;
        remove_redrive_arguments(&mut updated.arguments);
    }
    set(&mut updated, &requested);
    Ok((updated, requested))
}

/// The attribute's value for a queue: what was set, else the default.
/// MessageRetentionPeriod is the core's retention, whichever door set it.
pub fn value(definition: &QueueDefinition, name: &str) -> i64 {
    if name == MESSAGE_RETENTION_PERIOD
        && let Some(retention_ms) = definition.policy.retention_ms
    {
        return retention_ms / 1000;
    }
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
pub fn matches(definition: &QueueDefinition, requested: &Requested) -> bool {
    requested.settings.iter().all(|(name, wanted)| value(definition, name) == *wanted)
        && requested
            .redrive
            .as_ref()
            .is_none_or(|wanted| Redrive::of(definition).as_ref() == Some(wanted))
        && requested
            .redrive_allow
            .as_ref()
            .is_none_or(|wanted| RedriveAllow::of(definition) == *wanted)
        && is_fifo(definition) == requested.fifo
        && requested
            .content_based_deduplication
            .is_none_or(|wanted| content_based_deduplication(definition) == wanted)
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
        assert_eq!(parsed.redrive, None);
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
        assert!(parse(&attributes(&[("FifoQueue", "maybe")])).is_err());
        assert!(
            parse(&attributes(&[("ContentBasedDeduplication", "true")])).is_err(),
            "standard queues have no such thing"
        );
        assert!(parse(&attributes(&[("FifoQueue", "false")])).is_ok());
    }

    #[test]
    fn message_retention_period_becomes_the_core_retention_in_milliseconds() {
        let created = definition(&parse(&attributes(&[("MessageRetentionPeriod", "60")])).expect("valid"));
        assert_eq!(created.policy.retention_ms, Some(60_000));
        assert_eq!(value(&created, "MessageRetentionPeriod"), 60);
        let (changed, _) = updated(&created, &attributes(&[("MessageRetentionPeriod", "120")])).expect("valid");
        assert_eq!(changed.policy.retention_ms, Some(120_000));
        // An SQS queue from before the typed policy.
        let legacy = conveyor_rabbit_args::definition(
            "q",
            true,
            false,
            [("x-message-retention-ms", "60000"), ("sqs.MessageRetentionPeriod", "60")]
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        )
        .expect("valid");
        let (changed, _) = updated(&legacy, &attributes(&[("MessageRetentionPeriod", "120")])).expect("valid");
        assert_eq!(changed.policy.retention_ms, Some(120_000));
        assert_eq!(
            changed.arguments.get("x-message-retention-ms").map(String::as_str),
            Some("120000"),
            "the arguments say what the policy does"
        );
        assert!(
            parse(&attributes(&[("MessageRetentionPeriod", "59")])).is_err(),
            "60 s is the least"
        );
    }

    #[test]
    fn set_attributes_replace_given_ones_remove_an_empty_redrive_policy_and_keep_fifo() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":2}"#;
        let standard = definition(&parse(&attributes(&[("VisibilityTimeout", "5"), ("DelaySeconds", "1")])).expect("valid"));
        let (changed, _) = updated(&standard, &attributes(&[("VisibilityTimeout", "7"), ("RedrivePolicy", policy)])).expect("valid");
        assert_eq!(value(&changed, "VisibilityTimeout"), 7);
        assert_eq!(value(&changed, "DelaySeconds"), 1, "attributes not given stay");
        assert_eq!(Redrive::of(&changed).map(|redrive| redrive.max_receive_count), Some(2));
        let (removed, _) = updated(&changed, &attributes(&[("RedrivePolicy", "")])).expect("valid");
        assert_eq!(Redrive::of(&removed), None, "an empty RedrivePolicy removes it");
        assert_eq!(removed.policy.delivery_limit, None);
        assert!(updated(&standard, &attributes(&[("FifoQueue", "true")])).is_err());
        assert!(updated(&standard, &attributes(&[("ContentBasedDeduplication", "true")])).is_err());
        let fifo = definition(&parse(&attributes(&[("FifoQueue", "true")])).expect("valid"));
        let (changed, _) = updated(&fifo, &attributes(&[("ContentBasedDeduplication", "true")])).expect("valid");
        assert!(content_based_deduplication(&changed));
        assert!(is_fifo(&changed));
    }

    #[test]
    fn a_fifo_queue_is_a_core_queue_with_message_groups() {
        let parsed = parse(&attributes(&[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")])).expect("valid");
        let definition = definition(&parsed);
        assert!(definition.policy.message_groups && definition.policy.message_delays);
        assert!(is_fifo(&definition));
        assert!(content_based_deduplication(&definition));
        assert!(matches(&definition, &parsed));
        assert!(
            !matches(&definition, &parse(&attributes(&[])).expect("valid")),
            "a FIFO queue is not a standard one"
        );
    }

    #[test]
    fn redrive_allow_policies_parse_round_trip_and_decide_which_sources_may_use_the_queue() {
        let by_queue = r#"{"redrivePermission":"byQueue","sourceQueueArns":["arn:aws:sqs:us-east-1:000000000000:orders"]}"#;
        let parsed = parse(&attributes(&[("RedriveAllowPolicy", by_queue)])).expect("valid");
        let definition = definition(&parsed);
        let allow = RedriveAllow::of(&definition).expect("kept");
        assert!(allow.allows("orders") && !allow.allows("billing"));
        assert_eq!(RedriveAllow::parse(&allow.to_json("123456789012")).expect("round trip"), allow);
        assert!(matches(&definition, &parsed));
        assert!(
            !RedriveAllow::parse(r#"{"redrivePermission":"denyAll"}"#)
                .expect("valid")
                .allows("orders")
        );
        assert!(
            RedriveAllow::parse(r#"{"redrivePermission":"allowAll"}"#)
                .expect("valid")
                .allows("orders")
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("arn:aws:sqs:us-east-1:000000000000:q{i}")).collect();
        for bad in [
            "nope".to_owned(),
            r#"{"redrivePermission":"maybe"}"#.to_owned(),
            r#"{"redrivePermission":"byQueue"}"#.to_owned(),
            r#"{"redrivePermission":"byQueue","sourceQueueArns":["orders"]}"#.to_owned(),
            r#"{"redrivePermission":"denyAll","sourceQueueArns":["arn:aws:sqs:us-east-1:0:q"]}"#.to_owned(),
            serde_json::json!({"redrivePermission": "byQueue", "sourceQueueArns": eleven}).to_string(),
        ] {
            assert!(parse(&attributes(&[("RedriveAllowPolicy", &bad)])).is_err(), "{bad}");
        }
        let (changed, _) = updated(&definition, &attributes(&[("RedriveAllowPolicy", "")])).expect("valid");
        assert_eq!(RedriveAllow::of(&changed), None, "an empty policy removes it");
    }

    #[test]
    fn a_redrive_policy_becomes_the_queues_dead_letter_route_and_delivery_limit() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:orders-dlq","maxReceiveCount":"3"}"#;
        let parsed = parse(&attributes(&[("RedrivePolicy", policy)])).expect("valid");
        let definition = definition(&parsed);
        assert_eq!(definition.policy.dead_letter_exchange.as_deref(), Some(""));
        assert_eq!(definition.policy.dead_letter_routing_key.as_deref(), Some("orders-dlq"));
        assert_eq!(definition.policy.delivery_limit, Some(3));
        assert_eq!(
            conveyor_rabbit_args::policy(&definition.arguments).expect("valid"),
            definition.policy,
            "the arguments RabbitMQ clients see say what the policy does"
        );
        assert_eq!(Redrive::of(&definition), parsed.redrive);
        assert!(matches(&definition, &parsed));
        for bad in [
            r#"{"maxReceiveCount":3}"#,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:q","maxReceiveCount":0}"#,
            "nope",
        ] {
            assert!(parse(&attributes(&[("RedrivePolicy", bad)])).is_err(), "{bad}");
        }
    }
}
