//! Kafka RecordBatch v2 framing: parses and checks batch headers, patches base
//! offsets. Knows the 61-byte header and the CRC-32C rule, nothing about the
//! records inside a batch (see `record.rs`) or about files.
//!
//! ```text
//!  0        8        12       16  17       21    23        27           35           43        51    53        57        61
//!  | base   | batch  | leader | m | crc32c | attr| last    | base       | max        | producer| epoch| base    | records |
//!  | offset | length | epoch  | a |        |     | offset  | timestamp  | timestamp  | id      |      | sequence| count   | records...
//!  | i64    | i32    | i32    | g | u32    | i16 | delta   | i64        | i64        | i64     | i16  | i32     | i32     |
//!                                    └──────────── CRC-32C covers bytes 21 .. end of batch ──────────────────────────────────┘
//! ```
//! `batch length` counts the bytes after itself, so a batch occupies
//! `12 + batch_length` bytes.

use crate::LogError;

/// Size of the fixed RecordBatch v2 header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before and including the `batch length` field.
pub const LOG_OVERHEAD: usize = 12;
/// The only record format Conveyor stores.
pub const MAGIC_V2: i8 = 2;
/// Where the CRC-32C coverage starts (the attributes field).
const CRC_START: usize = 21;
/// A batch larger than this is refused whatever the log's limits say: it bounds
/// what a corrupt length field can make a reader allocate.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Attribute bits of a batch.
pub mod attributes {
    pub const COMPRESSION_MASK: i16 = 0x07;
    pub const TIMESTAMP_LOG_APPEND_TIME: i16 = 0x08;
    pub const TRANSACTIONAL: i16 = 0x10;
    pub const CONTROL: i16 = 0x20;
}

/// The parsed fixed header of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the length field; the batch is `LOG_OVERHEAD + batch_length` long.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the fixed header. Checks only that enough bytes are present; use
    /// [`BatchHeader::check_framing`] and [`verify_crc`] for validity.
    pub fn parse(bytes: &[u8]) -> Option<BatchHeader> {
        if bytes.len() < HEADER_BYTES {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64::from_be_bytes(array(bytes, 0)),
            batch_length: i32::from_be_bytes(array(bytes, 8)),
            partition_leader_epoch: i32::from_be_bytes(array(bytes, 12)),
            magic: bytes[16] as i8,
            crc: u32::from_be_bytes(array(bytes, 17)),
            attributes: i16::from_be_bytes(array(bytes, 21)),
            last_offset_delta: i32::from_be_bytes(array(bytes, 23)),
            base_timestamp: i64::from_be_bytes(array(bytes, 27)),
            max_timestamp: i64::from_be_bytes(array(bytes, 35)),
            producer_id: i64::from_be_bytes(array(bytes, 43)),
            producer_epoch: i16::from_be_bytes(array(bytes, 51)),
            base_sequence: i32::from_be_bytes(array(bytes, 53)),
            records_count: i32::from_be_bytes(array(bytes, 57)),
        })
    }

    /// Total bytes the batch occupies, header included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Number of offsets the batch occupies.
    pub fn offset_count(&self) -> u64 {
        self.last_offset_delta as u64 + 1
    }

    pub fn compression(&self) -> i16 {
        self.attributes & attributes::COMPRESSION_MASK
    }

    pub fn is_control(&self) -> bool {
        self.attributes & attributes::CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & attributes::TRANSACTIONAL != 0
    }

    /// Checks the header fields that framing depends on. `available` is how
    /// many bytes follow the batch start in the buffer or file.
    pub fn check_framing(&self, available: usize) -> Result<(), FramingError> {
        if self.magic != MAGIC_V2 {
            return Err(FramingError::Magic(self.magic));
        }
        let declared = self.batch_length;
        if declared < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
            return Err(FramingError::Length(declared));
        }
        if self.total_bytes() > BATCH_BYTES_MAX {
            return Err(FramingError::Length(declared));
        }
        if self.total_bytes() > available {
            return Err(FramingError::Truncated {
                needed: self.total_bytes(),
                available,
            });
        }
        if self.last_offset_delta < 0 {
            return Err(FramingError::OffsetDelta(self.last_offset_delta));
        }
        if self.records_count < 0 {
            return Err(FramingError::RecordsCount(self.records_count));
        }
        // An uncompressed batch's record count and offset span agree; compressed
        // and compacted batches may have gaps, so only the bound is checked.
        if i64::from(self.records_count) > i64::from(self.last_offset_delta) + 1 {
            return Err(FramingError::RecordsCount(self.records_count));
        }
        Ok(())
    }
}

