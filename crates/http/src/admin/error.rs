//! The admin API's one error shape, `{"error": {"code": "...", "message":
//! "..."}}`, for every 4xx and 5xx it answers, and the one table from core
//! errors and request rejections to HTTP statuses and codes. The extractors
//! here wrap axum's so that a malformed body, path or query gets that shape
//! too instead of axum's plain-text rejection.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use conveyor_core::CoreError;
use conveyor_core::auth::AuthError;
use conveyor_core::exchange::ExchangeError;
use conveyor_core::group::GroupError;
use conveyor_core::queue::QueueError;
use conveyor_core::vhost::{self, VhostError};
use conveyor_log::LogError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `not_found`, `conflict`,
    /// `unprocessable_entity`, `payload_too_large`, `unsupported_media_type`,
    /// `method_not_allowed`, `internal_error`, `unavailable`, `unauthorized`
    /// (no or wrong credentials), `forbidden` (a tag is missing, or a
    /// cross-site change), `insufficient_storage` (the file system is full;
    /// retry once space is freed), `timeout` (a replicated write its
    /// replicas did not commit in time; it may still be committed).
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
    /// A refused conditional append (409): the offset it expected (-1: a
    /// new key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_offset: Option<i64>,
    /// A refused conditional append (409): the offset the partition has
    /// instead — where the record would go, or where its key's latest
    /// record is (-1: no record has the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_offset: Option<i64>,
}

/// A failed admin request: its status and what to tell the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// A refused conditional append's expected and actual offsets.
    pub offsets: Option<(Option<i64>, Option<i64>)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            offsets: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The code clients match on, derived from the status alone so that one
    /// status always means one code.
    pub fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::INSUFFICIENT_STORAGE => "insufficient_storage",
            StatusCode::GATEWAY_TIMEOUT => "timeout",
            status if status.is_client_error() => "bad_request",
            _ => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = self.message, "admin API request failed");
        }
        let (expected_offset, actual_offset) = self.offsets.unwrap_or_default();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message,
                expected_offset,
                actual_offset,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The one core-error → HTTP table.
impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> ApiError {
        if let CoreError::ConditionFailed(failed) = &error {
            let status = if failed.is_retriable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::CONFLICT
            };
            return ApiError {
                offsets: Some((failed.expected_offset(), failed.actual_offset())),
                ..ApiError::new(status, error.to_string())
            };
        }
        let status = match &error {
            CoreError::UnknownTopic(_) | CoreError::UnknownPartition { .. } | CoreError::UnknownQueue(_) => StatusCode::NOT_FOUND,
            CoreError::TopicExists(_)
            | CoreError::QueueMismatch { .. }
            | CoreError::QueueInUse { .. }
            | CoreError::StreamTopic(_)
            | CoreError::TopicReadAsStream(_)
            | CoreError::StreamNotPurged(_) => StatusCode::CONFLICT,
            CoreError::InvalidTopicName(_)
            | CoreError::InvalidPartitions(_)
            | CoreError::InvalidConfig(_)
            | CoreError::InvalidGroupConfig(_)
            | CoreError::InvalidQueueArgument { .. }
            | CoreError::Transaction(_)
            | CoreError::RecordWithoutKey { .. }
            | CoreError::CorruptRecords(_)
            | CoreError::InvalidReplicationFactor(_)
            | CoreError::RecordTooLarge { .. } => StatusCode::BAD_REQUEST,
            CoreError::LimitReached(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::Exchange(exchange) => return ApiError::from(exchange.clone()),
            CoreError::Vhost(vhost) => match vhost {
                VhostError::NotFound(_) => StatusCode::NOT_FOUND,
                VhostError::InvalidName { .. } | VhostError::ReservedName(_) | VhostError::Undeletable(_) => StatusCode::BAD_REQUEST,
            },
            CoreError::Auth(auth) => match auth {
                AuthError::UnknownUser(_) => StatusCode::NOT_FOUND,
                AuthError::AccessKeyInUse { .. } => StatusCode::CONFLICT,
                AuthError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
                AuthError::InvalidUserName(_)
                | AuthError::UnknownTag(_)
                | AuthError::EmptyPassword
                | AuthError::Iterations { .. }
                | AuthError::InvalidPattern { .. }
                | AuthError::InvalidAcl(_)
                | AuthError::NoCredential { .. }
                | AuthError::InvalidPasswordHash(_) => StatusCode::BAD_REQUEST,
            },
            // Its replicas did not commit it in time: it may still land.
            CoreError::ReplicationTimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
            CoreError::Queue(QueueError::Cursor(_)) => StatusCode::CONFLICT,
            CoreError::ConditionFailed(_) => StatusCode::CONFLICT,
            CoreError::ShuttingDown
            | CoreError::NotLeader { .. }
            | CoreError::NotEnoughReplicas { .. }
            | CoreError::Replication(_)
            | CoreError::Coordination(_)
            | CoreError::Queue(QueueError::Closed) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::OutOfOrderSequence { .. } | CoreError::InvalidProducerEpoch { .. } | CoreError::DuplicateSequence => {
                StatusCode::CONFLICT
            }
            // A full file system: the request may succeed once space is freed.
            CoreError::Log(LogError::StorageFull { .. }) | CoreError::Queue(QueueError::Log(LogError::StorageFull { .. })) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            CoreError::DataDirLocked { .. } | CoreError::Log(_) | CoreError::Io { .. } | CoreError::Catalog(_) | CoreError::Queue(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        // Core errors name queues and exchanges broker-wide: the client knows them by their names in their vhost.
        ApiError::new(status, vhost::local_text(&error.to_string()).into_owned())
    }
}

impl From<ExchangeError> for ApiError {
    fn from(error: ExchangeError) -> ApiError {
        let status = match &error {
            ExchangeError::UnknownExchange(_) => StatusCode::NOT_FOUND,
            ExchangeError::Inequivalent { .. } | ExchangeError::InUse(_) | ExchangeError::Predeclared(_) => StatusCode::CONFLICT,
            ExchangeError::UnknownKind(_)
            | ExchangeError::ReservedName(_)
            | ExchangeError::DefaultExchangeBinding
            | ExchangeError::Internal(_)
            | ExchangeError::InvalidArgument { .. }
            | ExchangeError::TooLong { .. } => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, vhost::local_text(&error.to_string()).into_owned())
    }
}

impl From<GroupError> for ApiError {
    fn from(error: GroupError) -> ApiError {
        let status = match &error {
            GroupError::GroupIdNotFound(_) | GroupError::NotClassicGroup(_) => StatusCode::NOT_FOUND,
            GroupError::NonEmptyGroup(_) | GroupError::RebalanceInProgress | GroupError::UnknownMemberId => StatusCode::CONFLICT,
            GroupError::InvalidGroupId | GroupError::OffsetMetadataTooLarge(_) => StatusCode::BAD_REQUEST,
            GroupError::CoordinatorNotAvailable => StatusCode::SERVICE_UNAVAILABLE,
            GroupError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::CONFLICT,
        };
        ApiError::new(status, error.to_string())
    }
}

/// A publish a resource alarm held too long: 503, retry later.
impl From<crate::disk_admission::Held> for ApiError {
    fn from(held: crate::disk_admission::Held) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, held.message())
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> ApiError {
        ApiError::from(CoreError::from(error))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        // A path that does not parse names no resource that exists.
        let status = match rejection.status() {
            status if status.is_server_error() => status,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

/// A blocking core call run off the reactor.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(format!("request task failed: {error}")))?
}

/// `axum::Json`, with rejections in the admin API's error shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// `axum::extract::Path`, with rejections in the admin API's error shape.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// `axum::extract::Query`, with rejections in the admin API's error shape.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// Any path under `/api/v1` that names no resource.
pub async fn unknown_path() -> ApiError {
    ApiError::not_found("no such admin API resource; the OpenAPI document at /api/v1/openapi.json lists them")
}

/// A known path asked with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this resource does not serve that method")
}
