//! Rewrites one batch without some of its records, as Kafka's
//! `MemoryRecords.filterTo` does for the cleaner: the base offset, base
//! timestamp, max timestamp, last offset delta, attributes (the codec
//! among them: a compressed batch's kept records are compressed again with
//! the same codec) and producer id/epoch/base sequence stay as they were
//! (so idempotent producers' sequence checks and transactions keep
//! working, and offsets keep their gaps); the length, record count and
//! CRC-32C are recomputed. Knows batch framing, codecs and records;
//! nothing about keys' history or files.

use crate::batch::{self, HEADER_BYTES, LOG_OVERHEAD};
use crate::codec::{Codec, DECOMPRESSED_BYTES_MAX};
use crate::record::{BatchRecords, RecordError, RecordView};

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Every record kept: the batch's bytes serve unchanged.
    Unchanged,
    /// Some records kept (or none, for a batch whose header is kept for its
    /// producer's sequence and epoch): the new batch.
    Rewritten(Vec<u8>),
    /// No record kept and no header to keep: the batch goes.
    Dropped,
}

/// Keeps the records of `batch_bytes` (one whole batch, compressed or not)
/// for which `keep` says so; `keep` gets each record and its absolute
/// offset. A compressed batch expanding past the log's bound is refused
/// ([`RecordError::DecompressedTooLarge`]).
/// A batch left with no record goes, unless `retain_empty` (Kafka's
/// `RETAIN_EMPTY`: the producer's last batch, whose sequence and epoch
/// must survive the cleaning): then its header stays, with no records.
pub fn filter_batch(
    batch_bytes: &[u8],
    retain_empty: bool,
    mut keep: impl FnMut(&RecordView<'_>, u64) -> bool,
) -> Result<Filtered, RecordError> {
    let opened = BatchRecords::open(batch_bytes, DECOMPRESSED_BYTES_MAX)?;
    let header = opened.header();
    let views = opened.views()?;
    let base_offset = u64::try_from(header.base_offset).map_err(|_| RecordError::Malformed("negative base offset"))?;
    let kept: Vec<&RecordView<'_>> = views
        .iter()
        .filter(|view| keep(view, base_offset.saturating_add(view.offset_delta.max(0) as u64)))
        .collect();
    if kept.len() == views.len() {
        return Ok(Filtered::Unchanged);
    }
    if kept.is_empty() && !retain_empty {
        return Ok(Filtered::Dropped);
    }
    Ok(Filtered::Rewritten(rebuild(
        batch_bytes,
        opened.codec(),
        kept.iter().map(|view| view.encoded),
    )?))
}

/// The batch's header alone, with no records (and no compression, as
/// Kafka writes an empty batch): what stands for a segment whose records
/// all went, so the segment (and with it the log's start offset) stays, as
/// Kafka's cleaner keeps a cleaned segment's base offset; and what is left
/// of a producer's last batch whose records all went.
pub fn emptied(batch_bytes: &[u8]) -> Result<Vec<u8>, RecordError> {
    rebuild(batch_bytes, Codec::None, std::iter::empty())
}

/// The batch's header with `records`, compressed with `codec` (the
/// batch's own), in place of its records.
fn rebuild<'a>(batch_bytes: &[u8], codec: Codec, records: impl Iterator<Item = &'a [u8]>) -> Result<Vec<u8>, RecordError> {
    if batch_bytes.len() < HEADER_BYTES {
        return Err(RecordError::Malformed("batch header truncated"));
    }
    let mut body = Vec::with_capacity(batch_bytes.len() - HEADER_BYTES);
    let mut count = 0usize;
    for record in records {
        body.extend_from_slice(record);
        count += 1;
    }
    if count > 0 && codec != Codec::None {
        body = codec.compress(&body)?;
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(&batch_bytes[..HEADER_BYTES]);
    out.extend_from_slice(&body);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| RecordError::Malformed("batch too large"))?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let records_count = i32::try_from(count).map_err(|_| RecordError::Malformed("too many records"))?;
    out[57..61].copy_from_slice(&records_count.to_be_bytes());
    if count == 0 {
        // No records, so nothing compressed: a reader must not try to
        // decompress an empty payload.
        let attributes = i16::from_be_bytes([out[21], out[22]]) & !batch::attributes::COMPRESSION_MASK;
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
    }
    let crc = batch::compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchHeader, check_batch};
    use crate::record::{BatchBuilder, Record, decode_records};

    fn batch(producer_id: i64, base_offset: i64) -> Vec<u8> {
        let mut builder = BatchBuilder::new(1_000).producer(producer_id, 3, 40);
        for (index, key) in ["a", "b", "a", "c"].iter().enumerate() {
            let mut record = Record::new(Some(key.as_bytes().to_vec()), Some(format!("v{index}").into_bytes()));
            record.timestamp_ms = Some(1_000 + index as i64);
            builder.push(record);
        }
        let mut bytes = builder.build().to_vec();
        batch::set_base_offset(&mut bytes, base_offset);
        bytes
    }

    #[test]
    fn a_rewritten_batch_keeps_offsets_timestamps_and_producer_fields() {
        let original = batch(7, 100);
        let Filtered::Rewritten(bytes) = filter_batch(&original, false, |_, offset| offset != 100 && offset != 102).expect("filter") else {
            panic!("expected a rewrite");
        };
        let header = check_batch(&bytes).expect("a valid batch with a correct CRC");
        let before = BatchHeader::parse(&original).expect("header");
        assert_eq!(header.base_offset, 100);
        assert_eq!(
            header.last_offset_delta, before.last_offset_delta,
            "the last offset stays for the producer's sequence"
        );
        assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (7, 3, 40));
        assert_eq!(
            (header.base_timestamp, header.max_timestamp),
            (before.base_timestamp, before.max_timestamp)
        );
        assert_eq!(header.records_count, 2);
        let records = decode_records(&bytes).expect("decode");
        let kept: Vec<(i64, Option<i64>, Vec<u8>)> = records
            .into_iter()
            .map(|record| (record.offset.expect("offset"), record.timestamp_ms, record.value.expect("value")))
            .collect();
        assert_eq!(kept, vec![(101, Some(1_001), b"v1".to_vec()), (103, Some(1_003), b"v3".to_vec())]);
    }

    #[test]
    fn a_compressed_batch_is_rewritten_with_its_codec() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut builder = BatchBuilder::new(1_000).producer(7, 3, 40).compression(codec);
            for (index, key) in ["a", "b", "a", "c"].iter().enumerate() {
                builder.push(Record::new(Some(key.as_bytes().to_vec()), Some(format!("v{index}").into_bytes())));
            }
            let mut original = builder.build().to_vec();
            batch::set_base_offset(&mut original, 100);
            let Filtered::Rewritten(bytes) = filter_batch(&original, false, |view, _| view.key != Some(b"a")).expect("filter") else {
                panic!("expected a rewrite");
            };
            let header = check_batch(&bytes).expect("a valid batch with a correct CRC");
            assert_eq!(header.compression(), codec.id(), "{codec:?} stays the batch's codec");
            assert_eq!((header.base_offset, header.last_offset(), header.records_count), (100, 103, 2));
            let kept: Vec<_> = decode_records(&bytes)
                .expect("decode")
                .into_iter()
                .map(|record| (record.offset.expect("offset"), record.value.expect("value")))
                .collect();
            assert_eq!(kept, vec![(101, b"v1".to_vec()), (103, b"v3".to_vec())], "{codec:?}");
        }
    }

    #[test]
    fn keeping_everything_changes_nothing() {
        assert_eq!(filter_batch(&batch(-1, 5), false, |_, _| true), Ok(Filtered::Unchanged));
    }

    #[test]
    fn an_emptied_batch_goes_unless_its_header_is_retained() {
        assert_eq!(filter_batch(&batch(9, 5), false, |_, _| false), Ok(Filtered::Dropped));
        let Ok(Filtered::Rewritten(bytes)) = filter_batch(&batch(9, 5), true, |_, _| false) else {
            panic!("an idempotent producer's batch keeps its header");
        };
        let header = check_batch(&bytes).expect("valid");
        assert_eq!((header.records_count, header.last_offset(), header.producer_id), (0, 8, 9));
    }
}
