//! Builds and reads RecordBatch v2 records: builds the batches the broker
//! writes itself (metadata events, AMQP and SQS messages; uncompressed
//! unless asked), and reads any stored batch, compressed ones through
//! `codec.rs` with a bound on what they expand to. Kafka producers' batches
//! are stored as received; this is how the broker looks inside them.
//!
//! Written by hand rather than taken from `kafka-protocol` so that the log
//! crate stays free of wire-protocol dependencies; the format is small:
//!
//! ```text
//! record: length varint | attributes i8 | timestamp delta varlong | offset delta varint
//!         | key length varint (-1 = null) | key | value length varint | value
//!         | header count varint | { key length varint | key | value length varint | value }*
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use std::borrow::Cow;

use crate::batch::{self, BatchHeader, FramingError, HEADER_BYTES, MAGIC_V2};
use crate::codec::{Codec, DECOMPRESSED_BYTES_MAX};

/// One record header. Keys may repeat (Kafka allows it), so headers are a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One record as the broker builds or reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Absolute timestamp in ms; filled from the batch when decoding. When
    /// building, `None` means the batch's base timestamp.
    pub timestamp_ms: Option<i64>,
    /// Absolute offset; filled when decoding, ignored when building.
    pub offset: Option<i64>,
}

impl Record {
    pub fn new(key: Option<Vec<u8>>, value: Option<Vec<u8>>) -> Record {
        Record {
            key,
            value,
            ..Record::default()
        }
    }

    pub fn with_header(mut self, key: impl Into<String>, value: Option<Vec<u8>>) -> Record {
        self.headers.push(Header { key: key.into(), value });
        self
    }

    /// The first header with this key.
    pub fn header(&self, key: &str) -> Option<&Header> {
        self.headers.iter().find(|header| header.key == key)
    }
}

/// Builds one uncompressed batch with CreateTime timestamps.
#[derive(Debug)]
pub struct BatchBuilder {
    base_timestamp_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    codec: Codec,
    records: Vec<Record>,
}

impl BatchBuilder {
    pub fn new(base_timestamp_ms: i64) -> BatchBuilder {
        BatchBuilder {
            base_timestamp_ms,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            codec: Codec::None,
            records: Vec::new(),
        }
    }

