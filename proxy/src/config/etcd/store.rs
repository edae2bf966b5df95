//! The endpoints of every watched prefix, process-wide: written by the
//! first configuration build of a prefix (a synchronous range) and by its
//! watcher (`server::etcd`), read by every build. A mutexed map is enough:
//! builds and watchers are rare, and workers never look here (they get the
//! endpoints in their configuration snapshot).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, MutexGuard};

use super::client::{Event, Range, WatchMessage};
use super::{counters, parse_endpoint, EtcdClient, EtcdEndpoint};

/// What is known of one prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefixSet {
    /// The store revision the set is complete up to: a watch resumes at
    /// the next one.
    pub revision: i64,
    /// By key; values that did not parse are left out.
    pub endpoints: BTreeMap<String, EtcdEndpoint>,
}

type Key = (String, String);

static STORE: Mutex<BTreeMap<Key, PrefixSet>> = Mutex::new(BTreeMap::new());

fn lock() -> MutexGuard<'static, BTreeMap<Key, PrefixSet>> {
    STORE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The etcd cluster (its member list) and the prefix.
fn key(client: &EtcdClient, prefix: &str) -> Key {
    let members: Vec<String> = client.endpoints.iter().map(|u| u.to_string()).collect();
    (members.join(","), prefix.to_owned())
}

/// The endpoints under `prefix`, by key: the known set, else read from
/// etcd now (the first build of a prefix).
pub fn endpoints(client: &EtcdClient, prefix: &str) -> Result<Vec<(String, EtcdEndpoint)>, String> {
    let k = key(client, prefix);
    if let Some(s) = lock().get(&k) {
        return Ok(list(s));
    }
    let range = client.range_prefix(prefix)?;
    let set = from_range(&range);
    let mut store = lock();
    let s = store.entry(k).or_insert(set);
    Ok(list(s))
}

fn list(s: &PrefixSet) -> Vec<(String, EtcdEndpoint)> {
    s.endpoints
        .iter()
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect()
}

/// The revision the known set of `prefix` is complete up to.
pub fn revision(client: &EtcdClient, prefix: &str) -> Option<i64> {
    lock().get(&key(client, prefix)).map(|s| s.revision)
}

/// Replace the set of `prefix` with a fresh range; whether the endpoints
/// changed.
pub fn replace(client: &EtcdClient, prefix: &str, range: &Range) -> bool {
    let set = from_range(range);
    let mut store = lock();
    let slot = store.entry(key(client, prefix)).or_default();
    let changed = slot.endpoints != set.endpoints;
    *slot = set;
    changed
}

/// Apply a watch message's events to the set of `prefix`; whether the
/// endpoints changed.
pub fn apply(client: &EtcdClient, prefix: &str, m: &WatchMessage) -> bool {
    let mut store = lock();
    let slot = store.entry(key(client, prefix)).or_default();
    let mut changed = false;
    for e in &m.events {
        match e {
            Event::Put(kv) => match parse_endpoint(&kv.value) {
                Ok(ep) => {
                    if slot.endpoints.get(&kv.key) != Some(&ep) {
                        slot.endpoints.insert(kv.key.clone(), ep);
                        changed = true;
                    }
                }
                Err(m) => {
                    skipped(&kv.key, &m);
                    changed |= slot.endpoints.remove(&kv.key).is_some();
                }
            },
            Event::Delete(k) => changed |= slot.endpoints.remove(k).is_some(),
        }
    }
    slot.revision = slot.revision.max(m.last_event_revision);
    changed
}

/// Drop what is known of `prefix` (no longer configured).
pub fn forget(client: &EtcdClient, prefix: &str) {
    lock().remove(&key(client, prefix));
}

fn from_range(r: &Range) -> PrefixSet {
    let mut set = PrefixSet {
        revision: r.revision,
        endpoints: BTreeMap::new(),
    };
    for kv in &r.kvs {
        match parse_endpoint(&kv.value) {
            Ok(e) => {
                set.endpoints.insert(kv.key.clone(), e);
            }
            Err(m) => skipped(&kv.key, &m),
        }
    }
    set
}

/// A value that does not parse: logged, counted, left out.
pub fn skipped(key: &str, problem: &str) {
    counters().malformed_values.fetch_add(1, Relaxed);
    tracing::warn!(key, "etcd value skipped: {problem}");
    eprintln!("ringway: warning: etcd key {key:?} skipped: {problem}");
}
