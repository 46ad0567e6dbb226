//! The consumer acknowledgement timeout (RabbitMQ's `consumer_timeout`,
//! per queue `x-consumer-timeout`): a channel holding a delivery
//! unacknowledged longer than its queue allows is closed with 406
//! PRECONDITION_FAILED in RabbitMQ's words, which gives every delivery it
//! held back to its queue for another consumer. Knows when a channel is
//! due and what it is told; the connection closes the channel, on a tick.

use std::time::{Duration, Instant};

use crate::channel::Unacked;
use crate::reply::{self, Exception};

/// How often each connection looks for channels past their timeout: a
/// channel closes at most this much after its timeout ran out.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The exception closing channel `channel_id` if one of its deliveries has
/// waited for its ack longer than its queue's timeout (`x-consumer-timeout`,
/// else `default_ms`) at `now`.
pub fn check<'a>(unacked: impl IntoIterator<Item = &'a Unacked>, channel_id: u16, default_ms: u64, now: Instant) -> Option<Exception> {
    unacked.into_iter().find_map(|one| {
        let timeout_ms = one
            .queue
            .policy()
            .consumer_timeout_ms
            .and_then(|timeout_ms| u64::try_from(timeout_ms).ok())
            .unwrap_or(default_ms);
        (now.saturating_duration_since(one.delivered) > Duration::from_millis(timeout_ms)).then(|| timed_out(channel_id, timeout_ms))
    })
}

/// RabbitMQ's text, word for word.
fn timed_out(channel_id: u16, timeout_ms: u64) -> Exception {
    Exception::new(
        reply::PRECONDITION_FAILED,
        format!(
            "delivery acknowledgement on channel {channel_id} timed out. Timeout value used: {timeout_ms} ms. \
             This timeout value can be configured, see consumers doc guide to learn more"
        ),
    )
}
