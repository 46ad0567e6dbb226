//! Kafka's four record-batch codecs (attribute bits 0..2): gzip, snappy,
//! lz4 and zstd, each decompressed with a bound on its output and
//! compressed as Kafka's own clients write it. Knows compressed bytes and
//! their framings; nothing about batch headers or records (see `record.rs`).
//!
//! The framings are Kafka's:
//! - gzip: RFC 1952 members (Java's `GZIPOutputStream`; several members in
//!   a row are read as one stream, as Java's `GZIPInputStream` reads them);
//! - snappy: the xerial framing Java clients and librdkafka write (a 16-byte
//!   header `\x82SNAPPY\0`, version 1, compatible version 1, then blocks of a
//!   big-endian u32 length and a raw snappy block), or one raw snappy block
//!   when the header is absent, as xerial's `SnappyInputStream` falls back;
//! - lz4: the LZ4 frame format (magic `0x184D2204`), which Kafka uses for
//!   RecordBatch v2 (magic 2);
//! - zstd: one or more zstd frames.
//!
//! Decompression never produces more than the caller's `bytes_max`: a small
//! hostile batch that expands without limit is refused
//! ([`RecordError::DecompressedTooLarge`]) once its output passes the bound,
//! before more is allocated.

use std::io::{Read, Write};

use crate::record::RecordError;

/// The most any compressed batch may expand to, whatever a caller asks:
/// the largest batch the log stores at all.
pub const DECOMPRESSED_BYTES_MAX: usize = crate::batch::BATCH_BYTES_MAX;

/// The xerial snappy framing's header: magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// The block size xerial's `SnappyOutputStream` writes (32 KiB).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// zstd's level when Conveyor compresses (the level Kafka's clients default to).
const ZSTD_LEVEL: i32 = 3;

/// A batch's codec, from its attributes' low three bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    /// The codec the attribute bits name; bits 5..7 are no codec Kafka defines.
    pub fn from_attributes(attributes: i16) -> Result<Codec, RecordError> {
        match attributes & crate::batch::attributes::COMPRESSION_MASK {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(RecordError::UnknownCodec(other)),
        }
    }

    /// Kafka's id of the codec (the attribute bits).
    pub fn id(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    /// Kafka's name of the codec (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// The bytes `compressed` stands for, refused once they pass `bytes_max`
    /// (itself capped at [`DECOMPRESSED_BYTES_MAX`]).
    pub fn decompress(self, compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, RecordError> {
        let bytes_max = bytes_max.min(DECOMPRESSED_BYTES_MAX);
        let corrupt = |error: std::io::Error| self.corrupt(error.to_string());
        match self {
            Codec::None => {
                if compressed.len() > bytes_max {
                    return Err(RecordError::DecompressedTooLarge { bytes_max });
                }
                Ok(compressed.to_vec())
            }
            Codec::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(compressed), bytes_max).map_err(|error| error.or(corrupt)),
            Codec::Snappy => self.decompress_snappy(compressed, bytes_max),
            Codec::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(compressed), bytes_max).map_err(|error| error.or(corrupt)),
            Codec::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(compressed).map_err(corrupt)?;
                read_bounded(decoder, bytes_max).map_err(|error| error.or(corrupt))
            }
        }
    }

    /// `bytes` compressed as Kafka's clients compress a batch's records.
    pub fn compress(self, bytes: &[u8]) -> Result<Vec<u8>, RecordError> {
        let failed = |error: std::io::Error| self.corrupt(format!("compressing: {error}"));
        match self {
            Codec::None => Ok(bytes.to_vec()),
            Codec::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(bytes).map_err(failed)?;
                encoder.finish().map_err(failed)
            }
            Codec::Snappy => {
                let mut out = Vec::with_capacity(XERIAL_HEADER.len() + snap::raw::max_compress_len(bytes.len()));
                out.extend_from_slice(XERIAL_HEADER);
                let mut encoder = snap::raw::Encoder::new();
                for block in bytes.chunks(XERIAL_BLOCK_BYTES) {
                    let compressed = encoder
                        .compress_vec(block)
                        .map_err(|error| self.corrupt(format!("compressing: {error}")))?;
                    let length = u32::try_from(compressed.len()).map_err(|_| self.corrupt("block too large".to_string()))?;
                    out.extend_from_slice(&length.to_be_bytes());
                    out.extend_from_slice(&compressed);
                }
                Ok(out)
            }
            Codec::Lz4 => {
                // Independent blocks: Kafka's Java reader
                // (`KafkaLZ4BlockInputStream`) decodes each block alone.
                let info = lz4_flex::frame::FrameInfo::new().block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
                encoder.write_all(bytes).map_err(failed)?;
                encoder.finish().map_err(|error| self.corrupt(format!("compressing: {error}")))
            }
            Codec::Zstd => zstd::bulk::compress(bytes, ZSTD_LEVEL).map_err(failed),
        }
    }

    fn decompress_snappy(self, compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, RecordError> {
        let Some(mut blocks) = compressed.strip_prefix(XERIAL_HEADER.as_slice()) else {
            return self.decompress_snappy_block(compressed, Vec::new(), bytes_max);
        };
        let mut out = Vec::new();
        // Each step consumes a length field and its block, so the count of
        // steps is bounded by the input's length.
        for _ in 0..=compressed.len() / 4 {
            if blocks.is_empty() {
                return Ok(out);
            }
            let (length, rest) = blocks
                .split_first_chunk::<4>()
                .ok_or_else(|| self.corrupt("truncated xerial block length".to_string()))?;
            let length = u32::from_be_bytes(*length) as usize;
            if length > rest.len() {
                return Err(self.corrupt("xerial block past the end".to_string()));
            }
            let (block, rest) = rest.split_at(length);
            out = self.decompress_snappy_block(block, out, bytes_max)?;
            blocks = rest;
        }
        Err(self.corrupt("too many xerial blocks".to_string()))
    }

    /// Appends one raw snappy block's bytes to `out`, checking the length
    /// the block declares against the bound before allocating it.
    fn decompress_snappy_block(self, block: &[u8], mut out: Vec<u8>, bytes_max: usize) -> Result<Vec<u8>, RecordError> {
        let length = snap::raw::decompress_len(block).map_err(|error| self.corrupt(error.to_string()))?;
        let start = out.len();
        if length > bytes_max.saturating_sub(start) {
            return Err(RecordError::DecompressedTooLarge { bytes_max });
        }
        out.resize(start + length, 0);
        let written = snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|error| self.corrupt(error.to_string()))?;
        out.truncate(start + written);
        Ok(out)
    }

    fn corrupt(self, reason: String) -> RecordError {
        RecordError::CorruptCompression {
            codec: self.name(),
            reason,
        }
    }
}

