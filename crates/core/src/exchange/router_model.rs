//! A reference model of the router for property tests: exchanges and a flat
//! list of bindings, routed by scanning every binding with the naive topic
//! matcher. Random operations run on both; every route, binding list and
//! auto-delete report must agree, which checks the router's indexes (direct
//! map, fanout counts, topic trie, reverse index) against plain scans.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::topic_trie::{key_words, naive_matches, xorshift};
use super::*;

const EXCHANGES: [&str; 7] = ["a", "b", "c", "amq.direct", "amq.fanout", "amq.topic", "amq.headers"];
const QUEUES: [&str; 3] = ["q1", "q2", "q3"];

#[derive(Debug, Default)]
struct Model {
    exchanges: BTreeMap<String, Exchange>,
    bindings: Vec<(String, Binding)>,
}

impl Model {
    fn new() -> Model {
        let exchanges = Router::new().exchanges().map(|e| (e.name.clone(), e.clone())).collect();
        Model {
            exchanges,
            bindings: Vec::new(),
        }
    }

    /// Whether the router accepts `binding` of `source` (it knows exchanges;
    /// queues and topics are not modelled, so they count as existing).
    fn binding_ends_exist(&self, source: &str, binding: &Binding) -> bool {
        let destination_exists = match &binding.destination {
            Destination::Exchange(x) => self.exchanges.contains_key(x),
            _ => true,
        };
        self.exchanges.contains_key(source) && destination_exists
    }

    fn binds(&self, exchange: &Exchange, binding: &Binding, routing_key: &str, headers: &FieldTable) -> bool {
        match exchange.kind {
            ExchangeKind::Direct => binding.binding_key == routing_key,
            ExchangeKind::Fanout => true,
            ExchangeKind::Topic => naive_matches(&key_words(&binding.binding_key), &key_words(routing_key)),
            ExchangeKind::Headers => headers_match(&binding.arguments, headers),
        }
    }

    fn route(&self, start: &str, routing_key: &str, headers: &FieldTable) -> RouteResult {
        let mut result = RouteResult::default();
        let mut visited = BTreeSet::from([start.to_owned()]);
        let mut pending = vec![start.to_owned()];
        while let Some(name) = pending.pop() {
            let Some(exchange) = self.exchanges.get(&name) else { continue };
            if name.is_empty() {
                if !routing_key.is_empty() {
                    result.queues.insert(routing_key.to_owned());
                }
                continue;
            }
            let matched: Vec<&Destination> = self
                .bindings
                .iter()
                .filter(|(source, binding)| *source == name && self.binds(exchange, binding, routing_key, headers))
                .map(|(_, binding)| &binding.destination)
                .collect();
            let mut next = Vec::new();
            if matched.is_empty()
                && let Some(alternate) = &exchange.alternate_exchange
            {
                next.push(alternate.clone());
            }
            for destination in matched {
                match destination {
                    Destination::Queue(q) => {
                        result.queues.insert(q.clone());
                    }
                    Destination::Topic(t) => {
                        result.topics.insert(t.clone());
                    }
                    Destination::Exchange(x) => next.push(x.clone()),
                }
            }
            for x in next {
                if visited.insert(x.clone()) {
                    pending.push(x);
                }
            }
        }
        result
    }

