//! A topic exchange's bindings as a trie over binding-key words, matched
//! with RabbitMQ's rules: words are separated by `.`, `*` matches exactly one
//! word, `#` zero or more, empty words are words (`a..b` has three), and the
//! empty key has no words. Knows keys and destinations; nothing about other
//! exchange kinds.
//!
//! Matching walks the trie instead of scanning bindings. `#` is handled by
//! backtracking over states (trie node, words consumed); each state is
//! explored at most once, so a match costs at most
//! `nodes × (words + 1)` steps however many `#` the bindings hold.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::binding::Destination;

const ROOT: usize = 0;

/// The words of a routing or binding key. The empty key has none, as in
/// RabbitMQ (`""` matches `#` but not `*`).
pub(crate) fn key_words(key: &str) -> Vec<&str> {
    if key.is_empty() { Vec::new() } else { key.split('.').collect() }
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: HashMap<String, usize>,
    destinations: BTreeSet<Destination>,
    /// Reached through a `#` edge: this node may swallow more words.
    hash: bool,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.destinations.is_empty()
    }
}

/// Destinations by binding key, for matching routing keys.
#[derive(Debug, Clone)]
pub(crate) struct TopicTrie {
    /// Node arena; `ROOT` always exists. Freed slots are reused.
    nodes: Vec<Node>,
    free: Vec<usize>,
}

impl Default for TopicTrie {
    fn default() -> TopicTrie {
        TopicTrie {
            nodes: vec![Node::default()],
            free: Vec::new(),
        }
    }
}

impl TopicTrie {
    /// Adds `destination` under `binding_key`; false if it was there.
    pub(crate) fn insert(&mut self, binding_key: &str, destination: Destination) -> bool {
        let mut at = ROOT;
        for word in key_words(binding_key) {
            let existing = self.nodes.get(at).and_then(|node| node.children.get(word).copied());
            at = match existing {
                Some(child) => child,
                None => {
                    let node = Node {
                        hash: word == "#",
                        ..Node::default()
                    };
                    let child = match self.free.pop() {
                        Some(slot) => {
                            self.nodes[slot] = node;
                            slot
                        }
                        None => {
                            self.nodes.push(node);
                            self.nodes.len() - 1
                        }
                    };
                    self.nodes[at].children.insert(word.to_owned(), child);
                    child
                }
            };
        }
        self.nodes[at].destinations.insert(destination)
    }

    /// Removes `destination` from under `binding_key` and prunes the nodes
    /// left empty; false if it was not there.
    pub(crate) fn remove(&mut self, binding_key: &str, destination: &Destination) -> bool {
        let words = key_words(binding_key);
        // The path from the root: (node, word that leads to it).
        let mut path: Vec<(usize, &str)> = Vec::with_capacity(words.len());
        let mut at = ROOT;
        for word in &words {
            match self.nodes.get(at).and_then(|node| node.children.get(*word)) {
                Some(&child) => {
                    path.push((child, word));
                    at = child;
                }
                None => return false,
            }
        }
        if !self.nodes[at].destinations.remove(destination) {
            return false;
        }
        // Bounded by the key's length: prune from the leaf up while empty.
        while let Some((node, word)) = path.pop() {
            if !self.nodes[node].is_empty() {
                break;
            }
            let parent = path.last().map_or(ROOT, |&(parent, _)| parent);
            self.nodes[parent].children.remove(word);
            self.nodes[node] = Node::default();
            self.free.push(node);
        }
        true
    }

