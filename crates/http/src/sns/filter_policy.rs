//! SNS subscription filter policies: parsing (with SNS's refusals) and
//! matching a message against one. A policy is a JSON object whose keys are
//! ANDed; each key holds a list of conditions that are ORed: exact strings,
//! numbers, booleans or null, `prefix`, `suffix`, `equals-ignore-case`,
//! `anything-but` (values, or a prefix or suffix), `numeric` comparisons and
//! ranges, `exists`; `$or` holds alternative policies. A list-valued
//! attribute (`String.Array`, or an array in the body) matches when any of
//! its elements does. With scope `MessageBody`, keys may nest like the JSON
//! body. Knows JSON and message attributes, nothing about topics or queues.

use serde_json::{Map, Value};

use crate::sqs::message::MessageAttributes;

/// Longest policy SNS takes.
pub const POLICY_BYTES_MAX: usize = 256 * 1024;
/// SNS's bound on a policy's complexity: the number of combinations of one
/// condition per key (summed over `$or` alternatives).
const COMBINATIONS_MAX: u64 = 150;

/// What a policy is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "MessageAttributes" => Some(Scope::MessageAttributes),
            "MessageBody" => Some(Scope::MessageBody),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessageAttributes => "MessageAttributes",
            Scope::MessageBody => "MessageBody",
        }
    }
}

/// A parsed filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    rules: Vec<(String, Rule)>,
    /// `$or`: at least one of these must match too.
    any_of: Vec<FilterPolicy>,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// A nested object of the body (scope `MessageBody` only).
    Nested(FilterPolicy),
    /// Any of these.
    Conditions(Vec<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Equals(Scalar),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Scalar>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    /// All of these comparisons (a range is two).
    Numeric(Vec<(Comparison, f64)>),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    String(String),
    Number(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    fn parse(text: &str) -> Option<Comparison> {
        Some(match text {
            "=" => Comparison::Equal,
            "<" => Comparison::Less,
            "<=" => Comparison::LessOrEqual,
            ">" => Comparison::Greater,
            ">=" => Comparison::GreaterOrEqual,
            _ => return None,
        })
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparison::Equal => value == bound,
            Comparison::Less => value < bound,
            Comparison::LessOrEqual => value <= bound,
            Comparison::Greater => value > bound,
            Comparison::GreaterOrEqual => value >= bound,
        }
    }

    fn is_lower_bound(self) -> bool {
        matches!(self, Comparison::Greater | Comparison::GreaterOrEqual)
    }

    fn is_upper_bound(self) -> bool {
        matches!(self, Comparison::Less | Comparison::LessOrEqual)
    }
}

type Parsed<T> = Result<T, String>;

impl FilterPolicy {
    /// Parses a policy; the error says what is wrong, for SNS's
    /// `InvalidParameter: FilterPolicy` message.
    pub fn parse(text: &str, scope: Scope) -> Parsed<FilterPolicy> {
        if text.len() > POLICY_BYTES_MAX {
            return Err(format!("Filter policy is longer than {POLICY_BYTES_MAX} bytes"));
        }
        let value: Value = serde_json::from_str(text).map_err(|error| format!("failed to parse JSON: {error}"))?;
        let Value::Object(object) = value else {
            return Err("Filter policy must be a JSON object".to_owned());
        };
        let policy = FilterPolicy::from_object(&object, scope, 0)?;
        let combinations = policy.combinations();
        if combinations > COMBINATIONS_MAX {
            return Err(format!(
                "Filter policy is too complex: {combinations} combinations, at most {COMBINATIONS_MAX}"
            ));
        }
        Ok(policy)
    }

