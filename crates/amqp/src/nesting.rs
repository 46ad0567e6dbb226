//! Refuses field tables and arrays nested deeper than [`DEPTH_MAX`] before
//! `amq-protocol` decodes them. Its parser recurses once per level, so one
//! small frame nesting tables a few thousand deep (a `connection.start-ok`
//! of 14 KB, before any login) would overflow the stack and abort the whole
//! process. This walk is iterative and allocates nothing; it knows where
//! each method and the content header carry a table, and nothing else of
//! the protocol. What is merely malformed it leaves to the parser.

/// The deepest nesting of tables and arrays accepted: a table is one level,
/// a table inside it two. Real clients use two or three (`capabilities` in
/// client properties, `x-death` arrays of tables). Kept well under what the
/// catalog's JSON (two JSON levels per AMQP level) reads back.
pub const DEPTH_MAX: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("field table or array nested deeper than {DEPTH_MAX} levels")]
pub struct TooDeep;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
/// Frame type (1) + channel (2) + payload size (4).
const FRAME_HEADER_BYTES: usize = 7;

/// One field before a method's table, to skip.
#[derive(Clone, Copy)]
enum Field {
    Octet,
    Short,
    ShortString,
}

use Field::{Octet, Short, ShortString};

/// The fields before the arguments table of each method that has one, as
/// `amq-protocol` parses them (bits packed into one octet).
fn table_prefix(class_id: u16, method_id: u16) -> Option<&'static [Field]> {
    Some(match (class_id, method_id) {
        (10, 10) => &[Octet, Octet],                                                   // connection.start
        (10, 11) => &[],                                                               // connection.start-ok
        (40, 10) => &[Short, ShortString, ShortString, Octet],                         // exchange.declare
        (40, 30) | (40, 40) => &[Short, ShortString, ShortString, ShortString, Octet], // exchange.bind, unbind
        (50, 10) => &[Short, ShortString, Octet],                                      // queue.declare
        (50, 20) => &[Short, ShortString, ShortString, ShortString, Octet],            // queue.bind
        (50, 50) => &[Short, ShortString, ShortString, ShortString],                   // queue.unbind
        (60, 20) => &[Short, ShortString, ShortString, Octet],                         // basic.consume
        _ => return None,
    })
}

/// Checks one whole frame (header, payload and end octet).
pub fn check_frame(frame: &[u8]) -> Result<(), TooDeep> {
    let Some(payload) = frame.get(FRAME_HEADER_BYTES..frame.len().saturating_sub(1)) else {
        return Ok(());
    };
    match frame.first() {
        Some(&FRAME_METHOD) => check_method(payload),
        // Class (2), weight (2), body size (8), then the properties.
        Some(&FRAME_HEADER) => payload.get(12..).map_or(Ok(()), check_properties),
        _ => Ok(()),
    }
}

/// Checks a method frame's payload: class and method ids, then arguments.
fn check_method(payload: &[u8]) -> Result<(), TooDeep> {
    let (Some(class), Some(method)) = (read_u16(payload, 0), read_u16(payload, 2)) else {
        return Ok(());
    };
    let Some(prefix) = table_prefix(class, method) else {
        return Ok(());
    };
    let mut at = 4;
    for field in prefix {
        let Some(next) = skip(payload, at, *field) else {
            return Ok(());
        };
        at = next;
    }
    check_value(payload, at, b'F')
}

/// Checks encoded basic properties (flags, then the present properties): the
/// `headers` table is third, after two short strings.
pub fn check_properties(properties: &[u8]) -> Result<(), TooDeep> {
    let Some(flags) = read_u16(properties, 0) else {
        return Ok(());
    };
    let mut at = 2;
    for bit in [15, 14] {
        if flags & (1 << bit) != 0 {
            let Some(next) = skip(properties, at, ShortString) else {
                return Ok(());
            };
            at = next;
        }
    }
    if flags & (1 << 13) == 0 {
        return Ok(());
    }
    check_value(properties, at, b'F')
}

/// Checks one encoded field table (its length prefix first), such as an
/// AMQPLAIN login response.
pub fn check_table(table: &[u8]) -> Result<(), TooDeep> {
    check_value(table, 0, b'F')
}

fn skip(bytes: &[u8], at: usize, field: Field) -> Option<usize> {
    let next = match field {
        Octet => at + 1,
        Short => at + 2,
        ShortString => at + 1 + usize::from(*bytes.get(at)?),
    };
    (next <= bytes.len()).then_some(next)
}

