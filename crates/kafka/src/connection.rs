//! One Kafka connection: a reader that decodes requests in order and starts
//! their handlers, and a writer that sends replies in the same order (Kafka
//! clients match replies by order as well as by correlation id). Handlers may
//! run concurrently — several produce requests share one fsync — but anything
//! order-sensitive (appends) is started before the next request is read.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::Context;
use crate::frame::{self, FrameError};
use crate::handlers;

/// A reply being computed: resolves to the frame to send, `None` when the
/// request gets no reply (produce with acks=0), or an error that closes the
/// connection.
pub type Reply = Pin<Box<dyn Future<Output = Result<Option<Bytes>, String>> + Send>>;

/// What handlers know about the connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    /// The address the client connected to; advertised back in metadata.
    pub local: SocketAddr,
}

pub async fn run(stream: TcpStream, peer: SocketAddr, context: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let Ok(local) = stream.local_addr() else { return };
    let connection = Arc::new(ConnectionInfo { peer, local });
    debug!(%peer, "Kafka connection opened");
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let (replies, mut pending) = mpsc::channel::<Reply>(context.config.in_flight_requests_max.max(1));

    let writer = async move {
        let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
        while let Some(reply) = pending.recv().await {
            match reply.await {
                Ok(Some(frame)) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(reason) => {
                    warn!(%peer, %reason, "could not encode a Kafka reply; closing the connection");
                    return;
                }
            }
            // Flush when no further reply is ready, so pipelined replies share a write.
            if pending.is_empty() && writer.flush().await.is_err() {
                return;
            }
        }
        let _ = writer.flush().await;
    };

    let read_loop = async {
        loop {
            let frame = tokio::select! {
                () = crate::stopped(&mut shutdown) => break,
                frame = frame::read_frame(&mut reader, context.config.frame_bytes_max) => frame,
            };
            let outcome = frame
                .and_then(frame::parse_request)
                .and_then(|request| handlers::dispatch(&context, &connection, request));
            match outcome {
                Ok(reply) => {
                    if replies.send(reply).await.is_err() {
                        break;
                    }
                }
                Err(FrameError::Eof) => break,
                Err(FrameError::Io(reason)) => {
                    debug!(%peer, %reason, "Kafka connection ended");
                    break;
                }
                Err(reason) => {
                    // Kafka's answer to a request it cannot read: close the connection.
                    info!(%peer, %reason, "closing Kafka connection");
                    break;
                }
            }
        }
        drop(replies);
    };
    // The writer ends after the reader stops and every started reply is sent.
    tokio::join!(read_loop, writer);
    debug!(%peer, "Kafka connection closed");
}
