//! ApiVersions: the table of `versions.rs`, or UNSUPPORTED_VERSION (in the
//! v0 shape every client can read) when asked with a version we lack.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;

use crate::versions;

pub fn handle(version: i16) -> ApiVersionsResponse {
    let api_keys = versions::SUPPORTED
        .iter()
        .map(|(api, min, max)| {
            ApiVersion::default()
                .with_api_key(*api as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    let mut response = ApiVersionsResponse::default().with_api_keys(api_keys);
    if !versions::is_supported(kafka_protocol::messages::ApiKey::ApiVersions, version) {
        response.error_code = ResponseError::UnsupportedVersion.code();
    }
    response
}
