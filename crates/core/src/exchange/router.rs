//! One virtual host's exchanges and bindings, and routing through them:
//! a routing key and headers in, the queue and topic names to append to out.
//! Follows exchange-to-exchange bindings and alternate exchanges, each
//! exchange at most once, as RabbitMQ does. Knows nothing of which queues or
//! topics exist, nor of the catalog: deleting a queue or exchange calls the
//! removal helpers here, and the caller deletes the auto-delete exchanges
//! they report unused (recording each change in the catalog).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::ExchangeError;
use super::binding::{Binding, Destination};
use super::exchange::{Exchange, ExchangeKind};
use super::header_value::FieldTable;
use super::headers_match::{XMatch, headers_match};
use super::topic_trie::TopicTrie;

type Result<T> = std::result::Result<T, ExchangeError>;

/// The default exchange: direct, every queue implicitly bound by its name.
pub const DEFAULT_EXCHANGE: &str = "";
/// Longest exchange name (an AMQP short string).
pub const NAME_BYTES_MAX: usize = 255;
/// Longest binding key (an AMQP short string); also bounds a topic
/// binding's depth in the trie.
pub const KEY_BYTES_MAX: usize = 255;

/// The exchanges every virtual host has, which cannot be deleted.
const PREDECLARED: [(&str, ExchangeKind); 6] = [
    (DEFAULT_EXCHANGE, ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

fn is_predeclared(name: &str) -> bool {
    PREDECLARED.iter().any(|(predeclared, _)| *predeclared == name)
}

/// Where a message goes: the queues and Kafka topics to append it to, each
/// once. Queues named by the default exchange's rule may not exist; the
/// caller, which owns the queues, drops those (and a message that reaches
/// nothing is unroutable: returned if mandatory, else dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteResult {
    pub queues: BTreeSet<String>,
    pub topics: BTreeSet<String>,
}

impl RouteResult {
    /// Routed nowhere.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty() && self.topics.is_empty()
    }
}

/// One binding with its source exchange, as stored and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingDefinition {
    pub source: String,
    pub binding: Binding,
}

/// Everything a router holds beyond the predeclared exchanges: what a
/// catalog event or snapshot stores, and [`Router::from_definitions`] rebuilds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definitions {
    pub exchanges: Vec<Exchange>,
    pub bindings: Vec<BindingDefinition>,
}

/// What a removal took away: the bindings removed, and the auto-delete
/// exchanges left without bindings as a source, which the caller should now
/// delete (RabbitMQ deletes them; deleting one may report more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    pub bindings: Vec<BindingDefinition>,
    pub unused_auto_delete: BTreeSet<String>,
}

/// An exchange kind's index from routing key to destinations.
#[derive(Debug, Clone)]
enum RouteIndex {
    /// The default exchange: a rule (routing key = queue name), no bindings.
    Default,
    /// Exact key → destinations.
    Direct(HashMap<String, BTreeSet<Destination>>),
    /// Destination → number of distinct keys binding it.
    Fanout(BTreeMap<Destination, usize>),
    Topic(TopicTrie),
    /// Headers bindings are matched by scanning their arguments, as there is
    /// no key to index them by.
    Headers,
}

#[derive(Debug, Clone)]
struct ExchangeState {
    exchange: Exchange,
    /// This exchange's bindings as a source, by (destination, key); the
    /// arguments tell apart the bindings that share both.
    bindings: BTreeMap<(Destination, String), Vec<FieldTable>>,
    /// Kept in step with `bindings`: a (destination, key) is indexed while
    /// it has at least one binding.
    index: RouteIndex,
}

