//! A per-worker cache of `Authorization` values that verified.
//!
//! Keyed by SHA-256(filter id ‖ `Authorization` value): the cache holds no
//! password, and an entry is only ever found again by the exact same
//! credentials for the same filter of the same configuration generation
//! (every build gets a new filter id, so a reload that changes a password
//! or removes a user is obeyed at once). The value is the user's index in
//! the filter's user list and the entry's expiry.
//!
//! Only successes are cached. The cache is bounded ([`CAPACITY`] entries
//! per worker thread, shared by every `basic_auth` filter): when full,
//! expired entries are dropped, then an arbitrary one.
//!
//! It is a `thread_local!`: one per worker, no lock, no sharing (workers
//! are single-threaded runtimes).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Entries per worker thread.
pub const CAPACITY: usize = 1024;

pub type CacheKey = [u8; 32];

thread_local! {
    static CACHE: RefCell<HashMap<CacheKey, (u32, Instant)>> = RefCell::new(HashMap::new());
}

/// The cache key of `authorization` for filter `filter_id`.
pub fn key(filter_id: u64, authorization: &[u8]) -> CacheKey {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&filter_id.to_le_bytes());
    ctx.update(authorization);
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The user index cached for `key`, if not expired.
pub fn get(key: &CacheKey, now: Instant) -> Option<u32> {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        match c.get(key) {
            Some(&(user, expires)) if now < expires => Some(user),
            Some(_) => {
                c.remove(key);
                None
            }
            None => None,
        }
    })
}

/// Remember that `key` verified as `user` for `ttl`.
pub fn put(key: CacheKey, user: u32, now: Instant, ttl: Duration) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CAPACITY && !c.contains_key(&key) {
            c.retain(|_, &mut (_, expires)| now < expires);
            if c.len() >= CAPACITY {
                if let Some(&victim) = c.keys().next() {
                    c.remove(&victim);
                }
            }
        }
        c.insert(key, (user, now + ttl));
    })
}

/// Entries held by this thread's cache (tests).
pub fn len() -> usize {
    CACHE.with(|c| c.borrow().len())
}
