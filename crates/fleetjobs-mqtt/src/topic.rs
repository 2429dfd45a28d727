//! Topic names, topic filters and the subscription tree (MQTT 3.1.1 §4.7).
//!
//! Filters are stored in a trie keyed by topic level, with `+` and `#` as ordinary keys, so a
//! lookup visits only the branches that can match instead of every subscription.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

const SEPARATOR: char = '/';
const MATCH_ONE: &str = "+";
const MATCH_ALL: &str = "#";
const MAX_LEN: usize = u16::MAX as usize;

/// A valid topic name (what a PUBLISH is sent to): non-empty, no wildcard, no NUL (§4.7.3).
pub fn is_valid_topic_name(topic: &str) -> bool {
    // Checked for every message in and out: a scan of bytes, not of decoded characters (the
    // three are ASCII, and no byte of a multi-byte UTF-8 character is).
    !topic.is_empty() && topic.len() <= MAX_LEN && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// A valid topic filter (§4.7.1): non-empty, no NUL, `+` and `#` each occupy a whole level, and
/// `#` is the last level.
pub fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_LEN || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split(SEPARATOR).peekable();
    while let Some(level) = levels.next() {
        match level {
            MATCH_ALL => return levels.peek().is_none(),
            MATCH_ONE => {}
            literal if literal.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// AWS IoT Core's limits on the size of topic names and filters (message broker quotas: 256 bytes,
/// 7 forward slashes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicLimits {
    pub max_len: usize,
    pub max_slashes: usize,
}

/// Longest thing or rule name (AWS: 128 bytes), the name level of an exempt reserved prefix.
const MAX_RESERVED_NAME_LEN: usize = 128;
/// The reserved topic families whose `$aws/{kind}/{name}/` prefix AWS leaves out of the limits.
const EXEMPT_RESERVED_KINDS: [&str; 2] = ["things", "rules"];

impl TopicLimits {
    /// Whether `topic` (a name or a filter) is within the limits.
    pub fn allows(&self, topic: &str) -> bool {
        let counted = counted_part(topic);
        counted.len() <= self.max_len && counted.bytes().filter(|&b| b == b'/').count() <= self.max_slashes
    }
}

/// The part of a topic that AWS counts against the size and slash limits.
///
/// AWS leaves the mandatory prefix of its reserved per-thing and Basic Ingest topics out of the
/// count: for `$aws/things/{thingName}/...` (jobs, shadow, defender, tunnels) and
/// `$aws/rules/{ruleName}/...`, the first three levels and their three slashes are not counted,
/// so `$aws/things/{thingName}/jobs/{jobId}/update/accepted` counts as
/// `jobs/{jobId}/update/accepted` (3 slashes) and a named shadow's
/// `$aws/things/{thingName}/shadow/name/{shadowName}/update/documents` as 4. The name level must
/// itself be a valid thing or rule name length (≤ 128 bytes), otherwise the whole topic counts.
/// Every other topic, `$aws/events/...` included, counts whole.
fn counted_part(topic: &str) -> &str {
    let Some(rest) = topic.strip_prefix("$aws/") else {
        return topic;
    };
    let mut levels = rest.splitn(3, SEPARATOR);
    match (levels.next(), levels.next(), levels.next()) {
        (Some(kind), Some(name), Some(counted))
            if EXEMPT_RESERVED_KINDS.contains(&kind) && name.len() <= MAX_RESERVED_NAME_LEN =>
        {
            counted
        }
        _ => topic,
    }
}

/// Whether a topic starting with `$` may be matched by a filter whose first level is `level`
/// (§4.7.2: a wildcard first level never matches a `$` topic).
fn wildcard_allowed(dollar_topic: bool, level: &str) -> bool {
    !(dollar_topic && (level == MATCH_ONE || level == MATCH_ALL))
}

/// Whether the (valid) `filter` matches the (valid) topic name `topic`.
pub fn matches(filter: &str, topic: &str) -> bool {
    let first = filter.split(SEPARATOR).next().unwrap_or_default();
    if !wildcard_allowed(topic.starts_with('$'), first) {
        return false;
    }
    let mut filter_levels = filter.split(SEPARATOR);
    let mut topic_levels = topic.split(SEPARATOR);
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some(MATCH_ALL), _) => return true,
            (Some(f), Some(t)) if f == MATCH_ONE || f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Subscriptions indexed by filter. Each filter holds at most one value per subscriber key.
#[derive(Debug)]
pub struct TopicTree<T> {
    root: Node<T>,
}

#[derive(Debug)]
struct Node<T> {
    children: SmallMap<Box<str>, Node<T>>,
    subscribers: SmallMap<u64, T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self { children: SmallMap::default(), subscribers: SmallMap::default() }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty()
    }

    fn remove<'f>(&mut self, mut levels: impl Iterator<Item = &'f str>, key: u64) -> Option<T> {
        let Some(level) = levels.next() else {
            return self.subscribers.remove(&key);
        };
        let child = self.children.get_mut(level)?;
        let removed = child.remove(levels, key);
        if child.is_empty() {
            self.children.remove(level);
        }
        removed
    }

    /// Whether a filter in this subtree could match a topic that continues with `levels`
    /// (and perhaps more). Empty branches are pruned, so a non-empty node holds a subscriber.
    fn could_match_under<'f>(&self, mut levels: impl Iterator<Item = &'f str> + Clone, dollar: bool) -> bool {
        let Some(level) = levels.next() else {
            return !self.is_empty();
        };
        if self.children.get(MATCH_ALL).is_some() && wildcard_allowed(dollar, MATCH_ALL) {
            return true;
        }
        self.children.get(level).is_some_and(|child| child.could_match_under(levels.clone(), false))
            || (wildcard_allowed(dollar, MATCH_ONE)
                && self.children.get(MATCH_ONE).is_some_and(|child| child.could_match_under(levels, false)))
    }

    fn visit<'a>(&'a self, levels: &[&str], dollar: bool, visit: &mut impl FnMut(u64, &'a T)) {
        if let Some(all) = self.children.get(MATCH_ALL).filter(|_| wildcard_allowed(dollar, MATCH_ALL)) {
            all.subscribers.for_each(|key, value| visit(*key, value));
        }
        let Some((level, rest)) = levels.split_first() else {
            self.subscribers.for_each(|key, value| visit(*key, value));
            return;
        };
        if let Some(child) = self.children.get(*level) {
            child.visit(rest, false, visit);
        }
        if let Some(one) = self.children.get(MATCH_ONE).filter(|_| wildcard_allowed(dollar, MATCH_ONE)) {
            one.visit(rest, false, visit);
        }
    }
}

