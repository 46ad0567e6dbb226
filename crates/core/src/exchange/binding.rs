//! Bindings: the rules from a source exchange to a destination (a queue, an
//! exchange or a Kafka topic), with their key and arguments. Plain data that
//! the router indexes and the catalog can store; no matching here.

use serde::{Deserialize, Serialize};

use super::header_value::FieldTable;

/// Where a binding delivers: a queue, another exchange (an
/// exchange-to-exchange binding, followed when routing) or a Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Destination {
    Queue(String),
    Exchange(String),
    Topic(String),
}

impl Destination {
    /// The queue, exchange or topic name.
    pub fn name(&self) -> &str {
        match self {
            Destination::Queue(name) | Destination::Exchange(name) | Destination::Topic(name) => name,
        }
    }
}

/// One binding of a source exchange. Two bindings of the same source are
/// the same binding when destination, key and arguments are all equal (as
/// in RabbitMQ): binding it twice leaves one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub destination: Destination,
    /// The binding key: an exact key (direct), a pattern (topic), or unused
    /// by matching (fanout, headers) but still part of the binding's identity.
    pub binding_key: String,
    /// Binding arguments; a headers exchange matches them against headers.
    pub arguments: FieldTable,
}

impl Binding {
    /// A binding without arguments.
    pub fn new(destination: Destination, binding_key: impl Into<String>) -> Binding {
        Binding {
            destination,
            binding_key: binding_key.into(),
            arguments: FieldTable::new(),
        }
    }

    /// The same binding with `arguments`.
    pub fn with_arguments(mut self, arguments: FieldTable) -> Binding {
        self.arguments = arguments;
        self
    }
}
