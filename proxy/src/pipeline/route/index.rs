//! The lookup index of a large [`RouteTable`](super::RouteTable).
//!
//! Route positions (in the table, i.e. match order) are `u32`s; [`NONE`] is
//! "no route" and compares above every position, so "first match" is `min`.
//!
//! Host groups: `exact` and `suffix` map a lower-case key to the root of that
//! group's path trie; `any_host` is the root of the trie of the routes without
//! a host. All tries live in one [`PathForest`] (a few flat vectors for the
//! whole table instead of a few per group). The request host is lower-cased
//! (only its last "longest key" bytes, into a stack buffer) and hashed only
//! where its length, or the length from a label boundary to its end, is the
//! length of some key.
//!
//! Path trie: a compressed radix trie. A node's `label` is the bytes it adds
//! to its parent's prefix (the root's may be empty); the prefix of a node is
//! the concatenation of the labels from the root. Every route is filed under
//! its path *key*, bytes every path it matches starts with: the prefix of a
//! `path_prefix`, the path of a `path`, the segment prefix (without trailing
//! `/`) of a `path_segment_prefix`, the literal start of a `path_regex`
//! ([`regex_literal_prefix`], often empty). A node keeps the [`Candidate`]s
//! whose key is exactly its prefix, ascending by position; `subtree_min` is
//! the lowest position of the node and everything below it.
//!
//! A path starts with a route's key iff the walk that consumes the path
//! label by label reaches that route's node, so the routes a path can match
//! are among the candidates of the walked nodes. At each node the walk tests
//! the candidates below the best position found so far, in order, and keeps
//! the first that matches: the rest of the path decides `path` (nothing
//! left) and `path_segment_prefix` (nothing left, or a `/`); a route with a
//! regex, methods, headers or query is then asked
//! ([`RouteMatch::matches_conditions`](super::RouteMatch::matches_conditions)).
//! The host was decided by the group, so a candidate that passes matches.
//! The minimum over the walked nodes is the group's first match. A
//! `path_prefix` candidate without conditions always matches once its node
//! is reached, so the candidates after it at the same node are dropped at
//! build time. The walk stops early once `subtree_min` cannot beat the best
//! match found so far (in this or an earlier group).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::matcher::{at_segment_boundary, regex_literal_prefix};
use super::{request_host, Route, RouteInput};
use crate::config::{HostMatch, PathMatch};

/// "No route": above every position.
const NONE: u32 = u32::MAX;

/// Size of the stack buffer a request host is lower-cased into. Host keys
/// longer than this (not valid DNS names, which have at most 253 bytes) are
/// not indexed but checked one by one.
const HOST_BUF: usize = 256;

type HostMap = HashMap<Box<[u8]>, u32, BuildHasherDefault<HostHasher>>;

#[derive(Debug, Clone)]
pub(super) struct RouteIndex {
    forest: PathForest,
    /// Trie root of the routes without a host, or [`NONE`].
    any_host: u32,
    /// Lower-case exact host → trie root.
    exact: HostMap,
    /// Lower-case `.suffix` → trie root.
    suffix: HostMap,
    /// Longest key in `exact` / `suffix` (both at most [`HOST_BUF`]).
    max_exact_len: usize,
    max_suffix_len: usize,
    /// Lengths of the keys in `exact` / `suffix`: a name of another length
    /// is not hashed at all.
    exact_lens: LenSet,
    suffix_lens: LenSet,
    /// Positions of the routes the maps cannot key, ascending.
    residual: Vec<u32>,
}

/// Where a route goes in the index.
enum Group {
    AnyHost,
    Exact(Vec<u8>),
    Suffix(Vec<u8>),
    Residual,
}

fn group_of(host: Option<&HostMatch>) -> Group {
    match host {
        None => Group::AnyHost,
        Some(HostMatch::Exact(name)) if name.len() <= HOST_BUF => {
            Group::Exact(name.as_bytes().to_ascii_lowercase())
        }
        // The label-boundary lookup finds a suffix only if it starts at a
        // boundary, i.e. starts with a dot (config always writes `.name`).
        Some(HostMatch::Suffix(suffix)) if suffix.starts_with('.') && suffix.len() <= HOST_BUF => {
            Group::Suffix(suffix.as_bytes().to_ascii_lowercase())
        }
        Some(_) => Group::Residual,
    }
}

