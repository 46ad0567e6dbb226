//! SNS errors and the one table that maps them onto the wire: the query
//! protocol's `<Error><Type>…</Type><Code>…</Code>` (boto3 and the AWS SDKs
//! pick the modeled exception by the code) and the HTTP status.

use conveyor_core::CoreError;
use conveyor_core::exchange::ExchangeError;

/// Why an SNS request failed. Each variant carries the message the client sees.
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// A topic or subscription that does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// A bad message attribute or message value (`ParameterValueInvalid`).
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    EmptyBatchRequest(String),
    #[error("{0}")]
    TooManyEntriesInBatchRequest(String),
    #[error("{0}")]
    BatchEntryIdsNotDistinct(String),
    #[error("{0}")]
    InvalidBatchEntryId(String),
    #[error("{0}")]
    BatchRequestTooLong(String),
    /// No such action, or an SQS action sent in the query protocol.
    #[error("{0}")]
    InvalidAction(String),
    #[error("{0}")]
    RequestTooLarge(String),
    /// The broker failed (storage); not the client's fault.
    /// SigV4 refused the request.
    #[error("{0}")]
    Unauthenticated(crate::sigv4::SigV4Error),
    /// The signer may not do this to the topic (RabbitMQ's permissions).
    #[error("{0}")]
    AuthorizationError(String),
    /// A resource alarm (the disk floor, the memory ceiling) held a publish
    /// too long: AWS's common `ServiceUnavailable`, 503, which every SDK retries.
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// How one error goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError {
    /// `<Code>`: what SDKs map to a modeled exception.
    pub code: &'static str,
    pub status: u16,
}

impl SnsError {
    /// The one table of SNS error codes (codes and statuses from the SNS API model).
    pub fn wire(&self) -> WireError {
        let (code, status) = match self {
            SnsError::NotFound(_) => ("NotFound", 404),
            SnsError::InvalidParameter(_) => ("InvalidParameter", 400),
            SnsError::InvalidParameterValue(_) => ("ParameterValueInvalid", 400),
            SnsError::EmptyBatchRequest(_) => ("EmptyBatchRequest", 400),
            SnsError::TooManyEntriesInBatchRequest(_) => ("TooManyEntriesInBatchRequest", 400),
            SnsError::BatchEntryIdsNotDistinct(_) => ("BatchEntryIdsNotDistinct", 400),
            SnsError::InvalidBatchEntryId(_) => ("InvalidBatchEntryId", 400),
            SnsError::BatchRequestTooLong(_) => ("BatchRequestTooLong", 400),
            SnsError::InvalidAction(_) => ("InvalidAction", 400),
            SnsError::RequestTooLarge(_) => ("RequestEntityTooLarge", 413),
            SnsError::Unauthenticated(error) => (error.code(), error.status()),
            SnsError::AuthorizationError(_) => ("AuthorizationError", 403),
            SnsError::ServiceUnavailable(_) => ("ServiceUnavailable", 503),
            SnsError::Internal(_) => ("InternalError", 500),
        };
        WireError { code, status }
    }

    /// `<Type>`: who is at fault.
    pub fn fault(&self) -> &'static str {
        if self.wire().status < 500 { "Sender" } else { "Receiver" }
    }

    pub fn sender_fault(&self) -> bool {
        self.wire().status < 500
    }
}

/// Core errors as SNS sees them.
impl From<CoreError> for SnsError {
    fn from(error: CoreError) -> SnsError {
        match error {
            CoreError::UnknownQueue(name) => {
                SnsError::InvalidParameter(format!("Invalid parameter: Endpoint Reason: no queue named {name}"))
            }
            CoreError::Exchange(ExchangeError::UnknownExchange(_)) => SnsError::NotFound("Topic does not exist".to_owned()),
            CoreError::Exchange(error @ (ExchangeError::TooLong { .. } | ExchangeError::ReservedName(_))) => {
                SnsError::InvalidParameter(format!("Invalid parameter: {error}"))
            }
            other => SnsError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_a_sender_fault_with_status_404() {
        let error = SnsError::NotFound(String::new());
        assert_eq!(
            error.wire(),
            WireError {
                code: "NotFound",
                status: 404
            }
        );
        assert_eq!(error.fault(), "Sender");
        assert_eq!(SnsError::Internal(String::new()).fault(), "Receiver");
    }
}
