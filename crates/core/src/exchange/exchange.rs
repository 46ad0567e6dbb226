//! An exchange's declaration: name, kind and flags, as AMQP's
//! `exchange.declare` gives them. Plain data; routing lives in the router.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How an exchange picks destinations among its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExchangeKind {
    /// Bindings whose key equals the routing key.
    Direct,
    /// Every binding.
    Fanout,
    /// Bindings whose key pattern (`*`, `#`) matches the routing key.
    Topic,
    /// Bindings whose arguments match the message headers (`x-match`).
    Headers,
}

impl ExchangeKind {
    /// The AMQP type name: `direct`, `fanout`, `topic`, `headers`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExchangeKind {
    type Err = super::ExchangeError;

    fn from_str(s: &str) -> Result<ExchangeKind, super::ExchangeError> {
        match s {
            "direct" => Ok(ExchangeKind::Direct),
            "fanout" => Ok(ExchangeKind::Fanout),
            "topic" => Ok(ExchangeKind::Topic),
            "headers" => Ok(ExchangeKind::Headers),
            other => Err(super::ExchangeError::UnknownKind(other.to_owned())),
        }
    }
}

/// A declared exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    /// Deleted once its last binding (as a source) goes; the router reports
    /// when that happens and the caller deletes it.
    pub auto_delete: bool,
    /// Clients cannot publish to it; only other exchanges route into it.
    pub internal: bool,
    /// Where messages go that this exchange's bindings route nowhere
    /// (`alternate-exchange`). It need not exist: a missing one is skipped.
    pub alternate_exchange: Option<String>,
    /// Settings a front door keeps with the exchange and the router does not
    /// interpret (an SNS topic's attributes under `sns.*` names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: BTreeMap<String, String>,
}

impl Exchange {
    /// A durable exchange with no flags set and no alternate exchange.
    pub fn new(name: impl Into<String>, kind: ExchangeKind) -> Exchange {
        Exchange {
            name: name.into(),
            kind,
            durable: true,
            auto_delete: false,
            internal: false,
            alternate_exchange: None,
            arguments: BTreeMap::new(),
        }
    }

    /// The first field in which `other` differs, for RabbitMQ's "inequivalent
    /// arg" refusal of a redeclaration.
    pub(crate) fn difference(&self, other: &Exchange) -> Option<&'static str> {
        if self.kind != other.kind {
            Some("type")
        } else if self.durable != other.durable {
            Some("durable")
        } else if self.auto_delete != other.auto_delete {
            Some("auto_delete")
        } else if self.internal != other.internal {
            Some("internal")
        } else if self.alternate_exchange != other.alternate_exchange {
            Some("alternate-exchange")
        } else if self.arguments != other.arguments {
            Some("arguments")
        } else {
            None
        }
    }
}
