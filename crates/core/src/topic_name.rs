//! Topic name rules, the same as Kafka's: 1 to 249 characters from
//! `[a-zA-Z0-9._-]`, and not `.` or `..` (they would be directory names).

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
