//! SQS errors and the one table that maps them onto the wire: the JSON
//! `__type`, the `x-amzn-query-error` code (boto3 and the AWS SDKs map a
//! response to a modeled exception through it) and the HTTP status.

use conveyor_core::CoreError;

/// Why an SQS request failed. Each variant carries the message the client sees.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("{0}")]
    QueueDoesNotExist(String),
    #[error("{0}")]
    QueueNameExists(String),
    #[error("{0}")]
    ReceiptHandleIsInvalid(String),
    #[error("{0}")]
    MessageNotInflight(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error("{0}")]
    InvalidMessageContents(String),
    #[error("{0}")]
    TooManyEntriesInBatchRequest(String),
    #[error("{0}")]
    EmptyBatchRequest(String),
    /// A batch's messages and attributes together are over SQS's payload maximum.
    #[error("{0}")]
    BatchRequestTooLong(String),
    #[error("{0}")]
    BatchEntryIdsNotDistinct(String),
    #[error("{0}")]
    InvalidBatchEntryId(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    /// A queue an ARN parameter names, or a message move task, does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The body is not the JSON the action expects.
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    RequestTooLarge(String),
    /// A broker limit (`[limits]`, e.g. `queues_max`) refuses the request.
    #[error("{0}")]
    OverLimit(String),
    /// SigV4 refused the request.
    #[error("{0}")]
    Unauthenticated(crate::sigv4::SigV4Error),
    /// The signer may not do this to the queue (RabbitMQ's permissions).
    #[error("{0}")]
    AccessDenied(String),
    /// A resource alarm (the disk floor, the memory ceiling) held a send
    /// too long: AWS's common `ServiceUnavailable`, 503, which every SDK retries.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// The broker failed (storage); not the client's fault.
    #[error("{0}")]
    Internal(String),
}

/// SigV4's refusals, named as AWS names them for the JSON protocol.
fn unauthenticated(error: &crate::sigv4::SigV4Error) -> WireError {
    use crate::sigv4::SigV4Error;
    let (type_name, query_error) = match error {
        SigV4Error::MissingAuthenticationToken => (
            "com.amazon.coral.service#MissingAuthenticationTokenException",
            "MissingAuthenticationToken;Sender",
        ),
        SigV4Error::IncompleteSignature(_) => (
            "com.amazon.coral.service#IncompleteSignatureException",
            "IncompleteSignature;Sender",
        ),
        SigV4Error::InvalidClientTokenId => ("com.amazon.coral.service#InvalidClientTokenId", "InvalidClientTokenId;Sender"),
        SigV4Error::SignatureDoesNotMatch => ("com.amazon.coral.service#SignatureDoesNotMatch", "SignatureDoesNotMatch;Sender"),
        SigV4Error::RequestExpired(_) => ("com.amazon.coral.service#RequestExpired", "RequestExpired;Sender"),
    };
    WireError {
        type_name,
        query_error,
        status: error.status(),
    }
}

/// How one error goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError {
    /// `__type` in the JSON body.
    pub type_name: &'static str,
    /// `x-amzn-query-error`: the legacy query code and the fault side.
    pub query_error: &'static str,
    pub status: u16,
}

