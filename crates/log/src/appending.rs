//! An append in flight and what its acknowledgement carries: the future a
//! caller awaits (or blocks on) until the writer answers.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::error::{LogError, Result};

/// What an acknowledged append learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record of the first batch.
    pub base_offset: u64,
    /// Offset of the last record of the last batch.
    pub last_offset: u64,
    /// The log's start offset when the append was acknowledged.
    pub log_start_offset: u64,
    /// The broker time stamped on the batches when the log keeps
    /// LogAppendTime (see `LogConfig::log_append_time`).
    pub log_append_time_ms: Option<i64>,
}

/// A pending append: a future, or [`Appending::wait`] from blocking code.
#[derive(Debug)]
pub enum Appending {
    Ready(Option<Result<AppendInfo>>),
    Waiting {
        receiver: oneshot::Receiver<Result<AppendInfo>>,
        dir: PathBuf,
    },
}

impl Appending {
    /// Blocks until the append is acknowledged. Must not be called from an
    /// async context (use `.await` there).
    pub fn wait(self) -> Result<AppendInfo> {
        crate::reactor_guard::check("waiting for an append");
        match self {
            Appending::Ready(result) => result.unwrap_or_else(|| Err(LogError::Closed(PathBuf::new()))),
            Appending::Waiting { receiver, dir } => receiver.blocking_recv().unwrap_or(Err(LogError::Closed(dir))),
        }
    }
}

impl Future for Appending {
    type Output = Result<AppendInfo>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Appending::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| Err(LogError::Closed(PathBuf::new())))),
            Appending::Waiting { receiver, dir } => match Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Err(LogError::Closed(dir.clone()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
