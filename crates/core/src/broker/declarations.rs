//! Queue declarations waiting for the metadata lock, committed together
//! (group commit): the declare that gets the lock takes every declaration
//! waiting then, checks each against the views as the ones before it left
//! them, enqueues the durable ones' catalog events all at once so the log
//! writes them with one fsync, and answers each once its event is durable.
//! Knows the views, the catalog and the queue limit; what a declaration may
//! ask for is `queues.rs`'s.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::info;
use uuid::Uuid;

use super::metadata::{Change, Metadata, blocking};
use super::queues::{Unclaimed, check_stream_over_topic, discard, served_to_kafka};
use super::views::{Opened, Views};
use crate::catalog::{Event, QueueDefinition};
use crate::error::{CoreError, Result};
use crate::limits::{Limit, Limits};
use crate::queue::DeclaredQueue;
use crate::topic::Topic;
use crate::vhost;

/// A new queue whose files are made, waiting for its catalog event.
#[derive(Debug)]
pub(crate) struct QueueDeclaration {
    pub id: Uuid,
    pub name: String,
    pub definition: QueueDefinition,
    pub created_ms: i64,
    /// Discarded (files removed) if no event ever names it.
    pub opened: Unclaimed,
    /// Its Kafka face, for a stream served to Kafka.
    pub topic: Option<Arc<Topic>>,
    /// How the declaring door compares it with a queue declared meanwhile.
    pub compare: ArgumentComparison,
}

/// What a declaration is answered: the queue, and whether this declaration
/// created it (`false` for an equivalent one that existed).
pub(crate) type Declared = Result<(Arc<DeclaredQueue>, bool)>;

/// The declarations waiting for the metadata lock.
#[derive(Debug, Default)]
pub(crate) struct Declarations {
    waiting: parking_lot::Mutex<Vec<(QueueDeclaration, oneshot::Sender<Declared>)>>,
}

impl Declarations {
    /// Declares a queue whose files are made: commits it with whatever
    /// other declarations wait for the lock, or is answered by the declare
    /// that took it first. Run it to completion (`run_to_completion`): a
    /// declaration taken by another declare is answered by that one.
    pub async fn declare(meta: &Arc<Metadata>, limits: &Limits, declaration: QueueDeclaration) -> Declared {
        let (reply, mut answer) = oneshot::channel();
        meta.declarations.waiting.lock().push((declaration, reply));
        let change = tokio::select! {
            biased;
            answered = &mut answer => return answered.unwrap_or_else(|_| Err(unanswered())),
            change = meta.change() => change,
        };
        let batch = std::mem::take(&mut *meta.declarations.waiting.lock());
        if batch.is_empty() {
            // Another declare took this one with the lock before this got it.
            drop(change);
        } else {
            commit(change, limits, batch).await;
        }
        answer.await.unwrap_or_else(|_| Err(unanswered()))
    }
}

fn unanswered() -> CoreError {
    CoreError::Catalog("the declaration was not answered: the broker is shutting down".to_owned())
}

/// A declaration that passed its checks, with what answers it.
struct Accepted {
    declared: Arc<DeclaredQueue>,
    topic: Option<Arc<Topic>>,
    event: Event,
    durable: bool,
    reply: oneshot::Sender<Declared>,
}

impl Accepted {
    /// Answers the declaration with how its event fared; a refused one's
    /// files are discarded.
    async fn answer(self, result: Result<()>) {
        match result {
            Ok(()) => {
                if let Event::QueueDeclared { name, id, .. } = &self.event {
                    info!(queue = name, durable = self.durable, %id, "queue declared");
                }
                let _ = self.reply.send(Ok((self.declared, true)));
            }
            Err(error) => {
                discard(self.declared).await;
                let _ = self.reply.send(Err(error));
            }
        }
    }

    fn opened(&self) -> Opened {
        match &self.topic {
            Some(topic) => Opened::Stream(Arc::clone(&self.declared), Arc::clone(topic)),
            None => Opened::Queue(Arc::clone(&self.declared)),
        }
    }
}

