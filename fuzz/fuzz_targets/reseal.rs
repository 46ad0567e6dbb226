//! Resealing fuzz input: the `batch` and `recovery` targets rewrite the
//! CRC-32C of every batch the input's length fields delimit, so mutations
//! get past the checksum to the framing and decoding behind it.

use conveyor_log::batch::{BatchHeader, HEADER_BYTES, compute_crc};

/// Rewrites the CRC of each batch the length fields delimit.
pub fn reseal(bytes: &mut [u8]) {
    let mut position = 0;
    while let Some(header) = BatchHeader::parse(&bytes[position..]) {
        let end = position + header.total_bytes();
        if header.total_bytes() < HEADER_BYTES || end > bytes.len() {
            break;
        }
        let crc = compute_crc(&bytes[position..end]);
        bytes[position + 17..position + 21].copy_from_slice(&crc.to_be_bytes());
        position = end;
    }
}