impl ExchangeState {
    fn new(exchange: Exchange) -> ExchangeState {
        let index = if exchange.name == DEFAULT_EXCHANGE {
            RouteIndex::Default
        } else {
            match exchange.kind {
                ExchangeKind::Direct => RouteIndex::Direct(HashMap::new()),
                ExchangeKind::Fanout => RouteIndex::Fanout(BTreeMap::new()),
                ExchangeKind::Topic => RouteIndex::Topic(TopicTrie::default()),
                ExchangeKind::Headers => RouteIndex::Headers,
            }
        };
        ExchangeState {
            exchange,
            bindings: BTreeMap::new(),
            index,
        }
    }

    fn add(&mut self, binding: Binding) -> bool {
        let arguments_list = self
            .bindings
            .entry((binding.destination.clone(), binding.binding_key.clone()))
            .or_default();
        if arguments_list.contains(&binding.arguments) {
            return false;
        }
        let first = arguments_list.is_empty();
        arguments_list.push(binding.arguments);
        if first {
            self.index_insert(&binding.destination, &binding.binding_key);
        }
        true
    }

    fn remove(&mut self, binding: &Binding) -> bool {
        let key = (binding.destination.clone(), binding.binding_key.clone());
        let Some(arguments_list) = self.bindings.get_mut(&key) else {
            return false;
        };
        let Some(position) = arguments_list.iter().position(|arguments| *arguments == binding.arguments) else {
            return false;
        };
        arguments_list.swap_remove(position);
        if arguments_list.is_empty() {
            self.bindings.remove(&key);
            self.index_remove(&key.0, &key.1);
        }
        true
    }

    /// Removes and returns every binding to `destination`.
    fn remove_to(&mut self, destination: &Destination) -> Vec<Binding> {
        let keys: Vec<(Destination, String)> = self
            .bindings
            .range((destination.clone(), String::new())..)
            .take_while(|((bound, _), _)| bound == destination)
            .map(|(key, _)| key.clone())
            .collect();
        let mut removed = Vec::new();
        for key in keys {
            if let Some(arguments_list) = self.bindings.remove(&key) {
                self.index_remove(&key.0, &key.1);
                removed.extend(arguments_list.into_iter().map(|arguments| Binding {
                    destination: key.0.clone(),
                    binding_key: key.1.clone(),
                    arguments,
                }));
            }
        }
        removed
    }

    fn has_binding_to(&self, destination: &Destination) -> bool {
        self.bindings
            .range((destination.clone(), String::new())..)
            .next()
            .is_some_and(|((bound, _), _)| bound == destination)
    }

    fn all_bindings(&self) -> impl Iterator<Item = Binding> + '_ {
        self.bindings.iter().flat_map(|((destination, binding_key), arguments_list)| {
            arguments_list.iter().map(|arguments| Binding {
                destination: destination.clone(),
                binding_key: binding_key.clone(),
                arguments: arguments.clone(),
            })
        })
    }

    fn index_insert(&mut self, destination: &Destination, binding_key: &str) {
        match &mut self.index {
            RouteIndex::Default | RouteIndex::Headers => {}
            RouteIndex::Direct(by_key) => {
                by_key.entry(binding_key.to_owned()).or_default().insert(destination.clone());
            }
            RouteIndex::Fanout(keys_by_destination) => *keys_by_destination.entry(destination.clone()).or_insert(0) += 1,
            RouteIndex::Topic(trie) => {
                trie.insert(binding_key, destination.clone());
            }
        }
    }

    fn index_remove(&mut self, destination: &Destination, binding_key: &str) {
        match &mut self.index {
            RouteIndex::Default | RouteIndex::Headers => {}
            RouteIndex::Direct(by_key) => {
                if let Some(destinations) = by_key.get_mut(binding_key) {
                    destinations.remove(destination);
                    if destinations.is_empty() {
                        by_key.remove(binding_key);
                    }
                }
            }
            RouteIndex::Fanout(keys_by_destination) => {
                if let Some(count) = keys_by_destination.get_mut(destination) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        keys_by_destination.remove(destination);
                    }
                }
            }
            RouteIndex::Topic(trie) => {
                trie.remove(binding_key, destination);
            }
        }
    }

    /// Adds to `out` the destinations this exchange's own bindings match.
    fn matches<'a>(&'a self, routing_key: &str, headers: &FieldTable, out: &mut BTreeSet<&'a Destination>) {
        match &self.index {
            RouteIndex::Default => {}
            RouteIndex::Direct(by_key) => {
                if let Some(destinations) = by_key.get(routing_key) {
                    out.extend(destinations.iter());
                }
            }
            RouteIndex::Fanout(keys_by_destination) => out.extend(keys_by_destination.keys()),
            RouteIndex::Topic(trie) => trie.matches(routing_key, out),
            RouteIndex::Headers => {
                for ((destination, _), arguments_list) in &self.bindings {
                    if arguments_list.iter().any(|arguments| headers_match(arguments, headers)) {
                        out.insert(destination);
                    }
                }
            }
        }
    }
}