    /// Adds to `out` every destination bound with a key that matches
    /// `routing_key`, once each.
    pub(crate) fn matches<'a>(&'a self, routing_key: &str, out: &mut BTreeSet<&'a Destination>) {
        let words = key_words(routing_key);
        let mut seen: HashSet<(usize, usize)> = HashSet::new();
        let mut stack = vec![(ROOT, 0_usize)];
        seen.insert((ROOT, 0));
        let mut push = |stack: &mut Vec<(usize, usize)>, state: (usize, usize)| {
            if seen.insert(state) {
                stack.push(state);
            }
        };
        // Bounded: each (node, words consumed) state is pushed at most once.
        while let Some((at, consumed)) = stack.pop() {
            let Some(node) = self.nodes.get(at) else { continue };
            match words.get(consumed) {
                None => out.extend(node.destinations.iter()),
                Some(word) => {
                    if let Some(&child) = node.children.get(*word) {
                        push(&mut stack, (child, consumed + 1));
                    }
                    if let Some(&child) = node.children.get("*") {
                        push(&mut stack, (child, consumed + 1));
                    }
                    if node.hash {
                        // The `#` that led here swallows one more word.
                        push(&mut stack, (at, consumed + 1));
                    }
                }
            }
            if let Some(&child) = node.children.get("#") {
                // `#` matching zero words so far.
                push(&mut stack, (child, consumed));
            }
        }
    }

    /// Live nodes, the root included (for tests of pruning).
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

/// The reference matcher for tests: RabbitMQ's rules as a direct recursion
/// over words (exponential in `#`s, fine for short test patterns).
#[cfg(test)]
pub(crate) fn naive_matches(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| naive_matches(rest, &key[skip..])),
        Some((&"*", rest)) => !key.is_empty() && naive_matches(rest, &key[1..]),
        Some((word, rest)) => key.first() == Some(word) && naive_matches(rest, &key[1..]),
    }
}