    /// Removes the bindings `keep` refuses; returns the auto-delete
    /// exchanges among their sources that are left with no binding.
    fn remove_bindings(&mut self, keep: impl Fn(&(String, Binding)) -> bool) -> BTreeSet<String> {
        let (kept, removed): (Vec<_>, Vec<_>) = self.bindings.drain(..).partition(|b| keep(b));
        self.bindings = kept;
        removed
            .iter()
            .map(|(source, _)| source.clone())
            .filter(|source| self.exchanges.get(source).is_some_and(|e| e.auto_delete) && !self.bindings.iter().any(|(s, _)| s == source))
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Declare {
        name: usize,
        kind: ExchangeKind,
        alternate: Option<usize>,
        auto_delete: bool,
    },
    Bind(NamedBinding),
    Unbind(NamedBinding),
    /// Unbinds one of the bindings that exist (random unbinds rarely hit one).
    UnbindExisting {
        pick: proptest::sample::Index,
    },
    DeleteExchange {
        name: usize,
        if_unused: bool,
    },
    RemoveQueue {
        queue: usize,
    },
}

/// A binding an operation names, by indexes into `EXCHANGES` and `argument_sets()`.
#[derive(Debug, Clone)]
struct NamedBinding {
    source: usize,
    destination: Destination,
    key: String,
    arguments: usize,
}

impl NamedBinding {
    /// Its source exchange and the binding itself.
    fn resolve(&self, arguments: &[FieldTable]) -> (&'static str, Binding) {
        let binding = Binding::new(self.destination.clone(), self.key.clone()).with_arguments(arguments[self.arguments].clone());
        (EXCHANGES[self.source], binding)
    }
}

fn named_binding() -> impl Strategy<Value = NamedBinding> {
    (0..EXCHANGES.len(), destination(), key(true), 0..4_usize).prop_map(|(source, destination, key, arguments)| NamedBinding {
        source,
        destination,
        key,
        arguments,
    })
}

fn argument_sets() -> Vec<FieldTable> {
    let table = |entries: &[(&str, HeaderValue)]| -> FieldTable { entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect() };
    vec![
        FieldTable::new(),
        table(&[("h", HeaderValue::from("a"))]),
        table(&[
            ("x-match", HeaderValue::from("any")),
            ("h", HeaderValue::from("a")),
            ("n", HeaderValue::I8(1)),
        ]),
        table(&[("n", HeaderValue::Void)]),
    ]
}

fn header_sets() -> Vec<FieldTable> {
    let table = |entries: &[(&str, HeaderValue)]| -> FieldTable { entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect() };
    vec![
        FieldTable::new(),
        table(&[("h", HeaderValue::from("a"))]),
        table(&[("n", HeaderValue::I64(1))]),
        table(&[("h", HeaderValue::from("b")), ("n", HeaderValue::F64(2.0))]),
    ]
}

/// Binding keys are short (up to 2 words) so that operations often hit the
/// same binding; routing keys go one word further.
fn key(with_wildcards: bool) -> impl Strategy<Value = String> {
    let (alphabet, words_max): (&[&str], usize) = if with_wildcards {
        (&["a", "b", "", "*", "#"], 3)
    } else {
        (&["a", "b", ""], 4)
    };
    proptest::collection::vec(proptest::sample::select(alphabet.to_vec()), 0..words_max).prop_map(|words| words.join("."))
}

fn destination() -> impl Strategy<Value = Destination> {
    prop_oneof![
        (0..QUEUES.len()).prop_map(|i| Destination::Queue(QUEUES[i].to_owned())),
        (0..EXCHANGES.len()).prop_map(|i| Destination::Exchange(EXCHANGES[i].to_owned())),
        Just(Destination::Topic("t".to_owned())),
    ]
}

fn kind() -> impl Strategy<Value = ExchangeKind> {
    prop_oneof![
        Just(ExchangeKind::Direct),
        Just(ExchangeKind::Fanout),
        Just(ExchangeKind::Topic),
        Just(ExchangeKind::Headers)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3_usize, kind(), proptest::option::of(0..EXCHANGES.len()), any::<bool>())
            .prop_map(|(name, kind, alternate, auto_delete)| Op::Declare { name, kind, alternate, auto_delete }),
        6 => named_binding().prop_map(Op::Bind),
        1 => named_binding().prop_map(Op::Unbind),
        3 => any::<proptest::sample::Index>().prop_map(|pick| Op::UnbindExisting { pick }),
        1 => (0..3_usize, any::<bool>()).prop_map(|(name, if_unused)| Op::DeleteExchange { name, if_unused }),
        1 => (0..QUEUES.len()).prop_map(|queue| Op::RemoveQueue { queue }),
    ]
}

/// Applies `op` to both; panics (through prop_assert) where they disagree.
fn apply(router: &mut Router, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let arguments = argument_sets();
    match op {
        Op::Declare {
            name,
            kind,
            alternate,
            auto_delete,
        } => {
            let mut exchange = Exchange::new(EXCHANGES[*name], *kind);
            exchange.alternate_exchange = alternate.map(|i| EXCHANGES[i].to_owned());
            exchange.auto_delete = *auto_delete;
            let expected_ok = model.exchanges.get(&exchange.name).is_none_or(|existing| *existing == exchange);
            let outcome = router.declare_exchange(exchange.clone());
            prop_assert_eq!(outcome.is_ok(), expected_ok, "declare {:?}: {:?}", exchange, outcome);
            model.exchanges.entry(exchange.name.clone()).or_insert(exchange);
        }
        Op::Bind(named) => {
            let (source, binding) = named.resolve(&arguments);
            let expected_ok = model.binding_ends_exist(source, &binding);
            let outcome = router.bind(source, binding.clone());
            prop_assert_eq!(outcome.is_ok(), expected_ok, "bind {} {:?}: {:?}", source, binding, outcome);
            if expected_ok {
                let fresh = !model.bindings.iter().any(|(s, b)| s == source && *b == binding);
                prop_assert_eq!(outcome, Ok(fresh));
                if fresh {
                    model.bindings.push((source.to_owned(), binding));
                }
            }
        }
        Op::Unbind(named) => {
            let (source, binding) = named.resolve(&arguments);
            let outcome = router.unbind(source, &binding);
            prop_assert_eq!(outcome.is_ok(), model.binding_ends_exist(source, &binding), "unbind: {:?}", outcome);
            if let Ok(removal) = outcome {
                let unused = model.remove_bindings(|(s, b)| !(s == source && *b == binding));
                prop_assert_eq!(removal.unused_auto_delete, unused);
            }
        }
        Op::UnbindExisting { pick } => {
            if model.bindings.is_empty() {
                return Ok(());
            }
            let (source, binding) = model.bindings[pick.index(model.bindings.len())].clone();
            let removal = router.unbind(&source, &binding);
            let unused = model.remove_bindings(|(s, b)| !(*s == source && *b == binding));
            prop_assert_eq!(
                removal,
                Ok(Removal {
                    bindings: vec![BindingDefinition { source, binding }],
                    unused_auto_delete: unused,
                })
            );
        }
        Op::DeleteExchange { name, if_unused } => {
            let name = EXCHANGES[*name];
            let outcome = router.delete_exchange(name, *if_unused);
            let exists = model.exchanges.contains_key(name);
            let in_use = model.bindings.iter().any(|(s, _)| s == name);
            match outcome {
                Err(error) => prop_assert!(*if_unused && in_use, "delete refused: {error}"),
                Ok(None) => prop_assert!(!exists),
                Ok(Some(removal)) => {
                    prop_assert!(exists && !(*if_unused && in_use));
                    model.exchanges.remove(name);
                    let gone = Destination::Exchange(name.to_owned());
                    let count_before = model.bindings.len();
                    let unused = model.remove_bindings(|(s, b)| s != name && b.destination != gone);
                    prop_assert_eq!(removal.bindings.len(), count_before - model.bindings.len());
                    prop_assert_eq!(removal.unused_auto_delete, unused);
                }
            }
        }
        Op::RemoveQueue { queue } => {
            let gone = Destination::Queue(QUEUES[*queue].to_owned());
            let removal = router.remove_queue(QUEUES[*queue]);
            let unused = model.remove_bindings(|(_, b)| b.destination != gone);
            prop_assert_eq!(removal.unused_auto_delete, unused);
        }
    }
    Ok(())
}

