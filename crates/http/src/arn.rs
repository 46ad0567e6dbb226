//! Amazon Resource Names as the SQS and SNS doors read and write them —
//! `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` — and the account a
//! request speaks for. Any partition, region and account are accepted on
//! the way in (queues and topics are one namespace: the account only names
//! them); only the service and the resource matter.

use axum::http::{HeaderMap, header};

/// The account of a request whose access key does not name one.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// The account a request speaks for: its SigV4 access key (the
/// `Credential=AKID/…` of the Authorization header) if that is a 12-digit
/// number, as LocalStack reads it, else [`DEFAULT_ACCOUNT_ID`]. Credentials
/// are not checked.
pub fn account_of(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|authorization| authorization.split_once("Credential="))
        .and_then(|(_, credential)| credential.split('/').next())
        .map(str::trim)
        .filter(|key| key.len() == 12 && key.bytes().all(|byte| byte.is_ascii_digit()))
        .unwrap_or(DEFAULT_ACCOUNT_ID)
        .to_owned()
}

/// The resource part of an ARN of `service`, if it is one and names something.
pub fn resource<'a>(arn: &'a str, service: &str) -> Option<&'a str> {
    let mut parts = arn.splitn(6, ':');
    let valid = parts.next() == Some("arn") && parts.next().is_some() && parts.next() == Some(service);
    let _region = parts.next()?;
    let _account = parts.next()?;
    valid.then(|| parts.next()).flatten().filter(|resource| !resource.is_empty())
}

/// The queue name an SQS queue ARN names. A name with `/` is no SQS
/// name: it would be a broker-wide name of another vhost's queue
/// (`amq.vhost/<vhost>/<name>`), which SQS must not reach.
pub fn queue_name(arn: &str) -> Option<&str> {
    resource(arn, "sqs").filter(|name| !name.contains([':', '/']))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_twelve_digit_access_key_names_the_account_and_anything_else_is_the_default() {
        let signed = |key: &str| {
            let mut headers = HeaderMap::new();
            let value = format!("AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00");
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).expect("header"));
            account_of(&headers)
        };
        assert_eq!(signed("123456789012"), "123456789012");
        assert_eq!(signed("test"), DEFAULT_ACCOUNT_ID);
        assert_eq!(signed("AKIAIOSFODNN7EXAMPLE"), DEFAULT_ACCOUNT_ID);
        assert_eq!(signed("1234567890123"), DEFAULT_ACCOUNT_ID);
        assert_eq!(account_of(&HeaderMap::new()), DEFAULT_ACCOUNT_ID, "unsigned");
    }

    #[test]
    fn queue_arns_name_their_queue_whatever_the_region_and_account() {
        assert_eq!(queue_name("arn:aws:sqs:eu-west-1:123456789012:q1"), Some("q1"));
        for bad in [
            "",
            "q1",
            "arn:aws:sns:us-east-1:0:q",
            "arn:aws:sqs:us-east-1:0:",
            "arn:aws:sqs:us-east-1:0:a:b",
            "arn:aws:sqs:us-east-1:0:amq.vhost/staging/q1",
        ] {
            assert_eq!(queue_name(bad), None, "{bad}");
        }
    }
}
