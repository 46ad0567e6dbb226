//! Batch checking and record decoding on arbitrary bytes: what a Kafka
//! produce request hands the log. Each input is checked as it is and again
//! with every batch's CRC-32C resealed, so mutations get past the checksum to
//! the framing and record decoding behind it. Nothing may panic, and the
//! checks must agree with each other about what they accept.

#![no_main]

mod reseal;

use conveyor_log::batch::{check_batch, check_batches, whole_batches_len};
use conveyor_log::record::{RecordError, decode_records};
use libfuzzer_sys::fuzz_target;

use reseal::reseal;

fn check(data: &[u8]) {
    let _ = decode_records(data);
    let Ok(headers) = check_batches(data) else {
        return;
    };
    // Accepted input is whole batches, nothing else.
    assert_eq!(whole_batches_len(data), data.len());
    let mut position = 0;
    for header in headers {
        let batch = &data[position..position + header.total_bytes()];
        assert_eq!(check_batch(batch), Ok(header));
        match decode_records(batch) {
            Ok(records) => {
                assert_eq!(records.len(), header.records_count as usize);
                assert!(
                    records
                        .iter()
                        .all(|record| record.offset.is_some() && record.timestamp_ms.is_some())
                );
            }
            // decode_records expands compressed batches through their codec:
            // hostile compressed bytes are refused, never a panic.
            Err(RecordError::Compressed(codec) | RecordError::UnknownCodec(codec)) => assert_ne!(codec, 0),
            Err(RecordError::DecompressedTooLarge { .. } | RecordError::CorruptCompression { .. } | RecordError::Malformed(_)) => {}
            Err(RecordError::Framing(error)) => panic!("check_batch accepted what decode_records rejects: {error}"),
        }
        position += header.total_bytes();
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut resealed = data.to_vec();
    reseal(&mut resealed);
    check(&resealed);
});
