//! What a KIP-848 member's subscription resolves to: its topic names, plus
//! the topics its `SubscribedTopicRegex` matches among those that exist
//! now. Owns the regex's syntax and matching rules; knows topic names and
//! shapes (through [`TopicLookup`]), nothing of epochs or assignments.
//!
//! Kafka compiles the regex with RE2/J and requires a whole-name match
//! (`Matcher.matches()`); the `regex` crate is the same family (no
//! backreferences or look-around, linear time) and the pattern is anchored
//! here to match whole names. Where they differ: `\d`, `\w`, `\s` and `\b`
//! are Unicode-aware here and ASCII in RE2/J; RE2/J's `\Q…\E` quoting and
//! `\C` are not supported; and a compiled pattern is capped at
//! [`REGEX_COMPILED_BYTES_MAX`].

use std::collections::BTreeSet;

use regex::{Regex, RegexBuilder};

use super::assignor::TopicShape;
use super::consumer_group::ConsumerGroupError;

/// The topics a group's members may subscribe to, as the caller sees them
/// (topics the client may not describe are absent).
pub trait TopicLookup {
    /// The shape of the topic named `name`, `None` when it does not exist.
    fn shape(&self, name: &str) -> Option<TopicShape>;
    /// The names of every topic, for regex subscriptions.
    fn names(&self) -> Vec<String>;
}

/// A bound on one member's compiled regex, so a hostile pattern cannot take
/// the coordinator's memory.
pub const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;

/// A member's `SubscribedTopicRegex`, compiled.
#[derive(Debug, Clone)]
pub struct SubscribedRegex {
    source: String,
    pattern: Regex,
}

impl PartialEq for SubscribedRegex {
    fn eq(&self, other: &SubscribedRegex) -> bool {
        self.source == other.source
    }
}

impl Eq for SubscribedRegex {}

impl SubscribedRegex {
    /// Compiles `source` to match whole topic names; a pattern that does not
    /// compile is Kafka's INVALID_REGULAR_EXPRESSION.
    pub fn parse(source: &str) -> Result<SubscribedRegex, ConsumerGroupError> {
        let pattern = RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(REGEX_COMPILED_BYTES_MAX)
            .build()
            .map_err(|error| {
                ConsumerGroupError::InvalidRegularExpression(format!(
                    "SubscribedTopicRegex `{source}` is not a valid regular expression: {error}."
                ))
            })?;
        Ok(SubscribedRegex {
            source: source.to_owned(),
            pattern,
        })
    }

    /// The pattern as the client sent it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names among `names` this pattern matches whole.
    pub fn matching(&self, names: &[String]) -> BTreeSet<String> {
        names.iter().filter(|name| self.pattern.is_match(name)).cloned().collect()
    }
}

/// A topic lookup for tests: one topic, "t", with four partitions.
#[cfg(test)]
pub(crate) mod fixtures {
    use uuid::Uuid;

    use super::TopicLookup;
    use crate::group::consumer_protocol::TopicShape;

    /// The id of the one topic.
    pub(crate) const TOPIC: Uuid = Uuid::from_u128(7);

    /// One topic, "t", with four partitions.
    pub(crate) struct OneTopic;

    impl TopicLookup for OneTopic {
        fn shape(&self, name: &str) -> Option<TopicShape> {
            (name == "t").then_some(TopicShape {
                id: TOPIC,
                partition_count: 4,
            })
        }

        fn names(&self) -> Vec<String> {
            vec!["t".to_owned()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_regex_matches_whole_topic_names_only() {
        let regex = SubscribedRegex::parse("orders.*").expect("valid");
        let matched = regex.matching(&names(&["orders", "orders-eu", "old-orders", "payments"]));
        assert_eq!(matched, ["orders".to_owned(), "orders-eu".to_owned()].into());
        // librdkafka's "^prefix.*" form, anchors included, means the same.
        let anchored = SubscribedRegex::parse("^orders.*").expect("valid");
        assert_eq!(
            anchored.matching(&names(&["orders-eu", "x-orders"])),
            ["orders-eu".to_owned()].into()
        );
        // An alternation is anchored as a whole, not only its first branch.
        let alternation = SubscribedRegex::parse("a|b").expect("valid");
        assert_eq!(
            alternation.matching(&names(&["a", "b", "ab", "ba"])),
            ["a".to_owned(), "b".to_owned()].into()
        );
    }

    #[test]
    fn an_invalid_regex_is_refused_with_its_source_in_the_message() {
        let refused = SubscribedRegex::parse("orders[").expect_err("invalid");
        assert!(matches!(&refused, ConsumerGroupError::InvalidRegularExpression(message) if message.contains("orders[")));
        // Backreferences are RE2 syntax errors too.
        assert!(SubscribedRegex::parse(r"(a)\1").is_err());
    }
}