/// A deterministic pseudo-random source for tests (xorshift; no clock, no
/// RNG dependency): each call gives a number below its `bound`.
#[cfg(test)]
pub(crate) fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn queue(name: &str) -> Destination {
        Destination::Queue(name.to_owned())
    }

    fn matched(trie: &TopicTrie, key: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        trie.matches(key, &mut out);
        out.into_iter().map(|d| d.name().to_owned()).collect()
    }

    fn trie_of(bindings: &[(&str, &str)]) -> TopicTrie {
        let mut trie = TopicTrie::default();
        for (key, name) in bindings {
            trie.insert(key, queue(name));
        }
        trie
    }

    #[test]
    fn topic_star_matches_exactly_one_word() {
        let trie = trie_of(&[("order.*", "orders")]);
        assert_eq!(matched(&trie, "order.placed"), ["orders"]);
        assert_eq!(matched(&trie, "order.shipped"), ["orders"]);
        assert!(matched(&trie, "order").is_empty());
        assert!(matched(&trie, "order.placed.eu").is_empty());
        assert!(matched(&trie, "user.registered").is_empty());
        assert_eq!(matched(&trie, "order."), ["orders"], "an empty word is a word");
    }

    #[test]
    fn topic_hash_matches_zero_or_more_words() {
        let trie = trie_of(&[("#.shipped", "shipping"), ("order.#", "orders"), ("#", "all")]);
        assert_eq!(matched(&trie, "shipped"), ["all", "shipping"]);
        assert_eq!(matched(&trie, "order.shipped"), ["all", "orders", "shipping"]);
        assert_eq!(matched(&trie, "eu.order.shipped"), ["all", "shipping"]);
        assert_eq!(matched(&trie, "order"), ["all", "orders"]);
        assert_eq!(matched(&trie, "order.shipped.late"), ["all", "orders"]);
        assert_eq!(matched(&trie, ""), ["all"]);
    }

    #[test]
    fn topic_empty_words_are_words() {
        let trie = trie_of(&[("a..b", "empty-middle"), ("a.*.b", "star"), ("", "empty-key")]);
        assert_eq!(matched(&trie, "a..b"), ["empty-middle", "star"]);
        assert_eq!(matched(&trie, "a.x.b"), ["star"]);
        assert!(matched(&trie, "a.b").is_empty());
        assert_eq!(matched(&trie, ""), ["empty-key"]);
        assert!(matched(&trie, ".").is_empty());
    }

    #[test]
    fn topic_destination_matched_by_several_bindings_is_listed_once() {
        let trie = trie_of(&[("order.*", "q"), ("#.shipped", "q"), ("#", "q"), ("#.#", "q")]);
        assert_eq!(matched(&trie, "order.shipped"), ["q"]);
    }

    #[test]
    fn topic_many_hashes_stay_cheap() {
        let pattern = ["#"; 40].join(".") + ".end";
        let trie = trie_of(&[(&pattern, "q")]);
        let key = ["w"; 200].join(".");
        assert!(matched(&trie, &key).is_empty());
        assert_eq!(matched(&trie, &(key + ".end")), ["q"]);
    }

    #[test]
    fn topic_remove_prunes_empty_nodes() {
        let mut trie = trie_of(&[("a.b.c", "q"), ("a.#", "q")]);
        assert!(trie.remove("a.b.c", &queue("q")));
        assert!(!trie.remove("a.b.c", &queue("q")));
        assert!(!trie.remove("x.y", &queue("q")));
        assert_eq!(trie.node_count(), 3, "root, a, #");
        assert!(trie.remove("a.#", &queue("q")));
        assert_eq!(trie.node_count(), 1);
        assert!(matched(&trie, "a.b.c").is_empty());
        trie.insert("a.b", queue("r"));
        assert_eq!(matched(&trie, "a.b"), ["r"], "freed nodes are reused cleanly");
    }

    #[test]
    fn topic_trie_agrees_with_naive_matcher_on_10000_bindings() {
        // Deterministic pseudo-random keys over a small alphabet so that
        // matches are common (xorshift; no clock, no RNG dependency).
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let pattern_words = ["a", "b", "c", "d", "", "*", "#"];
        let key_words_alphabet = ["a", "b", "c", "d", ""];
        let mut trie = TopicTrie::default();
        let mut patterns = Vec::new();
        for i in 0..10_000 {
            let len = 1 + next(5) as usize;
            let pattern: Vec<&str> = (0..len).map(|_| pattern_words[next(7) as usize]).collect();
            let pattern = pattern.join(".");
            trie.insert(&pattern, queue(&format!("q{i}")));
            patterns.push(pattern);
        }
        for _ in 0..300 {
            let len = next(6) as usize;
            let key: Vec<&str> = (0..len).map(|_| key_words_alphabet[next(5) as usize]).collect();
            let key = key.join(".");
            let mut expected: Vec<String> = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| naive_matches(&key_words(p), &key_words(&key)))
                .map(|(i, _)| format!("q{i}"))
                .collect();
            expected.sort();
            assert_eq!(matched(&trie, &key), expected, "routing key {key:?}");
        }
    }

    fn word(with_wildcards: bool) -> impl Strategy<Value = String> {
        let alphabet: &[&str] = if with_wildcards {
            &["a", "b", "", "*", "#"]
        } else {
            &["a", "b", ""]
        };
        proptest::sample::select(alphabet.to_vec()).prop_map(str::to_owned)
    }

    fn key(with_wildcards: bool) -> impl Strategy<Value = String> {
        proptest::collection::vec(word(with_wildcards), 0..6).prop_map(|words| words.join("."))
    }

    proptest! {
        #[test]
        fn topic_trie_matches_like_the_naive_matcher(
            patterns in proptest::collection::vec(key(true), 0..30),
            removed in proptest::collection::vec(any::<bool>(), 30),
            routing_keys in proptest::collection::vec(key(false), 1..10),
        ) {
            let mut trie = TopicTrie::default();
            for (i, p) in patterns.iter().enumerate() {
                trie.insert(p, queue(&format!("q{i}")));
            }
            // Remove some again, so pruning is exercised too.
            let mut live = Vec::new();
            for (i, p) in patterns.iter().enumerate() {
                if removed[i] {
                    let was_bound = trie.remove(p, &queue(&format!("q{i}")));
                    prop_assert!(was_bound, "binding {} was not found", p);
                } else {
                    live.push((i, p));
                }
            }
            for k in &routing_keys {
                let mut expected: Vec<String> = live
                    .iter()
                    .filter(|(_, p)| naive_matches(&key_words(p), &key_words(k)))
                    .map(|(i, _)| format!("q{i}"))
                    .collect();
                expected.sort();
                prop_assert_eq!(matched(&trie, k), expected, "routing key {:?}", k);
            }
        }
    }
}
