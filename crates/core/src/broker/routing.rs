//! The broker's exchanges and bindings: routing a message through the
//! router of the current views and fanning it out to the queues and topics
//! it was routed to (every door's one publish-to-exchange), and declaring, redefining, binding and
//! deleting, each one event through `metadata.rs` (journaled when what it
//! changes survives a restart).

use std::sync::Arc;

use conveyor_log::record::Record;

use super::Broker;
use crate::catalog::Event;
use crate::error::{CoreError, Result};
use crate::exchange::{Binding, Destination, Exchange, ExchangeError, FieldTable, RouteResult, is_predeclared};
use crate::messaging::Storing;
use crate::vhost;

/// Where one copy of a routed message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// A queue, by its broker-wide name.
    Queue(String),
    Topic(String),
}

/// What a routed publish became: each target's appends (resolving once
/// durable, or failing with why it was not stored) and the queues that
/// refused it (full, `x-overflow = reject-publish(-dlx)`).
pub struct FannedOut {
    pub stored: Vec<(RouteTarget, Vec<Storing>)>,
    pub refused: Vec<String>,
}

impl std::fmt::Debug for FannedOut {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FannedOut")
            .field("stored", &self.stored.iter().map(|(target, _)| target).collect::<Vec<_>>())
            .field("refused", &self.refused)
            .finish()
    }
}

impl Broker {
    /// Where a message published to `exchange` goes.
    pub fn route(&self, exchange: &str, routing_key: &str, headers: &FieldTable) -> Result<RouteResult> {
        let views = self.meta.current();
        let mut routed = views.router.route(exchange, routing_key, headers)?;
        // The default exchange names queues without checking they exist.
        routed.queues.retain(|name| views.queues.contains_key(name));
        Ok(routed)
    }

    /// Publishes `record` into every queue and topic of `routed`, each
    /// under its own rules (a queue's deduplication window and length
    /// limits, a topic's `max.message.bytes`); a queue deleted since the
    /// routing is skipped. The one fan-out every door's publish to an
    /// exchange goes through. The last target takes the record itself, so
    /// a message routed to one place is never copied.
    pub fn publish_routed(self: &Arc<Self>, routed: &RouteResult, record: Record) -> FannedOut {
        let mut fanned = FannedOut {
            stored: Vec::with_capacity(routed.queues.len() + routed.topics.len()),
            refused: Vec::new(),
        };
        let views = self.meta.current();
        // Each queue is published to once the next one is found, so the
        // last target is known without first collecting the queues into a
        // list (one allocation less on every AMQP publish, issue 18).
        let mut queues = routed.queues.iter().filter_map(|name| Some((name, views.queues.get(name)?)));
        let mut next = queues.next();
        let mut record = Some(record);
        let mut copy = |last: bool| {
            if last {
                record.take().expect("taken once, by the last target")
            } else {
                record.clone().expect("still there before the last target")
            }
        };
        while let Some((name, declared)) = next {
            next = queues.next();
            let published = self.publish_to_queue(declared, copy(next.is_none() && routed.topics.is_empty()));
            if published.refused {
                fanned.refused.push(name.clone());
            }
            fanned.stored.push((RouteTarget::Queue(name.clone()), published.appends));
        }
        for (index, name) in routed.topics.iter().enumerate() {
            let append: Storing = match self.publish_to_topic(name, copy(index + 1 == routed.topics.len())) {
                Ok(pending) => Box::pin(async move { pending.await.map(drop) }),
                Err(error) => Box::pin(std::future::ready(Err(error))),
            };
            fanned.stored.push((RouteTarget::Topic(name.clone()), vec![append]));
        }
        fanned
    }

    pub fn exchange(&self, name: &str) -> Option<Exchange> {
        self.meta.views().router.exchange(name).cloned()
    }