    fn from_object(object: &Map<String, Value>, scope: Scope, depth: usize) -> Parsed<FilterPolicy> {
        let mut policy = FilterPolicy {
            rules: Vec::new(),
            any_of: Vec::new(),
        };
        for (key, value) in object {
            if key == "$or" {
                let alternatives = value
                    .as_array()
                    .filter(|alternatives| alternatives.len() >= 2)
                    .ok_or("\"$or\" takes a list of at least two policies")?;
                for alternative in alternatives {
                    let object = alternative.as_object().ok_or("each \"$or\" alternative must be an object")?;
                    policy.any_of.push(FilterPolicy::from_object(object, scope, depth)?);
                }
                continue;
            }
            let rule = match value {
                Value::Array(conditions) if !conditions.is_empty() => Rule::Conditions(
                    conditions
                        .iter()
                        .map(|condition| Condition::parse(key, condition))
                        .collect::<Parsed<_>>()?,
                ),
                Value::Array(_) => return Err(format!("Empty arrays are not allowed (key {key:?})")),
                Value::Object(nested) if scope == Scope::MessageBody => {
                    if depth >= 5 {
                        return Err("Filter policy nests deeper than 5 levels".to_owned());
                    }
                    Rule::Nested(FilterPolicy::from_object(nested, scope, depth + 1)?)
                }
                Value::Object(_) => {
                    return Err(format!(
                        "Filter policy scope MessageAttributes does not support nested filter policy (key {key:?})"
                    ));
                }
                _ => return Err(format!("Match value must be a list of conditions (key {key:?})")),
            };
            policy.rules.push((key.clone(), rule));
        }
        Ok(policy)
    }

    fn combinations(&self) -> u64 {
        let own = self.rules.iter().fold(1u64, |product, (_, rule)| {
            let count = match rule {
                Rule::Nested(nested) => nested.combinations(),
                Rule::Conditions(conditions) => conditions.len() as u64,
            };
            product.saturating_mul(count)
        });
        if self.any_of.is_empty() {
            own
        } else {
            let alternatives = self
                .any_of
                .iter()
                .fold(0u64, |sum, policy| sum.saturating_add(policy.combinations()));
            own.saturating_mul(alternatives)
        }
    }

    /// Whether `message` (attributes as [`attributes_as_json`] gives them,
    /// or the body's top-level object) passes the policy.
    pub fn matches(&self, message: &Map<String, Value>) -> bool {
        self.rules.iter().all(|(key, rule)| rule.matches(message.get(key)))
            && (self.any_of.is_empty() || self.any_of.iter().any(|policy| policy.matches(message)))
    }
}

impl Rule {
    fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Rule::Nested(policy) => match value {
                Some(Value::Object(object)) => policy.matches(object),
                // Absent: only conditions like `exists: false` can match.
                _ => policy.matches(&Map::new()),
            },
            Rule::Conditions(conditions) => conditions.iter().any(|condition| condition.matches(value)),
        }
    }
}

impl Condition {
    fn parse(key: &str, value: &Value) -> Parsed<Condition> {
        if let Some(scalar) = Scalar::parse(value) {
            return Ok(Condition::Equals(scalar));
        }
        let Some(object) = value.as_object() else {
            return Err(format!(
                "Match value of {key:?} must be a string, number, boolean, null or an operator object"
            ));
        };
        let mut operators = object.iter();
        let (Some((operator, operand)), None) = (operators.next(), operators.next()) else {
            return Err(format!("An operator object of {key:?} must have exactly one operator"));
        };
        let string = |what: &str| -> Parsed<String> {
            operand
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{what} of {key:?} takes a string"))
        };
        match operator.as_str() {
            "prefix" => Ok(Condition::Prefix(string("prefix")?)),
            "suffix" => Ok(Condition::Suffix(string("suffix")?)),
            "equals-ignore-case" => Ok(Condition::EqualsIgnoreCase(string("equals-ignore-case")?)),
            "exists" => operand
                .as_bool()
                .map(Condition::Exists)
                .ok_or_else(|| format!("exists of {key:?} takes true or false")),
            "anything-but" => Condition::parse_anything_but(key, operand),
            "numeric" => Condition::parse_numeric(key, operand),
            other => Err(format!("Unrecognized match type {other:?} (key {key:?})")),
        }
    }