/// One virtual host's exchanges and bindings.
#[derive(Debug, Clone)]
pub struct Router {
    exchanges: BTreeMap<String, ExchangeState>,
    /// The reverse index: the source exchanges with at least one binding to
    /// each destination, so deleting a queue or exchange finds its bindings
    /// without scanning every exchange.
    sources: BTreeMap<Destination, BTreeSet<String>>,
}

impl Default for Router {
    fn default() -> Router {
        Router::new()
    }
}

impl Router {
    /// A router with the predeclared exchanges only.
    pub fn new() -> Router {
        let exchanges = PREDECLARED
            .iter()
            .map(|&(name, kind)| (name.to_owned(), ExchangeState::new(Exchange::new(name, kind))))
            .collect();
        Router {
            exchanges,
            sources: BTreeMap::new(),
        }
    }

    /// Rebuilds a router from [`Router::definitions`]. Exchanges first, so
    /// bindings between them resolve whatever their order.
    pub fn from_definitions(definitions: &Definitions) -> Result<Router> {
        let mut router = Router::new();
        for exchange in &definitions.exchanges {
            if is_predeclared(&exchange.name) && router.exchange(&exchange.name) == Some(exchange) {
                continue;
            }
            router.declare_exchange(exchange.clone())?;
        }
        for definition in &definitions.bindings {
            router.bind(&definition.source, definition.binding.clone())?;
        }
        Ok(router)
    }

    /// The declared exchanges (not the predeclared ones) and every binding,
    /// in name order.
    pub fn definitions(&self) -> Definitions {
        let exchanges = self
            .exchanges
            .values()
            .filter(|state| !is_predeclared(&state.exchange.name))
            .map(|state| state.exchange.clone())
            .collect();
        let bindings = self
            .exchanges
            .iter()
            .flat_map(|(source, state)| {
                state.all_bindings().map(|binding| BindingDefinition {
                    source: source.clone(),
                    binding,
                })
            })
            .collect();
        Definitions { exchanges, bindings }
    }

    /// The exchange named `name`, if declared (AMQP's passive declare).
    pub fn exchange(&self, name: &str) -> Option<&Exchange> {
        self.exchanges.get(name).map(|state| &state.exchange)
    }

    /// Every exchange, the predeclared ones included, in name order.
    pub fn exchanges(&self) -> impl Iterator<Item = &Exchange> {
        self.exchanges.values().map(|state| &state.exchange)
    }

    /// The bindings of `source`.
    pub fn bindings(&self, source: &str) -> Result<Vec<Binding>> {
        let state = self
            .exchanges
            .get(source)
            .ok_or_else(|| ExchangeError::UnknownExchange(source.to_owned()))?;
        Ok(state.all_bindings().collect())
    }