/// Walks the value of type `kind` whose encoding starts at `at`, without
/// recursion. Stops quietly at anything malformed: the parser meets it at
/// the same place, no deeper, and reports it.
fn check_value(bytes: &[u8], at: usize, kind: u8) -> Result<(), TooDeep> {
    // The end offset of each table or array being walked, and whether it is
    // a table (whose values have a name first); `depth` of them are open.
    let mut open = [(0usize, false); DEPTH_MAX];
    let mut depth: usize = 0;
    let mut at = at;
    let mut first = Some(kind);
    // Each step reads a type octet or closes a container (whose opening read
    // five), so a walk takes fewer than 2 × len + 2 steps.
    for _ in 0..bytes.len().saturating_mul(2).saturating_add(2) {
        let kind = match first.take() {
            Some(kind) => kind,
            None => {
                let Some(&(end, table)) = depth.checked_sub(1).and_then(|top| open.get(top)) else {
                    return Ok(());
                };
                if at >= end {
                    depth -= 1;
                    if at > end || depth == 0 {
                        return Ok(());
                    }
                    continue;
                }
                if table {
                    match skip(bytes, at, ShortString) {
                        Some(next) if next < end => at = next,
                        _ => return Ok(()),
                    }
                }
                let Some(&kind) = bytes.get(at) else { return Ok(()) };
                at += 1;
                kind
            }
        };
        if kind == b'F' || kind == b'A' {
            let Some(length) = read_u32(bytes, at) else { return Ok(()) };
            let end = (at + 4).saturating_add(length as usize);
            let outer_end = depth.checked_sub(1).map_or(bytes.len(), |top| open[top].0);
            if end > outer_end {
                return Ok(());
            }
            if depth == DEPTH_MAX {
                return Err(TooDeep);
            }
            open[depth] = (end, kind == b'F');
            depth += 1;
            at += 4;
        } else {
            let Some(size) = scalar_size(bytes, at, kind) else { return Ok(()) };
            at += size;
        }
    }
    Ok(())
}