    fn parse_anything_but(key: &str, operand: &Value) -> Parsed<Condition> {
        match operand {
            Value::String(_) | Value::Number(_) => Ok(Condition::AnythingBut(Scalar::parse(operand).into_iter().collect())),
            Value::Array(values) if !values.is_empty() => values
                .iter()
                .map(|value| match value {
                    Value::String(_) | Value::Number(_) => Scalar::parse(value).ok_or_else(String::new),
                    _ => Err(format!("anything-but of {key:?} takes strings or numbers")),
                })
                .collect::<Parsed<Vec<Scalar>>>()
                .map(Condition::AnythingBut),
            Value::Object(object) if object.len() == 1 => match object.iter().next() {
                Some((operator, Value::String(text))) if operator == "prefix" => Ok(Condition::AnythingButPrefix(text.clone())),
                Some((operator, Value::String(text))) if operator == "suffix" => Ok(Condition::AnythingButSuffix(text.clone())),
                _ => Err(format!("anything-but of {key:?} takes a prefix or suffix object with a string")),
            },
            _ => Err(format!(
                "anything-but of {key:?} takes a string, a number, a list of them, or a prefix"
            )),
        }
    }

    fn parse_numeric(key: &str, operand: &Value) -> Parsed<Condition> {
        let invalid = || format!("numeric of {key:?} takes [op, number] or [lower op, number, upper op, number]");
        let items = operand.as_array().ok_or_else(invalid)?;
        let mut comparisons = Vec::new();
        for pair in items.chunks(2) {
            let [op, bound] = pair else {
                return Err(invalid());
            };
            let op = op.as_str().and_then(Comparison::parse).ok_or_else(invalid)?;
            let bound = bound.as_f64().filter(|bound| bound.is_finite()).ok_or_else(invalid)?;
            comparisons.push((op, bound));
        }
        match comparisons.as_slice() {
            [_] => {}
            [(lower, low), (upper, high)] if lower.is_lower_bound() && upper.is_upper_bound() && low < high => {}
            _ => return Err(invalid()),
        }
        Ok(Condition::Numeric(comparisons))
    }

    fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Condition::Exists(exists), value) => value.is_some() == *exists,
            (_, None) => false,
            (_, Some(Value::Array(items))) => items.iter().any(|item| self.matches_one(item)),
            (_, Some(value)) => self.matches_one(value),
        }
    }

    fn matches_one(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Condition::Equals(scalar) => scalar.equals(value),
            Condition::Prefix(prefix) => text.is_some_and(|text| text.starts_with(prefix.as_str())),
            Condition::Suffix(suffix) => text.is_some_and(|text| text.ends_with(suffix.as_str())),
            Condition::EqualsIgnoreCase(expected) => text.is_some_and(|text| text.to_lowercase() == expected.to_lowercase()),
            Condition::AnythingBut(excluded) => !excluded.iter().any(|scalar| scalar.equals(value)),
            Condition::AnythingButPrefix(prefix) => text.is_some_and(|text| !text.starts_with(prefix.as_str())),
            Condition::AnythingButSuffix(suffix) => text.is_some_and(|text| !text.ends_with(suffix.as_str())),
            Condition::Numeric(comparisons) => value
                .as_f64()
                .is_some_and(|number| comparisons.iter().all(|(op, bound)| op.holds(number, *bound))),
            Condition::Exists(exists) => *exists,
        }
    }
}

impl Scalar {
    fn parse(value: &Value) -> Option<Scalar> {
        Some(match value {
            Value::String(text) => Scalar::String(text.clone()),
            Value::Number(number) => Scalar::Number(number.as_f64()?),
            Value::Bool(flag) => Scalar::Bool(*flag),
            Value::Null => Scalar::Null,
            _ => return None,
        })
    }