impl<T> Default for TopicTree<T> {
    fn default() -> Self {
        Self { root: Node::default() }
    }
}

impl<T> TopicTree<T> {
    /// Add (or replace) `key`'s subscription to `filter`; returns the replaced value.
    pub fn insert(&mut self, filter: &str, key: u64, value: T) -> Option<T> {
        let node =
            filter.split(SEPARATOR).fold(&mut self.root, |node, level| node.children.get_or_default(level.into()));
        node.subscribers.insert(key, value)
    }

    /// Remove `key`'s subscription to `filter`, pruning branches left empty.
    pub fn remove(&mut self, filter: &str, key: u64) -> Option<T> {
        self.root.remove(filter.split(SEPARATOR), key)
    }

    /// Call `visit` for every subscription whose filter matches `topic`. A key subscribed through
    /// several matching filters is visited once per filter.
    pub fn for_each_match<'a>(&'a self, topic: &str, mut visit: impl FnMut(u64, &'a T)) {
        let levels: Vec<&str> = topic.split(SEPARATOR).collect();
        self.root.visit(&levels, topic.starts_with('$'), &mut visit);
    }

    /// Whether some subscription could match a topic whose first levels are `prefix`'s: walks
    /// only the prefix's levels, without allocating.
    pub fn could_match_under(&self, prefix: &str) -> bool {
        self.root.could_match_under(prefix.split(SEPARATOR), prefix.starts_with('$'))
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.root.is_empty()
    }
}

/// Entries a [`SmallMap`] keeps in a vector before switching to a hash map.
const SMALL_MAP_LEN: usize = 8;

/// A map for the common case of a handful of entries: most trie nodes have one child and at
/// most one subscriber, and a hash map per node would cost several hundred bytes per device.
/// It switches to a hash map when it outgrows [`SMALL_MAP_LEN`] (e.g. the level holding every
/// thing name).
#[derive(Debug)]
enum SmallMap<K, V> {
    Vec(Vec<(K, V)>),
    #[allow(clippy::box_collection, reason = "keeps the enum, and so every trie node, as small as the vector case")]
    Hash(Box<HashMap<K, V>>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Vec(Vec::new())
    }
}