/// Why a batch's framing is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("unsupported magic byte {0} (only RecordBatch v2 is stored)")]
    Magic(i8),
    #[error("invalid batch length {0}")]
    Length(i32),
    #[error("batch needs {needed} bytes but only {available} are present")]
    Truncated { needed: usize, available: usize },
    #[error("negative last offset delta {0}")]
    OffsetDelta(i32),
    #[error("invalid records count {0}")]
    RecordsCount(i32),
    #[error("CRC-32C mismatch: header says {stored:#010x}, bytes give {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("{0} bytes of trailing garbage after the last batch")]
    Trailing(usize),
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// CRC-32C of a whole batch's covered bytes.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// Checks a whole batch's CRC-32C against its header.
pub fn verify_crc(batch: &[u8], header: &BatchHeader) -> Result<(), FramingError> {
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(FramingError::Crc {
            stored: header.crc,
            computed,
        });
    }
    Ok(())
}

/// Checks one complete batch at the start of `bytes`: framing, then CRC.
/// Returns its header.
pub fn check_batch(bytes: &[u8]) -> Result<BatchHeader, FramingError> {
    let header = BatchHeader::parse(bytes).ok_or(FramingError::Truncated {
        needed: HEADER_BYTES,
        available: bytes.len(),
    })?;
    header.check_framing(bytes.len())?;
    verify_crc(&bytes[..header.total_bytes()], &header)?;
    Ok(header)
}

/// Validates a buffer holding one or more concatenated batches (what a Kafka
/// produce request carries for one partition). Returns the headers in order.
pub fn check_batches(bytes: &[u8]) -> Result<Vec<BatchHeader>, LogError> {
    let mut headers = Vec::new();
    let mut position = 0;
    if bytes.is_empty() {
        return Err(LogError::InvalidBatch {
            position: 0,
            reason: FramingError::Truncated {
                needed: HEADER_BYTES,
                available: 0,
            },
        });
    }
    while position < bytes.len() {
        let rest = &bytes[position..];
        if rest.len() < HEADER_BYTES {
            return Err(LogError::InvalidBatch {
                position,
                reason: FramingError::Trailing(rest.len()),
            });
        }
        let header = check_batch(rest).map_err(|reason| LogError::InvalidBatch { position, reason })?;
        position += header.total_bytes();
        headers.push(header);
    }
    Ok(headers)
}