    /// Every exchange, the predeclared ones included, in name order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.meta.views().router.exchanges().cloned().collect()
    }

    /// The bindings whose source is exchange `name`.
    pub fn bindings(&self, name: &str) -> Result<Vec<Binding>> {
        Ok(self.meta.views().router.bindings(name)?)
    }

    /// Declares an exchange (no-op when it exists the same way). Durable
    /// exchanges are recorded in the catalog.
    pub async fn declare_exchange(&self, exchange: Exchange) -> Result<()> {
        let change = self.meta.change().await;
        self.check_vhost_of(&exchange.name)?;
        if !change.views().router.check_declare(&exchange)? {
            return Ok(());
        }
        let durable = exchange.durable;
        change.commit_to_end(Event::ExchangeDeclared { exchange }, durable).await
    }

    pub async fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<()> {
        let change = self.meta.change().await;
        let views = change.views();
        if is_predeclared(name) {
            return Err(ExchangeError::Predeclared(name.to_owned()).into());
        }
        let Some(exchange) = views.router.exchange(name) else {
            // AMQP answers delete-ok all the same.
            return Ok(());
        };
        if if_unused && !views.router.bindings(name)?.is_empty() {
            return Err(ExchangeError::InUse(name.to_owned()).into());
        }
        let durable = exchange.durable;
        let event = Event::ExchangeDeleted { name: name.to_owned() };
        change.commit_to_end(event, durable).await
    }

    /// Binds `binding.destination` to exchange `source`. The destination
    /// must exist (a queue, an exchange, or a Kafka topic). Recorded in the
    /// catalog when both ends survive a restart.
    pub async fn bind(&self, source: &str, binding: Binding) -> Result<()> {
        // Bindings stay within a vhost (Kafka topics have none).
        if let Destination::Queue(name) | Destination::Exchange(name) = &binding.destination
            && vhost::split(name).0 != vhost::split(source).0
        {
            return Err(CoreError::Exchange(ExchangeError::InvalidArgument {
                exchange: source.to_owned(),
                reason: format!("cannot bind {name:?} of another vhost"),
            }));
        }
        let change = self.meta.change().await;
        let views = change.views();
        let destination_durable = match &binding.destination {
            Destination::Queue(name) => {
                views
                    .queues
                    .get(name)
                    .ok_or_else(|| CoreError::UnknownQueue(name.clone()))?
                    .definition()
                    .durable
            }
            Destination::Exchange(name) => views
                .router
                .exchange(name)
                .map(|exchange| exchange.durable || is_predeclared(name))
                .ok_or_else(|| CoreError::Exchange(ExchangeError::UnknownExchange(name.clone())))?,
            Destination::Topic(name) => {
                views.topics.get(name).ok_or_else(|| CoreError::UnknownTopic(name.clone()))?;
                true
            }
        };
        let source_durable = views
            .router
            .exchange(source)
            .is_some_and(|exchange| exchange.durable || is_predeclared(source));
        let event = Event::BindingAdded {
            source: source.to_owned(),
            binding,
        };
        change.commit_to_end(event, source_durable && destination_durable).await
    }

    /// Removes a binding; removing one that does not exist is not an error.
    pub async fn unbind(&self, source: &str, binding: Binding) -> Result<()> {
        let change = self.meta.change().await;
        let recorded = change.catalog().routing.has_binding(source, &binding);
        let event = Event::BindingRemoved {
            source: source.to_owned(),
            binding,
        };
        change.commit_to_end(event, recorded).await
    }

    /// Replaces an exchange's declaration (same kind), keeping its bindings;
    /// durable when this returns if the exchange is durable.
    pub async fn redefine_exchange(&self, exchange: Exchange) -> Result<()> {
        let change = self.meta.change().await;
        // Applying a declaration replaces an existing exchange (refusing
        // another kind or a predeclared one) but would create a missing one.
        if change.views().router.exchange(&exchange.name).is_none() {
            return Err(ExchangeError::UnknownExchange(exchange.name).into());
        }
        let durable = exchange.durable;
        change.commit_to_end(Event::ExchangeDeclared { exchange }, durable).await
    }

    /// Replaces binding `old` of `source` with `new` (same destination) as
    /// one catalog event. Fails if `old` does not exist.
    pub async fn replace_binding(&self, source: &str, old: Binding, new: Binding) -> Result<()> {
        let change = self.meta.change().await;
        if old.destination != new.destination {
            return Err(CoreError::Exchange(ExchangeError::InvalidArgument {
                exchange: source.to_owned(),
                reason: "a replaced binding keeps its destination".to_owned(),
            }));
        }
        let recorded = change.catalog().routing.has_binding(source, &old);
        let event = Event::BindingReplaced {
            source: source.to_owned(),
            old,
            new,
        };
        change.commit_to_end(event, recorded).await
    }
}