impl RouteIndex {
    /// `None` if the table is too large for `u32` positions.
    pub(super) fn build(routes: &[Route]) -> Option<RouteIndex> {
        if u32::try_from(routes.len()).ok()? == NONE {
            return None;
        }
        let mut any_host: Vec<Entry<'_>> = Vec::new();
        let mut exact: HashMap<Vec<u8>, Vec<Entry<'_>>> = HashMap::new();
        let mut suffix: HashMap<Vec<u8>, Vec<Entry<'_>>> = HashMap::new();
        let mut residual = Vec::new();
        for (pos, route) in (0u32..).zip(routes) {
            let entry = Candidate::entry(route, pos);
            match group_of(route.matcher.host.as_ref()) {
                Group::AnyHost => any_host.push(entry),
                Group::Exact(key) => exact.entry(key).or_default().push(entry),
                Group::Suffix(key) => suffix.entry(key).or_default().push(entry),
                Group::Residual => residual.push(pos),
            }
        }

        let mut index = RouteIndex {
            forest: PathForest::default(),
            any_host: NONE,
            exact: HostMap::default(),
            suffix: HostMap::default(),
            max_exact_len: 0,
            max_suffix_len: 0,
            exact_lens: LenSet::default(),
            suffix_lens: LenSet::default(),
            residual,
        };
        if !any_host.is_empty() {
            index.any_host = index.forest.add_trie(&mut any_host);
        }
        for (key, mut entries) in exact {
            index.max_exact_len = index.max_exact_len.max(key.len());
            index.exact_lens.insert(key.len());
            let root = index.forest.add_trie(&mut entries);
            index.exact.insert(key.into_boxed_slice(), root);
        }
        for (key, mut entries) in suffix {
            index.max_suffix_len = index.max_suffix_len.max(key.len());
            index.suffix_lens.insert(key.len());
            let root = index.forest.add_trie(&mut entries);
            index.suffix.insert(key.into_boxed_slice(), root);
        }
        Some(index)
    }

    /// Position of the first route of `routes` (the table this index was
    /// built from) that matches `input`.
    pub(super) fn find(&self, routes: &[Route], input: &RouteInput<'_>) -> Option<usize> {
        let lookup = Lookup { routes, input };
        let mut best = self.forest.walk(self.any_host, &lookup, NONE);
        if let Some(host) = input.host {
            best = self.find_host(request_host(host), &lookup, best);
        }
        for &pos in &self.residual {
            if pos >= best {
                break;
            }
            if routes[pos as usize].matcher.matches(input) {
                best = pos;
                break;
            }
        }
        (best != NONE).then_some(best as usize)
    }

    /// `best` lowered by the exact and suffix groups of `host` (port and
    /// trailing dot already removed).
    fn find_host(&self, host: &[u8], lookup: &Lookup<'_, '_>, mut best: u32) -> u32 {
        if self.exact.is_empty() && self.suffix.is_empty() {
            return best;
        }
        // Only the last `max key length` bytes can be part of a key.
        let keep = host.len().min(self.max_exact_len.max(self.max_suffix_len));
        let offset = host.len() - keep;
        let tail = &host[offset..];
        let mut buf: [u8; HOST_BUF];
        let lower: &[u8] = if tail.iter().any(u8::is_ascii_uppercase) {
            buf = [0; HOST_BUF];
            let buf = &mut buf[..keep];
            buf.copy_from_slice(tail);
            buf.make_ascii_lowercase();
            buf
        } else {
            tail
        };

        if host.len() <= self.max_exact_len && self.exact_lens.contains(host.len()) {
            // offset == 0: `lower` is the whole host.
            if let Some(&root) = self.exact.get(lower) {
                best = self.forest.walk(root, lookup, best);
            }
        }
        if !self.suffix.is_empty() {
            // A suffix match must leave at least one byte of the host in front
            // (`*.example.com` does not match `.example.com`), and cannot be
            // longer than the longest suffix; `start >= offset` since
            // `keep >= min(len, max_suffix_len)`.
            let start = host.len().saturating_sub(self.max_suffix_len).max(1);
            if start < host.len() {
                let from = start - offset;
                for dot in memchr::memchr_iter(b'.', &lower[from..]) {
                    let key = &lower[from + dot..];
                    if !self.suffix_lens.contains(key.len()) {
                        continue;
                    }
                    if let Some(&root) = self.suffix.get(key) {
                        best = self.forest.walk(root, lookup, best);
                    }
                }
            }
        }
        best
    }
}

