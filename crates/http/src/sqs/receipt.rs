//! Receipt handles: which queue (by id, so a queue deleted and created again
//! under the same name refuses old handles), which message (offset) and
//! which receive (the share-cursor consumer that holds it). Every receive
//! gets a fresh consumer, so the handle of an earlier receive cannot settle a
//! redelivered message. Opaque to clients: base64 of a small text form.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use conveyor_core::queue::ConsumerId;
use uuid::Uuid;

const VERSION: &str = "c1";
/// Longer strings are refused before decoding.
const ENCODED_BYTES_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptHandle {
    pub queue_id: Uuid,
    pub offset: u64,
    pub consumer: ConsumerId,
}

impl ReceiptHandle {
    pub fn encode(&self) -> String {
        BASE64.encode(format!("{VERSION}:{}:{}:{}", self.queue_id.simple(), self.offset, self.consumer.0))
    }

    /// `None` for anything this broker did not hand out.
    pub fn decode(text: &str) -> Option<ReceiptHandle> {
        if text.is_empty() || text.len() > ENCODED_BYTES_MAX {
            return None;
        }
        let bytes = BASE64.decode(text).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != VERSION {
            return None;
        }
        let queue_id = Uuid::try_parse(parts.next()?).ok()?;
        let offset = parts.next()?.parse().ok()?;
        let consumer = ConsumerId(parts.next()?.parse().ok()?);
        if parts.next().is_some() {
            return None;
        }
        Some(ReceiptHandle {
            queue_id,
            offset,
            consumer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_round_trips() {
        let handle = ReceiptHandle {
            queue_id: Uuid::new_v4(),
            offset: 17,
            consumer: ConsumerId(3),
        };
        assert_eq!(ReceiptHandle::decode(&handle.encode()), Some(handle));
    }

    #[test]
    fn garbage_is_refused() {
        for text in [
            "",
            "garbage",
            "!!!!",
            &"A".repeat(1000),
            &BASE64.encode("c1:x:1:2"),
            &BASE64.encode("c2:0:1:2"),
        ] {
            assert_eq!(ReceiptHandle::decode(text), None, "{text}");
        }
    }
}