/// The encoded size of a scalar value after its type octet; `None` for an
/// unknown type or one running past the end (the parser reports those).
fn scalar_size(bytes: &[u8], at: usize, kind: u8) -> Option<usize> {
    let size = match kind {
        b'V' => 0,
        b't' | b'b' | b'B' => 1,
        b's' | b'U' | b'u' => 2,
        b'I' | b'i' | b'f' => 4,
        b'D' => 5,
        b'l' | b'L' | b'd' | b'T' => 8,
        b'S' | b'x' => 4 + read_u32(bytes, at)? as usize,
        _ => return None,
    };
    (at.checked_add(size)? <= bytes.len()).then_some(size)
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The encoding of a field table nesting `depth` levels, built without
/// recursion: what a hostile client sends, for tests and fuzzing of this
/// check. The
/// outermost level is a table; each level holds the next through an
/// entry named `a` (name length, name, type: 3 bytes) or, with `arrays`,
/// every level below the first is an array holding the next as its one
/// element (its type: 1 byte).
pub fn nested_table_bytes(depth: usize, arrays: bool) -> Vec<u8> {
    let (kind, entry_bytes) = if arrays { (b'A', 1) } else { (b'F', 3) };
    let mut bytes = Vec::new();
    for level in 0..depth {
        let inner_levels = depth - level - 1;
        let entry = if level == 0 { 3 } else { entry_bytes };
        let content = match inner_levels {
            0 => 0,
            // The entry holding the next level, its length, then every level below it.
            _ => entry + 4 + (inner_levels - 1) * (entry_bytes + 4),
        };
        bytes.extend_from_slice(&(content as u32).to_be_bytes());
        if inner_levels > 0 {
            if entry == 3 {
                bytes.extend_from_slice(&[1, b'a']);
            }
            bytes.push(kind);
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
    use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, connection, queue};
    use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
    use proptest::prelude::*;

    use crate::frame::{decode, encode};

    fn nested(depth: usize) -> FieldTable {
        let mut table = FieldTable::default();
        for _ in 1..depth {
            let mut outer = FieldTable::default();
            outer.insert(ShortString::from("a"), AMQPValue::FieldTable(table));
            table = outer;
        }
        table
    }

    fn start_ok(client_properties: FieldTable) -> Vec<u8> {
        encode(&[AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties,
                mechanism: ShortString::from("PLAIN"),
                response: LongString::from("\0guest\0guest"),
                locale: ShortString::from("en_US"),
            })),
        )])
        .to_vec()
    }

    /// A start-ok frame around raw client-properties bytes.
    fn raw_start_ok(table: &[u8]) -> Vec<u8> {
        let mut payload = vec![0, 10, 0, 11];
        payload.extend_from_slice(table);
        payload.extend_from_slice(&[5, b'P', b'L', b'A', b'I', b'N', 0, 0, 0, 0, 5, b'e', b'n', b'_', b'U', b'S']);
        let mut frame = vec![1, 0, 0];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.push(0xCE);
        frame
    }

    #[test]
    fn the_hand_built_nesting_is_what_the_codec_builds() {
        let generated = start_ok(nested(5));
        let table = nested_table_bytes(5, false);
        // Frame header (7), class and method (4), then the client properties.
        assert_eq!(&generated[11..11 + table.len()], table.as_slice());
    }

    #[test]
    fn nesting_up_to_the_limit_decodes() {
        let frame = start_ok(nested(DEPTH_MAX));
        assert!(decode(&frame).is_ok());
        assert_eq!(check_table(&nested_table_bytes(DEPTH_MAX, true)), Ok(()));
    }

    #[test]
    fn one_level_more_is_refused() {
        let frame = start_ok(nested(DEPTH_MAX + 1));
        assert!(matches!(decode(&frame), Err(crate::frame::FrameError::TooDeep(_))));
        assert_eq!(check_table(&nested_table_bytes(DEPTH_MAX + 1, true)), Err(TooDeep));
    }

    #[test]
    fn ten_thousand_levels_are_refused_without_recursing() {
        for arrays in [false, true] {
            let table = nested_table_bytes(10_000, arrays);
            assert_eq!(check_frame(&raw_start_ok(&table)), Err(TooDeep));
        }
    }

    #[test]
    fn every_method_with_arguments_and_the_content_header_are_checked() {
        let deep = nested(DEPTH_MAX + 1);
        let declare = encode(&[AMQPFrame::Method(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: ShortString::from("q"),
                passive: false,
                durable: true,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: deep.clone(),
            })),
        )]);
        assert_eq!(check_frame(&declare), Err(TooDeep));
        let consume = encode(&[AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                queue: ShortString::from("q"),
                consumer_tag: ShortString::from("tag"),
                no_local: false,
                no_ack: false,
                exclusive: false,
                nowait: false,
                arguments: deep.clone(),
            })),
        )]);
        assert_eq!(check_frame(&consume), Err(TooDeep));
        let properties = BasicProperties::default()
            .with_content_type(ShortString::from("text/plain"))
            .with_headers(deep.clone());
        let header = encode(&[AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: 60,
                body_size: 1,
                properties: properties.clone(),
            },
        )]);
        assert_eq!(check_frame(&header), Err(TooDeep));
        let shallow = BasicProperties::default().with_headers(nested(3));
        let header = encode(&[AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: 60,
                body_size: 1,
                properties: shallow,
            },
        )]);
        assert!(decode(&header).is_ok());
        let mut array = FieldTable::default();
        array.insert(
            ShortString::from("list"),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(deep)])),
        );
        assert_eq!(check_frame(&start_ok(array)), Err(TooDeep));
    }

    #[test]
    fn a_record_whose_stored_properties_nest_too_deep_is_delivered_without_them() {
        // Any front door can write the header (a Kafka producer too).
        let mut properties = vec![0b0010_0000, 0];
        properties.extend_from_slice(&nested_table_bytes(10_000, false));
        let record = conveyor_log::record::Record::new(Some(b"key".to_vec()), Some(b"body".to_vec()))
            .with_header(crate::message::PROPERTIES_HEADER, Some(properties));
        let message = crate::message::Message::from_record(record);
        assert_eq!(message.properties, BasicProperties::default());
        assert_eq!(message.body, b"body");
    }

    proptest! {
        #[test]
        fn any_bytes_are_walked_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = check_table(&bytes);
            let _ = check_properties(&bytes);
            let mut frame = vec![1, 0, 0];
            frame.extend_from_slice(&bytes);
            let _ = check_frame(&frame);
        }
    }
}