/// Why a bounded read stopped.
enum BoundedReadError {
    TooLarge(usize),
    Io(std::io::Error),
}

impl BoundedReadError {
    fn or(self, corrupt: impl FnOnce(std::io::Error) -> RecordError) -> RecordError {
        match self {
            BoundedReadError::TooLarge(bytes_max) => RecordError::DecompressedTooLarge { bytes_max },
            BoundedReadError::Io(error) => corrupt(error),
        }
    }
}

/// Reads `reader` to its end, or fails once more than `bytes_max` came out.
fn read_bounded(reader: impl Read, bytes_max: usize) -> Result<Vec<u8>, BoundedReadError> {
    let mut out = Vec::new();
    reader
        .take(bytes_max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(BoundedReadError::Io)?;
    if out.len() > bytes_max {
        return Err(BoundedReadError::TooLarge(bytes_max));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CODECS: [Codec; 5] = [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];

    #[test]
    fn every_codec_round_trips_a_payload_across_blocks() {
        // Larger than a snappy xerial block and an lz4 block (64 KiB).
        let payload: Vec<u8> = (0..200_000u32).flat_map(|n| (n % 251).to_le_bytes()).collect();
        for codec in CODECS {
            let compressed = codec.compress(&payload).expect("compresses");
            assert_eq!(
                codec.decompress(&compressed, payload.len()).expect("decompresses"),
                payload,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn a_payload_past_the_bound_is_refused_without_being_expanded() {
        // 16 MiB of zeros compresses to a few KiB: a decompression bomb.
        let payload = vec![0u8; 16 << 20];
        for codec in CODECS {
            let compressed = codec.compress(&payload).expect("compresses");
            assert_eq!(
                codec.decompress(&compressed, 1 << 20),
                Err(RecordError::DecompressedTooLarge { bytes_max: 1 << 20 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn raw_snappy_without_the_xerial_header_is_read() {
        let payload = b"librdkafka may write one raw snappy block".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&payload).expect("compresses");
        assert_eq!(Codec::Snappy.decompress(&raw, 1 << 20).expect("decompresses"), payload);
    }

    #[test]
    fn a_raw_snappy_block_declaring_a_huge_length_is_refused_before_allocation() {
        // A varint length of 2^32 - 1 and nothing else.
        let hostile = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(
            Codec::Snappy.decompress(&hostile, 1 << 20),
            Err(RecordError::DecompressedTooLarge { bytes_max: 1 << 20 })
        );
    }

    #[test]
    fn codec_ids_five_to_seven_are_unknown() {
        for id in 5..8 {
            assert_eq!(Codec::from_attributes(id), Err(RecordError::UnknownCodec(id)));
        }
        for codec in CODECS {
            assert_eq!(Codec::from_attributes(codec.id()), Ok(codec));
        }
    }

    proptest! {
        #[test]
        fn decompressing_garbage_never_panics_and_stays_bounded(
            codec in prop::sample::select(CODECS.to_vec()),
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            bytes_max in 0usize..4096,
        ) {
            if let Ok(out) = codec.decompress(&bytes, bytes_max) {
                prop_assert!(out.len() <= bytes_max);
            }
        }

        #[test]
        fn decompressing_mutated_streams_never_panics_and_stays_bounded(
            codec in prop::sample::select(CODECS.to_vec()),
            payload in proptest::collection::vec(any::<u8>(), 0..2000),
            position in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut compressed = codec.compress(&payload).expect("compresses");
            if !compressed.is_empty() {
                let at = position.index(compressed.len());
                compressed[at] = byte;
            }
            if let Ok(out) = codec.decompress(&compressed, 1000) {
                prop_assert!(out.len() <= 1000);
            }
        }

        #[test]
        fn every_codec_round_trips(codec in prop::sample::select(CODECS.to_vec()), payload in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let compressed = codec.compress(&payload).expect("compresses");
            prop_assert_eq!(codec.decompress(&compressed, payload.len()).expect("decompresses"), payload);
        }
    }
}
