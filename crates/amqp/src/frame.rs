//! AMQP 0-9-1 framing: reads one frame at a time with its size checked
//! against the negotiated `frame_max` before anything is buffered, decodes it
//! with `amq-protocol`, and encodes outgoing frames.

use amq_protocol::frame::{AMQPFrame, WriteContext, gen_frame, parse_frame};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::nesting;

/// Frame type (1) + channel (2) + payload size (4).
const FRAME_HEADER_BYTES: usize = 7;
const FRAME_END: u8 = 0xCE;
/// "AMQP" 0 0 9 1.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {size} bytes exceeds frame_max {frame_max}")]
    TooLarge { size: usize, frame_max: usize },
    #[error("frame does not end with 0xCE")]
    BadFrameEnd,
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("unknown method: class {class_id}, method {method_id}")]
    UnknownMethod { class_id: u16, method_id: u16 },
    #[error("undecodable frame: {0}")]
    Malformed(String),
    #[error("frame refused: {0}")]
    TooDeep(#[from] nesting::TooDeep),
}

/// Reads the 8-byte protocol header a client opens with; `Err(bytes)` when it
/// is something else (the server answers with its own header and closes).
pub async fn read_protocol_header<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Result<(), [u8; 8]>, FrameError> {
    let mut header = [0u8; 8];
    read_exact(reader, &mut header).await?;
    Ok(if header == PROTOCOL_HEADER { Ok(()) } else { Err(header) })
}

/// Reads and decodes one frame, refusing one larger than `frame_max` (the
/// whole frame, header and end octet included, as the spec counts it).
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, frame_max: usize) -> Result<AMQPFrame, FrameError> {
    let start = read_frame_start(reader, frame_max).await?;
    read_frame_rest(reader, start).await
}

/// A frame's fixed header, read and checked; the rest is still on the socket.
#[derive(Debug, Clone, Copy)]
pub struct FrameStart {
    header: [u8; FRAME_HEADER_BYTES],
    /// The whole frame's size, header and end octet included.
    pub total: usize,
}

/// Reads a frame's header and checks its size against `frame_max` before
/// anything more of it is read or buffered.
pub async fn read_frame_start<R: AsyncRead + Unpin>(reader: &mut R, frame_max: usize) -> Result<FrameStart, FrameError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    read_exact(reader, &mut header).await?;
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    let total = FRAME_HEADER_BYTES + size + 1;
    if total > frame_max {
        return Err(FrameError::TooLarge { size: total, frame_max });
    }
    Ok(FrameStart { header, total })
}

/// Reads the rest of the frame `start` began, and decodes it.
pub async fn read_frame_rest<R: AsyncRead + Unpin>(reader: &mut R, start: FrameStart) -> Result<AMQPFrame, FrameError> {
    let FrameStart { header, total } = start;
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&header);
    frame.resize(total, 0);
    read_exact(reader, &mut frame[FRAME_HEADER_BYTES..]).await?;
    if frame[total - 1] != FRAME_END {
        return Err(FrameError::BadFrameEnd);
    }
    decode(&frame)
}

/// Decodes one complete frame, refusing hostile nesting before the codec
/// recurses into it.
pub fn decode(frame: &[u8]) -> Result<AMQPFrame, FrameError> {
    check_kind(frame)?;
    nesting::check_frame(frame)?;
    match parse_frame(frame) {
        Ok(([], frame)) => Ok(frame),
        Ok(_) => Err(FrameError::Malformed("trailing bytes".into())),
        Err(error) => Err(FrameError::Malformed(format!("{error:?}").chars().take(200).collect())),
    }
}

/// Frame types of AMQP 0-9-1: method, content header, content body, heartbeat.
const FRAME_TYPES: [u8; 4] = [1, 2, 3, 8];

/// The methods of AMQP 0-9-1 (RabbitMQ's, with `confirm`), by class.
const METHODS: [(u16, &[u16]); 8] = [
    (10, &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71]),
    (20, &[10, 11, 20, 21, 40, 41]),
    (30, &[10, 11]),
    (40, &[10, 11, 20, 21, 30, 31, 40, 51]),
    (50, &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51]),
    (60, &[10, 11, 20, 21, 30, 31, 40, 50, 60, 70, 71, 72, 80, 90, 100, 110, 111, 120]),
    (85, &[10, 11]),
    (90, &[10, 11, 20, 21, 30, 31]),
];

/// Refuses a frame of a type AMQP 0-9-1 does not have, and a method frame
/// naming a method it does not have, before the codec sees either: each
/// has its own reply code, where the codec only says it could not parse.
fn check_kind(frame: &[u8]) -> Result<(), FrameError> {
    let Some(&kind) = frame.first() else {
        return Err(FrameError::Malformed("empty frame".into()));
    };
    if !FRAME_TYPES.contains(&kind) {
        return Err(FrameError::UnknownType(kind));
    }
    if kind == 1
        && let Some(ids) = frame.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + 4)
    {
        let class_id = u16::from_be_bytes([ids[0], ids[1]]);
        let method_id = u16::from_be_bytes([ids[2], ids[3]]);
        let known = METHODS
            .iter()
            .any(|(class, methods)| *class == class_id && methods.contains(&method_id));
        if !known {
            return Err(FrameError::UnknownMethod { class_id, method_id });
        }
    }
    Ok(())
}

async fn read_exact<R: AsyncRead + Unpin>(reader: &mut R, buffer: &mut [u8]) -> Result<(), FrameError> {
    match reader.read_exact(buffer).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Closed),
        Err(error) => Err(FrameError::Io(error)),
    }
}

/// Encodes frames back to back into one buffer.
pub fn encode(frames: &[AMQPFrame]) -> Bytes {
    let mut buffer = Vec::new();
    for frame in frames {
        match gen_frame(frame)(WriteContext::from(Vec::new())) {
            Ok(context) => buffer.extend_from_slice(&context.write),
            // Only our own frames are encoded: a failure is a bug, logged.
            Err(error) => tracing::error!(?error, %frame, "could not encode an AMQP frame"),
        }
    }
    Bytes::from(buffer)
}
