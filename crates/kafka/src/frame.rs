//! Kafka framing: a 4-byte big-endian size, then a request header and body.
//! Reads are bounded by the configured maximum before any buffer is sized,
//! and the header is parsed only after checking it is there, so no frame can
//! make this layer panic or allocate more than the limit.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a connection is closed instead of answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    Eof,
    TooLarge {
        size: i64,
        max: usize,
    },
    Negative(i32),
    Io(String),
    /// A frame too short for the fixed part of a request header.
    Truncated(usize),
    UnknownApi(i16),
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
    },
    Header(String),
    Body {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Eof => f.write_str("peer closed the connection"),
            FrameError::TooLarge { size, max } => write!(f, "frame of {size} bytes exceeds the {max}-byte limit"),
            FrameError::Negative(size) => write!(f, "negative frame size {size}"),
            FrameError::Io(error) => write!(f, "I/O error: {error}"),
            FrameError::Truncated(size) => write!(f, "frame of {size} bytes is too short for a request header"),
            FrameError::UnknownApi(key) => write!(f, "unknown API key {key}"),
            FrameError::UnsupportedVersion { api, version } => write!(f, "{api:?} version {version} is not supported"),
            FrameError::Header(reason) => write!(f, "undecodable request header: {reason}"),
            FrameError::Body { api, version, reason } => write!(f, "undecodable {api:?} v{version} request: {reason}"),
        }
    }
}

/// Reads one size-prefixed frame of at most `max_bytes`.
pub async fn read_frame(reader: &mut (impl AsyncRead + Unpin), max_bytes: usize) -> Result<Bytes, FrameError> {
    let size = read_frame_size(reader, max_bytes).await?;
    read_frame_body(reader, size, |_| {}).await
}

/// Reads a frame's size prefix and checks it against `max_bytes`, before
/// anything of the frame is buffered.
pub async fn read_frame_size(reader: &mut (impl AsyncRead + Unpin), max_bytes: usize) -> Result<usize, FrameError> {
    let size = match reader.read_i32().await {
        Ok(size) => size,
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Eof),
        Err(error) => return Err(FrameError::Io(error.to_string())),
    };
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max_bytes {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max: max_bytes,
        });
    }
    Ok(size)
}

/// Reads the `size` bytes of a frame whose prefix was read; `arrived` is
/// told how many bytes each read added (what the broker now holds).
pub async fn read_frame_body(
    reader: &mut (impl AsyncRead + Unpin),
    size: usize,
    mut arrived: impl FnMut(usize),
) -> Result<Bytes, FrameError> {
    // Read into spare capacity instead of a zeroed buffer: for large produce
    // requests and fetch replies the memset cost as much as the copy (and
    // pages nobody sent yet are never touched). `take` keeps the read from
    // running into the next frame.
    let mut buffer = BytesMut::with_capacity(size);
    let mut limited = reader.take(size as u64);
    while buffer.len() < size {
        let read = limited
            .read_buf(&mut buffer)
            .await
            .map_err(|error| FrameError::Io(error.to_string()))?;
        if read == 0 {
            return Err(FrameError::Io(format!(
                "connection closed after {} of {size} frame bytes",
                buffer.len()
            )));
        }
        arrived(read);
    }
    Ok(buffer.freeze())
}

/// The parts of a request a handler needs.
#[derive(Debug, Clone)]
pub struct Request {
    pub api: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    /// The body, after the header.
    pub body: Bytes,
}

/// Smallest request header: api key, version, correlation id, client id length.
const HEADER_FIXED_BYTES: usize = 2 + 2 + 4 + 2;

/// Splits a frame into its header and body. The API key and version are read
/// by hand first, so an unknown API or version is reported, not mis-decoded.
pub fn parse_request(frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < HEADER_FIXED_BYTES {
        return Err(FrameError::Truncated(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApi(key))?;
    let mut body = frame;
    if api == ApiKey::ApiVersions && !crate::versions::is_supported(api, version) {
        // A client newer than us: answer with the v0 header so it can read the
        // UNSUPPORTED_VERSION reply and retry with a version we list.
        let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        return Ok(Request {
            api,
            version,
            header: RequestHeader::default()
                .with_request_api_key(key)
                .with_request_api_version(version)
                .with_correlation_id(correlation_id),
            body: Bytes::new(),
        });
    }
    if !crate::versions::is_supported(api, version) {
        return Err(FrameError::UnsupportedVersion { api, version });
    }
    let header =
        RequestHeader::decode(&mut body, api.request_header_version(version)).map_err(|error| FrameError::Header(error.to_string()))?;
    Ok(Request {
        api,
        version,
        header,
        body,
    })
}

/// Encodes a response frame (size, header, body) for `request`.
pub fn encode_response(api: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Result<Bytes, String> {
    // Sized up front: a fetch reply carries megabytes of records, and growing
    // the buffer by doubling would copy them several times.
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    let size = header.compute_size(header_version).unwrap_or(0) + body.compute_size(version).unwrap_or(0);
    let mut buffer = BytesMut::with_capacity(4 + size);
    buffer.put_i32(0);
    header.encode(&mut buffer, header_version).map_err(|error| error.to_string())?;
    body.encode(&mut buffer, version).map_err(|error| error.to_string())?;
    let size = (buffer.len() - 4) as i32;
    buffer[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buffer.freeze())
}

/// Decodes a request body of type `T`, refusing trailing bytes' absence
/// silently but never panicking.
pub fn decode_body<T: Decodable>(request: &Request) -> Result<T, FrameError> {
    let mut body = request.body.clone();
    let decoded = T::decode(&mut body, request.version).map_err(|error| FrameError::Body {
        api: request.api,
        version: request.version,
        reason: error.to_string(),
    })?;
    if body.has_remaining() {
        tracing::debug!(api = ?request.api, version = request.version, trailing = body.remaining(), "ignoring trailing bytes after a request body");
    }
    Ok(decoded)
}
