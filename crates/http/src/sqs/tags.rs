//! SQS queue tags: checked as SQS does and kept as `sqs.tag.<key>` entries
//! in the core queue definition's arguments, so they are catalog events like
//! every other change to a queue and survive a restart.

use std::collections::{BTreeMap, HashMap};

use conveyor_core::catalog::QueueDefinition;

use super::error::SqsError;

const ARGUMENT_PREFIX: &str = "sqs.tag.";
/// SQS's limits: tags per queue, key and value lengths.
const TAGS_MAX: usize = 50;
const KEY_CHARS_MAX: usize = 128;
const VALUE_CHARS_MAX: usize = 256;

/// The queue's tags.
pub fn of(definition: &QueueDefinition) -> BTreeMap<String, String> {
    definition
        .arguments
        .iter()
        .filter_map(|(name, value)| name.strip_prefix(ARGUMENT_PREFIX).map(|key| (key.to_owned(), value.clone())))
        .collect()
}

/// `arguments` with `tags` added (replacing tags of the same key), if the
/// result is within SQS's limits.
pub fn added(arguments: &BTreeMap<String, String>, tags: &HashMap<String, String>) -> Result<BTreeMap<String, String>, SqsError> {
    for (key, value) in tags {
        let key_valid = !key.is_empty() && key.chars().count() <= KEY_CHARS_MAX && !key.starts_with("aws:");
        if !key_valid || value.chars().count() > VALUE_CHARS_MAX {
            return Err(SqsError::InvalidParameterValue(format!(
                "Tag {key:?}: keys are 1 to {KEY_CHARS_MAX} characters (not starting with aws:), values at most {VALUE_CHARS_MAX}."
            )));
        }
    }
    let mut arguments = arguments.clone();
    for (key, value) in tags {
        arguments.insert(format!("{ARGUMENT_PREFIX}{key}"), value.clone());
    }
    let count = arguments.keys().filter(|name| name.starts_with(ARGUMENT_PREFIX)).count();
    if count > TAGS_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Too many tags: a queue has at most {TAGS_MAX} (this would make {count})."
        )));
    }
    Ok(arguments)
}

/// `arguments` without the tags of `keys` (absent ones are ignored, as in SQS).
pub fn removed(arguments: &BTreeMap<String, String>, keys: &[String]) -> BTreeMap<String, String> {
    let mut arguments = arguments.clone();
    for key in keys {
        arguments.remove(&format!("{ARGUMENT_PREFIX}{key}"));
    }
    arguments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_added_replaced_removed_and_limited() {
        let tags = HashMap::from([("team".to_owned(), "orders".to_owned()), ("env".to_owned(), String::new())]);
        let arguments = added(&BTreeMap::new(), &tags).expect("valid");
        let definition = QueueDefinition {
            arguments: arguments.clone(),
            ..QueueDefinition::default()
        };
        assert_eq!(of(&definition).get("team").map(String::as_str), Some("orders"));
        let arguments = added(&arguments, &HashMap::from([("team".to_owned(), "billing".to_owned())])).expect("valid");
        let arguments = removed(&arguments, &["env".to_owned(), "absent".to_owned()]);
        assert_eq!(arguments, BTreeMap::from([("sqs.tag.team".to_owned(), "billing".to_owned())]));
        assert!(added(&arguments, &HashMap::from([("aws:x".to_owned(), "v".to_owned())])).is_err());
        assert!(added(&arguments, &HashMap::from([(String::new(), "v".to_owned())])).is_err());
        let many: HashMap<String, String> = (0..51).map(|index| (format!("k{index}"), "v".to_owned())).collect();
        assert!(added(&BTreeMap::new(), &many).is_err());
    }
}
