//! Decodes the records of whole batches as a log read returns them, with
//! every length checked against the bytes read; compressed batches (a Kafka
//! producer's) are expanded by the log's codecs, within the log's bound.
//! Knows the batch framing of `conveyor-log`; nothing of what the records
//! mean.

use bytes::Bytes;
use conveyor_log::batch::BatchHeader;
use conveyor_log::record::{Record, decode_records};

/// Every record of the whole batches in `bytes`.
pub(crate) fn decode_batches(bytes: &Bytes) -> Result<Vec<Record>, String> {
    decode(bytes, true)
}

/// The records of the whole data batches in `bytes` whose header `keep`
/// accepts: a transaction's markers (control batches) are no messages to a
/// reader.
pub(crate) fn decode_data_batches_where(bytes: &Bytes, keep: impl Fn(&BatchHeader) -> bool) -> Result<Vec<Record>, String> {
    decode_where(bytes, |header| !header.is_control() && keep(header))
}

fn decode(bytes: &Bytes, with_control: bool) -> Result<Vec<Record>, String> {
    decode_where(bytes, |header| with_control || !header.is_control())
}

fn decode_where(bytes: &Bytes, keep: impl Fn(&BatchHeader) -> bool) -> Result<Vec<Record>, String> {
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
        if keep(&header) {
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

    #[test]
    fn compressed_batches_decode_between_plain_ones() {
        use conveyor_log::codec::Codec;
        use conveyor_log::record::BatchBuilder;
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for (index, codec) in [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd]
            .into_iter()
            .enumerate()
        {
            let mut builder = BatchBuilder::new(1_000).compression(codec);
            for record in 0..3 {
                let value = format!("{}-{record}", codec.name()).into_bytes();
                builder.push(Record::new(None, Some(value.clone())));
                want.push(value);
            }
            let mut batch = builder.build().to_vec();
            conveyor_log::batch::set_base_offset(&mut batch, index as i64 * 3);
            bytes.extend_from_slice(&batch);
        }
        let records = decode_data_batches_where(&Bytes::from(bytes), |_| true).expect("decodes");
        let values: Vec<_> = records.iter().map(|record| record.value.clone().expect("value")).collect();
        assert_eq!(values, want);
        let offsets: Vec<_> = records.iter().map(|record| record.offset.expect("offset")).collect();
        assert_eq!(offsets, (0..15).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn decoding_garbage_reads_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_batches(&Bytes::from(bytes));
        }
    }
}
