//! etcd discovery and self-registration (etcd v3, through its HTTP/JSON
//! gateway).
//!
//! # Architecture
//! `[etcd] endpoints = ["http://127.0.0.1:2379"]` names the etcd cluster; a
//! cluster with `etcd = { prefix = "/services/orders/" }` takes its
//! endpoints from the keys under the prefix, one endpoint per key, each
//! value a JSON object:
//! ```json
//! {"address": "10.0.0.7:8080", "weight": 2, "zone": "a", "metadata": {"version": "v2"}}
//! ```
//! (only `address` is required).
//!
//! * [`client`]: a small blocking HTTP/1.1 client (range, watch, lease).
//! * [`store`]: the process-wide set of every watched prefix (a mutexed
//!   map, read by the configuration build, written by the watchers; not on
//!   the request path).
//! * `server::etcd`: the `ringway-etcd` threads, one watcher per prefix
//!   (a change updates the store, then a reload publishes it: new
//!   connections go to the new set, requests in flight finish, idle pooled
//!   connections to removed endpoints are closed) and the registration
//!   (`[etcd.register]`: a key under a lease, kept alive, revoked on a
//!   clean shutdown).
//!
//! # Errors
//! A value that does not parse is skipped with a warning naming its key;
//! the other endpoints of the prefix stay. The first build of a prefix
//! reads it from etcd: unreachable etcd then is a configuration error
//! naming `cluster[i].etcd` (as an unanswered DNS name is), so `ringway
//! run` does not start and a reload that adds the prefix is refused. Once
//! read, the prefix's last known set is kept whatever happens to etcd.

pub mod client;
pub mod store;

#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;

pub use client::{EtcdClient, EtcdUrl};

/// `[etcd]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdConfig {
    pub client: EtcdClient,
    /// `[etcd.register]`: this process's own key.
    pub register: Option<Registration>,
}

/// `[etcd.register]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub key: String,
    /// The JSON value put under `key` (the endpoint format).
    pub value: String,
    pub lease_ttl: Duration,
}

/// One endpoint read from etcd (the address still as written).
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdEndpoint {
    pub address: String,
    pub weight: u32,
    pub zone: Option<String>,
    /// The `metadata` object, shown by the admin API.
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// Largest weight (as for endpoints in the file).
const MAX_WEIGHT: i64 = 1000;

/// Parse one value under a prefix.
pub fn parse_endpoint(value: &[u8]) -> Result<EtcdEndpoint, String> {
    let v: Value = serde_json::from_slice(value).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(o) = v else {
        return Err("expected a JSON object {\"address\": \"host:port\", ...}".into());
    };
    for k in o.keys() {
        if !matches!(k.as_str(), "address" | "weight" | "zone" | "metadata") {
            return Err(format!(
                "unknown key {k:?} (address, weight, zone, metadata)"
            ));
        }
    }
    let address = o
        .get("address")
        .and_then(Value::as_str)
        .filter(|a| !a.trim().is_empty())
        .ok_or("no \"address\" string")?
        .trim()
        .to_owned();
    let weight = match o.get("weight") {
        None => 1,
        Some(w) => match w.as_i64() {
            Some(n) if (1..=MAX_WEIGHT).contains(&n) => n as u32,
            _ => return Err(format!("\"weight\" must be an integer 1..={MAX_WEIGHT}")),
        },
    };
    let zone = match o.get("zone") {
        None | Some(Value::Null) => None,
        Some(Value::String(z)) => Some(z.clone()),
        Some(_) => return Err("\"zone\" is not a string".into()),
    };
    let metadata = match o.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err("\"metadata\" is not an object".into()),
    };
    Ok(EtcdEndpoint {
        address,
        weight,
        zone,
        metadata,
    })
}

/// What the etcd threads counted (shown by `/stats` and `/metrics` when
/// `[etcd]` is configured).
#[derive(Debug, Default)]
pub struct Counters {
    /// Watch streams opened again after one broke.
    pub watch_reconnects: AtomicU64,
    /// Fresh ranges because the watched revision was compacted.
    pub compactions: AtomicU64,
    /// Watch events received.
    pub events: AtomicU64,
    /// Endpoint set changes applied (reloads that succeeded).
    pub updates_applied: AtomicU64,
    /// Changes whose reload was refused.
    pub updates_refused: AtomicU64,
    /// Values skipped because they did not parse.
    pub malformed_values: AtomicU64,
    /// Leases granted and the key put under them.
    pub registrations: AtomicU64,
    /// Keepalives that failed (etcd unreachable or the lease lost).
    pub keepalive_failures: AtomicU64,
}

static COUNTERS: Counters = Counters {
    watch_reconnects: AtomicU64::new(0),
    compactions: AtomicU64::new(0),
    events: AtomicU64::new(0),
    updates_applied: AtomicU64::new(0),
    updates_refused: AtomicU64::new(0),
    malformed_values: AtomicU64::new(0),
    registrations: AtomicU64::new(0),
    keepalive_failures: AtomicU64::new(0),
};

pub fn counters() -> &'static Counters {
    &COUNTERS
}
