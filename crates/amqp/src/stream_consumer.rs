//! Consumers of streams (`x-queue-type: stream`), as RabbitMQ's AMQP 0-9-1
//! consumers of streams behave: each is a reader at an offset on the
//! queue's log, starting where `x-stream-offset` says (`first`, `last`,
//! `next`, an offset, a timestamp or an interval such as `30m`); every
//! delivery carries its offset in the `x-stream-offset` header; acks only
//! give prefetch credit back, nothing is removed. Knows the AMQP side
//! (arguments, headers, RabbitMQ's refusals); reading the log is the
//! core's (`queue/stream.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use amq_protocol::protocol::basic;
use amq_protocol::types::{AMQPValue, FieldTable};
use conveyor_core::queue::{ConsumerId, DeclaredQueue, StreamStart};
use conveyor_rabbit_args::age_ms;
use tracing::warn;

use crate::channel::{Shared, Unacked, consumer_ended, content_frames};
use crate::consumer_cancel;
use crate::frame;
use crate::message::Message;
use crate::prefetch::Window;
use crate::reply::{self, Exception, short};

/// The consumer argument saying where a stream consumer starts, and the
/// header every delivery from a stream carries its offset in.
pub const OFFSET: &str = "x-stream-offset";
/// Records read from the log per round, at most.
const READ_RECORDS_MAX: usize = 256;
/// A reader with nothing to read looks again this often even unwoken
/// (retention may have moved the log's start).
const IDLE_WAKE_MS: u64 = 1_000;

/// RabbitMQ's refusals of a consumer of a stream: without a prefetch limit
/// (406), or with automatic acknowledgement (540). `queue` and `vhost` as
/// the client names them.
pub fn check_consume(no_ack: bool, prefetch: usize, queue: &str, vhost: &str) -> Result<(), Exception> {
    if prefetch == 0 {
        return Err(Exception::new(
            reply::PRECONDITION_FAILED,
            format!("consumer prefetch count is not set for 'queue '{queue}' in vhost '{vhost}''"),
        ));
    }
    if no_ack {
        return Err(Exception::new(
            reply::NOT_IMPLEMENTED,
            format!("automatic acknowledgement not supported by stream queues queue '{queue}' in vhost '{vhost}'"),
        ));
    }
    Ok(())
}

/// RabbitMQ's refusal of `basic.get` on a stream (540).
pub fn get_refused(queue: &str, vhost: &str) -> Exception {
    Exception::new(
        reply::NOT_IMPLEMENTED,
        format!("basic.get not supported by stream queues queue '{queue}' in vhost '{vhost}'"),
    )
}

/// RabbitMQ's refusal of `queue.purge` on a stream (540, as
/// `rabbit_channel` answers its stream queues' `{error, not_supported}`).
pub fn purge_refused(queue: &str, vhost: &str) -> Exception {
    Exception::new(
        reply::NOT_IMPLEMENTED,
        format!("queue.purge not supported by stream queues queue '{queue}' in vhost '{vhost}'"),
    )
}

