//! Amazon Resource Names as the SQS and SNS doors read them:
//! `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`. Any partition, region
//! and account are accepted on the way in (queues and topics are one
//! namespace); only the service and the resource matter.

/// The resource part of an ARN of `service`, if it is one and names something.
pub fn resource<'a>(arn: &'a str, service: &str) -> Option<&'a str> {
    let mut parts = arn.splitn(6, ':');
    let valid = parts.next() == Some("arn") && parts.next().is_some() && parts.next() == Some(service);
    let _region = parts.next()?;
    let _account = parts.next()?;
    valid.then(|| parts.next()).flatten().filter(|resource| !resource.is_empty())
}

/// The queue name an SQS queue ARN names.
pub fn queue_name(arn: &str) -> Option<&str> {
    resource(arn, "sqs").filter(|name| !name.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_arns_name_their_queue_whatever_the_region_and_account() {
        assert_eq!(queue_name("arn:aws:sqs:eu-west-1:123456789012:q1"), Some("q1"));
        for bad in [
            "",
            "q1",
            "arn:aws:sns:us-east-1:0:q",
            "arn:aws:sqs:us-east-1:0:",
            "arn:aws:sqs:us-east-1:0:a:b",
        ] {
            assert_eq!(queue_name(bad), None, "{bad}");
        }
    }
}
