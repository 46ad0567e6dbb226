//! The ARNs SNS speaks in: topics (`arn:aws:sns:REGION:ACCOUNT:NAME`),
//! subscriptions (the topic's ARN `:` the subscription id) and the SQS queue
//! ARNs subscriptions deliver to. Any region and account are accepted on the
//! way in (there is one of each); ours are handed out.

use crate::arn::resource;
use crate::sqs::REGION;

use super::error::SnsError;

pub fn topic_arn(account: &str, topic: &str) -> String {
    format!("arn:aws:sns:{REGION}:{account}:{topic}")
}

pub fn subscription_arn(account: &str, topic: &str, subscription_id: &str) -> String {
    format!("{}:{subscription_id}", topic_arn(account, topic))
}

/// The topic name a topic ARN names.
pub fn parse_topic_arn<'a>(arn: &'a str, parameter: &str) -> Result<&'a str, SnsError> {
    // No `/`: `amq.vhost/<vhost>/<name>` is another vhost's exchange.
    resource(arn, "sns")
        .filter(|name| !name.contains([':', '/']))
        .ok_or_else(|| SnsError::InvalidParameter(format!("Invalid parameter: {parameter} Reason: {arn:?} is not a topic ARN")))
}

/// The topic name and subscription id a subscription ARN names.
pub fn parse_subscription_arn(arn: &str) -> Result<(&str, &str), SnsError> {
    resource(arn, "sns")
        .and_then(|resource| resource.split_once(':'))
        .filter(|(topic, id)| !topic.is_empty() && !topic.contains('/') && !id.is_empty() && !id.contains(':'))
        .ok_or_else(|| {
            SnsError::InvalidParameter(format!(
                "Invalid parameter: SubscriptionArn Reason: {arn:?} is not a subscription ARN"
            ))
        })
}

/// The queue name an SQS queue ARN (a subscription's endpoint) names.
pub fn parse_queue_arn(arn: &str) -> Result<&str, SnsError> {
    crate::arn::queue_name(arn).ok_or_else(|| {
        SnsError::InvalidParameter(format!(
            "Invalid parameter: SQS endpoint ARN Reason: {arn:?} is not an SQS queue ARN"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip_and_malformed_ones_are_invalid_parameter() {
        assert_eq!(
            parse_topic_arn(&topic_arn("000000000000", "orders"), "TopicArn").ok(),
            Some("orders")
        );
        let subscription = subscription_arn("000000000000", "orders", "abc");
        assert_eq!(parse_subscription_arn(&subscription).ok(), Some(("orders", "abc")));
        assert_eq!(parse_queue_arn("arn:aws:sqs:eu-west-1:123456789012:q1").ok(), Some("q1"));
        for bad in [
            "",
            "orders",
            "arn:aws:sqs:us-east-1:0:q",
            "arn:aws:sns:us-east-1:0:",
            "arn:aws:sns:us-east-1:0:a:b",
        ] {
            assert!(parse_topic_arn(bad, "TopicArn").is_err(), "{bad}");
        }
        assert!(parse_subscription_arn(&topic_arn("000000000000", "orders")).is_err());
        assert!(parse_queue_arn(&topic_arn("000000000000", "orders")).is_err());
    }
}
