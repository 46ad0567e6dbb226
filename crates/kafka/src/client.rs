//! A minimal Kafka client over one connection: encodes a request with the
//! codec's client side, sends it, and decodes the matching reply. Used by
//! `conveyor bench kafka` and by tests that need exact control over requests
//! (duplicate batches, hostile frames); applications use real client libraries.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::frame::{self, FrameError};

/// Largest reply a client accepts.
const REPLY_BYTES_MAX: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not encode the request: {0}")]
    Encode(String),
    #[error("could not read the reply: {0}")]
    Frame(String),
    #[error("could not decode the reply: {0}")]
    Decode(String),
    #[error("reply correlation id {got} does not match request {expected}")]
    Correlation { expected: i32, got: i32 },
}

impl From<FrameError> for ClientError {
    fn from(error: FrameError) -> ClientError {
        ClientError::Frame(error.to_string())
    }
}

/// The byte stream a client talks over: plain TCP or TLS.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Transport for T {}

#[derive(Debug)]
pub struct Client {
    stream: BufStream<Box<dyn Transport>>,
    next_correlation_id: i32,
    client_id: StrBytes,
}

impl Client {
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        Ok(Client::over(Box::new(Client::tcp(addr).await?)))
    }

    /// [`Client::connect`] over TLS (Kafka's SSL security protocol): the
    /// broker's certificate must be valid for `server_name` under `connector`'s roots.
    pub async fn connect_tls(
        addr: impl ToSocketAddrs,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
    ) -> Result<Client, ClientError> {
        let stream = connector.connect(server_name, Client::tcp(addr).await?).await?;
        Ok(Client::over(Box::new(stream)))
    }

    async fn tcp(addr: impl ToSocketAddrs) -> Result<TcpStream, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn over(stream: Box<dyn Transport>) -> Client {
        Client {
            stream: BufStream::new(stream),
            next_correlation_id: 1,
            client_id: StrBytes::from_static_str("conveyor-client"),
        }
    }

    /// Sends `request` at `version` and waits for its reply.
    pub async fn send<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, ClientError> {
        let correlation_id = self.write(request, version).await?;
        self.read::<R>(version, correlation_id).await
    }

    /// Sends without waiting for the reply (for pipelining and acks=0);
    /// returns the correlation id to pass to [`Client::read`].
    pub async fn write<R: Request>(&mut self, request: &R, version: i16) -> Result<i32, ClientError> {
        let frame = encode_request(request, version, self.next_correlation_id, &self.client_id)?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;
        Ok(correlation_id)
    }

    /// Reads the reply to the request sent with `correlation_id`.
    pub async fn read<R: Request>(&mut self, version: i16, correlation_id: i32) -> Result<R::Response, ClientError> {
        let mut frame = frame::read_frame(&mut self.stream, REPLY_BYTES_MAX).await?;
        let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Decode(format!("unknown API key {}", R::KEY)))?;
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
            .map_err(|error| ClientError::Decode(error.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Correlation {
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        R::Response::decode(&mut frame, version).map_err(|error| ClientError::Decode(error.to_string()))
    }

    /// Writes raw bytes (tests of hostile input).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Half-closes the connection: the server sees end-of-stream after what
    /// was written, answers it, and closes its side.
    pub async fn finish_writes(&mut self) -> Result<(), ClientError> {
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Reads until the server closes the connection or `limit` bytes came.
    pub async fn read_to_close(&mut self, limit: usize) -> Result<usize, ClientError> {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total = 0;
        while total < limit {
            let read = self.stream.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            total += read;
        }
        Ok(total)
    }
}

/// A complete request frame: size, header, body.
pub fn encode_request<R: Request>(request: &R, version: i16, correlation_id: i32, client_id: &StrBytes) -> Result<Bytes, ClientError> {
    let api = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Encode(format!("unknown API key {}", R::KEY)))?;
    let mut buffer = BytesMut::with_capacity(128);
    buffer.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()))
        .encode(&mut buffer, api.request_header_version(version))
        .map_err(|error| ClientError::Encode(error.to_string()))?;
    request
        .encode(&mut buffer, version)
        .map_err(|error| ClientError::Encode(error.to_string()))?;
    let size = (buffer.len() - 4) as i32;
    buffer[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buffer.freeze())
}
