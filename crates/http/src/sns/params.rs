//! The AWS query protocol's request parameters: a form-encoded body of
//! flattened names, `Action=Publish&TopicArn=…`, with maps as
//! `Attributes.entry.N.key` / `.value` (message attributes as
//! `MessageAttributes.entry.N.Name` / `.Value.DataType` / `.Value.StringValue`
//! / `.Value.BinaryValue`) and lists as `Entries.member.N.…`, N counting from
//! 1. Knows the encoding, nothing about SNS's actions.

use std::collections::BTreeMap;

use crate::sqs::message::{MessageAttributeValue, MessageAttributes};

use super::error::SnsError;

/// A request carries at most this many parameters (a full PublishBatch of ten
/// entries with ten attributes each is a few hundred).
const PARAMETERS_MAX: usize = 10_000;

/// The decoded parameters of one request (or of one list member).
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Decodes a form body. Invalid percent-encodings and UTF-8 are replaced
    /// (`U+FFFD`) rather than refused, as form decoders do; a later value of
    /// the same name wins.
    pub fn parse(body: &[u8]) -> Result<Params, SnsError> {
        let mut values = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            if values.len() >= PARAMETERS_MAX {
                return Err(SnsError::InvalidParameter(format!(
                    "The request has more than {PARAMETERS_MAX} parameters."
                )));
            }
            values.insert(name.into_owned(), value.into_owned());
        }
        Ok(Params { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A parameter that must be present and non-empty.
    pub fn required(&self, name: &str) -> Result<&str, SnsError> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| SnsError::InvalidParameter(format!("Invalid parameter: {name} Reason: the parameter is required")))
    }

    /// The parameters under `prefix.` with that prefix removed, grouped by
    /// the index after `prefix.<kind>.`, in index order.
    fn indexed(&self, prefix: &str, kind: &str) -> Result<Vec<Params>, SnsError> {
        let start = format!("{prefix}.{kind}.");
        let mut groups: BTreeMap<u32, Params> = BTreeMap::new();
        for (name, value) in self.values.range(start.clone()..) {
            let Some(rest) = name.strip_prefix(&start) else {
                break;
            };
            let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
            let index: u32 = index
                .parse()
                .ok()
                .filter(|index| *index >= 1)
                .ok_or_else(|| SnsError::InvalidParameter(format!("Invalid parameter: {name} Reason: bad list index")))?;
            groups.entry(index).or_default().values.insert(field.to_owned(), value.clone());
        }
        Ok(groups.into_values().collect())
    }

    /// A list: `prefix.member.N.…`, each member's parameters.
    pub fn members(&self, prefix: &str) -> Result<Vec<Params>, SnsError> {
        self.indexed(prefix, "member")
    }

    /// A string map: `prefix.entry.N.key` / `prefix.entry.N.value`.
    pub fn map(&self, prefix: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let mut map = BTreeMap::new();
        for entry in self.indexed(prefix, "entry")? {
            let key = entry
                .get("key")
                .ok_or_else(|| SnsError::InvalidParameter(format!("Invalid parameter: {prefix} Reason: an entry has no key")))?;
            map.insert(key.to_owned(), entry.get("value").unwrap_or_default().to_owned());
        }
        Ok(map)
    }

    /// Message attributes: `prefix.entry.N.Name` and `.Value.{DataType,
    /// StringValue, BinaryValue}` (binary values base64, as the SDKs send them).
    pub fn message_attributes(&self, prefix: &str) -> Result<MessageAttributes, SnsError> {
        let mut attributes = MessageAttributes::new();
        for entry in self.indexed(prefix, "entry")? {
            let name = entry.get("Name").ok_or_else(|| {
                SnsError::InvalidParameterValue(format!("Invalid parameter: {prefix} Reason: a message attribute has no name"))
            })?;
            let value = MessageAttributeValue {
                data_type: entry.get("Value.DataType").unwrap_or_default().to_owned(),
                string_value: entry.get("Value.StringValue").map(str::to_owned),
                binary_value: entry.get("Value.BinaryValue").map(str::to_owned),
                string_list_values: None,
                binary_list_values: None,
            };
            attributes.insert(name.to_owned(), value);
        }
        Ok(attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lists_and_message_attributes_decode_in_index_order() {
        let body = b"Action=PublishBatch&Attributes.entry.2.key=B&Attributes.entry.2.value=2&Attributes.entry.1.key=A&Attributes.entry.1.value=x%20y\
&E.member.10.Id=ten&E.member.2.Id=two&E.member.2.MessageAttributes.entry.1.Name=k\
&E.member.2.MessageAttributes.entry.1.Value.DataType=String&E.member.2.MessageAttributes.entry.1.Value.StringValue=v%2Bw";
        let params = Params::parse(body).expect("parses");
        assert_eq!(params.get("Action"), Some("PublishBatch"));
        let map = params.map("Attributes").expect("map");
        assert_eq!(map.get("A").map(String::as_str), Some("x y"));
        assert_eq!(map.get("B").map(String::as_str), Some("2"));
        let members = params.members("E").expect("members");
        assert_eq!(
            members.iter().map(|m| m.get("Id").unwrap_or_default()).collect::<Vec<_>>(),
            ["two", "ten"]
        );
        let attributes = members[0].message_attributes("MessageAttributes").expect("attributes");
        assert_eq!(attributes["k"].data_type, "String");
        assert_eq!(attributes["k"].string_value.as_deref(), Some("v+w"));
    }

    #[test]
    fn bad_indexes_and_missing_required_parameters_are_invalid_parameter() {
        let params = Params::parse(b"E.member.x.Id=1&E.member.0.Id=2&Name=").expect("parses");
        assert!(matches!(params.members("E"), Err(SnsError::InvalidParameter(_))));
        assert!(matches!(params.required("Name"), Err(SnsError::InvalidParameter(_))));
        assert!(matches!(params.required("Other"), Err(SnsError::InvalidParameter(_))));
    }

    #[test]
    fn garbage_bodies_decode_without_failing() {
        let params = Params::parse(b"%ff%zz=&&==a\xff").expect("lossy");
        assert!(params.get("Action").is_none());
    }
}
