//! The SNS notification envelope: the JSON document a subscribed queue
//! receives as its message body unless the subscription asks for raw
//! delivery. Conveyor does not sign notifications: `Signature` is present
//! (clients parse it) but is not an RSA signature, and `SigningCertURL`
//! names no certificate.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sqs::message::MessageAttributes;

/// One notification, fields in the order SNS writes them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Notification<'a> {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub message_id: &'a str,
    pub topic_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    pub message: &'a str,
    pub timestamp: String,
    pub signature_version: &'static str,
    pub signature: &'static str,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "UnsubscribeURL")]
    pub unsubscribe_url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub message_attributes: BTreeMap<&'a str, EnvelopeAttribute<'a>>,
}

/// A message attribute inside the envelope: `{"Type": …, "Value": …}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvelopeAttribute<'a> {
    #[serde(rename = "Type")]
    pub kind: &'a str,
    pub value: &'a str,
}

/// Base64 of "conveyor-unsigned": a placeholder where SNS puts its signature.
const UNSIGNED: &str = "Y29udmV5b3ItdW5zaWduZWQ=";

/// What one published message looks like in every envelope.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub message_id: &'a str,
    pub topic_arn: &'a str,
    pub subject: Option<&'a str>,
    pub message: &'a str,
    pub attributes: &'a MessageAttributes,
    pub timestamp_ms: i64,
    /// `host[:port]` the publisher addressed, for the URLs in the envelope.
    pub host: &'a str,
}

impl Envelope<'_> {
    /// The JSON body for the subscription `subscription_arn`.
    pub fn render(&self, subscription_arn: &str) -> String {
        let message_attributes = self
            .attributes
            .iter()
            .filter_map(|(name, attribute)| {
                // Binary values are base64 already, as SNS writes them.
                let value = attribute.string_value.as_deref().or(attribute.binary_value.as_deref())?;
                Some((
                    name.as_str(),
                    EnvelopeAttribute {
                        kind: &attribute.data_type,
                        value,
                    },
                ))
            })
            .collect();
        let unsubscribe_url = format!(
            "http://{}/?Action=Unsubscribe&SubscriptionArn={}",
            self.host,
            form_urlencoded::byte_serialize(subscription_arn.as_bytes()).collect::<String>()
        );
        let notification = Notification {
            kind: "Notification",
            message_id: self.message_id,
            topic_arn: self.topic_arn,
            subject: self.subject,
            message: self.message,
            timestamp: iso8601(self.timestamp_ms),
            signature_version: "1",
            signature: UNSIGNED,
            signing_cert_url: format!("http://{}/SimpleNotificationService-conveyor.pem", self.host),
            unsubscribe_url,
            message_attributes,
        };
        // Serializing strings and maps of strings cannot fail.
        serde_json::to_string(&notification).unwrap_or_default()
    }
}

/// `2026-11-29T08:47:18.123Z` for milliseconds since the Unix epoch (UTC).
pub fn iso8601(timestamp_ms: i64) -> String {
    let days = timestamp_ms.div_euclid(86_400_000);
    let ms_of_day = timestamp_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::sqs::message::MessageAttributeValue;

    #[test]
    fn timestamps_are_iso8601_utc_with_milliseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_795_942_038_123), "2026-11-29T08:47:18.123Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_envelope_carries_the_message_subject_and_typed_attributes() {
        let attributes = MessageAttributes::from([(
            "color".to_owned(),
            MessageAttributeValue {
                data_type: "String".to_owned(),
                string_value: Some("red".to_owned()),
                binary_value: None,
                string_list_values: None,
                binary_list_values: None,
            },
        )]);
        let envelope = Envelope {
            message_id: "m-1",
            topic_arn: "arn:aws:sns:us-east-1:000000000000:t",
            subject: Some("hi"),
            message: "body \"quoted\"",
            attributes: &attributes,
            timestamp_ms: 0,
            host: "127.0.0.1:1",
        };
        let json: Value = serde_json::from_str(&envelope.render("arn:aws:sns:us-east-1:000000000000:t:s")).expect("JSON");
        assert_eq!(json["Type"], "Notification");
        assert_eq!(json["MessageId"], "m-1");
        assert_eq!(json["Subject"], "hi");
        assert_eq!(json["Message"], "body \"quoted\"");
        assert_eq!(json["Timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(
            json["MessageAttributes"]["color"],
            serde_json::json!({"Type": "String", "Value": "red"})
        );
        assert!(
            json["UnsubscribeURL"]
                .as_str()
                .is_some_and(|url| url.ends_with("SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At%3As"))
        );
    }
}