/// A declaration checked against `views`: accepted, or answered here (an
/// equivalent queue declared meanwhile, a check that fails) with its files
/// discarded.
async fn accept(
    views: &Views,
    limits: &Limits,
    now_ms: i64,
    mut declaration: QueueDeclaration,
    reply: oneshot::Sender<Declared>,
) -> Option<Accepted> {
    let Some(declared) = declaration.opened.claim() else {
        let _ = reply.send(Err(CoreError::Catalog(format!(
            "queue {:?} was opened for another declaration",
            declaration.name
        ))));
        return None;
    };
    let answer = match views.queues.get(&declaration.name) {
        // Declared by another declare (of this batch or before it) while
        // this one made its files.
        Some(existing) => Some(
            already_declared(existing, &Redeclaration::of(&declaration.definition, declaration.compare), now_ms)
                .map(|existing| (existing, false)),
        ),
        None => check(views, limits, &declaration.name, &declared).err().map(Err),
    };
    if let Some(answer) = answer {
        discard(declared).await;
        let _ = reply.send(answer);
        return None;
    }
    Some(Accepted {
        topic: declaration.topic,
        durable: declaration.definition.durable,
        event: Event::QueueDeclared {
            id: declaration.id,
            name: declaration.name,
            definition: declaration.definition,
            created_ms: declaration.created_ms,
        },
        declared,
        reply,
    })
}

/// Checks, journals and publishes `batch` under the metadata lock, and
/// answers each declaration.
async fn commit(mut change: Change, limits: &Limits, batch: Vec<(QueueDeclaration, oneshot::Sender<Declared>)>) {
    if change.meta().replicated.get().is_some() {
        return commit_each(change, limits, batch).await;
    }
    let base = change.views();
    let mut next = Views::clone(&base);
    let mut accepted = Vec::with_capacity(batch.len());
    for (declaration, reply) in batch {
        let now_ms = change.meta().clock.now_ms();
        let Some(accepted_one) = accept(&next, limits, now_ms, declaration, reply).await else {
            continue;
        };
        match next.apply(&accepted_one.event, accepted_one.opened()) {
            Ok(_) => accepted.push(accepted_one),
            Err(error) => accepted_one.answer(Err(error)).await,
        }
    }
    // Transient queues are not journaled: they stand as soon as applied.
    let events: Vec<Event> = accepted.iter().filter(|one| one.durable).map(|one| one.event.clone()).collect();
    let mut journaled = change.journal_each(events).await.into_iter();
    let results: Vec<Result<()>> = accepted
        .iter()
        .map(|one| {
            if one.durable {
                journaled.next().unwrap_or_else(|| Err(unanswered()))
            } else {
                Ok(())
            }
        })
        .collect();
    if results.iter().any(Result::is_err) {
        // The views show only what is durable (and the transient queues):
        // rebuilt from the base with the declarations that stand.
        let mut standing = Views::clone(&base);
        for (one, result) in accepted.iter().zip(&results) {
            if result.is_ok()
                && let Err(error) = standing.apply(&one.event, one.opened())
            {
                tracing::warn!(%error, "a declaration applied once did not apply again");
            }
        }
        // The copy holds the queues that failed: dropped off the reactor.
        let _ = blocking(move || {
            drop(next);
            Ok(())
        })
        .await;
        next = standing;
    }
    change.publish(next);
    drop(change);
    for (one, result) in accepted.into_iter().zip(results) {
        one.answer(result).await;
    }
}

/// On a cluster node: each declaration committed on its own through the
/// metadata group (`Change::commit`), which applies it here with the
/// queue this declaration opened; no group commit of the local journal.
async fn commit_each(mut change: Change, limits: &Limits, batch: Vec<(QueueDeclaration, oneshot::Sender<Declared>)>) {
    for (declaration, reply) in batch {
        let (views, now_ms) = (change.views(), change.meta().clock.now_ms());
        let Some(accepted) = accept(&views, limits, now_ms, declaration, reply).await else {
            continue;
        };
        drop(views);
        let committed = change.commit(accepted.event.clone(), accepted.durable, accepted.opened()).await;
        accepted.answer(committed.map(|_| ())).await;
    }
}

