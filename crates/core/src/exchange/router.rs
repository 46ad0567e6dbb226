//! Every virtual host's exchanges and bindings, and routing through them:
//! a routing key and headers in, the queue and topic names to append to out.
//! Names are broker-wide (`vhost.rs`): a vhost's exchanges, its default
//! exchange's rule and the alternate exchanges its exchanges name all stay
//! within it, as no binding crosses vhosts (front doors qualify both ends
//! in the same vhost).
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
use crate::vhost::{self, VirtualHost};

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

/// Whether broker-wide exchange `name` is one of its vhost's predeclared
/// exchanges (which always exist and are durable).
pub fn is_predeclared(name: &str) -> bool {
    let local = vhost::local_name(name);
    PREDECLARED.iter().any(|(predeclared, _)| *predeclared == local)
}

/// Whether `name` is a default exchange (of any vhost).
fn is_default_exchange(name: &str) -> bool {
    vhost::local_name(name) == DEFAULT_EXCHANGE
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

impl Definitions {
    /// Whether `binding` of exchange `source` is among them.
    pub fn has_binding(&self, source: &str, binding: &Binding) -> bool {
        self.bindings
            .iter()
            .any(|defined| defined.source == source && defined.binding == *binding)
    }
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
        let index = if is_default_exchange(&exchange.name) {
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

/// Every virtual host's exchanges and bindings.
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
    /// A router with the default vhost's predeclared exchanges only.
    pub fn new() -> Router {
        let mut router = Router {
            exchanges: BTreeMap::new(),
            sources: BTreeMap::new(),
        };
        router.add_vhost(&VirtualHost::default());
        router
    }

    /// Declares `vhost`'s predeclared exchanges (nothing if they exist).
    pub fn add_vhost(&mut self, vhost: &VirtualHost) {
        for (name, kind) in PREDECLARED {
            // Predeclared names are never in the reserved namespace.
            if let Ok(name) = vhost.resource(name) {
                self.exchanges
                    .entry(name.clone())
                    .or_insert_with(|| ExchangeState::new(Exchange::new(name, kind)));
            }
        }
    }

    /// Removes every exchange of `vhost` (predeclared ones included) with
    /// their bindings; the caller deletes its queues.
    pub fn remove_vhost(&mut self, vhost: &VirtualHost) -> Removal {
        let names: Vec<String> = self.exchanges.keys().filter(|name| vhost.contains(name)).cloned().collect();
        let mut removal = Removal::default();
        for name in names {
            if let Some(state) = self.exchanges.remove(&name) {
                for binding in state.all_bindings() {
                    self.forget_source(&binding.destination, &name);
                    removal.bindings.push(BindingDefinition {
                        source: name.clone(),
                        binding,
                    });
                }
            }
            self.remove_bindings_to(&Destination::Exchange(name), &mut removal);
        }
        removal
    }

    /// Rebuilds a router from [`Router::definitions`] and the vhosts besides
    /// `/`. Exchanges first, so bindings between them resolve whatever their
    /// order.
    pub fn from_definitions<'a>(definitions: &Definitions, vhosts: impl IntoIterator<Item = &'a VirtualHost>) -> Result<Router> {
        let mut router = Router::new();
        for vhost in vhosts {
            router.add_vhost(vhost);
        }
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
        let created = self.check_declare(&exchange)?;
        if created {
            self.exchanges.insert(exchange.name.clone(), ExchangeState::new(exchange));
        }
        Ok(created)
    }

    /// What [`Router::declare_exchange`] would do, without doing it: true
    /// if it would create the exchange, false if an equivalent one exists.
    pub fn check_declare(&self, exchange: &Exchange) -> Result<bool> {
        let local = vhost::local_name(&exchange.name);
        if local.is_empty() || local.starts_with("amq.") {
            return Err(ExchangeError::ReservedName(exchange.name.clone()));
        }
        check_length("exchange name", local, NAME_BYTES_MAX)?;
        if let Some(alternate) = &exchange.alternate_exchange {
            check_length("alternate exchange name", alternate, NAME_BYTES_MAX)?;
        }
        match self.exchanges.get(&exchange.name) {
            Some(existing) => match existing.exchange.difference(exchange) {
                Some(field) => Err(ExchangeError::Inequivalent {
                    exchange: exchange.name.clone(),
                    field,
                }),
                None => Ok(false),
            },
            None => Ok(true),
        }
    }

    /// Replaces the declaration of an existing exchange of the same kind,
    /// keeping its bindings (an SNS topic's attributes change this way).
    pub fn redefine_exchange(&mut self, exchange: Exchange) -> Result<()> {
        let state = self
            .exchanges
            .get_mut(&exchange.name)
            .ok_or_else(|| ExchangeError::UnknownExchange(exchange.name.clone()))?;
        if is_predeclared(&exchange.name) {
            return Err(ExchangeError::Predeclared(exchange.name));
        }
        if state.exchange.kind != exchange.kind {
            return Err(ExchangeError::Inequivalent {
                exchange: exchange.name,
                field: "type",
            });
        }
        if let Some(alternate) = &exchange.alternate_exchange {
            check_length("alternate exchange name", alternate, NAME_BYTES_MAX)?;
        }
        state.exchange = exchange;
        Ok(())
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
            if matches!(state.index, RouteIndex::Default) {
                if !routing_key.is_empty() {
                    result.queues.insert(vhost::sibling(&state.exchange.name, routing_key).into_owned());
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
                visit(&vhost::sibling(&state.exchange.name, alternate));
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
        if is_default_exchange(source) || matches!(&binding.destination, Destination::Exchange(name) if is_default_exchange(name)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::HeaderValue;

    fn queue(name: &str) -> Destination {
        Destination::Queue(name.to_owned())
    }

    fn exchange_to(name: &str) -> Destination {
        Destination::Exchange(name.to_owned())
    }

    fn route(router: &Router, exchange: &str, key: &str) -> Vec<String> {
        let result = router.route(exchange, key, &FieldTable::new()).expect("route");
        result.queues.into_iter().collect()
    }

    fn declared(kind: ExchangeKind, names: &[&str]) -> Router {
        let mut router = Router::new();
        for name in names {
            router.declare_exchange(Exchange::new(*name, kind)).expect("declare");
        }
        router
    }

    fn bind(router: &mut Router, source: &str, destination: Destination, key: &str) {
        router.bind(source, Binding::new(destination, key)).expect("bind");
    }

    #[test]
    fn default_exchange_routes_to_the_queue_named_by_the_key() {
        let router = Router::new();
        assert_eq!(route(&router, "", "orders"), ["orders"]);
        assert!(route(&router, "", "").is_empty());
        assert_eq!(router.definitions(), Definitions::default(), "the rule stores no bindings");
    }

    #[test]
    fn default_exchange_cannot_be_bound_to_or_from() {
        let mut router = declared(ExchangeKind::Direct, &["x"]);
        assert_eq!(
            router.bind("", Binding::new(queue("q"), "k")),
            Err(ExchangeError::DefaultExchangeBinding)
        );
        assert_eq!(
            router.bind("x", Binding::new(exchange_to(""), "k")),
            Err(ExchangeError::DefaultExchangeBinding)
        );
    }

    #[test]
    fn predeclared_exchanges_exist_and_cannot_be_deleted() {
        let mut router = Router::new();
        for (name, kind) in PREDECLARED {
            assert_eq!(router.exchange(name).map(|e| e.kind), Some(kind), "{name}");
            assert_eq!(
                router.delete_exchange(name, false),
                Err(ExchangeError::Predeclared(name.to_owned()))
            );
        }
        let topic = Exchange::new("amq.topic", ExchangeKind::Topic);
        assert_eq!(
            router.declare_exchange(topic),
            Err(ExchangeError::ReservedName("amq.topic".to_owned()))
        );
        assert_eq!(
            router.declare_exchange(Exchange::new("amq.mine", ExchangeKind::Direct)),
            Err(ExchangeError::ReservedName("amq.mine".to_owned()))
        );
    }

    #[test]
    fn redeclaring_an_exchange_with_a_different_kind_is_refused() {
        let mut router = Router::new();
        assert_eq!(router.declare_exchange(Exchange::new("events", ExchangeKind::Topic)), Ok(true));
        assert_eq!(router.declare_exchange(Exchange::new("events", ExchangeKind::Topic)), Ok(false));
        assert_eq!(
            router.declare_exchange(Exchange::new("events", ExchangeKind::Fanout)),
            Err(ExchangeError::Inequivalent {
                exchange: "events".to_owned(),
                field: "type"
            })
        );
        let mut transient = Exchange::new("events", ExchangeKind::Topic);
        transient.durable = false;
        assert!(matches!(
            router.declare_exchange(transient),
            Err(ExchangeError::Inequivalent { field: "durable", .. })
        ));
    }

    #[test]
    fn routing_through_an_unknown_exchange_fails() {
        let mut router = Router::new();
        assert_eq!(
            router.route("nope", "k", &FieldTable::new()),
            Err(ExchangeError::UnknownExchange("nope".to_owned()))
        );
        assert_eq!(
            router.bind("nope", Binding::new(queue("q"), "k")),
            Err(ExchangeError::UnknownExchange("nope".to_owned()))
        );
        assert_eq!(
            router.bind("amq.direct", Binding::new(exchange_to("nope"), "k")),
            Err(ExchangeError::UnknownExchange("nope".to_owned()))
        );
    }

    #[test]
    fn direct_exchange_routes_by_exact_key() {
        let mut router = Router::new();
        bind(&mut router, "amq.direct", queue("payments"), "payment");
        bind(&mut router, "amq.direct", queue("audit"), "payment");
        bind(&mut router, "amq.direct", queue("emails"), "email");
        assert_eq!(route(&router, "amq.direct", "payment"), ["audit", "payments"]);
        assert_eq!(route(&router, "amq.direct", "email"), ["emails"]);
        assert!(route(&router, "amq.direct", "payment.eu").is_empty());
    }

    #[test]
    fn fanout_exchange_routes_to_every_binding_whatever_the_key() {
        let mut router = Router::new();
        bind(&mut router, "amq.fanout", queue("a"), "");
        bind(&mut router, "amq.fanout", queue("b"), "ignored");
        bind(&mut router, "amq.fanout", queue("b"), "also-ignored");
        assert_eq!(route(&router, "amq.fanout", "anything"), ["a", "b"]);
        router.unbind("amq.fanout", &Binding::new(queue("b"), "ignored")).expect("unbind");
        assert_eq!(route(&router, "amq.fanout", "x"), ["a", "b"], "b is still bound by its other key");
    }

    #[test]
    fn topic_exchange_routes_the_seed_patterns_to_queues_and_kafka_topics() {
        let mut router = Router::new();
        bind(&mut router, "amq.topic", queue("orders"), "order.*");
        bind(&mut router, "amq.topic", queue("shipping"), "#.shipped");
        bind(&mut router, "amq.topic", Destination::Topic("order-events".to_owned()), "order.#");
        let shipped = router.route("amq.topic", "order.shipped", &FieldTable::new()).expect("route");
        assert_eq!(shipped.queues, BTreeSet::from(["orders".to_owned(), "shipping".to_owned()]));
        assert_eq!(shipped.topics, BTreeSet::from(["order-events".to_owned()]));
        assert_eq!(route(&router, "amq.topic", "order.placed"), ["orders"]);
        assert_eq!(route(&router, "amq.topic", "parcel.eu.shipped"), ["shipping"]);
        assert!(
            router
                .route("amq.topic", "user.registered", &FieldTable::new())
                .expect("route")
                .is_empty()
        );
    }

    #[test]
    fn binding_the_same_binding_twice_is_one_binding() {
        let mut router = Router::new();
        let binding = Binding::new(queue("q"), "order.*");
        assert_eq!(router.bind("amq.topic", binding.clone()), Ok(true));
        assert_eq!(router.bind("amq.topic", binding.clone()), Ok(false));
        assert_eq!(router.bindings("amq.topic").expect("bindings"), std::slice::from_ref(&binding));
        assert_eq!(router.unbind("amq.topic", &binding).expect("unbind").bindings.len(), 1);
        assert!(route(&router, "amq.topic", "order.placed").is_empty());
        assert!(
            router
                .unbind("amq.topic", &binding)
                .expect("unbind of a missing binding")
                .bindings
                .is_empty()
        );
    }

    #[test]
    fn bindings_that_differ_only_in_arguments_are_distinct() {
        let mut router = Router::new();
        let plain = Binding::new(queue("q"), "k");
        let with_arguments = plain
            .clone()
            .with_arguments(FieldTable::from([("x-note".to_owned(), HeaderValue::I32(1))]));
        assert_eq!(router.bind("amq.direct", plain.clone()), Ok(true));
        assert_eq!(router.bind("amq.direct", with_arguments.clone()), Ok(true));
        router.unbind("amq.direct", &plain).expect("unbind");
        assert_eq!(route(&router, "amq.direct", "k"), ["q"], "the binding with arguments still routes");
        router.unbind("amq.direct", &with_arguments).expect("unbind");
        assert!(route(&router, "amq.direct", "k").is_empty());
    }

    #[test]
    fn headers_exchange_routes_by_arguments_and_refuses_a_bad_x_match() {
        let mut router = Router::new();
        let pdf = FieldTable::from([("format".to_owned(), HeaderValue::from("pdf"))]);
        let any = FieldTable::from([
            ("x-match".to_owned(), HeaderValue::from("any")),
            ("format".to_owned(), HeaderValue::from("zip")),
            ("priority".to_owned(), HeaderValue::I8(1)),
        ]);
        router
            .bind("amq.headers", Binding::new(queue("pdfs"), "").with_arguments(pdf))
            .expect("bind");
        router
            .bind("amq.match", Binding::new(queue("any"), "").with_arguments(any))
            .expect("bind");
        let headers = FieldTable::from([
            ("format".to_owned(), HeaderValue::from("pdf")),
            ("priority".to_owned(), HeaderValue::I64(1)),
        ]);
        let pdfs = router.route("amq.headers", "ignored", &headers).expect("route");
        assert_eq!(pdfs.queues, BTreeSet::from(["pdfs".to_owned()]));
        let any = router.route("amq.match", "", &headers).expect("route");
        assert_eq!(any.queues, BTreeSet::from(["any".to_owned()]));

        let bad = FieldTable::from([("x-match".to_owned(), HeaderValue::from("most"))]);
        assert!(matches!(
            router.bind("amq.headers", Binding::new(queue("q"), "").with_arguments(bad)),
            Err(ExchangeError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn exchange_to_exchange_bindings_are_followed_transitively() {
        let mut router = declared(ExchangeKind::Topic, &["a", "b", "c"]);
        bind(&mut router, "a", exchange_to("b"), "order.#");
        bind(&mut router, "b", exchange_to("c"), "*.shipped");
        bind(&mut router, "b", queue("from-b"), "#");
        bind(&mut router, "c", queue("from-c"), "#");
        assert_eq!(route(&router, "a", "order.shipped"), ["from-b", "from-c"]);
        assert_eq!(route(&router, "a", "order.placed"), ["from-b"]);
        assert!(route(&router, "a", "user.shipped").is_empty());
    }

    #[test]
    fn exchange_to_exchange_cycles_terminate() {
        let mut router = declared(ExchangeKind::Fanout, &["a", "b", "c"]);
        bind(&mut router, "a", exchange_to("b"), "");
        bind(&mut router, "b", exchange_to("c"), "");
        bind(&mut router, "c", exchange_to("a"), "");
        bind(&mut router, "c", exchange_to("c"), "");
        bind(&mut router, "b", queue("q"), "");
        assert_eq!(route(&router, "a", "k"), ["q"]);
        assert_eq!(route(&router, "c", "k"), ["q"]);
    }

    #[test]
    fn alternate_exchange_gets_unroutable_messages() {
        let mut router = Router::new();
        let mut orders = Exchange::new("orders", ExchangeKind::Direct);
        orders.alternate_exchange = Some("unroutable".to_owned());
        router.declare_exchange(orders).expect("declare");
        router
            .declare_exchange(Exchange::new("unroutable", ExchangeKind::Fanout))
            .expect("declare");
        bind(&mut router, "orders", queue("placed"), "placed");
        bind(&mut router, "unroutable", queue("lost-and-found"), "");
        assert_eq!(
            route(&router, "orders", "placed"),
            ["placed"],
            "a routed message skips the alternate"
        );
        assert_eq!(route(&router, "orders", "cancelled"), ["lost-and-found"]);
    }

    #[test]
    fn alternate_exchange_is_not_used_when_a_binding_to_an_exchange_matched() {
        // RabbitMQ asks an exchange's alternate only when its own bindings
        // match nothing; the exchange it forwards to has its own alternate.
        let mut router = declared(ExchangeKind::Fanout, &["empty", "backup-of-empty", "backup"]);
        let mut front = Exchange::new("front", ExchangeKind::Direct);
        front.alternate_exchange = Some("backup".to_owned());
        router.declare_exchange(front).expect("declare");
        bind(&mut router, "front", exchange_to("empty"), "k");
        bind(&mut router, "backup", queue("front-backup"), "");
        assert!(route(&router, "front", "k").is_empty());
        assert_eq!(route(&router, "front", "other"), ["front-backup"]);
    }

    #[test]
    fn alternate_exchange_chains_are_followed_and_loops_terminate() {
        let mut router = Router::new();
        for (name, alternate) in [("a", "b"), ("b", "c"), ("c", "a")] {
            let mut exchange = Exchange::new(name, ExchangeKind::Direct);
            exchange.alternate_exchange = Some(alternate.to_owned());
            router.declare_exchange(exchange).expect("declare");
        }
        assert!(route(&router, "a", "k").is_empty(), "a loop of alternates routes nowhere, and ends");
        bind(&mut router, "c", queue("last-resort"), "k");
        assert_eq!(route(&router, "a", "k"), ["last-resort"]);
        let mut dangling = Exchange::new("d", ExchangeKind::Direct);
        dangling.alternate_exchange = Some("missing".to_owned());
        router.declare_exchange(dangling).expect("declare");
        assert!(route(&router, "d", "k").is_empty(), "a missing alternate is skipped");
    }

    #[test]
    fn internal_exchange_refuses_publishes_but_routes_from_other_exchanges() {
        let mut router = Router::new();
        let mut internal = Exchange::new("internal", ExchangeKind::Fanout);
        internal.internal = true;
        router.declare_exchange(internal).expect("declare");
        bind(&mut router, "internal", queue("q"), "");
        bind(&mut router, "amq.fanout", exchange_to("internal"), "");
        assert_eq!(
            router.route("internal", "k", &FieldTable::new()),
            Err(ExchangeError::Internal("internal".to_owned()))
        );
        assert_eq!(route(&router, "amq.fanout", "k"), ["q"]);
    }

    #[test]
    fn delete_if_unused_is_refused_while_the_exchange_has_bindings() {
        let mut router = declared(ExchangeKind::Direct, &["x"]);
        bind(&mut router, "x", queue("q"), "k");
        assert_eq!(router.delete_exchange("x", true), Err(ExchangeError::InUse("x".to_owned())));
        let removal = router.delete_exchange("x", false).expect("delete").expect("existed");
        assert_eq!(removal.bindings.len(), 1);
        assert_eq!(router.delete_exchange("x", false), Ok(None));
        assert!(router.exchange("x").is_none());
    }

    #[test]
    fn deleting_an_exchange_removes_bindings_to_and_from_it() {
        let mut router = declared(ExchangeKind::Fanout, &["up", "middle"]);
        bind(&mut router, "up", exchange_to("middle"), "");
        bind(&mut router, "middle", queue("q"), "");
        let removal = router.delete_exchange("middle", false).expect("delete").expect("existed");
        let sources: Vec<&str> = removal.bindings.iter().map(|b| b.source.as_str()).collect();
        assert_eq!(sources, ["middle", "up"]);
        assert!(router.bindings("up").expect("bindings").is_empty());
        router
            .declare_exchange(Exchange::new("middle", ExchangeKind::Fanout))
            .expect("redeclare");
        assert!(route(&router, "up", "k").is_empty(), "a new exchange of the same name is not bound");
    }

    #[test]
    fn deleting_a_queue_removes_its_bindings_and_reports_unused_auto_delete_exchanges() {
        let mut router = declared(ExchangeKind::Direct, &["keeps"]);
        let mut temporary = Exchange::new("temporary", ExchangeKind::Direct);
        temporary.auto_delete = true;
        router.declare_exchange(temporary).expect("declare");
        bind(&mut router, "temporary", queue("q"), "a");
        bind(&mut router, "temporary", queue("q"), "b");
        bind(&mut router, "keeps", queue("q"), "a");
        bind(&mut router, "amq.topic", queue("q"), "#");
        bind(&mut router, "amq.topic", queue("other"), "#");
        let removal = router.remove_queue("q");
        assert_eq!(removal.bindings.len(), 4);
        assert_eq!(removal.unused_auto_delete, BTreeSet::from(["temporary".to_owned()]));
        assert_eq!(route(&router, "amq.topic", "x"), ["other"]);
        assert!(route(&router, "keeps", "a").is_empty());
        assert_eq!(router.remove_queue("q"), Removal::default());
    }

    #[test]
    fn unbinding_the_last_binding_reports_an_auto_delete_exchange() {
        let mut router = Router::new();
        let mut temporary = Exchange::new("temporary", ExchangeKind::Topic);
        temporary.auto_delete = true;
        router.declare_exchange(temporary).expect("declare");
        bind(&mut router, "temporary", queue("a"), "#");
        bind(&mut router, "temporary", Destination::Topic("t".to_owned()), "#");
        let first = router.unbind("temporary", &Binding::new(queue("a"), "#")).expect("unbind");
        assert!(first.unused_auto_delete.is_empty());
        let last = router.remove_topic("t");
        assert_eq!(last.unused_auto_delete, BTreeSet::from(["temporary".to_owned()]));
    }

    #[test]
    fn definitions_survive_a_serde_round_trip() {
        let mut router = Router::new();
        let mut events = Exchange::new("events", ExchangeKind::Topic);
        events.alternate_exchange = Some("amq.fanout".to_owned());
        router.declare_exchange(events).expect("declare");
        router
            .declare_exchange(Exchange::new("by-header", ExchangeKind::Headers))
            .expect("declare");
        bind(&mut router, "events", queue("orders"), "order.*");
        bind(&mut router, "amq.direct", exchange_to("events"), "order.placed");
        bind(&mut router, "amq.fanout", Destination::Topic("all".to_owned()), "");
        let arguments = FieldTable::from([
            ("x-match".to_owned(), HeaderValue::from("any")),
            (
                "nested".to_owned(),
                HeaderValue::Array(vec![HeaderValue::F64(1.5), HeaderValue::Void]),
            ),
        ]);
        router
            .bind("by-header", Binding::new(queue("h"), "").with_arguments(arguments))
            .expect("bind");

        let definitions = router.definitions();
        let json = serde_json::to_string(&definitions).expect("serialize");
        let decoded: Definitions = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(decoded, definitions);
        let rebuilt = Router::from_definitions(&decoded, []).expect("rebuild");
        assert_eq!(rebuilt.definitions(), definitions);
        assert_eq!(route(&rebuilt, "amq.direct", "order.placed"), ["orders"]);
        let unroutable = rebuilt.route("events", "user.registered", &FieldTable::new()).expect("route");
        assert_eq!(
            unroutable.topics,
            BTreeSet::from(["all".to_owned()]),
            "the alternate exchange survives"
        );
    }

    #[test]
    fn keys_and_names_longer_than_a_short_string_are_refused() {
        let mut router = Router::new();
        let long = "k".repeat(KEY_BYTES_MAX + 1);
        assert!(matches!(
            router.bind("amq.topic", Binding::new(queue("q"), long.clone())),
            Err(ExchangeError::TooLong { .. })
        ));
        assert!(matches!(
            router.declare_exchange(Exchange::new(long, ExchangeKind::Direct)),
            Err(ExchangeError::TooLong { .. })
        ));
    }
}