    /// Declares an exchange: true if created, false if an equivalent one
    /// exists. Refuses reserved names (`""`, `amq.*`; RabbitMQ refuses them
    /// even when equivalent) and a redeclaration that differs in any field.
    pub fn declare_exchange(&mut self, exchange: Exchange) -> Result<bool> {
        if exchange.name.is_empty() || exchange.name.starts_with("amq.") {
            return Err(ExchangeError::ReservedName(exchange.name));
        }
        check_length("exchange name", &exchange.name, NAME_BYTES_MAX)?;
        if let Some(alternate) = &exchange.alternate_exchange {
            check_length("alternate exchange name", alternate, NAME_BYTES_MAX)?;
        }
        if let Some(existing) = self.exchanges.get(&exchange.name) {
            return match existing.exchange.difference(&exchange) {
                Some(field) => Err(ExchangeError::Inequivalent {
                    exchange: exchange.name,
                    field,
                }),
                None => Ok(false),
            };
        }
        self.exchanges.insert(exchange.name.clone(), ExchangeState::new(exchange));
        Ok(true)
    }

    /// Deletes an exchange with its bindings as a source and as a
    /// destination. `None` if there was no such exchange (AMQP answers
    /// delete-ok all the same). With `if_unused`, refuses while the exchange
    /// has bindings as a source.
    pub fn delete_exchange(&mut self, name: &str, if_unused: bool) -> Result<Option<Removal>> {
        if is_predeclared(name) {
            return Err(ExchangeError::Predeclared(name.to_owned()));
        }
        let Some(state) = self.exchanges.get(name) else {
            return Ok(None);
        };
        if if_unused && !state.bindings.is_empty() {
            return Err(ExchangeError::InUse(name.to_owned()));
        }
        let mut removal = Removal::default();
        if let Some(state) = self.exchanges.remove(name) {
            for binding in state.all_bindings() {
                self.forget_source(&binding.destination, name);
                removal.bindings.push(BindingDefinition {
                    source: name.to_owned(),
                    binding,
                });
            }
        }
        self.remove_bindings_to(&Destination::Exchange(name.to_owned()), &mut removal);
        Ok(Some(removal))
    }

    /// Removes every binding to a queue that is being deleted.
    pub fn remove_queue(&mut self, queue: &str) -> Removal {
        let mut removal = Removal::default();
        self.remove_bindings_to(&Destination::Queue(queue.to_owned()), &mut removal);
        removal
    }

    /// Removes every binding to a Kafka topic that is being deleted.
    pub fn remove_topic(&mut self, topic: &str) -> Removal {
        let mut removal = Removal::default();
        self.remove_bindings_to(&Destination::Topic(topic.to_owned()), &mut removal);
        removal
    }

    /// Binds `source` to the binding's destination: true if added, false if
    /// the same binding (destination, key, arguments) exists. The default
    /// exchange cannot be bound to or from; an exchange destination must
    /// exist (a queue or topic destination is the caller's to check); a
    /// headers binding's `x-match` must be valid.
    pub fn bind(&mut self, source: &str, binding: Binding) -> Result<bool> {
        self.check_binding(source, &binding)?;
        check_length("binding key", &binding.binding_key, KEY_BYTES_MAX)?;
        let state = self
            .exchanges
            .get_mut(source)
            .ok_or_else(|| ExchangeError::UnknownExchange(source.to_owned()))?;
        if state.exchange.kind == ExchangeKind::Headers {
            XMatch::of(&binding.arguments).map_err(|reason| ExchangeError::InvalidArgument {
                exchange: source.to_owned(),
                reason,
            })?;
        }
        let destination = binding.destination.clone();
        let added = state.add(binding);
        if added {
            self.sources.entry(destination).or_default().insert(source.to_owned());
        }
        Ok(added)
    }

    /// Removes one binding; unbinding one that does not exist is not an
    /// error (as in RabbitMQ), and removes nothing.
    pub fn unbind(&mut self, source: &str, binding: &Binding) -> Result<Removal> {
        self.check_binding(source, binding)?;
        let state = self
            .exchanges
            .get_mut(source)
            .ok_or_else(|| ExchangeError::UnknownExchange(source.to_owned()))?;
        let mut removal = Removal::default();
        if !state.remove(binding) {
            return Ok(removal);
        }
        let still_bound = state.has_binding_to(&binding.destination);
        if state.exchange.auto_delete && state.bindings.is_empty() {
            removal.unused_auto_delete.insert(source.to_owned());
        }
        if !still_bound {
            self.forget_source(&binding.destination, source);
        }
        removal.bindings.push(BindingDefinition {
            source: source.to_owned(),
            binding: binding.clone(),
        });
        Ok(removal)
    }

