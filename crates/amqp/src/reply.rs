//! AMQP reply codes and the one table mapping core errors onto them, plus
//! helpers to build the frames every part of the front door sends.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection};
use amq_protocol::types::ShortString;
use conveyor_core::CoreError;
use conveyor_core::exchange::ExchangeError;
use conveyor_core::vhost::{self, VhostError, VirtualHost};

pub const REPLY_SUCCESS: u16 = 200;
pub const INVALID_PATH: u16 = 402;
pub const RESOURCE_ERROR: u16 = 506;
pub const CONTENT_TOO_LARGE: u16 = 311;
pub const NO_ROUTE: u16 = 312;
pub const CONNECTION_FORCED: u16 = 320;
pub const ACCESS_REFUSED: u16 = 403;
pub const NOT_FOUND: u16 = 404;
pub const RESOURCE_LOCKED: u16 = 405;
pub const PRECONDITION_FAILED: u16 = 406;
pub const FRAME_ERROR: u16 = 501;
pub const SYNTAX_ERROR: u16 = 502;
pub const COMMAND_INVALID: u16 = 503;
pub const CHANNEL_ERROR: u16 = 504;
pub const UNEXPECTED_FRAME: u16 = 505;
pub const NOT_ALLOWED: u16 = 530;
pub const NOT_IMPLEMENTED: u16 = 540;
pub const INTERNAL_ERROR: u16 = 541;

/// A channel or connection exception: code, RabbitMQ-style text, and the
/// method that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub code: u16,
    pub text: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl Exception {
    pub fn new(code: u16, text: impl Into<String>) -> Exception {
        Exception {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
        }
    }

    /// Names the method that failed (clients show it).
    pub fn on(mut self, method: &AMQPClass) -> Exception {
        self.class_id = method.get_amqp_class_id();
        self.method_id = method.get_amqp_method_id();
        self
    }

    /// Whether it closes the whole connection rather than the channel: the
    /// codes AMQP 0-9-1 makes connection exceptions, which RabbitMQ raises
    /// as such even when a channel's method causes them (the "hard" errors
    /// of `rabbit_framing_amqp_0_9_1:lookup_amqp_exception`: 540 for
    /// `basic.get` or `queue.purge` on a stream, 530 for a reused consumer
    /// tag, 503 for an unknown exchange type, …). 403, 404, 405 and 406
    /// close the channel only.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self.code,
            CONNECTION_FORCED
                | INVALID_PATH
                | FRAME_ERROR
                | SYNTAX_ERROR
                | COMMAND_INVALID
                | CHANNEL_ERROR
                | UNEXPECTED_FRAME
                | RESOURCE_ERROR
                | NOT_ALLOWED
                | NOT_IMPLEMENTED
                | INTERNAL_ERROR
        )
    }

    fn text_with_name(&self) -> ShortString {
        short(format!("{} - {}", code_name(self.code), self.text))
    }

    pub fn channel_close(&self, channel_id: u16) -> AMQPFrame {
        AMQPFrame::Method(
            channel_id,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: self.code,
                reply_text: self.text_with_name(),
                class_id: self.class_id,
                method_id: self.method_id,
            })),
        )
    }

    pub fn connection_close(&self) -> AMQPFrame {
        AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                reply_code: self.code,
                reply_text: self.text_with_name(),
                class_id: self.class_id,
                method_id: self.method_id,
            })),
        )
    }
}

fn code_name(code: u16) -> &'static str {
    match code {
        REPLY_SUCCESS => "OK",
        CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        NO_ROUTE => "NO_ROUTE",
        CONNECTION_FORCED => "CONNECTION_FORCED",
        ACCESS_REFUSED => "ACCESS_REFUSED",
        NOT_FOUND => "NOT_FOUND",
        RESOURCE_LOCKED => "RESOURCE_LOCKED",
        PRECONDITION_FAILED => "PRECONDITION_FAILED",
        FRAME_ERROR => "FRAME_ERROR",
        SYNTAX_ERROR => "SYNTAX_ERROR",
        COMMAND_INVALID => "COMMAND_INVALID",
        CHANNEL_ERROR => "CHANNEL_ERROR",
        UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        NOT_ALLOWED => "NOT_ALLOWED",
        NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        INVALID_PATH => "INVALID_PATH",
        RESOURCE_ERROR => "RESOURCE_ERROR",
        _ => "INTERNAL_ERROR",
    }
}

/// A short string from any text, cut to the protocol's 255 bytes at a
/// character boundary (`ShortString::from` panics on longer input).
pub fn short(text: impl Into<String>) -> ShortString {
    let mut text = text.into();
    if text.len() > 255 {
        let mut end = 255;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    ShortString::from(text)
}

/// The channel exception a core error becomes.
pub fn core_exception(error: &CoreError) -> Exception {
    let code = match error {
        CoreError::UnknownQueue(_) | CoreError::UnknownTopic(_) => NOT_FOUND,
        CoreError::Exchange(error) => match error {
            ExchangeError::UnknownExchange(_) => NOT_FOUND,
            ExchangeError::ReservedName(_) | ExchangeError::Predeclared(_) | ExchangeError::Internal(_) => ACCESS_REFUSED,
            ExchangeError::UnknownKind(_) => COMMAND_INVALID,
            ExchangeError::Inequivalent { .. }
            | ExchangeError::InUse(_)
            | ExchangeError::InvalidArgument { .. }
            | ExchangeError::DefaultExchangeBinding
            | ExchangeError::TooLong { .. } => PRECONDITION_FAILED,
        },
        // RabbitMQ refuses a queue past its vhost or cluster queue limit with 406.
        CoreError::QueueMismatch { .. }
        | CoreError::QueueInUse { .. }
        | CoreError::InvalidQueueArgument { .. }
        | CoreError::LimitReached(_) => PRECONDITION_FAILED,
        CoreError::ShuttingDown => CONNECTION_FORCED,
        CoreError::StreamNotPurged(_) => NOT_IMPLEMENTED,
        CoreError::Vhost(error) => return vhost_exception(error),
        _ => INTERNAL_ERROR,
    };
    // Core errors name queues and exchanges broker-wide: the client knows them by their names in its vhost.
    Exception::new(code, vhost::local_text(&error.to_string()))
}

/// "no exchange 'x' in vhost 'v'", RabbitMQ's wording (`name` as the client gave it).
pub fn no_exchange(name: &str, vhost: &VirtualHost) -> Exception {
    Exception::new(NOT_FOUND, format!("no exchange '{name}' in vhost '{}'", vhost.name()))
}

/// "no queue 'q' in vhost 'v'", RabbitMQ's wording (`name` as the client gave it).
pub fn no_queue(name: &str, vhost: &VirtualHost) -> Exception {
    Exception::new(NOT_FOUND, format!("no queue '{name}' in vhost '{}'", vhost.name()))
}

/// A name a client may not use in its vhost (one of another vhost's, seen from `/`).
pub fn vhost_exception(error: &VhostError) -> Exception {
    let code = match error {
        VhostError::NotFound(_) => NOT_FOUND,
        VhostError::InvalidName { .. } => PRECONDITION_FAILED,
        VhostError::ReservedName(_) | VhostError::Undeletable(_) => ACCESS_REFUSED,
    };
    Exception::new(code, error.to_string())
}
