//! Headers-exchange matching, RabbitMQ's rules: a binding's arguments are
//! compared with a message's headers under `x-match` (`all`, the default,
//! `any`, and RabbitMQ 3.10's `all-with-x` / `any-with-x`). Knows field
//! tables only; nothing about exchanges or destinations.

use super::header_value::{FieldTable, HeaderValue};

/// The binding argument that selects the matching mode.
pub const X_MATCH: &str = "x-match";

/// How a headers binding's arguments must match a message's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XMatch {
    /// Every argument matches (arguments named `x-…` are ignored).
    #[default]
    All,
    /// At least one argument matches (arguments named `x-…` are ignored).
    Any,
    /// Like `All`, but `x-…` arguments (other than `x-match`) count too.
    AllWithX,
    /// Like `Any`, but `x-…` arguments (other than `x-match`) count too.
    AnyWithX,
}

impl XMatch {
    /// The mode a binding's arguments ask for. `Err` carries the reason a
    /// binding with this `x-match` is refused (RabbitMQ refuses it at bind
    /// time with PRECONDITION_FAILED).
    pub fn of(arguments: &FieldTable) -> Result<XMatch, String> {
        let Some(value) = arguments.get(X_MATCH) else {
            return Ok(XMatch::All);
        };
        // RabbitMQ accepts a long string only, not a byte array.
        let HeaderValue::String(text) = value else {
            return Err(format!("x-match must be a string, not {value:?}"));
        };
        match text.as_str() {
            "all" => Ok(XMatch::All),
            "any" => Ok(XMatch::Any),
            "all-with-x" => Ok(XMatch::AllWithX),
            "any-with-x" => Ok(XMatch::AnyWithX),
            _ => Err(format!("invalid x-match {value:?}; expected all, any, all-with-x or any-with-x")),
        }
    }

    fn counts_x_arguments(self) -> bool {
        matches!(self, XMatch::AllWithX | XMatch::AnyWithX)
    }

    fn needs_all(self) -> bool {
        matches!(self, XMatch::All | XMatch::AllWithX)
    }
}

/// Whether a message with `headers` matches a headers binding with
/// `arguments`. A void argument matches any value of a header that is
/// present; other arguments match by [`HeaderValue::matches`]. With no
/// argument left to compare, `all` matches every message and `any` none, as
/// in RabbitMQ. An invalid `x-match` (refused at bind time) counts as `all`.
pub fn headers_match(arguments: &FieldTable, headers: &FieldTable) -> bool {
    let mode = XMatch::of(arguments).unwrap_or_default();
    let needs_all = mode.needs_all();
    // Bounded by the number of arguments.
    for (name, expected) in arguments {
        if name == X_MATCH || (name.starts_with("x-") && !mode.counts_x_arguments()) {
            continue;
        }
        let matched = match headers.get(name) {
            None => false,
            Some(actual) => matches!(expected, HeaderValue::Void) || expected.matches(actual),
        };
        if matched && !needs_all {
            return true;
        }
        if !matched && needs_all {
            return false;
        }
    }
    needs_all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, HeaderValue)]) -> FieldTable {
        entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn headers_all_needs_every_argument() {
        let binding = table(&[("format", "pdf".into()), ("type", "report".into())]);
        assert!(headers_match(
            &binding,
            &table(&[("format", "pdf".into()), ("type", "report".into()), ("extra", HeaderValue::I8(1))])
        ));
        assert!(!headers_match(&binding, &table(&[("format", "pdf".into())])));
        assert!(!headers_match(
            &binding,
            &table(&[("format", "pdf".into()), ("type", "log".into())])
        ));
    }

    #[test]
    fn headers_any_matches_one_of_the_arguments() {
        let binding = table(&[("x-match", "any".into()), ("format", "pdf".into()), ("type", "report".into())]);
        assert!(headers_match(&binding, &table(&[("type", "report".into())])));
        assert!(headers_match(&binding, &table(&[("format", "pdf".into()), ("type", "log".into())])));
        assert!(!headers_match(&binding, &table(&[("format", "zip".into())])));
        assert!(!headers_match(&binding, &FieldTable::new()));
    }

    #[test]
    fn headers_x_arguments_are_ignored_unless_with_x() {
        let headers = table(&[("x-region", "eu".into())]);
        let plain_all = table(&[("x-region", "us".into())]);
        assert!(headers_match(&plain_all, &headers), "all with only x- arguments matches everything");
        let plain_any = table(&[("x-match", "any".into()), ("x-region", "eu".into())]);
        assert!(!headers_match(&plain_any, &headers), "any with only x- arguments matches nothing");

        let all_with_x = table(&[("x-match", "all-with-x".into()), ("x-region", "us".into())]);
        assert!(!headers_match(&all_with_x, &headers));
        let any_with_x = table(&[("x-match", "any-with-x".into()), ("x-region", "eu".into()), ("k", "v".into())]);
        assert!(headers_match(&any_with_x, &headers));
    }

    #[test]
    fn headers_void_argument_matches_presence_only() {
        let binding = table(&[("trace", HeaderValue::Void)]);
        assert!(headers_match(&binding, &table(&[("trace", HeaderValue::I64(42))])));
        assert!(headers_match(&binding, &table(&[("trace", HeaderValue::Void)])));
        assert!(!headers_match(&binding, &table(&[("other", HeaderValue::Void)])));
    }

    #[test]
    fn headers_compare_integers_of_any_width() {
        let binding = table(&[("priority", HeaderValue::I8(1))]);
        assert!(headers_match(&binding, &table(&[("priority", HeaderValue::I64(1))])));
        assert!(!headers_match(&binding, &table(&[("priority", HeaderValue::I64(2))])));
    }

    #[test]
    fn x_match_must_be_a_known_string() {
        assert_eq!(XMatch::of(&FieldTable::new()), Ok(XMatch::All));
        assert_eq!(XMatch::of(&table(&[("x-match", "any-with-x".into())])), Ok(XMatch::AnyWithX));
        assert!(XMatch::of(&table(&[("x-match", "some".into())])).is_err());
        assert!(XMatch::of(&table(&[("x-match", HeaderValue::Bool(true))])).is_err());
        assert!(XMatch::of(&table(&[("x-match", HeaderValue::Bytes(b"all".to_vec()))])).is_err());
    }
}
