//! What a change to a queue's cursor resolves to once it is durable: the
//! journal's append on a single node, or whatever the queue's writes go
//! through ([`super::QueueWrites`]) says. Knows no cursor and no log.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::QueueError;
use crate::journal::Appended;

/// A pending journal append: a future, or [`Durable::wait`] from blocking code.
#[derive(Debug)]
pub struct Durable(DurableInner);

#[derive(Debug)]
enum DurableInner {
    Pending(Appended),
    /// Answered by another writer than the local journal (a replicated
    /// queue's group, once the change is committed and applied here).
    Answered(oneshot::Receiver<Result<(), QueueError>>),
    Failed(Option<QueueError>),
}

impl Durable {
    /// The journal's append, or why it was refused.
    pub fn from_append(result: Result<Appended, QueueError>) -> Durable {
        match result {
            Ok(appended) => Durable(DurableInner::Pending(appended)),
            Err(error) => Durable(DurableInner::Failed(Some(error))),
        }
    }

    /// Durable once `answer` says so; a dropped sender is a closed queue.
    pub fn answered_by(answer: oneshot::Receiver<Result<(), QueueError>>) -> Durable {
        Durable(DurableInner::Answered(answer))
    }

    /// Blocks until the change is durable. Not from an async context.
    pub fn wait(self) -> Result<(), QueueError> {
        match self.0 {
            DurableInner::Pending(appended) => appended.wait().map_err(QueueError::from),
            DurableInner::Answered(answer) => answer.blocking_recv().unwrap_or(Err(QueueError::Closed)),
            DurableInner::Failed(error) => Err(error.unwrap_or(QueueError::Closed)),
        }
    }
}

impl Future for Durable {
    type Output = Result<(), QueueError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            DurableInner::Pending(appended) => Pin::new(appended).poll(cx).map(|result| result.map_err(QueueError::from)),
            DurableInner::Answered(answer) => Pin::new(answer).poll(cx).map(|result| result.unwrap_or(Err(QueueError::Closed))),
            DurableInner::Failed(error) => Poll::Ready(Err(error.take().unwrap_or(QueueError::Closed))),
        }
    }
}