/// Where a consumer starts, from its `x-stream-offset` argument (`next`
/// without one): `first`, `last`, `next`, an integer offset, an AMQP
/// timestamp (seconds) or an interval back from `now_ms` ("30m", "7D").
pub fn start(arguments: &FieldTable, now_ms: i64) -> Result<StreamStart, Exception> {
    let Some(value) = arguments.inner().get(OFFSET) else {
        return Ok(StreamStart::Next);
    };
    let invalid = || Exception::new(reply::PRECONDITION_FAILED, format!("invalid arg '{OFFSET}': {value:?}"));
    let offset = |number: i64| u64::try_from(number).map(StreamStart::Offset).map_err(|_| invalid());
    match value {
        AMQPValue::LongString(text) => text_start(&String::from_utf8_lossy(text.as_bytes()), now_ms).ok_or_else(invalid),
        AMQPValue::ShortString(text) => text_start(text.as_str(), now_ms).ok_or_else(invalid),
        AMQPValue::Timestamp(seconds) => i64::try_from(*seconds)
            .ok()
            .and_then(|seconds| seconds.checked_mul(1000))
            .map(StreamStart::Timestamp)
            .ok_or_else(invalid),
        AMQPValue::ShortShortInt(number) => offset(i64::from(*number)),
        AMQPValue::ShortShortUInt(number) => offset(i64::from(*number)),
        AMQPValue::ShortInt(number) => offset(i64::from(*number)),
        AMQPValue::ShortUInt(number) => offset(i64::from(*number)),
        AMQPValue::LongInt(number) => offset(i64::from(*number)),
        AMQPValue::LongUInt(number) => offset(i64::from(*number)),
        AMQPValue::LongLongInt(number) => offset(*number),
        _ => Err(invalid()),
    }
}

fn text_start(text: &str, now_ms: i64) -> Option<StreamStart> {
    match text {
        "first" => Some(StreamStart::First),
        "last" => Some(StreamStart::Last),
        "next" => Some(StreamStart::Next),
        interval => age_ms(interval).map(|age_ms| StreamStart::Timestamp(now_ms.saturating_sub(age_ms))),
    }
}

/// A stream consumer as its delivery task sees it.
pub(crate) struct Reader {
    pub(crate) consumer: ConsumerId,
    pub(crate) window: Arc<Window>,
    pub(crate) tag: String,
    /// The next offset to deliver.
    pub(crate) next: u64,
}

/// A stream consumer's delivery loop: reads what its prefetch window
/// allows from its offset on and sends it; parks until more is written,
/// room frees up or it is cancelled.
pub(crate) async fn deliver(shared: Arc<Shared>, declared: Arc<DeclaredQueue>, reader: Reader) {
    let Reader {
        consumer,
        window,
        tag,
        mut next,
    } = reader;
    let mut written = match declared.queue() {
        Ok(queue) => queue.subscribe_written(),
        Err(error) => {
            tracing::warn!(queue = declared.name, %error, "a stream's log could not be opened");
            return;
        }
    };
    loop {
        // Interest first, then the check: nothing that happens in between is missed.
        let turn = declared.available();
        tokio::pin!(turn);
        turn.as_mut().enable();
        let woken = window.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let roomier = shared.global.wake.notified();
        tokio::pin!(roomier);
        roomier.as_mut().enable();
        written.borrow_and_update();
        if consumer_ended(&shared, &declared, &window, &tag).await {
            return;
        }
        // Paused by channel.flow, or waiting behind a single active consumer.
        let waiting = !shared.flowing.load(Ordering::SeqCst) || declared.waits_its_turn(consumer);
        let reserved = if waiting { 0 } else { shared.reserve(&window, READ_RECORDS_MAX) };
        if reserved > 0 {
            let (reading, broker) = (Arc::clone(&declared), Arc::clone(&shared.broker));
            let read = tokio::task::spawn_blocking(move || broker.read_stream(&reading, next, reserved)).await;
            let records = match read {
                Ok(Ok(records)) => records,
                failed => {
                    shared.unreserve_unused(&window, reserved);
                    // Deleted meanwhile: the next round tells the client.
                    if consumer_cancel::gone_with_queue(&declared) {
                        continue;
                    }
                    let error = match failed {
                        Ok(Err(error)) => error.to_string(),
                        Err(error) => error.to_string(),
                        Ok(Ok(_)) => String::new(),
                    };
                    warn!(queue = declared.name, %error, "reading a stream failed; the consumer stops");
                    return;
                }
            };
            shared.unreserve_unused(&window, reserved.saturating_sub(records.len()));
            if !records.is_empty() {
                for record in records {
                    let Some(offset) = record.offset.and_then(|offset| u64::try_from(offset).ok()) else {
                        shared.unreserve_unused(&window, 1);
                        continue;
                    };
                    next = offset + 1;
                    send(&shared, &declared, consumer, &window, &tag, offset, Message::from_record(record)).await;
                }
                continue;
            }
        }
        tokio::select! {
            () = &mut turn => {}
            () = &mut woken => {}
            () = &mut roomier, if reserved == 0 => {}
            changed = written.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(std::time::Duration::from_millis(IDLE_WAKE_MS)) => {}
        }
    }
}