    /// Compresses the batch's records with `codec`, as a Kafka producer
    /// with that `compression.type` would.
    pub fn compression(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of its producer's ongoing transaction
    /// (the batch's transactional attribute); needs [`BatchBuilder::producer`].
    pub fn transactional(mut self) -> Self {
        self.transactional = true;
        self
    }

    /// Marks the batch as a control batch (a transaction marker: also
    /// transactional); needs [`BatchBuilder::producer`].
    pub fn control(mut self) -> Self {
        self.transactional = true;
        self.control = true;
        self
    }

    pub fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch with base offset 0 (the log assigns the real one).
    /// An empty builder yields a batch with no records, which logs refuse.
    ///
    /// # Panics
    /// If the builder's codec fails to compress the records, which the
    /// codecs only do on allocation failure.
    pub fn build(&self) -> Bytes {
        // The max timestamp is that of a record in the batch (Kafka's rule), not
        // the base timestamp, unless the batch is empty.
        let max_timestamp = self
            .records
            .iter()
            .map(|record| record.timestamp_ms.unwrap_or(self.base_timestamp_ms))
            .max()
            .unwrap_or(self.base_timestamp_ms);
        let count = self.records.len() as i32;
        let codec = if self.records.is_empty() { Codec::None } else { self.codec };
        // Every size is known before anything is written: an uncompressed
        // batch is one allocation and each record's bytes are copied once.
        let records_bytes: usize = self
            .encoded_records()
            .map(|(record, deltas)| framed_len(record_len(record, deltas)))
            .sum();
        let compressed = match codec {
            Codec::None => None,
            codec => {
                let mut body = BytesMut::with_capacity(records_bytes);
                self.encode_records(&mut body);
                Some(codec.compress(&body).expect("the codecs compress whatever they are given"))
            }
        };
        let body_bytes = compressed.as_ref().map_or(records_bytes, Vec::len);
        let mut out = BytesMut::with_capacity(HEADER_BYTES + body_bytes);
        out.put_i64(0);
        out.put_i32((HEADER_BYTES - batch::LOG_OVERHEAD + body_bytes) as i32);
        out.put_i32(0);
        out.put_i8(MAGIC_V2);
        out.put_u32(0); // CRC, filled below.
        let transactional = if self.transactional { batch::attributes::TRANSACTIONAL } else { 0 };
        let control = if self.control { batch::attributes::CONTROL } else { 0 };
        out.put_i16(codec.id() | transactional | control);
        out.put_i32((count - 1).max(0));
        out.put_i64(self.base_timestamp_ms);
        out.put_i64(max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(count);
        match compressed {
            Some(body) => out.extend_from_slice(&body),
            None => self.encode_records(&mut out),
        }
        debug_assert_eq!(out.len(), HEADER_BYTES + body_bytes, "sizes computed before writing");
        let crc = batch::compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out.freeze()
    }

    /// Each record with its timestamp and offset deltas.
    fn encoded_records(&self) -> impl Iterator<Item = (&Record, (i64, i64))> {
        self.records.iter().enumerate().map(|(index, record)| {
            let timestamp = record.timestamp_ms.unwrap_or(self.base_timestamp_ms);
            (record, (timestamp - self.base_timestamp_ms, index as i64))
        })
    }

    fn encode_records(&self, out: &mut BytesMut) {
        for (record, deltas) in self.encoded_records() {
            put_varlong(out, record_len(record, deltas) as i64);
            encode_record(out, record, deltas);
        }
    }
}

/// The bytes of a record after its length prefix.
fn record_len(record: &Record, (timestamp_delta, offset_delta): (i64, i64)) -> usize {
    1 + varlong_len(timestamp_delta)
        + varlong_len(offset_delta)
        + bytes_len(record.key.as_deref())
        + bytes_len(record.value.as_deref())
        + varlong_len(record.headers.len() as i64)
        + record
            .headers
            .iter()
            .map(|header| bytes_len(Some(header.key.as_bytes())) + bytes_len(header.value.as_deref()))
            .sum::<usize>()
}

/// A record's bytes with its length prefix.
fn framed_len(record_len: usize) -> usize {
    varlong_len(record_len as i64) + record_len
}

fn encode_record(out: &mut BytesMut, record: &Record, (timestamp_delta, offset_delta): (i64, i64)) {
    out.put_i8(0);
    put_varlong(out, timestamp_delta);
    put_varlong(out, offset_delta);
    put_bytes(out, record.key.as_deref());
    put_bytes(out, record.value.as_deref());
    put_varlong(out, record.headers.len() as i64);
    for header in &record.headers {
        put_bytes(out, Some(header.key.as_bytes()));
        put_bytes(out, header.value.as_deref());
    }
}

fn bytes_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => varlong_len(-1),
        Some(bytes) => varlong_len(bytes.len() as i64) + bytes.len(),
    }
}

