//! Deep nesting, the one structure a short frame can use to exhaust the
//! stack: builds a method or content-header frame whose field table nests
//! tables and arrays as deep as the input asks (up to 20,000 levels), with
//! fuzzer bytes at the bottom and optionally spliced anywhere, and decodes
//! it as the AMQP door does. Must hold: no stack overflow, no panic; a
//! well-formed frame nested past `DEPTH_MAX` is refused as too deep.
#![no_main]

use conveyor_amqp::frame::{FrameError, decode};
use conveyor_amqp::nesting::DEPTH_MAX;
use libfuzzer_sys::fuzz_target;

/// Wraps `inner` (a table's contents) in `depth` levels; bit `i % 8` of
/// `arrays` makes level `i` (below the outermost table) an array.
fn nest(depth: usize, arrays: u8, inner: &[u8]) -> Vec<u8> {
    // Built from the inside out into a reversed buffer, without recursion.
    let mut reversed: Vec<u8> = inner.iter().rev().copied().collect();
    for level in (0..depth).rev() {
        let length = reversed.len() as u32;
        reversed.extend(length.to_be_bytes().iter().rev());
        if level > 0 {
            let array_parent = level > 1 && arrays & (1 << ((level - 1) % 8)) != 0;
            let kind = if arrays & (1 << (level % 8)) != 0 { b'A' } else { b'F' };
            reversed.push(kind);
            if !array_parent {
                reversed.extend([b'a', 1]);
            }
        }
    }
    reversed.reverse();
    reversed
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind, 0, 1];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(0xCE);
    frame
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let depth = usize::from(u16::from_be_bytes([data[0], data[1]])) % 20_000;
    let arrays = data[2];
    let (where_, splice_at) = (data[3], data[4]);
    let rest = &data[5..];
    // A well-formed bottom (empty) unless the input asks for its bytes there.
    let bottom: &[u8] = if where_ & 1 == 1 { rest } else { &[] };
    let table = nest(depth.max(1), arrays, bottom);
    let (payload, kind) = if where_ & 2 == 0 {
        // connection.start-ok: client properties, mechanism, response, locale.
        let mut payload = vec![0, 10, 0, 11];
        payload.extend_from_slice(&table);
        payload.extend_from_slice(&[5, b'P', b'L', b'A', b'I', b'N', 0, 0, 0, 0, 0]);
        (payload, 1)
    } else {
        // A content header: class 60, weight, body size, flags (headers only).
        let mut payload = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0b0010_0000, 0];
        payload.extend_from_slice(&table);
        (payload, 2)
    };
    let mut bytes = frame(kind, &payload);
    if where_ & 4 != 0 && !rest.is_empty() {
        let at = usize::from(splice_at) * bytes.len() / 256;
        bytes.splice(at..at, rest.iter().copied());
    }
    let result = decode(&bytes);
    if where_ & 5 == 0 && depth > DEPTH_MAX {
        assert!(matches!(result, Err(FrameError::TooDeep(_))), "{depth} levels were not refused");
    }
});
