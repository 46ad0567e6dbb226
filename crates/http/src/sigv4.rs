//! AWS Signature Version 4, verified for the SQS and SNS doors: the
//! `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
//! Signature=…` header, `X-Amz-Date` within 15 minutes of the broker's
//! clock, the payload's SHA-256, and the signature recomputed with the
//! access key's secret from the core's user store (HMAC-SHA256 from
//! RustCrypto, compared in constant time). A key not in the store is the
//! anonymous identity where `[auth] anonymous` lets the client's address
//! in. Knows the signing algorithm; not what the request asks for.

use std::net::IpAddr;

use axum::http::{HeaderMap, Method, header};
use conveyor_core::auth::{Authorizer, FailureReason, Principal};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::PrimitiveDateTime;
use time::macros::format_description;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's X-Amz-Date may be from the broker's clock (AWS's window).
pub const CLOCK_SKEW_MAX_S: i64 = 15 * 60;
/// The payload hash a client may send instead of the hash itself.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// RFC 3986's unreserved characters stay; everything else is %XX (AWS's UriEncode).
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
const PATH_ENCODE: &AsciiSet = &URI_ENCODE.remove(b'/');

/// Why a request is not authenticated, in the error codes the AWS SDKs model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No Authorization header where anonymous access is not allowed.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,
    #[error("{0}")]
    RequestExpired(String),
}

impl SigV4Error {
    /// AWS's error code.
    pub fn code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationToken",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignature",
            SigV4Error::InvalidClientTokenId => "InvalidClientTokenId",
            SigV4Error::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            SigV4Error::RequestExpired(_) => "RequestExpired",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SigV4Error::IncompleteSignature(_) | SigV4Error::RequestExpired(_) => 400,
            _ => 403,
        }
    }

    fn reason(&self) -> FailureReason {
        match self {
            SigV4Error::MissingAuthenticationToken => FailureReason::AnonymousRefused,
            SigV4Error::InvalidClientTokenId => FailureReason::UnknownUser,
            SigV4Error::SignatureDoesNotMatch => FailureReason::BadCredentials,
            SigV4Error::IncompleteSignature(_) | SigV4Error::RequestExpired(_) => FailureReason::BadMechanism,
        }
    }
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a Method,
    /// The path as sent, percent-encoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The Authorization header's parts.
#[derive(Debug)]
struct Authorization<'a> {
    access_key_id: &'a str,
    /// date/region/service/aws4_request
    scope: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Who signed `request`; failures are counted under `protocol` and slowed down per address.
pub fn authenticate(
    authorizer: &Authorizer,
    protocol: &'static str,
    peer: IpAddr,
    request: &SignedRequest<'_>,
    now_unix_s: i64,
) -> Result<Principal, SigV4Error> {
    let outcome = verify(authorizer, peer, request, now_unix_s);
    if let Err(error) = &outcome {
        let user = parse_authorization(request.headers)
            .ok()
            .flatten()
            .map(|authorization| authorization.access_key_id.to_owned())
            .unwrap_or_default();
        // The delay is the door's to apply; HTTP answers at once but still counts.
        let _ = authorizer.failures().login_failed(protocol, error.reason(), peer, &user);
    }
    outcome
}

fn verify(authorizer: &Authorizer, peer: IpAddr, request: &SignedRequest<'_>, now_unix_s: i64) -> Result<Principal, SigV4Error> {
    let Some(authorization) = parse_authorization(request.headers)? else {
        return if authorizer.anonymous_allowed(peer) {
            Ok(Principal::Anonymous)
        } else {
            Err(SigV4Error::MissingAuthenticationToken)
        };
    };
    let Some(user) = authorizer.user_by_access_key(authorization.access_key_id) else {
        // An SDK always signs with some key: one not in the store is anonymous where allowed.
        return if authorizer.anonymous_allowed(peer) {
            Ok(Principal::Anonymous)
        } else {
            Err(SigV4Error::InvalidClientTokenId)
        };
    };
    let Some(key) = &user.aws_access_key else {
        return Err(SigV4Error::InvalidClientTokenId);
    };
    let amz_date = header_text(request.headers, "x-amz-date").ok_or_else(|| {
        SigV4Error::IncompleteSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into())
    })?;
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| SigV4Error::IncompleteSignature(format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")))?;
    if (now_unix_s - signed_at).abs() > CLOCK_SKEW_MAX_S {
        return Err(SigV4Error::RequestExpired(format!(
            "Request has expired: signed at {amz_date}, more than 15 minutes from the server's time."
        )));
    }
    let scope_date = authorization.scope.split('/').next().unwrap_or_default();
    if !amz_date.starts_with(scope_date) || scope_date.len() != 8 {
        return Err(SigV4Error::SignatureDoesNotMatch);
    }
    let payload_hash = hex(&Sha256::digest(request.body));
    let claimed_hash = header_text(request.headers, "x-amz-content-sha256");
    if let Some(claimed) = claimed_hash
        && claimed != UNSIGNED_PAYLOAD
        && claimed != payload_hash
    {
        return Err(SigV4Error::SignatureDoesNotMatch);
    }
    let canonical = canonical_request(request, &authorization.signed_headers, claimed_hash.unwrap_or(&payload_hash))?;
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        authorization.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let expected = hex(&signature(&key.secret_access_key, authorization.scope, &string_to_sign));
    if bool::from(expected.as_bytes().ct_eq(authorization.signature.as_bytes())) {
        Ok(Principal::User(user.name))
    } else {
        Err(SigV4Error::SignatureDoesNotMatch)
    }
}