/// Overwrites the base offset of the batch starting at `bytes[0]`. The base
/// offset is outside the CRC's coverage, so the CRC stays valid.
pub fn set_base_offset(bytes: &mut [u8], base_offset: i64) {
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites the partition leader epoch (also outside the CRC's coverage).
pub fn set_partition_leader_epoch(bytes: &mut [u8], epoch: i32) {
    bytes[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch at `bytes[0]` as timestamped by the broker (Kafka's
/// LogAppendTime): sets the timestamp-type attribute and the max timestamp,
/// which consumers then use for every record, and recomputes the CRC-32C.
pub fn set_log_append_time(bytes: &mut [u8], header: &mut BatchHeader, now_ms: i64) {
    header.attributes |= attributes::TIMESTAMP_LOG_APPEND_TIME;
    header.max_timestamp = now_ms;
    bytes[21..23].copy_from_slice(&header.attributes.to_be_bytes());
    bytes[35..43].copy_from_slice(&now_ms.to_be_bytes());
    header.crc = compute_crc(&bytes[..header.total_bytes()]);
    bytes[17..21].copy_from_slice(&header.crc.to_be_bytes());
}

/// Walks the complete batches at the start of `bytes`, stopping at the first
/// incomplete one. Used by readers to trim a read to whole batches.
///
/// Only the magic byte and the length are looked at (the length must be one a
/// valid batch can have and must fit in `bytes`): every batch in a segment was
/// fully checked on append or on recovery, and this is on the read path, where
/// parsing and checking all 61 header bytes of each batch cost about 8% of a
/// 1 MiB read of 100-byte batches (`perf`). A corrupt length still stops the
/// walk, so a read never returns a partial batch.
pub fn whole_batches_len(bytes: &[u8]) -> usize {
    whole_batches_len_from(bytes, 0)
}

/// Like [`whole_batches_len`], for `bytes` known to hold whole batches up to
/// `start`, where a batch begins: walks from there.
pub fn whole_batches_len_from(bytes: &[u8], start: usize) -> usize {
    let mut position = start;
    while let Some(header) = bytes.get(position..position + HEADER_BYTES) {
        if !plausible_header(header) {
            break;
        }
        let total = LOG_OVERHEAD + i32::from_be_bytes(array(header, 8)) as usize;
        if total > bytes.len() - position {
            break;
        }
        position += total;
    }
    position
}

/// The whole batches at the front of `bytes`, each with its parsed header
/// and its bytes, in order; stops at bytes that are not a whole batch (a
/// truncated one, or one whose length is shorter than a header). The one walk over appended or read
/// batches for code that needs each header.
pub fn whole_batches(bytes: &[u8]) -> impl Iterator<Item = (BatchHeader, &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(rest)?;
        let total = header.total_bytes();
        if total < HEADER_BYTES || total > rest.len() {
            return None;
        }
        let (batch, after) = rest.split_at(total);
        rest = after;
        Some((header, batch))
    })
}

/// Whether `header` (at least [`HEADER_BYTES`] long) has the magic byte and a
/// length a batch can have.
pub fn plausible_header(header: &[u8]) -> bool {
    let batch_length = i32::from_be_bytes(array(header, 8));
    header[16] as i8 == MAGIC_V2
        && batch_length >= (HEADER_BYTES - LOG_OVERHEAD) as i32
        && LOG_OVERHEAD + batch_length as usize <= BATCH_BYTES_MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, Record};

    #[test]
    fn whole_batches_walks_each_batch_and_stops_at_a_partial_one() {
        let one = sample();
        let mut bytes = [one.clone(), one.clone(), one[..one.len() - 1].to_vec()].concat();
        let walked: Vec<(i32, usize)> = whole_batches(&bytes)
            .map(|(header, batch)| (header.records_count, batch.len()))
            .collect();
        assert_eq!(walked, vec![(2, one.len()), (2, one.len())]);
        bytes.truncate(HEADER_BYTES - 1);
        assert_eq!(whole_batches(&bytes).count(), 0);
    }

    fn sample() -> Vec<u8> {
        let mut builder = BatchBuilder::new(1_700_000_000_000);
        builder.push(Record::new(Some(b"k".to_vec()), Some(b"value".to_vec())));
        builder.push(Record::new(None, Some(b"second".to_vec())));
        builder.build().to_vec()
    }

    #[test]
    fn built_batch_passes_every_check() {
        let batch = sample();
        let header = check_batch(&batch).expect("valid");
        assert_eq!(header.records_count, 2);
        assert_eq!(header.last_offset_delta, 1);
        assert_eq!(header.total_bytes(), batch.len());
    }

    #[test]
    fn flipped_byte_in_records_fails_crc() {
        let mut batch = sample();
        let last = batch.len() - 1;
        batch[last] ^= 0x40;
        assert!(matches!(check_batch(&batch), Err(FramingError::Crc { .. })));
    }

    #[test]
    fn base_offset_patch_keeps_crc_valid() {
        let mut batch = sample();
        set_base_offset(&mut batch, 12345);
        let header = check_batch(&batch).expect("still valid");
        assert_eq!(header.base_offset, 12345);
        assert_eq!(header.last_offset(), 12346);
    }

    #[test]
    fn truncated_batch_is_reported_not_panicked() {
        let batch = sample();
        for cut in 0..batch.len() {
            assert!(check_batch(&batch[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn wrong_magic_is_refused() {
        let mut batch = sample();
        batch[16] = 1;
        assert_eq!(check_batch(&batch), Err(FramingError::Magic(1)));
    }

    #[test]
    fn trailing_garbage_after_batches_is_refused() {
        let mut two = sample();
        two.extend_from_slice(&sample());
        assert_eq!(check_batches(&two).expect("two valid").len(), 2);
        two.extend_from_slice(&[0u8; 10]);
        assert!(matches!(
            check_batches(&two),
            Err(LogError::InvalidBatch {
                reason: FramingError::Trailing(10),
                ..
            })
        ));
    }

    #[test]
    fn whole_batches_len_stops_at_partial_batch() {
        let one = sample();
        let mut bytes = one.clone();
        bytes.extend_from_slice(&one[..one.len() - 3]);
        assert_eq!(whole_batches_len(&bytes), one.len());
    }

    #[test]
    fn whole_batches_len_stops_at_a_corrupt_length_or_magic() {
        let one = sample();
        let mut bytes = one.clone();
        bytes.extend_from_slice(&one);
        assert_eq!(whole_batches_len(&bytes), 2 * one.len());
        let mut bad_magic = bytes.clone();
        bad_magic[one.len() + 16] = 1;
        assert_eq!(whole_batches_len(&bad_magic), one.len());
        for length in [-1i32, 0, (HEADER_BYTES - LOG_OVERHEAD) as i32 - 1, i32::MAX] {
            let mut bad_length = bytes.clone();
            bad_length[one.len() + 8..one.len() + 12].copy_from_slice(&length.to_be_bytes());
            assert_eq!(whole_batches_len(&bad_length), one.len(), "length {length}");
        }
    }
}
