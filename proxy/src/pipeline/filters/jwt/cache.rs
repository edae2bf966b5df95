//! The per-worker cache of verified tokens.
//!
//! Workers are pinned threads, so a `thread_local!` map is a per-core cache
//! without locks. Entries are keyed by the filter (a token valid for one
//! route's keys and issuers says nothing about another's) and by the
//! SHA-256 of the token, so a hit never trusts a weaker hash. Each entry
//! holds the checked claims and the time until which they stay valid
//! (`exp + leeway`, earlier with `max_age`); a hit past it is a miss, and
//! the entry goes. With `jwks_url`, an entry also names the key set
//! generation it was verified with: after a key rotation it is checked
//! again (so a removed key stops working at once). Eviction: when a filter's map is full it is cleared
//! (cheap, and a burst of new tokens refills it at verification speed).
//! `cache_size = 0` turns the cache off.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Value};

pub type Digest = [u8; 32];

struct Entry {
    valid_until: f64,
    /// The `jwks_url` set generation the token was verified with.
    generation: u64,
    claims: Rc<Map<String, Value>>,
}

/// Caches of filters that went away (a reload) are dropped once this many
/// filters have one on a worker.
const MAX_FILTERS: usize = 64;

thread_local! {
    static CACHES: RefCell<HashMap<u64, HashMap<Digest, Entry>>> = RefCell::new(HashMap::new());
}

pub fn digest(token: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The claims of a token this filter verified on this worker, if still
/// valid at `now` and verified with key set `generation`.
pub fn get(filter: u64, key: &Digest, now: u64, generation: u64) -> Option<Rc<Map<String, Value>>> {
    CACHES.with(|c| {
        let mut c = c.borrow_mut();
        let map = c.get_mut(&filter)?;
        let e = map.get(key)?;
        if (now as f64) < e.valid_until && e.generation == generation {
            Some(e.claims.clone())
        } else {
            map.remove(key);
            None
        }
    })
}

/// Remember a verified token.
pub fn put(
    filter: u64,
    capacity: usize,
    key: Digest,
    valid_until: f64,
    generation: u64,
    claims: Rc<Map<String, Value>>,
) {
    if capacity == 0 {
        return;
    }
    CACHES.with(|c| {
        let mut c = c.borrow_mut();
        if !c.contains_key(&filter) && c.len() >= MAX_FILTERS {
            c.clear();
        }
        let map = c.entry(filter).or_default();
        if map.len() >= capacity {
            map.clear();
        }
        map.insert(
            key,
            Entry {
                valid_until,
                generation,
                claims,
            },
        );
    })
}

/// Entries held for `filter` on this worker (tests).
#[cfg(test)]
pub fn len(filter: u64) -> usize {
    CACHES.with(|c| c.borrow().get(&filter).map_or(0, HashMap::len))
}
