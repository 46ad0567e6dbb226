//! Direct replies (RabbitMQ's Direct Reply-to): a consumer that is not a
//! queue. A consumer registers and gets a token; a message sent to the
//! token goes straight to that consumer, in memory, never through a log,
//! and one sent to a token whose consumer is gone goes nowhere. Knows
//! tokens and records; nothing of the pseudo-queue's name, of reply_to
//! properties or of how a door delivers.

use std::collections::HashMap;
use std::sync::Arc;

use conveyor_log::record::Record;
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// Replies waiting for one consumer's delivery: beyond this many the
/// consumer is not keeping up and further replies are refused (as if it
/// were gone), so a flood of replies cannot grow memory without bound.
pub const WAITING_MAX: usize = 10_000;

/// Every registered direct-reply consumer, by token.
#[derive(Debug, Default)]
pub struct DirectReplies {
    consumers: Mutex<HashMap<String, mpsc::Sender<Record>>>,
}

/// Why a reply was not handed to a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undeliverable {
    #[error("no consumer has this reply token")]
    NoConsumer,
    #[error("the reply consumer has {WAITING_MAX} replies waiting")]
    Full,
}

impl DirectReplies {
    /// Registers a consumer under a fresh token (unguessable: a reply
    /// addresses one consumer only). The registration lasts as long as the
    /// returned [`ReplyConsumer`].
    pub fn register(self: &Arc<Self>) -> ReplyConsumer {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let (sender, replies) = mpsc::channel(WAITING_MAX);
        self.consumers.lock().insert(token.clone(), sender);
        ReplyConsumer {
            registry: Arc::clone(self),
            token,
            replies,
        }
    }

    /// Hands `record` to the consumer of `token`, at once.
    pub fn send(&self, token: &str, record: Record) -> Result<(), Undeliverable> {
        let sender = self.consumers.lock().get(token).cloned().ok_or(Undeliverable::NoConsumer)?;
        sender.try_send(record).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => Undeliverable::Full,
            mpsc::error::TrySendError::Closed(_) => Undeliverable::NoConsumer,
        })
    }

    /// How many consumers are registered.
    pub fn len(&self) -> usize {
        self.consumers.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One registered consumer: its token and the replies sent to it. Dropping
/// it unregisters the token; replies to it are refused from then on.
#[derive(Debug)]
pub struct ReplyConsumer {
    registry: Arc<DirectReplies>,
    token: String,
    pub replies: mpsc::Receiver<Record>,
}

impl ReplyConsumer {
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for ReplyConsumer {
    fn drop(&mut self) {
        self.registry.consumers.lock().remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: &str) -> Record {
        Record::new(None, Some(value.as_bytes().to_vec()))
    }

    #[test]
    fn a_reply_reaches_the_consumer_of_its_token_and_no_other() {
        let replies = Arc::new(DirectReplies::default());
        let mut first = replies.register();
        let mut second = replies.register();
        assert_ne!(first.token(), second.token());
        replies.send(first.token(), record("one")).expect("sent");
        assert_eq!(first.replies.try_recv().expect("reply").value.as_deref(), Some(&b"one"[..]));
        assert!(second.replies.try_recv().is_err());
    }

    #[test]
    fn a_reply_to_a_consumer_that_went_away_or_never_was_goes_nowhere() {
        let replies = Arc::new(DirectReplies::default());
        let gone = replies.register();
        let token = gone.token().to_owned();
        drop(gone);
        assert_eq!(replies.send(&token, record("late")), Err(Undeliverable::NoConsumer));
        assert_eq!(replies.send("never-issued", record("x")), Err(Undeliverable::NoConsumer));
        assert!(replies.is_empty());
    }

    #[test]
    fn a_consumer_that_does_not_keep_up_refuses_replies_beyond_the_limit() {
        let replies = Arc::new(DirectReplies::default());
        let slow = replies.register();
        for _ in 0..WAITING_MAX {
            replies.send(slow.token(), record("r")).expect("room");
        }
        assert_eq!(replies.send(slow.token(), record("r")), Err(Undeliverable::Full));
    }
}
