//! Who an AMQP connection speaks for, and RabbitMQ's access-control table
//! applied through the core's one authorizer: which permission (configure,
//! write, read) on which queue or exchange each method needs, answered
//! with RabbitMQ's 403 ACCESS_REFUSED text ("configure access to queue 'q'
//! in vhost '/' refused for user 'alice'"). The default exchange is
//! `amq.default` for these checks, as in RabbitMQ. Knows the table, not the
//! rules (the authorizer's).

use std::net::IpAddr;

use conveyor_core::auth::{Operation, Principal, Resource};
use conveyor_core::{Broker, VirtualHost};

use crate::reply::{self, Exception};

/// The label of AMQP's failures and denials in `/metrics`.
pub const PROTOCOL: &str = "amqp";

/// The authenticated side of a connection: shared by its channels.
#[derive(Debug, Clone)]
pub struct Identity {
    pub principal: Principal,
    pub peer: IpAddr,
}

impl Identity {
    fn check(&self, broker: &Broker, resource: Resource<'_>, operation: Operation) -> Result<(), Exception> {
        broker
            .authorizer()
            .check(PROTOCOL, &self.principal, Some(self.peer), &resource, operation)
            .map_err(|denied| Exception::new(reply::ACCESS_REFUSED, denied.to_string()))
    }

    /// `operation` (configure, write or read) on the queue the client calls `name`.
    pub fn queue(&self, broker: &Broker, vhost: &VirtualHost, name: &str, operation: Operation) -> Result<(), Exception> {
        self.check(broker, Resource::Queue { vhost: vhost.name(), name }, operation)
    }

    /// `operation` on the exchange the client calls `name` (`""` is `amq.default`).
    pub fn exchange(&self, broker: &Broker, vhost: &VirtualHost, name: &str, operation: Operation) -> Result<(), Exception> {
        let name = if name.is_empty() { "amq.default" } else { name };
        self.check(broker, Resource::Exchange { vhost: vhost.name(), name }, operation)
    }

    /// Writing into a Kafka topic bound from an exchange: the topic's ACLs decide.
    pub fn topic(&self, broker: &Broker, name: &str, operation: Operation) -> Result<(), Exception> {
        self.check(broker, Resource::Topic(name), operation)
    }

    /// Opening `vhost` needs a permission entry there; refused with 530
    /// NOT_ALLOWED, RabbitMQ's answer in `connection.open`.
    pub fn open_vhost(&self, broker: &Broker, vhost: &VirtualHost) -> Result<(), Exception> {
        broker
            .authorizer()
            .check(
                PROTOCOL,
                &self.principal,
                Some(self.peer),
                &Resource::Vhost(vhost.name()),
                Operation::Access,
            )
            .map_err(|_| {
                Exception::new(
                    reply::NOT_ALLOWED,
                    format!("access to vhost '{}' refused for user '{}'", vhost.name(), self.principal.name()),
                )
            })
    }
}