    /// Routes a message published to `exchange` with `routing_key` and
    /// `headers` (used by headers exchanges only). Follows bindings to
    /// exchanges, and an exchange's alternate exchange when its own bindings
    /// match nothing; each exchange is visited at most once, so cycles end,
    /// and exchanges that do not exist are skipped. Publishing to an
    /// internal exchange is refused.
    pub fn route(&self, exchange: &str, routing_key: &str, headers: &FieldTable) -> Result<RouteResult> {
        let start = self
            .exchanges
            .get(exchange)
            .ok_or_else(|| ExchangeError::UnknownExchange(exchange.to_owned()))?;
        if start.exchange.internal {
            return Err(ExchangeError::Internal(exchange.to_owned()));
        }
        let mut result = RouteResult::default();
        let mut visited: HashSet<&str> = HashSet::from([exchange]);
        let mut pending: Vec<&ExchangeState> = vec![start];
        let mut matched: BTreeSet<&Destination> = BTreeSet::new();
        // Bounded: an exchange enters `pending` only when first visited.
        while let Some(state) = pending.pop() {
            if state.exchange.name == DEFAULT_EXCHANGE {
                if !routing_key.is_empty() {
                    result.queues.insert(routing_key.to_owned());
                }
                continue;
            }
            matched.clear();
            state.matches(routing_key, headers, &mut matched);
            let mut visit = |name: &str| {
                if let Some((name, next)) = self.exchanges.get_key_value(name)
                    && visited.insert(name.as_str())
                {
                    pending.push(next);
                }
            };
            if matched.is_empty()
                && let Some(alternate) = &state.exchange.alternate_exchange
            {
                visit(alternate);
            }
            for destination in &matched {
                match destination {
                    Destination::Queue(queue) => {
                        result.queues.insert(queue.clone());
                    }
                    Destination::Topic(topic) => {
                        result.topics.insert(topic.clone());
                    }
                    Destination::Exchange(next) => visit(next),
                }
            }
        }
        Ok(result)
    }

    fn check_binding(&self, source: &str, binding: &Binding) -> Result<()> {
        if source == DEFAULT_EXCHANGE || binding.destination == Destination::Exchange(DEFAULT_EXCHANGE.to_owned()) {
            return Err(ExchangeError::DefaultExchangeBinding);
        }
        if let Destination::Exchange(destination) = &binding.destination
            && !self.exchanges.contains_key(destination)
        {
            return Err(ExchangeError::UnknownExchange(destination.clone()));
        }
        Ok(())
    }

    fn forget_source(&mut self, destination: &Destination, source: &str) {
        if let Some(sources) = self.sources.get_mut(destination) {
            sources.remove(source);
            if sources.is_empty() {
                self.sources.remove(destination);
            }
        }
    }

    fn remove_bindings_to(&mut self, destination: &Destination, removal: &mut Removal) {
        let Some(sources) = self.sources.remove(destination) else {
            return;
        };
        for source in sources {
            let Some(state) = self.exchanges.get_mut(&source) else { continue };
            for binding in state.remove_to(destination) {
                removal.bindings.push(BindingDefinition {
                    source: source.clone(),
                    binding,
                });
            }
            if state.exchange.auto_delete && state.bindings.is_empty() {
                removal.unused_auto_delete.insert(source);
            }
        }
    }
}

fn check_length(what: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(ExchangeError::TooLong {
            what,
            bytes: value.len(),
            max,
        });
    }
    Ok(())
}