/// An argument in which a declaration differs from the queue it names:
/// its name and the values given and current (`None`: not given), as the
/// declaring door writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentDifference {
    pub name: String,
    pub received: Option<String>,
    pub current: Option<String>,
}

/// The declaring door's rule for which of a declaration's arguments
/// (`received`, as text) must match a queue's `current` definition, and
/// when two values are the same: the first that differs, or `None`. The
/// AMQP door and the admin API compare as RabbitMQ does
/// (`conveyor_rabbit_args::differing_argument`); others use
/// [`every_argument`].
pub type ArgumentComparison = fn(received: &BTreeMap<String, String>, current: &QueueDefinition) -> Option<ArgumentDifference>;

/// The comparison of a door without rules of its own: every argument,
/// given or kept, must be the same text.
pub fn every_argument(received: &BTreeMap<String, String>, current: &QueueDefinition) -> Option<ArgumentDifference> {
    let current = &current.arguments;
    let names: std::collections::BTreeSet<&String> = received.keys().chain(current.keys()).collect();
    names.into_iter().find_map(|name| {
        let (received, current) = (received.get(name), current.get(name));
        (received != current).then(|| ArgumentDifference {
            name: name.clone(),
            received: received.cloned(),
            current: current.cloned(),
        })
    })
}

/// A declaration of a queue that exists, as RabbitMQ compares it with the
/// queue (`rabbit_amqqueue:assert_equivalence`) before anything checks its
/// arguments: its flags, then its arguments by the declaring door's rule.
#[derive(Debug)]
pub struct Redeclaration<'a> {
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: &'a BTreeMap<String, String>,
    pub compare: ArgumentComparison,
}

impl Redeclaration<'_> {
    pub(crate) fn of(definition: &QueueDefinition, compare: ArgumentComparison) -> Redeclaration<'_> {
        Redeclaration {
            durable: definition.durable,
            auto_delete: definition.auto_delete,
            arguments: &definition.arguments,
            compare,
        }
    }

    /// The first field in which it differs from `current`, with the values
    /// it gives and `current` has, or `None` if it is equivalent.
    fn difference(&self, current: &QueueDefinition) -> Option<ArgumentDifference> {
        let flag = |field: &str, received: bool, current: bool| {
            (received != current).then(|| ArgumentDifference {
                name: field.to_owned(),
                received: Some(received.to_string()),
                current: Some(current.to_string()),
            })
        };
        flag("durable", self.durable, current.durable)
            .or_else(|| flag("auto_delete", self.auto_delete, current.auto_delete))
            .or_else(|| (self.compare)(self.arguments, current))
    }
}

/// The answer to a declaration of a queue that exists: itself if it was
/// declared the same way (counting as a use of it), else why not.
pub(crate) fn already_declared(existing: &Arc<DeclaredQueue>, redeclaration: &Redeclaration, now_ms: i64) -> Result<Arc<DeclaredQueue>> {
    if let Some(difference) = redeclaration.difference(&existing.definition()) {
        return Err(CoreError::QueueMismatch {
            name: existing.name.clone(),
            field: difference.name,
            received: difference.received,
            current: difference.current,
        });
    }
    existing.touch(now_ms);
    Ok(Arc::clone(existing))
}

/// What may have changed since the declaration was checked before its
/// files were made: its vhost, the queue limit (counting the queues this
/// batch declared before it), the Kafka topic of a stream's name.
fn check(views: &Views, limits: &Limits, name: &str, declared: &DeclaredQueue) -> Result<()> {
    let (vhost_name, _) = vhost::split(name);
    if vhost_name != vhost::DEFAULT_VHOST && !views.vhosts.contains_key(vhost_name.as_ref()) {
        return Err(vhost::VhostError::NotFound(vhost_name.into_owned()).into());
    }
    limits.check_count(Limit::Queues, views.queues.len() as u64, 1, &format!("queue {name:?}"))?;
    if served_to_kafka(name, &declared.policy()) {
        check_stream_over_topic(&views.topics, name, declared)?;
    }
    Ok(())
}
