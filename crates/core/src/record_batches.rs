//! Decodes the records of whole batches as a log read returns them, with
//! every length checked against the bytes read. Knows the batch framing of
//! `conveyor-log`; nothing of what the records mean.

use bytes::Bytes;
use conveyor_log::record::{Record, decode_records};

/// Every record of the whole batches in `bytes`.
pub(crate) fn decode_batches(bytes: &Bytes) -> Result<Vec<Record>, String> {
    decode(bytes, true)
}

/// The records of the whole data batches in `bytes`: a transaction's
/// markers (control batches) are no messages to a reader.
pub(crate) fn decode_data_batches(bytes: &Bytes) -> Result<Vec<Record>, String> {
    decode(bytes, false)
}

fn decode(bytes: &Bytes, with_control: bool) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut position = 0;
    // Each step consumes one batch of at least a header's length.
    let steps_max = bytes.len() / conveyor_log::batch::HEADER_BYTES + 1;
    for _ in 0..steps_max {
        if position >= bytes.len() {
            break;
        }
        let rest = &bytes[position..];
        let header = conveyor_log::batch::check_batch(rest).map_err(|error| error.to_string())?;
        let total_bytes = header.total_bytes();
        if total_bytes == 0 || total_bytes > rest.len() {
            return Err(format!("batch at byte {position} overruns the read"));
        }
        if with_control || !header.is_control() {
            records.extend(decode_records(&rest[..total_bytes]).map_err(|error| error.to_string())?);
        }
        position += total_bytes;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoding_garbage_reads_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_batches(&Bytes::from(bytes));
        }
    }
}