fn put_bytes(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn varlong_len(value: i64) -> usize {
    let bits = 64 - zigzag(value).leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

fn put_varlong(out: &mut BytesMut, value: i64) {
    let mut zigzag = zigzag(value);
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

/// Why a batch's records could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A borrowing reader ([`record_views`]) met a compressed batch; read
    /// it through [`BatchRecords`].
    #[error("compressed batches (codec {0}) are not read in place")]
    Compressed(i16),
    /// Attribute bits 5..7: no codec Kafka defines.
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    /// A compressed batch expands past what the reader allows: refused
    /// rather than expanded without limit.
    #[error("a compressed batch expands past {bytes_max} bytes")]
    DecompressedTooLarge { bytes_max: usize },
    /// A compressed batch's bytes are not valid for its codec.
    #[error("corrupt {codec} data: {reason}")]
    CorruptCompression { codec: &'static str, reason: String },
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

/// Decodes every record of one batch, compressed or not (expanding to at
/// most [`DECOMPRESSED_BYTES_MAX`]). Every length is checked against the
/// remaining bytes before use, so hostile input cannot make it allocate
/// more than the (decompressed) batch holds.
pub fn decode_records(batch_bytes: &[u8]) -> Result<Vec<Record>, RecordError> {
    decode_records_within(batch_bytes, DECOMPRESSED_BYTES_MAX)
}

/// [`decode_records`] with a compressed batch refused once its records
/// pass `decompressed_bytes_max`.
pub fn decode_records_within(batch_bytes: &[u8], decompressed_bytes_max: usize) -> Result<Vec<Record>, RecordError> {
    let header = batch::check_batch(batch_bytes)?;
    let body = &batch_bytes[HEADER_BYTES..header.total_bytes()];
    match Codec::from_attributes(header.attributes)? {
        Codec::None => decode_records_unchecked(&header, body),
        codec => decode_records_unchecked(&header, &codec.decompress(body, decompressed_bytes_max)?),
    }
}

/// The records area of one batch, decompressed if it was compressed: what
/// readers that need every record of any batch (the cleaner, the core's
/// key checks) walk with [`BatchRecords::views`].
#[derive(Debug)]
pub struct BatchRecords<'a> {
    header: BatchHeader,
    codec: Codec,
    body: Cow<'a, [u8]>,
}

impl<'a> BatchRecords<'a> {
    /// Opens one whole batch (checks framing, not the CRC: callers have
    /// checked it or read it from a log), decompressing its records, at
    /// most `decompressed_bytes_max` of them.
    pub fn open(batch_bytes: &'a [u8], decompressed_bytes_max: usize) -> Result<BatchRecords<'a>, RecordError> {
        let header = BatchHeader::parse(batch_bytes).ok_or(RecordError::Malformed("batch header truncated"))?;
        let end = header.total_bytes();
        if end < HEADER_BYTES || end > batch_bytes.len() {
            return Err(RecordError::Malformed("batch length past the bytes"));
        }
        let stored = &batch_bytes[HEADER_BYTES..end];
        let codec = Codec::from_attributes(header.attributes)?;
        let body = match codec {
            Codec::None => Cow::Borrowed(stored),
            codec => Cow::Owned(codec.decompress(stored, decompressed_bytes_max)?),
        };
        Ok(BatchRecords { header, codec, body })
    }

    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The batch's records, borrowed from the (decompressed) records area.
    pub fn views(&self) -> Result<Vec<RecordView<'_>>, RecordError> {
        views_of(&self.header, &self.body)
    }
}

fn decode_records_unchecked(header: &BatchHeader, mut body: &[u8]) -> Result<Vec<Record>, RecordError> {
    let count = header.records_count as usize;
    // Each record takes at least 7 bytes, which bounds the allocation.
    let mut records = Vec::with_capacity(count.min(body.len() / 7 + 1));
    for _ in 0..count {
        let length = usize::try_from(get_varlong(&mut body)?).map_err(|_| RecordError::Malformed("negative record length"))?;
        if length > body.len() {
            return Err(RecordError::Malformed("record length past the batch end"));
        }
        let (mut record_bytes, rest) = body.split_at(length);
        body = rest;
        take(&mut record_bytes, 1)?; // attributes, unused in v2
        let timestamp_delta = get_varlong(&mut record_bytes)?;
        let offset_delta = get_varlong(&mut record_bytes)?;
        let key = get_bytes(&mut record_bytes)?;
        let value = get_bytes(&mut record_bytes)?;
        let header_count = usize::try_from(get_varlong(&mut record_bytes)?).map_err(|_| RecordError::Malformed("negative header count"))?;
        if header_count > record_bytes.len() {
            return Err(RecordError::Malformed("header count past the record end"));
        }
        let mut headers = Vec::with_capacity(header_count);
        for _ in 0..header_count {
            let key = get_bytes(&mut record_bytes)?.ok_or(RecordError::Malformed("null header key"))?;
            let key = String::from_utf8(key).map_err(|_| RecordError::Malformed("header key is not UTF-8"))?;
            let value = get_bytes(&mut record_bytes)?;
            headers.push(Header { key, value });
        }
        let timestamp_ms = if header.attributes & batch::attributes::TIMESTAMP_LOG_APPEND_TIME != 0 {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        };
        records.push(Record {
            key,
            value,
            headers,
            timestamp_ms: Some(timestamp_ms),
            offset: Some(header.base_offset.wrapping_add(offset_delta)),
        });
    }
    Ok(records)
}

/// One record of a batch as borrowed slices of it, for callers that only
/// look at keys and headers (conditional appends) and must not copy values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's offset minus its batch's base offset.
    pub offset_delta: i64,
    pub key: Option<&'a [u8]>,
    /// Null for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Header keys and values in the record's order (keys may repeat).
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    /// The whole encoded record, its length varint included: what a batch
    /// rewritten with the same base offset and timestamp carries unchanged.
    pub encoded: &'a [u8],
}

/// The records of one uncompressed batch, borrowed. Checks framing (not the
/// CRC: callers have checked it or read it from a log) and every length.
/// A compressed batch is refused ([`RecordError::Compressed`]): read it
/// through [`BatchRecords`].
pub fn record_views(batch_bytes: &[u8]) -> Result<Vec<RecordView<'_>>, RecordError> {
    let header = BatchHeader::parse(batch_bytes).ok_or(RecordError::Malformed("batch header truncated"))?;
    if header.compression() != 0 {
        return Err(RecordError::Compressed(header.compression()));
    }
    let end = header.total_bytes();
    if end < HEADER_BYTES || end > batch_bytes.len() {
        return Err(RecordError::Malformed("batch length past the bytes"));
    }
    views_of(&header, &batch_bytes[HEADER_BYTES..end])
}

/// The records of a batch's (uncompressed) records area `body`, borrowed.
fn views_of<'a>(header: &BatchHeader, mut body: &'a [u8]) -> Result<Vec<RecordView<'a>>, RecordError> {
    let count = usize::try_from(header.records_count).map_err(|_| RecordError::Malformed("negative record count"))?;
    // Each record takes at least 7 bytes, which bounds the allocation.
    let mut views = Vec::with_capacity(count.min(body.len() / 7 + 1));
    for _ in 0..count {
        let before = body;
        let length = usize::try_from(get_varlong(&mut body)?).map_err(|_| RecordError::Malformed("negative record length"))?;
        let mut record = take(&mut body, length)?;
        let encoded = &before[..before.len() - body.len()];
        take(&mut record, 1)?; // attributes, unused in v2
        get_varlong(&mut record)?; // timestamp delta
        let offset_delta = get_varlong(&mut record)?;
        let key = get_slice(&mut record)?;
        let value = get_slice(&mut record)?;
        let header_count = usize::try_from(get_varlong(&mut record)?).map_err(|_| RecordError::Malformed("negative header count"))?;
        if header_count > record.len() {
            return Err(RecordError::Malformed("header count past the record end"));
        }
        let mut headers = Vec::with_capacity(header_count);
        for _ in 0..header_count {
            let name = get_slice(&mut record)?.ok_or(RecordError::Malformed("null header key"))?;
            headers.push((name, get_slice(&mut record)?));
        }
        views.push(RecordView {
            offset_delta,
            key,
            value,
            headers,
            encoded,
        });
    }
    Ok(views)
}