fn check_agreement(router: &Router, model: &Model, routing_keys: &[String]) -> Result<(), TestCaseError> {
    let mut expected: Vec<String> = model.bindings.iter().map(|(s, b)| format!("{s} {b:?}")).collect();
    let mut actual: Vec<String> = router
        .definitions()
        .bindings
        .iter()
        .map(|d| format!("{} {:?}", d.source, d.binding))
        .collect();
    expected.sort();
    actual.sort();
    prop_assert_eq!(actual, expected);
    for exchange in model.exchanges.keys() {
        for routing_key in routing_keys {
            for headers in header_sets() {
                let routed = router.route(exchange, routing_key, &headers);
                prop_assert_eq!(
                    routed,
                    Ok(model.route(exchange, routing_key, &headers)),
                    "exchange {:?} key {:?} headers {:?}",
                    exchange,
                    routing_key,
                    headers
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn router_routes_like_a_scan_of_every_binding(
        ops in proptest::collection::vec(op(), 1..40),
        routing_keys in proptest::collection::vec(key(false), 1..4),
    ) {
        let mut router = Router::new();
        let mut model = Model::new();
        for op in &ops {
            apply(&mut router, &mut model, op)?;
        }
        check_agreement(&router, &model, &routing_keys)?;
        let rebuilt = Router::from_definitions(&router.definitions(), []);
        prop_assert!(rebuilt.is_ok(), "rebuild: {:?}", rebuilt.err());
        if let Ok(rebuilt) = rebuilt {
            check_agreement(&rebuilt, &model, &routing_keys)?;
        }
    }
}

#[test]
fn router_with_10000_topic_bindings_routes_like_a_scan() {
    let mut router = Router::new();
    let mut model = Model::new();
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let words = ["order", "shipped", "placed", "eu", "", "*", "#"];
    for i in 0..10_000 {
        let pattern: Vec<&str> = (0..1 + next(4)).map(|_| words[next(7) as usize]).collect();
        let binding = Binding::new(Destination::Queue(format!("q{}", i % 2_500)), pattern.join("."));
        if router.bind("amq.topic", binding.clone()).expect("bind") {
            model.bindings.push(("amq.topic".to_owned(), binding));
        }
    }
    for _ in 0..200 {
        let key: Vec<&str> = (0..next(5)).map(|_| words[next(5) as usize]).collect();
        let key = key.join(".");
        let routed = router.route("amq.topic", &key, &FieldTable::new()).expect("route");
        assert_eq!(routed, model.route("amq.topic", &key, &FieldTable::new()), "routing key {key:?}");
    }
    for q in 0..1_250 {
        let queue = format!("q{q}");
        router.remove_queue(&queue);
        model.remove_bindings(|(_, b)| b.destination != Destination::Queue(queue.clone()));
    }
    for key in ["order.shipped", "eu.order.placed", "", "shipped"] {
        let routed = router.route("amq.topic", key, &FieldTable::new()).expect("route");
        assert_eq!(
            routed,
            model.route("amq.topic", key, &FieldTable::new()),
            "after removals, routing key {key:?}"
        );
    }
}
