//! A channel's `queue.declare` (RabbitMQ's checks, exclusive and
//! auto-delete queues, the queue types' rules), and what binding methods
//! check and bind to. Knows the channel's state; routing is the core's.

use amq_protocol::protocol::{AMQPClass, queue};
use std::collections::BTreeMap;

use amq_protocol::types::{AMQPValue, FieldTable as AmqpTable, LongUInt};
use conveyor_core::CoreError;
use conveyor_core::auth::Operation;
use conveyor_core::broker::Redeclaration;
use conveyor_core::error::shown;
use conveyor_core::exchange::{Destination, FieldTable};
use conveyor_core::queue::DeclaredQueue;
use conveyor_core::vhost::{self, VirtualHost};

use super::{Channel, check_access};
use crate::Context;
use crate::message::header_table;
use crate::queue_type;
use crate::reply::{self, Exception, short};
use crate::reply_to;

impl Channel {
    pub(super) async fn declare_queue(&mut self, context: &Context, connection_id: u64, declare: queue::Declare) -> Result<(), Exception> {
        let mut name = declare.queue.to_string();
        if declare.passive && name == reply_to::PSEUDO_QUEUE {
            // It always exists, empty and unconsumed (FastStream checks it so).
            if !declare.nowait {
                self.reply(AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                    queue: short(name),
                    message_count: 0,
                    consumer_count: 0,
                })))
                .await;
            }
            return Ok(());
        }
        if declare.passive {
            let resource = self.resource(&name)?;
            let declared = context.broker.queue(&resource).ok_or_else(|| reply::no_queue(&name, &self.vhost))?;
            check_access(context, connection_id, &self.vhost, &resource)?;
            return self.declare_ok(&declared, declare.nowait).await;
        }
        if name.is_empty() {
            name = format!("amq.gen-{}", uuid::Uuid::new_v4().simple());
        } else if name.starts_with("amq.") {
            return Err(Exception::new(
                reply::ACCESS_REFUSED,
                format!("queue name '{name}' contains reserved prefix 'amq.*'"),
            ));
        }
        // RabbitMQ checks a server-named queue under its generated name.
        self.identity.queue(&context.broker, &self.vhost, &name, Operation::Configure)?;
        let resource = self.resource(&name)?;
        check_access(context, connection_id, &self.vhost, &resource)?;
        let table = header_table(&declare.arguments);
        let texts = conveyor_rabbit_args::argument_texts(&table);
        // As RabbitMQ: a queue that exists is compared with the declaration
        // first; the arguments are checked only for a new queue.
        let redeclaration = Redeclaration {
            durable: declare.durable,
            auto_delete: declare.auto_delete,
            arguments: &texts,
            compare: conveyor_rabbit_args::differing_argument,
        };
        let declared = match context.broker.redeclare_queue(&resource, &redeclaration) {
            Some(existing) => existing.map_err(|error| self.declare_exception(&error, &table))?,
            None => {
                let arguments = self.check_new_queue(context, &declare, &name, &table)?;
                let definition = conveyor_rabbit_args::definition(&resource, declare.durable, declare.auto_delete, arguments)
                    .map_err(|error| reply::core_exception(&error))?;
                let (declared, _created) = context
                    .broker
                    .declare_queue_compared(&resource, definition, conveyor_rabbit_args::differing_argument)
                    .await
                    .map_err(|error| self.declare_exception(&error, &table))?;
                declared
            }
        };
        if declare.exclusive {
            context.exclusive_owners.lock().entry(resource).or_insert(connection_id);
        }
        self.declare_ok(&declared, declare.nowait).await
    }

    /// What RabbitMQ checks of a declaration only when its queue is new
    /// (`rabbit_channel`, `rabbit_amqqueue:declare`): read on the queue and
    /// write on its dead-letter exchange, then its arguments' types and its
    /// type's properties. The arguments as the definition keeps them.
    fn check_new_queue(
        &self,
        context: &Context,
        declare: &queue::Declare,
        name: &str,
        table: &FieldTable,
    ) -> Result<BTreeMap<String, String>, Exception> {
        if let Some(dead_letter_exchange) = dead_letter_exchange(&declare.arguments) {
            self.identity
                .exchange(&context.broker, &self.vhost, &dead_letter_exchange, Operation::Write)?;
            self.identity.queue(&context.broker, &self.vhost, name, Operation::Read)?;
        }
        let arguments = conveyor_rabbit_args::arguments_from_table(table, name, self.vhost.name())
            .map_err(|reason| Exception::new(reply::PRECONDITION_FAILED, reason))?;
        queue_type::check_declaration(
            &arguments,
            declare.durable,
            declare.exclusive,
            declare.auto_delete,
            name,
            self.vhost.name(),
        )?;
        Ok(arguments)
    }

    /// A refused declaration as RabbitMQ answers it: a queue that exists
    /// differently is "inequivalent arg 'x-max-length' for queue 'q' in
    /// vhost '/': received the value 'abc' of type 'longstr' but current is
    /// '10'" (the value given with its type from `table`; the current one's
    /// type is not kept).
    fn declare_exception(&self, error: &CoreError, table: &FieldTable) -> Exception {
        let CoreError::QueueMismatch {
            name,
            field,
            received,
            current,
        } = error
        else {
            return reply::core_exception(error);
        };
        let received = match (table.get(field.as_str()), received) {
            (Some(value), Some(text)) => format!("the value '{text}' of type '{}'", value.type_name()),
            (_, received) => shown(received.as_deref()),
        };
        Exception::new(
            reply::PRECONDITION_FAILED,
            format!(
                "inequivalent arg '{field}' for queue '{}' in vhost '{}': received {received} but current is {}",
                vhost::local_name(name),
                self.vhost.name(),
                shown(current.as_deref())
            ),
        )
    }

    /// RabbitMQ's table for `queue.bind`, `exchange.bind` and their unbinds:
    /// write on the destination (a queue, an exchange, or a Kafka topic's
    /// ACLs when `queue.bind` names a topic), read on the source exchange.
    pub(super) fn check_binding(
        &self,
        context: &Context,
        destination: &str,
        resolved: Option<&Destination>,
        source: &str,
    ) -> Result<(), Exception> {
        match resolved {
            Some(Destination::Topic(topic)) => self.identity.topic(&context.broker, topic, Operation::Write)?,
            Some(_) => self.identity.queue(&context.broker, &self.vhost, destination, Operation::Write)?,
            None => self
                .identity
                .exchange(&context.broker, &self.vhost, destination, Operation::Write)?,
        }
        self.identity.exchange(&context.broker, &self.vhost, source, Operation::Read)
    }

    async fn declare_ok(&self, declared: &DeclaredQueue, nowait: bool) -> Result<(), Exception> {
        if !nowait {
            self.reply(AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                queue: short(vhost::local_name(&declared.name)),
                message_count: declared.available_count().min(u64::from(u32::MAX)) as LongUInt,
                consumer_count: declared.consumer_count().min(u32::MAX as usize) as LongUInt,
            })))
            .await;
        }
        Ok(())
    }
}

/// What `queue.bind` names (broker-wide): a queue, or else a Kafka topic of
/// that name (so AMQP-published messages can be read by Kafka consumers).
/// Kafka topics have no vhost: they are reachable from `/` only, so the
/// other vhosts stay isolated.
pub(super) fn binding_destination(context: &Context, vhost: &VirtualHost, resource: String) -> Destination {
    if vhost.is_default() && context.broker.queue(&resource).is_none() && context.broker.topic(&resource).is_some() {
        Destination::Topic(resource)
    } else {
        Destination::Queue(resource)
    }
}

/// A queue declaration's `x-dead-letter-exchange`, as the client named it.
fn dead_letter_exchange(arguments: &AmqpTable) -> Option<String> {
    match arguments.inner().get("x-dead-letter-exchange") {
        Some(AMQPValue::LongString(name)) => Some(String::from_utf8_lossy(name.as_bytes()).into_owned()),
        Some(AMQPValue::ShortString(name)) => Some(name.to_string()),
        _ => None,
    }
}