fn get_slice<'a>(bytes: &mut &'a [u8]) -> Result<Option<&'a [u8]>, RecordError> {
    let length = get_varlong(bytes)?;
    if length < 0 {
        return Ok(None);
    }
    let length = usize::try_from(length).map_err(|_| RecordError::Malformed("length overflow"))?;
    Ok(Some(take(bytes, length)?))
}

fn take<'a>(bytes: &mut &'a [u8], count: usize) -> Result<&'a [u8], RecordError> {
    if bytes.len() < count {
        return Err(RecordError::Malformed("record truncated"));
    }
    let (head, rest) = bytes.split_at(count);
    *bytes = rest;
    Ok(head)
}

fn get_varlong(bytes: &mut &[u8]) -> Result<i64, RecordError> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *take(bytes, 1)?.first().ok_or(RecordError::Malformed("varint truncated"))?;
        if shift == 63 && byte > 1 {
            return Err(RecordError::Malformed("varint overflow"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(RecordError::Malformed("varint too long"))
}

fn get_bytes(bytes: &mut &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
    let length = get_varlong(bytes)?;
    if length < 0 {
        return Ok(None);
    }
    let length = usize::try_from(length).map_err(|_| RecordError::Malformed("length overflow"))?;
    Ok(Some(take(bytes, length)?.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            proptest::collection::vec(
                ("[a-z-]{0,12}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20))),
                0..4,
            ),
            0i64..100_000,
        )
            .prop_map(|(key, value, headers, delta)| Record {
                key,
                value,
                headers: headers.into_iter().map(|(key, value)| Header { key, value }).collect(),
                timestamp_ms: Some(1_600_000_000_000 + delta),
                offset: None,
            })
    }

    #[test]
    fn a_compressed_batch_that_expands_past_the_bound_is_refused() {
        // One record of 8 MiB of zeros: a few KiB compressed.
        let mut builder = BatchBuilder::new(1_600_000_000_000).compression(Codec::Gzip);
        builder.push(Record::new(None, Some(vec![0; 8 << 20])));
        let bytes = builder.build();
        assert!(bytes.len() < 64 * 1024, "the bomb is small: {} bytes", bytes.len());
        assert_eq!(
            decode_records_within(&bytes, 1 << 20),
            Err(RecordError::DecompressedTooLarge { bytes_max: 1 << 20 })
        );
        assert_eq!(
            BatchRecords::open(&bytes, 1 << 20).map(|_| ()),
            Err(RecordError::DecompressedTooLarge { bytes_max: 1 << 20 })
        );
        assert_eq!(
            decode_records(&bytes).expect("within the log's own bound")[0]
                .value
                .as_ref()
                .map(Vec::len),
            Some(8 << 20)
        );
    }

    proptest! {
        #[test]
        fn a_varlong_is_as_long_as_build_computes(value in any::<i64>()) {
            let mut written = BytesMut::new();
            put_varlong(&mut written, value);
            prop_assert_eq!(varlong_len(value), written.len());
        }

        #[test]
        fn records_round_trip(records in proptest::collection::vec(arb_record(), 1..20)) {
            let mut builder = BatchBuilder::new(1_600_000_000_000);
            for record in &records {
                builder.push(record.clone());
            }
            let decoded = decode_records(&builder.build()).expect("decodes");
            prop_assert_eq!(decoded.len(), records.len());
            for (index, (got, want)) in decoded.iter().zip(&records).enumerate() {
                prop_assert_eq!(&got.key, &want.key);
                prop_assert_eq!(&got.value, &want.value);
                prop_assert_eq!(&got.headers, &want.headers);
                prop_assert_eq!(got.timestamp_ms, want.timestamp_ms);
                prop_assert_eq!(got.offset, Some(index as i64));
            }
        }

        #[test]
        fn record_views_see_what_decoding_sees(records in proptest::collection::vec(arb_record(), 1..20)) {
            let mut builder = BatchBuilder::new(1_600_000_000_000);
            for record in &records {
                builder.push(record.clone());
            }
            let bytes = builder.build();
            let views = record_views(&bytes).expect("walks");
            prop_assert_eq!(views.len(), records.len());
            for (index, (view, want)) in views.iter().zip(&records).enumerate() {
                prop_assert_eq!(view.offset_delta, index as i64);
                prop_assert_eq!(view.key, want.key.as_deref());
                let headers: Vec<_> = want.headers.iter().map(|h| (h.key.as_bytes(), h.value.as_deref())).collect();
                prop_assert_eq!(&view.headers, &headers);
            }
        }

        #[test]
        fn compressed_batches_decode_as_their_records(
            codec in prop::sample::select(vec![Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd]),
            records in proptest::collection::vec(arb_record(), 1..20),
        ) {
            let mut plain = BatchBuilder::new(1_600_000_000_000);
            let mut compressed = BatchBuilder::new(1_600_000_000_000).compression(codec);
            for record in &records {
                plain.push(record.clone());
                compressed.push(record.clone());
            }
            let bytes = compressed.build();
            prop_assert_eq!(batch::check_batch(&bytes).expect("valid").compression(), codec.id());
            prop_assert_eq!(decode_records(&bytes).expect("decodes"), decode_records(&plain.build()).expect("decodes"));
            let opened = BatchRecords::open(&bytes, DECOMPRESSED_BYTES_MAX).expect("opens");
            let keys: Vec<_> = opened.views().expect("walks").iter().map(|view| view.key.map(<[u8]>::to_vec)).collect();
            let want: Vec<_> = records.iter().map(|record| record.key.clone()).collect();
            prop_assert_eq!(keys, want);
        }

        #[test]
        fn decoding_mutated_compressed_batches_never_panics(
            codec in prop::sample::select(vec![Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd]),
            position in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            records in proptest::collection::vec(arb_record(), 1..5),
        ) {
            let mut builder = BatchBuilder::new(1_600_000_000_000).compression(codec);
            for record in records {
                builder.push(record);
            }
            let mut bytes = builder.build().to_vec();
            let at = HEADER_BYTES + position.index(bytes.len() - HEADER_BYTES);
            bytes[at] = byte;
            let crc = batch::compute_crc(&bytes);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            let _ = decode_records_within(&bytes, 4096);
            if let Ok(opened) = BatchRecords::open(&bytes, 4096) {
                let _ = opened.views();
            }
        }

        #[test]
        fn record_views_of_garbage_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = record_views(&bytes);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_records(&bytes);
        }

        #[test]
        fn decoding_mutated_batches_never_panics(position in any::<prop::sample::Index>(), byte in any::<u8>(), records in proptest::collection::vec(arb_record(), 1..5)) {
            let mut builder = BatchBuilder::new(1_600_000_000_000);
            for record in records {
                builder.push(record);
            }
            let mut bytes = builder.build().to_vec();
            let at = position.index(bytes.len());
            bytes[at] = byte;
            // Re-seal the CRC so the mutation reaches the record decoder.
            if bytes.len() > 21 {
                let crc = batch::compute_crc(&bytes);
                bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            }
            let _ = decode_records(&bytes);
        }
    }
}