/// Sends one message at `offset` with its `x-stream-offset` header; the
/// channel keeps its tag so an ack gives the credit back.
async fn send(
    shared: &Shared,
    declared: &Arc<DeclaredQueue>,
    consumer: ConsumerId,
    window: &Arc<Window>,
    tag: &str,
    offset: u64,
    message: Message,
) {
    let delivery_tag = shared.next_tag.fetch_add(1, Ordering::Relaxed);
    shared.track(
        delivery_tag,
        Unacked {
            queue: Arc::clone(declared),
            consumer,
            offset,
            delivery_count: 1,
            record: None,
            window: Some(Arc::clone(window)),
            delivered: std::time::Instant::now(),
        },
    );
    let message = with_offset(message, offset);
    let method = basic::AMQPMethod::Deliver(basic::Deliver {
        consumer_tag: short(tag.to_owned()),
        delivery_tag,
        redelivered: false,
        exchange: short(message.exchange.clone()),
        routing_key: short(message.routing_key.clone()),
    });
    let _ = shared.out.send(frame::encode(&content_frames(shared, method, &message))).await;
}

/// The message with its offset in the `x-stream-offset` header (a long, as RabbitMQ sends it).
fn with_offset(mut message: Message, offset: u64) -> Message {
    let mut headers = message.properties.headers().clone().unwrap_or_default();
    headers.insert(OFFSET.into(), AMQPValue::LongLongInt(i64::try_from(offset).unwrap_or(i64::MAX)));
    message.properties = message.properties.with_headers(headers);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(value: AMQPValue) -> FieldTable {
        let mut table = FieldTable::default();
        table.insert(OFFSET.into(), value);
        table
    }

    #[test]
    fn x_stream_offset_takes_rabbitmqs_spellings() {
        let now_ms = 10_000_000;
        let text = |text: &str| start(&arguments(AMQPValue::LongString(text.into())), now_ms);
        assert_eq!(start(&FieldTable::default(), now_ms).expect("none"), StreamStart::Next);
        assert_eq!(text("first").expect("first"), StreamStart::First);
        assert_eq!(text("last").expect("last"), StreamStart::Last);
        assert_eq!(text("next").expect("next"), StreamStart::Next);
        assert_eq!(text("30m").expect("interval"), StreamStart::Timestamp(now_ms - 1_800_000));
        assert!(text("soon").is_err());
        assert_eq!(
            start(&arguments(AMQPValue::LongLongInt(5)), now_ms).expect("offset"),
            StreamStart::Offset(5)
        );
        assert_eq!(
            start(&arguments(AMQPValue::Timestamp(1_700_000_000)), now_ms).expect("timestamp"),
            StreamStart::Timestamp(1_700_000_000_000)
        );
        assert!(start(&arguments(AMQPValue::LongLongInt(-1)), now_ms).is_err());
    }

    #[test]
    fn consumers_without_prefetch_or_with_auto_ack_are_refused_as_rabbitmq_refuses_them() {
        assert_eq!(
            check_consume(false, 0, "s", "/").expect_err("no qos").code,
            reply::PRECONDITION_FAILED
        );
        assert_eq!(check_consume(true, 10, "s", "/").expect_err("no-ack").code, reply::NOT_IMPLEMENTED);
        assert!(check_consume(false, 10, "s", "/").is_ok());
        assert_eq!(get_refused("s", "/").code, reply::NOT_IMPLEMENTED);
    }
}
