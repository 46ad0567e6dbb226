//! Topic name rules, the same as Kafka's: 1 to 249 characters from
//! `[a-zA-Z0-9._-]`, and not `.` or `..` (they would be directory names);
//! for a new topic also not one of Kafka's internal names and not a name
//! that differs from an existing one only by `.` against `_` (the two
//! collide in metric names). Knows names only, not which topics exist.

/// Longest legal topic name (Kafka's limit, which keeps partition directory
/// names under common filesystem limits).
pub const TOPIC_NAME_CHARS_MAX: usize = 249;

/// Why a topic name is illegal; the text is what clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    #[error("topic name is empty")]
    Empty,
    #[error("topic name cannot be \".\" or \"..\"")]
    Dots,
    #[error("topic name is {0} characters long; at most 249 are allowed")]
    TooLong(usize),
    #[error("topic name {0:?} is illegal: only ASCII alphanumerics, '.', '_' and '-' are allowed")]
    IllegalCharacter(String),
    #[error("topic name {0:?} is reserved for Kafka's internal topics")]
    Reserved(String),
    /// Kafka's own message, which tools show as it is.
    #[error("Topic '{name}' collides with existing topic: {existing}")]
    Collides { name: String, existing: String },
}

/// Kafka's internal topics (`Topic.INTERNAL_TOPICS`, the KRaft metadata log
/// and tiered storage's metadata topic): clients treat them specially, so a
/// user topic by one of these names would mislead them.
pub const RESERVED_TOPIC_NAMES: [&str; 5] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
    "__cluster_metadata",
    "__remote_log_metadata",
];

/// Kafka's `Topic.unifyCollisionChars`: `.` and `_` become the same
/// character, so `a.b` and `a_b` map to one key.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// The checks for a topic about to be created: a legal name, not reserved,
/// and not colliding with any of `existing` (Kafka's CreateTopics refuses all
/// three with INVALID_TOPIC_EXCEPTION).
pub fn validate_new_topic_name<'a>(name: &str, existing: impl IntoIterator<Item = &'a str>) -> Result<(), TopicNameError> {
    validate_topic_name(name)?;
    if RESERVED_TOPIC_NAMES.contains(&name) {
        return Err(TopicNameError::Reserved(name.to_owned()));
    }
    if name.contains(['.', '_']) {
        let key = collision_key(name);
        if let Some(other) = existing.into_iter().find(|other| *other != name && collision_key(other) == key) {
            return Err(TopicNameError::Collides {
                name: name.to_owned(),
                existing: other.to_owned(),
            });
        }
    }
    Ok(())
}

pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::Dots);
    }
    if name.len() > TOPIC_NAME_CHARS_MAX {
        return Err(TopicNameError::TooLong(name.len()));
    }
    if !name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
    {
        return Err(TopicNameError::IllegalCharacter(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_legal_names_pass() {
        for name in ["orders", "order.placed", "a", "A-b_c.9", &"x".repeat(249), "..."] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn internal_names_and_dot_underscore_collisions_are_refused_for_new_topics() {
        for name in RESERVED_TOPIC_NAMES {
            assert_eq!(validate_new_topic_name(name, []), Err(TopicNameError::Reserved(name.to_owned())));
        }
        assert_eq!(validate_new_topic_name("__my_own", []), Ok(()), "other __ names are the user's");
        let existing = ["a.b", "orders"];
        let collides = validate_new_topic_name("a_b", existing);
        assert_eq!(
            collides.map_err(|error| error.to_string()),
            Err("Topic 'a_b' collides with existing topic: a.b".to_owned())
        );
        assert!(validate_new_topic_name("a.b", ["a_b"]).is_err());
        assert_eq!(
            validate_new_topic_name("a.b", ["a.b"]),
            Ok(()),
            "the same name is TOPIC_ALREADY_EXISTS, not a collision"
        );
        assert_eq!(validate_new_topic_name("a-b", existing), Ok(()));
        assert!(matches!(
            validate_new_topic_name("a b", existing),
            Err(TopicNameError::IllegalCharacter(_))
        ));
    }

    #[test]
    fn illegal_names_are_refused_with_a_reason() {
        assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
        assert_eq!(validate_topic_name("."), Err(TopicNameError::Dots));
        assert_eq!(validate_topic_name(".."), Err(TopicNameError::Dots));
        assert_eq!(validate_topic_name(&"x".repeat(250)), Err(TopicNameError::TooLong(250)));
        for name in ["a b", "a/b", "ä", "a*", "tab\t", "new\nline"] {
            assert!(
                matches!(validate_topic_name(name), Err(TopicNameError::IllegalCharacter(_))),
                "{name}"
            );
        }
    }
}
