//! A queue's deduplication window (SQS FIFO's MessageDeduplicationId): a
//! publish whose deduplication id was seen within the window is not enqueued
//! again and is answered as the original was. Knows ids, times and offsets;
//! nothing about records or protocols (the front door derives the id, e.g.
//! from the body's SHA-256).
//!
//! The window lives in memory. A publisher that stores a message's id and
//! token in the records' [`ID_HEADER`] and [`TOKEN_HEADER`] lets the broker
//! rebuild it on start from the records of the last window
//! ([`Deduplication::remember`]); a message the log no longer holds (settled
//! and removed) is forgotten then, and its duplicate is enqueued again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// Record headers the window is rebuilt from: a message's deduplication id
/// and the token its duplicates are answered with.
pub const ID_HEADER: &str = "conveyor.deduplication-id";
pub const TOKEN_HEADER: &str = "conveyor.deduplication-token";

/// At most this many ids are remembered; past it the oldest are forgotten
/// before their window ends (bounds memory under a flood of distinct ids).
const IDS_MAX: usize = 100_000;

#[derive(Debug)]
struct Seen {
    /// The original publish's token (SQS: its MessageId).
    token: String,
    expires_ms: i64,
    /// The original's offset once appended; `None` while it is under way.
    offset: watch::Receiver<Option<u64>>,
    /// Tells entries of the same id apart when an expired one was replaced.
    generation: u64,
}

#[derive(Debug, Default)]
struct Window {
    seen: HashMap<String, Seen>,
    /// Ids by insertion (and so by expiry, the window being fixed).
    order: VecDeque<(i64, String, u64)>,
    generation: u64,
}

/// The window of one queue. See the module documentation.
#[derive(Debug, Clone)]
pub struct Deduplication {
    window_ms: i64,
    window: Arc<Mutex<Window>>,
}

/// What [`Deduplication::check`] decided.
#[derive(Debug)]
pub enum Deduplicated {
    /// Not seen: publish, then [`Claim::appended`] with the offset.
    New(Claim),
    /// Seen within the window: do not publish; answer as the original.
    Duplicate(Original),
}

/// A new id, reserved until the publish is appended. Dropped without
/// [`Claim::appended`] (the publish failed), the id is forgotten, so a retry
/// is enqueued.
#[derive(Debug)]
pub struct Claim {
    id: String,
    generation: u64,
    offset: Option<watch::Sender<Option<u64>>>,
    window: Arc<Mutex<Window>>,
}

impl Claim {
    pub fn appended(mut self, offset: u64) {
        if let Some(sender) = self.offset.take() {
            sender.send_replace(Some(offset));
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.offset.is_some() {
            let mut window = self.window.lock();
            if window.seen.get(&self.id).is_some_and(|seen| seen.generation == self.generation) {
                window.seen.remove(&self.id);
            }
        }
    }
}

/// The publish a duplicate repeats.
#[derive(Debug)]
pub struct Original {
    pub token: String,
    offset: watch::Receiver<Option<u64>>,
}

impl Original {
    /// The original's offset, once appended; `None` if its publish failed.
    pub async fn offset(mut self) -> Option<u64> {
        match self.offset.wait_for(Option::is_some).await {
            Ok(offset) => *offset,
            Err(_) => None,
        }
    }
}

impl Window {
    /// Remembers `id` until `expires_ms`; returns the generation of this entry.
    fn insert(&mut self, id: &str, token: &str, expires_ms: i64, offset: watch::Receiver<Option<u64>>) -> u64 {
        self.generation += 1;
        let generation = self.generation;
        self.seen.insert(
            id.to_owned(),
            Seen {
                token: token.to_owned(),
                expires_ms,
                offset,
                generation,
            },
        );
        self.order.push_back((expires_ms, id.to_owned(), generation));
        generation
    }
}

impl Deduplication {
    pub fn new(window_ms: i64) -> Deduplication {
        Deduplication {
            window_ms,
            window: Arc::new(Mutex::new(Window::default())),
        }
    }

    /// How long an id is remembered.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Remembers a publish already appended at `offset` at `published_ms`
    /// (rebuilding the window on start). Oldest first, like publishes.
    pub fn remember(&self, id: &str, token: &str, offset: u64, published_ms: i64) {
        let mut window = self.window.lock();
        if window.order.len() >= IDS_MAX {
            return;
        }
        let (_, receiver) = watch::channel(Some(offset));
        window.insert(id, token, published_ms.saturating_add(self.window_ms), receiver);
    }

    /// Checks `id` at `now_ms`: a duplicate of a publish within the window,
    /// or new (and then remembered with `token` until the window ends).
    pub fn check(&self, id: &str, token: &str, now_ms: i64) -> Deduplicated {
        let mut window = self.window.lock();
        let expired_max = window.order.len();
        for _ in 0..expired_max {
            let Some((expires_ms, _, _)) = window.order.front() else {
                break;
            };
            if *expires_ms > now_ms && window.order.len() < IDS_MAX {
                break;
            }
            if let Some((_, old, generation)) = window.order.pop_front()
                && window.seen.get(&old).is_some_and(|seen| seen.generation == generation)
            {
                window.seen.remove(&old);
            }
        }
        if let Some(seen) = window.seen.get(id)
            && seen.expires_ms > now_ms
        {
            return Deduplicated::Duplicate(Original {
                token: seen.token.clone(),
                offset: seen.offset.clone(),
            });
        }
        let (sender, receiver) = watch::channel(None);
        let generation = window.insert(id, token, now_ms.saturating_add(self.window_ms), receiver);
        Deduplicated::New(Claim {
            id: id.to_owned(),
            generation,
            offset: Some(sender),
            window: Arc::clone(&self.window),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(deduplicated: Deduplicated) -> Claim {
        match deduplicated {
            Deduplicated::New(claim) => claim,
            Deduplicated::Duplicate(original) => panic!("a duplicate of {}", original.token),
        }
    }

    fn duplicate(deduplicated: Deduplicated) -> Original {
        match deduplicated {
            Deduplicated::Duplicate(original) => original,
            Deduplicated::New(_) => panic!("not a duplicate"),
        }
    }

    #[tokio::test]
    async fn a_duplicate_within_the_window_answers_as_the_original() {
        let deduplication = Deduplication::new(1_000);
        let claim = new(deduplication.check("id", "first", 0));
        let original = duplicate(deduplication.check("id", "second", 10));
        assert_eq!(original.token, "first");
        claim.appended(7);
        assert_eq!(original.offset().await, Some(7));
        assert_eq!(duplicate(deduplication.check("id", "third", 999)).offset().await, Some(7));
        new(deduplication.check("id", "fourth", 1_000)).appended(8);
        assert_eq!(duplicate(deduplication.check("id", "fifth", 1_001)).token, "fourth");
    }

    #[tokio::test]
    async fn remembered_publishes_are_duplicates_until_their_window_ends() {
        let deduplication = Deduplication::new(1_000);
        deduplication.remember("id", "original", 9, 100);
        let original = duplicate(deduplication.check("id", "again", 1_099));
        assert_eq!(original.token, "original");
        assert_eq!(original.offset().await, Some(9));
        new(deduplication.check("id", "later", 1_100));
    }

    #[tokio::test]
    async fn a_failed_publish_forgets_its_id() {
        let deduplication = Deduplication::new(1_000);
        let claim = new(deduplication.check("id", "first", 0));
        let original = duplicate(deduplication.check("id", "second", 1));
        drop(claim);
        assert_eq!(original.offset().await, None);
        new(deduplication.check("id", "third", 2));
    }
}
