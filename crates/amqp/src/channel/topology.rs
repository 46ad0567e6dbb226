//! A channel's topology methods besides `queue.declare` (`declaring.rs`):
//! queue deletes and purges, exchange declarations and deletes, and the
//! bindings of queues and exchanges, each with RabbitMQ's permission
//! checks. What they change is the core's.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, exchange, queue};
use amq_protocol::types::{AMQPValue, LongUInt};
use conveyor_core::auth::Operation;
use conveyor_core::exchange::{Binding, Destination, Exchange, ExchangeKind};
use conveyor_core::queue::QueueType;

use super::declaring::binding_destination;
use super::{Channel, check_access};
use crate::Context;
use crate::message::header_table;
use crate::reply::{self, Exception};
use crate::stream_consumer;

impl Channel {
    /// Deletes a queue: configure on it, and the exclusive owner's access.
    pub(super) async fn delete_queue(&self, context: &Context, connection_id: u64, delete: queue::Delete) -> Result<(), Exception> {
        let name = self.resource(delete.queue.as_str())?;
        self.identity
            .queue(&context.broker, &self.vhost, delete.queue.as_str(), Operation::Configure)?;
        check_access(context, connection_id, &self.vhost, &name)?;
        let count = context
            .broker
            .delete_queue(&name, delete.if_empty)
            .await
            .map_err(|error| reply::core_exception(&error))?;
        context.exclusive_owners.lock().remove(&name);
        if !delete.nowait {
            self.reply(AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
                message_count: count.min(u64::from(u32::MAX)) as LongUInt,
            })))
            .await;
        }
        Ok(())
    }

    /// Declares an exchange (or checks one exists, passive): configure on it; with an alternate exchange, write on that and read on this one, as RabbitMQ checks.
    pub(super) async fn declare_exchange(&self, context: &Context, declare: exchange::Declare) -> Result<(), Exception> {
        let name = declare.exchange.to_string();
        let resource = self.resource(&name)?;
        if declare.passive {
            context
                .broker
                .exchange(&resource)
                .ok_or_else(|| reply::no_exchange(&name, &self.vhost))?;
        } else {
            self.identity.exchange(&context.broker, &self.vhost, &name, Operation::Configure)?;
            let kind: ExchangeKind = declare
                .kind
                .as_str()
                .parse()
                .map_err(|error: conveyor_core::exchange::ExchangeError| Exception::new(reply::COMMAND_INVALID, error.to_string()))?;
            let alternate = match declare.arguments.inner().get("alternate-exchange") {
                Some(AMQPValue::LongString(name)) => Some(String::from_utf8_lossy(name.as_bytes()).into_owned()),
                Some(AMQPValue::ShortString(name)) => Some(name.to_string()),
                _ => None,
            };
            if let Some(alternate) = &alternate {
                self.identity.exchange(&context.broker, &self.vhost, alternate, Operation::Write)?;
                self.identity.exchange(&context.broker, &self.vhost, &name, Operation::Read)?;
            }
            let mut definition = Exchange::new(resource, kind);
            definition.durable = declare.durable;
            definition.auto_delete = declare.auto_delete;
            definition.internal = declare.internal;
            definition.alternate_exchange = alternate;
            context
                .broker
                .declare_exchange(definition)
                .await
                .map_err(|error| reply::core_exception(&error))?;
        }
        if !declare.nowait {
            self.reply(AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})))
                .await;
        }
        Ok(())
    }

    /// Deletes an exchange: configure on it.
    pub(super) async fn delete_exchange(&self, context: &Context, delete: exchange::Delete) -> Result<(), Exception> {
        let name = self.resource(delete.exchange.as_str())?;
        self.identity
            .exchange(&context.broker, &self.vhost, delete.exchange.as_str(), Operation::Configure)?;
        context
            .broker
            .delete_exchange(&name, delete.if_unused)
            .await
            .map_err(|error| reply::core_exception(&error))?;
        if !delete.nowait {
            self.reply(AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})))
                .await;
        }
        Ok(())
    }

    /// Binds an exchange to an exchange ([`Channel::check_binding`]).
    pub(super) async fn bind_exchange(&self, context: &Context, bind: exchange::Bind) -> Result<(), Exception> {
        let (source, destination) = (self.resource(bind.source.as_str())?, self.resource(bind.destination.as_str())?);
        self.check_binding(context, bind.destination.as_str(), None, bind.source.as_str())?;
        let binding =
            Binding::new(Destination::Exchange(destination), bind.routing_key.to_string()).with_arguments(header_table(&bind.arguments));
        context
            .broker
            .bind(&source, binding)
            .await
            .map_err(|error| reply::core_exception(&error))?;
        if !bind.nowait {
            self.reply(AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})))
                .await;
        }
        Ok(())
    }

    /// Unbinds an exchange from an exchange ([`Channel::check_binding`]).
    pub(super) async fn unbind_exchange(&self, context: &Context, unbind: exchange::Unbind) -> Result<(), Exception> {
        let (source, destination) = (self.resource(unbind.source.as_str())?, self.resource(unbind.destination.as_str())?);
        self.check_binding(context, unbind.destination.as_str(), None, unbind.source.as_str())?;
        let binding = Binding::new(Destination::Exchange(destination), unbind.routing_key.to_string())
            .with_arguments(header_table(&unbind.arguments));
        context
            .broker
            .unbind(&source, binding)
            .await
            .map_err(|error| reply::core_exception(&error))?;
        if !unbind.nowait {
            self.reply(AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})))
                .await;
        }
        Ok(())
    }

    /// Binds a queue (or a Kafka topic of its name) to an exchange ([`Channel::check_binding`]).
    pub(super) async fn bind_queue(&self, context: &Context, connection_id: u64, bind: queue::Bind) -> Result<(), Exception> {
        let (queue, exchange) = (self.resource(bind.queue.as_str())?, self.resource(bind.exchange.as_str())?);
        check_access(context, connection_id, &self.vhost, &queue)?;
        let destination = binding_destination(context, &self.vhost, queue);
        self.check_binding(context, bind.queue.as_str(), Some(&destination), bind.exchange.as_str())?;
        let binding = Binding::new(destination, bind.routing_key.to_string()).with_arguments(header_table(&bind.arguments));
        context
            .broker
            .bind(&exchange, binding)
            .await
            .map_err(|error| reply::core_exception(&error))?;
        if !bind.nowait {
            self.reply(AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {}))).await;
        }
        Ok(())
    }

    /// Unbinds a queue (or a Kafka topic of its name) from an exchange ([`Channel::check_binding`]).
    pub(super) async fn unbind_queue(&self, context: &Context, unbind: queue::Unbind) -> Result<(), Exception> {
        let (queue, exchange) = (self.resource(unbind.queue.as_str())?, self.resource(unbind.exchange.as_str())?);
        let destination = binding_destination(context, &self.vhost, queue);
        self.check_binding(context, unbind.queue.as_str(), Some(&destination), unbind.exchange.as_str())?;
        let binding = Binding::new(destination, unbind.routing_key.to_string()).with_arguments(header_table(&unbind.arguments));
        context
            .broker
            .unbind(&exchange, binding)
            .await
            .map_err(|error| reply::core_exception(&error))?;
        self.reply(AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {}))).await;
        Ok(())
    }

    /// Purges a queue: read on it; a stream refuses.
    pub(super) async fn purge_queue(&self, context: &Context, connection_id: u64, purge: queue::Purge) -> Result<(), Exception> {
        let name = purge.queue.to_string();
        let resource = self.resource(&name)?;
        let declared = context.broker.queue(&resource).ok_or_else(|| reply::no_queue(&name, &self.vhost))?;
        check_access(context, connection_id, &self.vhost, &resource)?;
        self.identity.queue(&context.broker, &self.vhost, &name, Operation::Read)?;
        if declared.policy().queue_type == QueueType::Stream {
            return Err(stream_consumer::purge_refused(&name, self.vhost.name()));
        }
        let broker = Arc::clone(&context.broker);
        let purged = tokio::task::spawn_blocking(move || broker.purge_queue(&declared))
            .await
            .map_err(|error| Exception::new(reply::INTERNAL_ERROR, error.to_string()))?
            .map_err(|error| reply::core_exception(&error))?;
        if !purge.nowait {
            self.reply(AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk {
                message_count: purged.min(u64::from(u32::MAX)) as LongUInt,
            })))
            .await;
        }
        Ok(())
    }
}