impl SqsError {
    /// The one table of SQS error codes.
    pub fn wire(&self) -> WireError {
        if let SqsError::Unauthenticated(error) = self {
            return unauthenticated(error);
        }
        let (type_name, query_error, status) = match self {
            SqsError::QueueDoesNotExist(_) => (
                "com.amazonaws.sqs#QueueDoesNotExist",
                "AWS.SimpleQueueService.NonExistentQueue;Sender",
                400,
            ),
            // Answered above, by `unauthenticated`.
            SqsError::Unauthenticated(_) => ("com.amazon.coral.service#InternalFailure", "InternalFailure;Receiver", 500),
            SqsError::AccessDenied(_) => ("com.amazon.coral.service#AccessDeniedException", "AccessDenied;Sender", 403),
            SqsError::QueueNameExists(_) => ("com.amazonaws.sqs#QueueNameExists", "QueueAlreadyExists;Sender", 400),
            SqsError::ReceiptHandleIsInvalid(_) => ("com.amazonaws.sqs#ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid;Sender", 400),
            SqsError::MessageNotInflight(_) => (
                "com.amazonaws.sqs#MessageNotInflight",
                "AWS.SimpleQueueService.MessageNotInflight;Sender",
                400,
            ),
            SqsError::InvalidParameterValue(_) => (
                "com.amazonaws.sqs#InvalidParameterValueException",
                "InvalidParameterValue;Sender",
                400,
            ),
            SqsError::MissingParameter(_) => (
                "com.amazonaws.sqs#MissingRequiredParameterException",
                "MissingParameter;Sender",
                400,
            ),
            SqsError::InvalidAttributeName(_) => ("com.amazonaws.sqs#InvalidAttributeName", "InvalidAttributeName;Sender", 400),
            SqsError::InvalidAttributeValue(_) => ("com.amazonaws.sqs#InvalidAttributeValue", "InvalidAttributeValue;Sender", 400),
            SqsError::InvalidMessageContents(_) => ("com.amazonaws.sqs#InvalidMessageContents", "InvalidMessageContents;Sender", 400),
            SqsError::TooManyEntriesInBatchRequest(_) => (
                "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest;Sender",
                400,
            ),
            SqsError::BatchRequestTooLong(_) => (
                "com.amazonaws.sqs#BatchRequestTooLong",
                "AWS.SimpleQueueService.BatchRequestTooLong;Sender",
                400,
            ),
            SqsError::EmptyBatchRequest(_) => (
                "com.amazonaws.sqs#EmptyBatchRequest",
                "AWS.SimpleQueueService.EmptyBatchRequest;Sender",
                400,
            ),
            SqsError::BatchEntryIdsNotDistinct(_) => (
                "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct;Sender",
                400,
            ),
            SqsError::InvalidBatchEntryId(_) => (
                "com.amazonaws.sqs#InvalidBatchEntryId",
                "AWS.SimpleQueueService.InvalidBatchEntryId;Sender",
                400,
            ),
            SqsError::UnsupportedOperation(_) => (
                "com.amazonaws.sqs#UnsupportedOperation",
                "AWS.SimpleQueueService.UnsupportedOperation;Sender",
                400,
            ),
            SqsError::ResourceNotFound(_) => (
                "com.amazonaws.sqs#ResourceNotFoundException",
                "ResourceNotFoundException;Sender",
                404,
            ),
            SqsError::Serialization(_) => (
                "com.amazon.coral.service#SerializationException",
                "SerializationException;Sender",
                400,
            ),
            SqsError::UnknownOperation(_) => ("com.amazon.coral.service#UnknownOperationException", "InvalidAction;Sender", 400),
            SqsError::RequestTooLarge(_) => ("com.amazonaws.sqs#RequestTooLarge", "RequestTooLarge;Sender", 413),
            SqsError::OverLimit(_) => ("com.amazonaws.sqs#OverLimit", "OverLimit;Sender", 403),
            SqsError::ServiceUnavailable(_) => (
                "com.amazon.coral.availability#ServiceUnavailableException",
                "ServiceUnavailable;Receiver",
                503,
            ),
            SqsError::Internal(_) => ("com.amazonaws.sqs#InternalError", "InternalError;Receiver", 500),
        };
        WireError {
            type_name,
            query_error,
            status,
        }
    }

    /// The short code a batch result entry carries (`Failed[].Code`).
    pub fn batch_code(&self) -> &'static str {
        let query_error = self.wire().query_error;
        let code = query_error.split(';').next().unwrap_or(query_error);
        code.rsplit('.').next().unwrap_or(code)
    }

    pub fn sender_fault(&self) -> bool {
        self.wire().status < 500
    }
}

/// Core errors as SQS sees them.
impl From<CoreError> for SqsError {
    fn from(error: CoreError) -> SqsError {
        match error {
            CoreError::UnknownQueue(_) => SqsError::QueueDoesNotExist("The specified queue does not exist.".to_owned()),
            mismatch @ CoreError::QueueMismatch { .. } => {
                SqsError::QueueNameExists(format!("A queue already exists with different attributes ({mismatch})."))
            }
            CoreError::QueueInUse { name, reason } => SqsError::InvalidParameterValue(format!("queue {name} {reason}")),
            CoreError::InvalidQueueArgument { name, reason } => SqsError::InvalidAttributeValue(format!("queue {name}: {reason}")),
            CoreError::LimitReached(reached) => SqsError::OverLimit(reached.to_string()),
            other => SqsError::Internal(other.to_string()),
        }
    }
}

impl From<conveyor_core::queue::QueueError> for SqsError {
    fn from(error: conveyor_core::queue::QueueError) -> SqsError {
        SqsError::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_does_not_exist_carries_the_legacy_query_code_boto3_maps() {
        let wire = SqsError::QueueDoesNotExist(String::new()).wire();
        assert_eq!(wire.type_name, "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(wire.query_error, "AWS.SimpleQueueService.NonExistentQueue;Sender");
        assert_eq!(wire.status, 400);
    }

    #[test]
    fn batch_codes_are_the_short_query_codes() {
        assert_eq!(
            SqsError::ReceiptHandleIsInvalid(String::new()).batch_code(),
            "ReceiptHandleIsInvalid"
        );
        assert_eq!(SqsError::MessageNotInflight(String::new()).batch_code(), "MessageNotInflight");
    }

    #[test]
    fn a_held_send_is_a_503_the_sdks_retry() {
        let error = SqsError::ServiceUnavailable(String::new());
        assert_eq!(error.wire().status, 503);
        assert_eq!(error.batch_code(), "ServiceUnavailable");
        assert!(!error.sender_fault());
    }
}