/// A set of lengths `0..=HOST_BUF`.
#[derive(Debug, Clone, Copy, Default)]
struct LenSet([u64; HOST_BUF / 64 + 1]);

impl LenSet {
    fn insert(&mut self, len: usize) {
        self.0[len / 64] |= 1 << (len % 64);
    }

    /// `len` must be at most [`HOST_BUF`].
    #[inline]
    fn contains(&self, len: usize) -> bool {
        self.0[len / 64] & (1 << (len % 64)) != 0
    }
}

/// How a route's path relates to its key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// The path starts with the key (`path_prefix`, `path_regex`).
    Prefix,
    /// The path is the key (`path`).
    Exact,
    /// The path is the key or continues with `/` (`path_segment_prefix`).
    Segment,
}

/// A route filed at a trie node.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    pos: u32,
    kind: KeyKind,
    /// Ask the route's [`matches_conditions`](super::RouteMatch::matches_conditions)
    /// (it has a regex, methods, headers or query).
    checked: bool,
}

/// A route on its way into a trie: its key and what to file.
type Entry<'r> = (&'r [u8], Candidate);

impl Candidate {
    fn entry(route: &Route, pos: u32) -> Entry<'_> {
        let m = &route.matcher;
        let (key, kind): (&[u8], KeyKind) = match &m.path {
            PathMatch::Prefix(p) => (p.as_bytes(), KeyKind::Prefix),
            PathMatch::Exact(p) => (p.as_bytes(), KeyKind::Exact),
            PathMatch::SegmentPrefix(p) => (p.as_bytes(), KeyKind::Segment),
            PathMatch::Regex(p) => (regex_literal_prefix(&p.source).as_bytes(), KeyKind::Prefix),
        };
        let checked = m.has_conditions();
        (key, Candidate { pos, kind, checked })
    }

    /// Always matches once its node is reached.
    fn is_catch_all(&self) -> bool {
        self.kind == KeyKind::Prefix && !self.checked
    }

    /// Whether the route matches, `rest` being what the path has after the
    /// key (the host is already known to match).
    #[inline]
    fn matches(&self, rest: &[u8], lookup: &Lookup<'_, '_>) -> bool {
        let path_ok = match self.kind {
            KeyKind::Prefix => true,
            KeyKind::Exact => rest.is_empty(),
            KeyKind::Segment => at_segment_boundary(rest),
        };
        path_ok
            && (!self.checked
                || lookup.routes[self.pos as usize]
                    .matcher
                    .matches_conditions(lookup.input))
    }
}

/// One lookup: the table and the request.
struct Lookup<'r, 'i> {
    routes: &'r [Route],
    input: &'r RouteInput<'i>,
}

/// The path tries of all groups of one table.
#[derive(Debug, Clone, Default)]
struct PathForest {
    nodes: Vec<Node>,
    /// Candidates of all nodes, each node's run contiguous and ascending.
    candidates: Vec<Candidate>,
    /// All labels, back to back.
    labels: Vec<u8>,
    /// Children of all nodes, each node's run contiguous and sorted by first
    /// byte: that byte, and the child node.
    child_bytes: Vec<u8>,
    child_nodes: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// `labels[label_start..label_end]`.
    label_start: u32,
    label_end: u32,
    /// `candidates[cands_start..cands_end]`: the routes keyed exactly here.
    cands_start: u32,
    cands_end: u32,
    /// Lowest position in this subtree (this node included).
    subtree_min: u32,
    /// `child_*[children_start..children_end]`.
    children_start: u32,
    children_end: u32,
}

impl Node {
    const EMPTY: Node = Node {
        label_start: 0,
        label_end: 0,
        cands_start: 0,
        cands_end: 0,
        subtree_min: NONE,
        children_start: 0,
        children_end: 0,
    };
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("route index larger than u32")
}

