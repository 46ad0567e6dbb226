//! RabbitMQ's permissions: per user and vhost, three regular expressions
//! over the names of queues and exchanges — configure (declare, delete),
//! write (publish, bind into) and read (consume, get, purge, bind from).
//! As in RabbitMQ, a pattern is unanchored and `""` matches nothing. Knows
//! patterns and names; not which method needs which (the doors').

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::AuthError;

/// Compiled size a pattern may reach: one grant cannot eat the broker's memory.
const PATTERN_BYTES_MAX: usize = 1 << 20;

/// What is done to a queue or exchange, in RabbitMQ's three kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Configure,
    Write,
    Read,
}

impl Access {
    /// RabbitMQ's word in its refusal texts.
    pub fn name(self) -> &'static str {
        match self {
            Access::Configure => "configure",
            Access::Write => "write",
            Access::Read => "read",
        }
    }
}

/// One user's permission entry in one vhost, the patterns as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub configure: String,
    pub write: String,
    pub read: String,
}

impl Permission {
    /// Every right (`.*` three times).
    pub fn full() -> Permission {
        Permission {
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        }
    }

    /// Compiles the three patterns; an invalid one is refused.
    pub fn compile(&self) -> Result<CompiledPermission, AuthError> {
        Ok(CompiledPermission {
            configure: compile(&self.configure)?,
            write: compile(&self.write)?,
            read: compile(&self.read)?,
        })
    }
}

/// A permission entry ready to match names.
#[derive(Debug, Clone)]
pub struct CompiledPermission {
    configure: Regex,
    write: Regex,
    read: Regex,
}

impl CompiledPermission {
    /// Whether `access` to the resource named `name` (as named in its
    /// vhost; the default exchange as `amq.default`) is granted.
    pub fn allows(&self, access: Access, name: &str) -> bool {
        let pattern = match access {
            Access::Configure => &self.configure,
            Access::Write => &self.write,
            Access::Read => &self.read,
        };
        pattern.is_match(name)
    }
}

fn compile(pattern: &str) -> Result<Regex, AuthError> {
    // RabbitMQ reads "" as "^$": it grants nothing, where an empty regex would grant all.
    let pattern = if pattern.is_empty() { "^$" } else { pattern };
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_BYTES_MAX)
        .build()
        .map_err(|error| AuthError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(configure: &str, write: &str, read: &str) -> CompiledPermission {
        Permission {
            configure: configure.into(),
            write: write.into(),
            read: read.into(),
        }
        .compile()
        .expect("valid patterns")
    }

    #[test]
    fn patterns_are_unanchored_and_empty_grants_nothing() {
        let granted = permission("^orders\\.", "", "jobs");
        assert!(granted.allows(Access::Configure, "orders.eu"));
        assert!(!granted.allows(Access::Configure, "eu.orders.x"));
        assert!(!granted.allows(Access::Write, "orders.eu"));
        assert!(
            !granted.allows(Access::Write, "amq.default"),
            "\"\" is ^$: only the empty name, which no resource has"
        );
        assert!(granted.allows(Access::Read, "old-jobs-2"), "unanchored, as RabbitMQ's re:run");
        let full = Permission::full().compile().expect("full");
        assert!(full.allows(Access::Write, "amq.default"));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        let error = Permission {
            configure: "(".into(),
            write: ".*".into(),
            read: ".*".into(),
        }
        .compile()
        .expect_err("unbalanced");
        assert!(error.to_string().contains('('), "{error}");
    }
}
