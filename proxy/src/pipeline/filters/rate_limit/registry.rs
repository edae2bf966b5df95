//! [`Registry`]: limiter state that outlives a configuration generation.
//!
//! ringway rebuilds every filter on every reload. A limiter whose identity
//! (route, key spec, rate, …) did not change must keep counting where it
//! was, so `build` asks the registry for its state by identity: while the
//! old generation is alive (it is until the new one is published), the
//! registry hands out the same `Arc`. Entries are `Weak`: state no
//! generation uses is freed, and its entry pruned on the next lookup.
//!
//! Used only while a configuration is built (on the main thread), never on
//! the request path: the `Mutex` is never contended by a worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Shared state by identity. See the module docs.
pub struct Registry<T> {
    entries: Mutex<Option<HashMap<String, Weak<T>>>>,
}

impl<T> Registry<T> {
    pub const fn new() -> Registry<T> {
        Registry {
            entries: Mutex::new(None),
        }
    }

    /// The live state registered as `identity`, or `make()` registered now.
    pub fn get_or_insert(&self, identity: String, make: impl FnOnce() -> T) -> Arc<T> {
        // A panic elsewhere while holding the lock leaves a usable map.
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        if let Some(live) = map.get(&identity).and_then(Weak::upgrade) {
            return live;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let state = Arc::new(make());
        map.insert(identity, Arc::downgrade(&state));
        state
    }

    /// Identities with live state (tests).
    pub fn live(&self) -> usize {
        let guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .map_or(0, |m| m.values().filter(|w| w.strong_count() > 0).count())
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry::new()
    }
}