/// `None` without an Authorization header; an error if it is not a whole SigV4 one.
fn parse_authorization(headers: &HeaderMap) -> Result<Option<Authorization<'_>>, SigV4Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| SigV4Error::IncompleteSignature("The Authorization header is not text.".into()))?;
    let rest = text
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| SigV4Error::IncompleteSignature(format!("Unsupported authorization type: only {ALGORITHM} is accepted.")))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => {}
        }
    }
    let missing =
        |name: &str| SigV4Error::IncompleteSignature(format!("Authorization header requires '{name}' parameter. Authorization={text}"));
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let (access_key_id, scope) = credential
        .split_once('/')
        .filter(|(_, scope)| scope.split('/').count() == 4 && scope.ends_with("/aws4_request"))
        .ok_or_else(|| {
            SigV4Error::IncompleteSignature(format!("Credential should be scoped to a valid region. Credential={credential}"))
        })?;
    Ok(Some(Authorization {
        access_key_id,
        scope,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    }))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// `20260101T120000Z` as seconds since the epoch.
fn parse_amz_date(text: &str) -> Option<i64> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|parsed| parsed.assume_utc().unix_timestamp())
}

fn canonical_request(request: &SignedRequest<'_>, signed_headers: &[&str], payload_hash: &str) -> Result<String, SigV4Error> {
    let path = if request.path.is_empty() { "/" } else { request.path };
    // Non-S3 services sign the path encoded once more than it was sent.
    let canonical_path = utf8_percent_encode(path, PATH_ENCODE).to_string();
    let mut query: Vec<(String, String)> = request
        .query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (encode_component(name), encode_component(value))
        })
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .get_all(*name)
            .iter()
            .map(|value| {
                String::from_utf8_lossy(value.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::SignatureDoesNotMatch);
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{canonical_path}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_hash}",
        request.method.as_str(),
        signed_headers.join(";")
    ))
}

/// A query name or value, decoded as sent and encoded as AWS's UriEncode.
fn encode_component(text: &str) -> String {
    let decoded = percent_decode_str(&text.replace('+', "%20")).decode_utf8_lossy().into_owned();
    utf8_percent_encode(&decoded, URI_ENCODE).to_string()
}

/// HMAC-SHA256 chain of the signing key over the scope, then over `string_to_sign`.
fn signature(secret: &str, scope: &str, string_to_sign: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hmac_sha256(&key, string_to_sign.as_bytes())
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (the SigV4 test suite's `get-vanilla`):
    /// the same canonical request, string to sign and signature.
    #[test]
    fn signature_matches_the_aws_test_suite_vanilla_request() {
        let scope = "20150830/us-east-1/service/aws4_request";
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().expect("header"));
        headers.insert("x-amz-date", "20150830T123600Z".parse().expect("header"));
        let request = SignedRequest {
            method: &Method::GET,
            path: "/",
            query: None,
            headers: &headers,
            body: b"",
        };
        let payload = hex(&Sha256::digest(b""));
        let canonical = canonical_request(&request, &["host", "x-amz-date"], &payload).expect("canonical");
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n20150830T123600Z\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        assert_eq!(
            hex(&signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", scope, &string_to_sign)),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn amz_dates_parse_in_basic_format_only() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
    }

    #[test]
    fn query_components_are_encoded_as_aws_encodes_them() {
        assert_eq!(encode_component("a b"), "a%20b");
        assert_eq!(encode_component("a%2Fb"), "a%2Fb");
        assert_eq!(encode_component("~x_y-z."), "~x_y-z.");
    }
}