    /// Strings match strings, numbers match numbers by value.
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Scalar::String(expected), Value::String(text)) => expected == text,
            (Scalar::Number(expected), Value::Number(number)) => number.as_f64() == Some(*expected),
            (Scalar::Bool(expected), Value::Bool(flag)) => expected == flag,
            (Scalar::Null, Value::Null) => true,
            _ => false,
        }
    }
}

/// Message attributes as a policy with scope `MessageAttributes` sees them:
/// `String` values as strings, `Number` values as numbers, `String.Array`
/// values as their JSON array. `Binary` attributes are not matched by SNS
/// and are left out.
pub fn attributes_as_json(attributes: &MessageAttributes) -> Map<String, Value> {
    let mut object = Map::new();
    for (name, attribute) in attributes {
        let data_type = attribute.data_type.as_str();
        let Some(text) = attribute.string_value.as_deref() else {
            continue;
        };
        let value = if data_type.starts_with("Number") {
            match text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(number) => Value::Number(number),
                None => Value::String(text.to_owned()),
            }
        } else if data_type == "String.Array" {
            match serde_json::from_str(text) {
                Ok(array @ Value::Array(_)) => array,
                _ => Value::String(text.to_owned()),
            }
        } else if data_type.starts_with("String") {
            Value::String(text.to_owned())
        } else {
            continue;
        };
        object.insert(name.clone(), value);
    }
    object
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn policy(value: Value) -> FilterPolicy {
        FilterPolicy::parse(&value.to_string(), Scope::MessageAttributes).expect("valid policy")
    }

    fn message(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn exact_values_in_a_list_are_ored_and_keys_are_anded() {
        let p = policy(json!({"color": ["red", "blue"], "size": [10]}));
        assert!(p.matches(&message(json!({"color": "red", "size": 10.0}))));
        assert!(p.matches(&message(json!({"color": "blue", "size": 10}))));
        assert!(!p.matches(&message(json!({"color": "green", "size": 10}))));
        assert!(!p.matches(&message(json!({"color": "red"}))));
        // A number does not match a string of its digits.
        assert!(!p.matches(&message(json!({"color": "red", "size": "10"}))));
    }

    #[test]
    fn prefix_suffix_anything_but_and_ignore_case() {
        let p = policy(json!({"region": [{"prefix": "us-"}], "name": [{"anything-but": ["bob", "eve"]}]}));
        assert!(p.matches(&message(json!({"region": "us-east", "name": "alice"}))));
        assert!(!p.matches(&message(json!({"region": "eu-west", "name": "alice"}))));
        assert!(!p.matches(&message(json!({"region": "us-east", "name": "bob"}))));
        // anything-but needs the attribute to be there.
        assert!(!p.matches(&message(json!({"region": "us-east"}))));
        let p = policy(json!({"f": [{"anything-but": {"prefix": "tmp"}}, {"suffix": ".png"}, {"equals-ignore-case": "ABC"}]}));
        assert!(p.matches(&message(json!({"f": "report"}))));
        assert!(p.matches(&message(json!({"f": "tmp.png"}))));
        assert!(p.matches(&message(json!({"f": "abc"}))));
        assert!(!p.matches(&message(json!({"f": "tmpfile"}))));
    }

    #[test]
    fn numeric_ranges_and_exists() {
        let p = policy(json!({"price": [{"numeric": [">=", 10, "<", 20]}], "coupon": [{"exists": false}]}));
        assert!(p.matches(&message(json!({"price": 10}))));
        assert!(p.matches(&message(json!({"price": 19.5}))));
        assert!(!p.matches(&message(json!({"price": 20}))));
        assert!(!p.matches(&message(json!({"price": "15"}))));
        assert!(!p.matches(&message(json!({"price": 15, "coupon": "x"}))));
        let p = policy(json!({"n": [{"numeric": ["=", 3]}], "k": [{"exists": true}]}));
        assert!(p.matches(&message(json!({"n": 3, "k": 1}))));
        assert!(!p.matches(&message(json!({"n": 3}))));
    }

    #[test]
    fn array_attributes_match_when_any_element_does_and_or_takes_alternatives() {
        let p = policy(json!({"tags": ["urgent"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}));
        assert!(p.matches(&message(json!({"tags": ["low", "urgent"], "b": "2"}))));
        assert!(!p.matches(&message(json!({"tags": ["low", "urgent"], "c": "3"}))));
        assert!(!p.matches(&message(json!({"tags": ["low"], "a": "1"}))));
    }

    #[test]
    fn body_scope_matches_nested_keys_attribute_scope_refuses_them() {
        let text = json!({"order": {"kind": ["book"]}}).to_string();
        assert!(FilterPolicy::parse(&text, Scope::MessageAttributes).is_err());
        let p = FilterPolicy::parse(&text, Scope::MessageBody).expect("valid");
        assert!(p.matches(&message(json!({"order": {"kind": "book"}}))));
        assert!(!p.matches(&message(json!({"order": {"kind": "pen"}}))));
        assert!(!p.matches(&message(json!({"order": "book"}))));
    }

    #[test]
    fn malformed_policies_are_refused_with_a_reason() {
        for bad in [
            "not json",
            "[]",
            r#"{"a": "x"}"#,
            r#"{"a": []}"#,
            r#"{"a": [{"prefix": 1}]}"#,
            r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#,
            r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#,
            r#"{"a": [{"numeric": ["~", 5]}]}"#,
            r#"{"a": [{"cidr": "10.0.0.0/8"}]}"#,
            r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
            r#"{"$or": [{"a": ["1"]}]}"#,
        ] {
            assert!(FilterPolicy::parse(bad, Scope::MessageAttributes).is_err(), "{bad}");
        }
        let values: Vec<String> = (0..13).map(|i| i.to_string()).collect();
        let complex = json!({"a": values, "b": values});
        assert!(FilterPolicy::parse(&complex.to_string(), Scope::MessageAttributes).is_err());
    }

    #[test]
    fn attributes_become_strings_numbers_and_arrays() {
        use crate::sqs::message::MessageAttributeValue;
        let attribute = |data_type: &str, value: &str| MessageAttributeValue {
            data_type: data_type.to_owned(),
            string_value: Some(value.to_owned()),
            binary_value: None,
            string_list_values: None,
            binary_list_values: None,
        };
        let attributes = MessageAttributes::from([
            ("s".to_owned(), attribute("String", "x")),
            ("n".to_owned(), attribute("Number", "1.5")),
            ("a".to_owned(), attribute("String.Array", r#"["p", 2]"#)),
        ]);
        assert_eq!(
            Value::Object(attributes_as_json(&attributes)),
            json!({"s": "x", "n": 1.5, "a": ["p", 2]})
        );
    }

    proptest! {
        #[test]
        fn a_policy_of_a_messages_own_value_matches_it_and_anything_but_does_not(value in "[a-z0-9]{1,12}", other in "[a-z0-9]{1,12}") {
            let own = policy(json!({"k": [value.clone()]}));
            let but = policy(json!({"k": [{"anything-but": value.clone()}]}));
            let sample = message(json!({"k": value.clone()}));
            prop_assert!(own.matches(&sample));
            prop_assert!(!but.matches(&sample));
            let different = message(json!({"k": other.clone()}));
            prop_assert_eq!(own.matches(&different), other == value);
            prop_assert_eq!(but.matches(&different), other != value);
        }

        #[test]
        fn numeric_ranges_match_exactly_the_numbers_inside(low in -1000i32..1000, width in 1i32..500, n in -2000i32..2000) {
            let high = low + width;
            let p = policy(json!({"k": [{"numeric": [">=", low, "<", high]}]}));
            prop_assert_eq!(p.matches(&message(json!({"k": n}))), low <= n && n < high);
        }
    }
}