impl PathForest {
    /// Add the trie of `entries` (any order, keys may repeat, not empty)
    /// and return its root.
    fn add_trie(&mut self, entries: &mut [Entry<'_>]) -> u32 {
        debug_assert!(!entries.is_empty());
        // Sorted by key, then position: the routes of one key are together
        // and ascending, and a key comes right before the keys it starts.
        entries.sort_unstable_by(|a, b| (a.0, a.1.pos).cmp(&(b.0, b.1.pos)));

        let root = to_u32(self.nodes.len());
        self.nodes.push(Node::EMPTY);
        // (node, entries[lo..hi] below it, length of the parent's prefix).
        // All prefixes in the range share their first `depth` bytes.
        let mut todo = vec![(root, 0, entries.len(), 0)];
        while let Some((node, lo, hi, depth)) = todo.pop() {
            let first = entries[lo].0;
            // Sorted: what the range shares is what its ends share.
            let common = depth
                + first[depth..]
                    .iter()
                    .zip(&entries[hi - 1].0[depth..])
                    .take_while(|(a, b)| a == b)
                    .count();
            let label_start = to_u32(self.labels.len());
            self.labels.extend_from_slice(&first[depth..common]);
            let mut i = lo;
            let cands_start = to_u32(self.candidates.len());
            if first.len() == common {
                // The keys ending here come first.
                let here = entries[lo..hi]
                    .iter()
                    .take_while(|e| e.0.len() == common)
                    .count();
                for (_, c) in &entries[lo..lo + here] {
                    self.candidates.push(*c);
                    if c.is_catch_all() {
                        // Nothing after it here can be the first match.
                        break;
                    }
                }
                i += here;
            }
            let cands_end = to_u32(self.candidates.len());
            let children_start = to_u32(self.child_bytes.len());
            while i < hi {
                let byte = entries[i].0[common];
                let end = i + entries[i..hi]
                    .iter()
                    .take_while(|e| e.0[common] == byte)
                    .count();
                let child = to_u32(self.nodes.len());
                self.nodes.push(Node::EMPTY);
                self.child_bytes.push(byte);
                self.child_nodes.push(child);
                todo.push((child, i, end, common));
                i = end;
            }
            self.nodes[node as usize] = Node {
                label_start,
                label_end: to_u32(self.labels.len()),
                cands_start,
                cands_end,
                subtree_min: NONE,
                children_start,
                children_end: to_u32(self.child_bytes.len()),
            };
        }

        // Children are created after their parent: fill `subtree_min`
        // bottom-up by walking this trie's nodes backwards.
        for n in (root as usize..self.nodes.len()).rev() {
            let node = self.nodes[n];
            let children =
                &self.child_nodes[node.children_start as usize..node.children_end as usize];
            let own = if node.cands_start < node.cands_end {
                self.candidates[node.cands_start as usize].pos
            } else {
                NONE
            };
            let min = children
                .iter()
                .map(|&c| self.nodes[c as usize].subtree_min)
                .fold(own, u32::min);
            self.nodes[n].subtree_min = min;
        }
        root
    }

    /// `best` lowered to the first position in trie `root` whose route
    /// matches the request. `root` may be [`NONE`] (no trie).
    fn walk(&self, root: u32, lookup: &Lookup<'_, '_>, mut best: u32) -> u32 {
        let Some(mut node) = self.nodes.get(root as usize) else {
            return best;
        };
        let mut rest = lookup.input.path;
        loop {
            if node.subtree_min >= best {
                return best;
            }
            let label = &self.labels[node.label_start as usize..node.label_end as usize];
            match rest.strip_prefix(label) {
                Some(r) => rest = r,
                None => return best,
            }
            let cands = &self.candidates[node.cands_start as usize..node.cands_end as usize];
            for c in cands {
                if c.pos >= best {
                    break;
                }
                if c.matches(rest, lookup) {
                    best = c.pos;
                    break;
                }
            }
            let Some(&byte) = rest.first() else {
                return best;
            };
            let kids = node.children_start as usize..node.children_end as usize;
            match memchr::memchr(byte, &self.child_bytes[kids.clone()]) {
                Some(k) => node = &self.nodes[self.child_nodes[kids.start + k] as usize],
                None => return best,
            }
        }
    }
}

/// Hash of the host maps: a multiply-rotate hash over 8-byte words plus a
/// final mix. Not keyed: the keys come from the config, a request only looks
/// up, so the worst a crafted Host can do is probe the longest collision run
/// the configured names already form.
#[derive(Debug, Clone, Copy, Default)]
struct HostHasher(u64);

impl HostHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for HostHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The map takes buckets from the low bits and tags from the top ones.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}
