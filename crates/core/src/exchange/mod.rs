//! Exchanges: AMQP 0-9-1 routing with RabbitMQ's behaviour — direct, fanout,
//! topic and headers exchanges, the predeclared ones (the default exchange
//! and `amq.*`), exchange-to-exchange bindings, alternate exchanges — and
//! Kafka topics as binding destinations. `router.rs` holds every virtual
//! host's exchanges and bindings and routes a routing key and headers to
//! queue and topic names; `topic_trie.rs` and `headers_match.rs` are the
//! matchers. A pure module: no I/O, no wire protocol, no broker wiring; the
//! caller appends to the logs it is told about and records definition
//! changes in the catalog.

mod binding;
#[allow(clippy::module_inception)] // `exchange::Exchange`, one main type per file.
mod exchange;
mod header_value;
mod headers_match;
mod router;
#[cfg(test)]
mod router_model;
mod topic_trie;

pub use binding::{Binding, Destination};
pub use exchange::{Exchange, ExchangeKind};
pub use header_value::{FieldTable, HeaderValue};
pub use headers_match::{X_MATCH, XMatch, headers_match};
pub use router::{
    BindingDefinition, DEFAULT_EXCHANGE, Definitions, KEY_BYTES_MAX, NAME_BYTES_MAX, Removal, RouteResult, Router, is_predeclared,
};

/// Why an exchange operation was refused. Each fails only its request; the
/// AMQP front door maps them to reply codes (NOT_FOUND, PRECONDITION_FAILED,
/// ACCESS_REFUSED, COMMAND_INVALID) in its one table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("no exchange {0:?}")]
    UnknownExchange(String),
    #[error("unknown exchange type {0:?}")]
    UnknownKind(String),
    #[error("exchange name {0:?} is reserved (the default exchange, or the 'amq.' prefix)")]
    ReservedName(String),
    #[error("exchange {exchange:?} exists with a different {field}")]
    Inequivalent { exchange: String, field: &'static str },
    #[error("exchange {0:?} is predeclared and cannot be deleted")]
    Predeclared(String),
    #[error("exchange {0:?} has bindings (delete if-unused)")]
    InUse(String),
    #[error("the default exchange cannot be bound to or from")]
    DefaultExchangeBinding,
    #[error("exchange {0:?} is internal: messages cannot be published to it")]
    Internal(String),
    #[error("invalid arguments for a binding of {exchange:?}: {reason}")]
    InvalidArgument { exchange: String, reason: String },
    #[error("{what} of {bytes} bytes is longer than {max}")]
    TooLong { what: &'static str, bytes: usize, max: usize },
}