impl<K: Eq + Hash, V> SmallMap<K, V> {
    fn is_empty(&self) -> bool {
        match self {
            SmallMap::Vec(entries) => entries.is_empty(),
            SmallMap::Hash(map) => map.is_empty(),
        }
    }

    fn position<Q>(entries: &[(K, V)], key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        entries.iter().position(|(existing, _)| existing.borrow() == key)
    }

    fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Vec(entries) => Self::position(entries, key).map(|i| &entries[i].1),
            SmallMap::Hash(map) => map.get(key),
        }
    }

    fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Vec(entries) => Self::position(entries, key).map(|i| &mut entries[i].1),
            SmallMap::Hash(map) => map.get_mut(key),
        }
    }

    /// Switch to a hash map if adding `key` would overflow the vector.
    fn make_room(&mut self, key: &K) {
        if let SmallMap::Vec(entries) = self {
            if entries.len() >= SMALL_MAP_LEN && Self::position(entries, key).is_none() {
                *self = SmallMap::Hash(Box::new(std::mem::take(entries).into_iter().collect()));
            }
        }
    }

    /// Append to the vector without the usual doubling: nodes rarely grow.
    fn push(entries: &mut Vec<(K, V)>, key: K, value: V) -> usize {
        entries.reserve_exact(1);
        entries.push((key, value));
        entries.len() - 1
    }

    fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.make_room(&key);
        match self {
            SmallMap::Vec(entries) => match Self::position(entries, &key) {
                Some(i) => Some(std::mem::replace(&mut entries[i].1, value)),
                None => {
                    Self::push(entries, key, value);
                    None
                }
            },
            SmallMap::Hash(map) => map.insert(key, value),
        }
    }

    fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.make_room(&key);
        match self {
            SmallMap::Vec(entries) => {
                let i = match Self::position(entries, &key) {
                    Some(i) => i,
                    None => Self::push(entries, key, V::default()),
                };
                &mut entries[i].1
            }
            SmallMap::Hash(map) => map.entry(key).or_default(),
        }
    }

    fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Vec(entries) => Self::position(entries, key).map(|i| entries.swap_remove(i).1),
            SmallMap::Hash(map) => map.remove(key),
        }
    }

    fn for_each<'a>(&'a self, mut f: impl FnMut(&'a K, &'a V)) {
        match self {
            SmallMap::Vec(entries) => entries.iter().for_each(|(key, value)| f(key, value)),
            SmallMap::Hash(map) => map.iter().for_each(|(key, value)| f(key, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn could_match_under_a_prefix_follows_the_wildcard_rules() {
        let mut tree = TopicTree::default();
        assert!(!tree.could_match_under("$aws/events"));
        for (key, filter) in [(1, "#"), (2, "+/events/#"), (3, "$aws/things/+/jobs/notify"), (4, "a/b")] {
            tree.insert(filter, key, ());
        }
        assert!(!tree.could_match_under("$aws/events"), "leading wildcards never match a $ topic");
        assert!(tree.could_match_under("a"), "# matches a plain topic");
        for (key, filter) in [
            (5, "$aws/events/#"),
            (6, "$aws/+/job/j/completed"),
            (7, "$aws/#"),
            (8, "$aws/events/jobExecution/+/succeeded"),
            (9, "$aws/events"),
        ] {
            tree.insert(filter, key, ());
            assert!(tree.could_match_under("$aws/events"), "{filter}");
            tree.remove(filter, key);
            assert!(!tree.could_match_under("$aws/events"), "{filter} removed");
        }
        assert!(tree.could_match_under("$aws/things"));
        assert!(!tree.could_match_under("$aws/rules"));
    }

    #[test]
    fn filter_validation() {
        for valid in ["a", "a/b", "+", "#", "a/+/c", "a/#", "+/+", "/", "//", "$aws/things/+/jobs/#"] {
            assert!(is_valid_filter(valid), "{valid}");
        }
        for invalid in ["", "a+", "a/b#", "#/a", "a/#/b", "++", "a/+b", "a\0b"] {
            assert!(!is_valid_filter(invalid), "{invalid}");
        }
    }

    #[test]
    fn aws_size_limits_exempt_only_the_reserved_prefix() {
        let limits = TopicLimits { max_len: 256, max_slashes: 7 };
        let thing = "t".repeat(128);
        let job = "j".repeat(64);
        for allowed in [
            "a/b/c/d/e/f/g/h".to_owned(),
            "x".repeat(256),
            format!("$aws/things/{thing}/jobs/{job}/update/accepted"),
            format!("$aws/things/{thing}/shadow/name/s/update/documents"),
            "$aws/things/+/jobs/#".to_owned(),
            format!("$aws/rules/r/{}", "a/".repeat(7)),
            format!("$aws/things/{thing}/{}", "x".repeat(256)),
        ] {
            assert!(limits.allows(&allowed), "{allowed}");
        }
        for refused in [
            "a/b/c/d/e/f/g/h/i".to_owned(),
            "x".repeat(257),
            format!("$aws/things/t/{}", "a/".repeat(8)),
            format!("$aws/things/{thing}/{}", "x".repeat(257)),
            // Not an exempt family, or a name longer than any thing name: counted whole.
            "$aws/events/a/b/c/d/e/f/g".to_owned(),
            format!("$aws/things/{}/jobs/notify", "t".repeat(300)),
        ] {
            assert!(!limits.allows(&refused), "{refused}");
        }
    }

    #[test]
    fn topic_name_validation() {
        assert!(is_valid_topic_name("a/b"));
        assert!(is_valid_topic_name("/"));
        assert!(is_valid_topic_name("dév/ü/日本"));
        for invalid in ["", "a/+", "#", "a\0", "dév/+", "ü#"] {
            assert!(!is_valid_topic_name(invalid), "{invalid}");
        }
    }

    #[test]
    fn matching() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/+", "a/b", true),
            ("a/+", "a", false),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("+/b", "/b", true),
            ("+/b", "x/b", true),
            ("+", "", true),
            ("#", "$aws/x", false),
            ("+/x", "$aws/x", false),
            ("$aws/#", "$aws/x", true),
            ("$aws/+", "$aws/x", true),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
        }
    }

    fn matched(tree: &TopicTree<&'static str>, topic: &str) -> Vec<&'static str> {
        let mut found = Vec::new();
        tree.for_each_match(topic, |_, value| found.push(*value));
        found.sort_unstable();
        found
    }

    #[test]
    fn tree_matches_like_matches() {
        let filters = ["a/b", "a/+", "a/#", "#", "+/b", "+", "$aws/#", "$aws/+/b", "a/+/c"];
        let mut tree = TopicTree::default();
        for (key, filter) in filters.iter().enumerate() {
            tree.insert(filter, key as u64, *filter);
        }
        for topic in ["a/b", "a", "a/x/c", "b", "$aws/x/b", "$aws", "/b", "x/y/z"] {
            let mut expected: Vec<_> = filters.iter().copied().filter(|f| matches(f, topic)).collect();
            expected.sort_unstable();
            assert_eq!(matched(&tree, topic), expected, "topic {topic}");
        }
    }

    #[test]
    fn tree_with_many_siblings_and_subscribers() {
        let mut tree = TopicTree::default();
        for key in 0..100u64 {
            tree.insert(&format!("things/{key}/jobs"), key, key);
            tree.insert("broadcast", key, key);
        }
        let mut found = Vec::new();
        tree.for_each_match("things/42/jobs", |key, _| found.push(key));
        assert_eq!(found, vec![42]);
        let mut count = 0;
        tree.for_each_match("broadcast", |_, _| count += 1);
        assert_eq!(count, 100);
        for key in 0..100u64 {
            assert_eq!(tree.remove(&format!("things/{key}/jobs"), key), Some(key));
            assert_eq!(tree.remove("broadcast", key), Some(key));
        }
        assert!(tree.is_empty());
    }

    #[test]
    fn tree_remove_prunes() {
        let mut tree = TopicTree::default();
        tree.insert("a/b/c", 1, "x");
        tree.insert("a/b/c", 2, "y");
        tree.insert("a/#", 1, "z");
        assert_eq!(tree.remove("a/b/c", 1), Some("x"));
        assert_eq!(tree.remove("a/b/c", 1), None);
        assert_eq!(matched(&tree, "a/b/c"), vec!["y", "z"]);
        tree.remove("a/b/c", 2);
        tree.remove("a/#", 1);
        assert!(tree.is_empty());
    }
}
