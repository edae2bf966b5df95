//! Per-worker pool of idle keep-alive upstream connections.
//!
//! Storage is one `Slab` of idle connections; each endpoint keeps a LIFO list
//! of slab keys (the most recently used connection is the warmest and the
//! least likely to have been closed by the upstream). A connection idle for
//! longer than the cluster's `idle_timeout` is dropped (closed) when found.
//! The pool is owned by one worker; nothing here is `Send`.
//!
//! # Reload
//! Endpoints are identified across configuration generations by a
//! [`PoolKey`]: the address plus the cluster's TLS identity (server name and
//! TLS files). [`UpstreamPool::rekey`] lays the pool out for a new config:
//! idle connections of endpoints whose key is still there move to their new
//! slot (no reconnect); the others are closed. Connections in flight are not
//! in the pool: they come back with the `EndpointId` of their own generation
//! and are checked in only if that id still means the same key.

use std::time::{Duration, Instant};

use slab::Slab;

use super::stream::UpstreamStream;
use crate::config::{ClusterConfig, ClusterTlsFiles, Config};

/// What makes two endpoints interchangeable for pooling: same address, same
/// TLS identity (plain, or the same server name and TLS files).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub address: std::net::SocketAddr,
    pub tls: Option<(String, ClusterTlsFiles)>,
    /// The cluster sends a PROXY protocol header on its connections (they
    /// carry one client's address and are never pooled): such an endpoint
    /// never takes another cluster's idle connections.
    pub sends_proxy_header: bool,
}

impl PoolKey {
    pub fn of(cluster: &ClusterConfig, endpoint: usize) -> PoolKey {
        PoolKey {
            address: cluster.endpoints[endpoint].address,
            tls: cluster.tls.as_ref().map(|t| {
                (
                    format!("{:?}", t.server_name),
                    cluster.tls_files.clone().unwrap_or_default(),
                )
            }),
            sends_proxy_header: cluster.send_proxy_protocol.is_some(),
        }
    }
}

/// An endpoint across all clusters: the index into the pool's per-endpoint
/// lists (`cluster base + endpoint index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointId(pub usize, pub u64);

struct IdleConn {
    stream: UpstreamStream,
    since: Instant,
}

/// Idle upstream connections of one worker.
pub struct UpstreamPool {
    slots: Slab<IdleConn>,
    /// Per endpoint: slab keys, oldest first.
    idle: Vec<Vec<usize>>,
    /// Per endpoint: most idle connections kept.
    max_idle: Vec<usize>,
    /// Per endpoint: idle lifetime.
    idle_timeout: Vec<Duration>,
    /// Per cluster: index of its first endpoint.
    cluster_base: Vec<usize>,
    /// Per endpoint: its key (to carry idle connections over a reload).
    keys: Vec<PoolKey>,
    /// Bumped by every `rekey`: an `EndpointId` is only valid in the layout
    /// it was taken from (or the one before, through `prev_keys`).
    layout: u64,
    /// The keys of the previous layout, to file connections that were in
    /// flight across a reload.
    prev_keys: Vec<PoolKey>,
}

impl UpstreamPool {
    pub fn new(config: &Config) -> Self {
        let mut pool = UpstreamPool {
            slots: Slab::new(),
            idle: Vec::new(),
            max_idle: Vec::new(),
            idle_timeout: Vec::new(),
            cluster_base: Vec::new(),
            keys: Vec::new(),
            layout: 0,
            prev_keys: Vec::new(),
        };
        pool.rekey(config);
        pool
    }

    /// Lay the pool out for `config`. Idle connections of endpoints whose
    /// [`PoolKey`] is in the new layout are kept (the first endpoint with
    /// that key gets them); the others are closed. Returns how many idle
    /// connections were kept.
    pub fn rekey(&mut self, config: &Config) -> usize {
        let mut old: std::collections::HashMap<PoolKey, Vec<usize>> =
            std::collections::HashMap::new();
        self.prev_keys = self.keys.clone();
        for (key, list) in self.keys.drain(..).zip(self.idle.drain(..)) {
            old.entry(key).or_default().extend(list);
        }
        self.max_idle.clear();
        self.idle_timeout.clear();
        self.cluster_base.clear();
        for cluster in &config.clusters {
            self.cluster_base.push(self.idle.len());
            for e in 0..cluster.endpoints.len() {
                let key = PoolKey::of(cluster, e);
                let mut list = old.remove(&key).unwrap_or_default();
                // Keep the warmest (the list is oldest first).
                let extra = list.len().saturating_sub(cluster.max_idle_per_endpoint);
                list.drain(..extra);
                self.idle.push(list);
                self.keys.push(key);
                self.max_idle.push(cluster.max_idle_per_endpoint);
                self.idle_timeout.push(cluster.idle_timeout);
            }
        }
        // Whatever no endpoint took is closed.
        let kept: std::collections::HashSet<usize> = self.idle.iter().flatten().copied().collect();
        let gone: Vec<usize> = self
            .slots
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !kept.contains(k))
            .collect();
        for k in gone {
            self.slots.remove(k);
        }
        self.layout += 1;
        kept.len()
    }

    pub fn endpoint_id(&self, cluster: usize, endpoint: usize) -> EndpointId {
        EndpointId(self.cluster_base[cluster] + endpoint, self.layout)
    }

    /// The warmest idle connection to `ep` that has not outlived its idle
    /// timeout, if any. Checked against the precise clock: with `checkin`'s
    /// coarse stamp a connection can only look older than it is, never
    /// younger, so none is used past its timeout.
    pub fn checkout(&mut self, ep: EndpointId) -> Option<UpstreamStream> {
        if ep.1 != self.layout {
            return None;
        }
        let timeout = self.idle_timeout[ep.0];
        let now = Instant::now();
        while let Some(key) = self.idle[ep.0].pop() {
            let conn = self.slots.remove(key);
            if now.duration_since(conn.since) < timeout {
                return Some(conn.stream);
            }
            // Too old: dropping it closes it.
        }
        None
    }

    /// Return a reusable connection, idle from `now`. Dropped (closed) when
    /// the endpoint already keeps `max_idle_per_endpoint` connections. `now`
    /// may be the worker's coarse clock (the watchdog's, behind the real
    /// time): the connection then looks older than it is and is closed up
    /// to a tick early, never late.
    pub fn checkin(&mut self, ep: EndpointId, stream: UpstreamStream, now: Instant) {
        // Taken under the previous layout (a reload happened while the
        // request was in flight): filed under the endpoint with the same
        // key, or closed when there is none.
        let ep = if ep.1 == self.layout {
            ep
        } else if ep.1 + 1 == self.layout {
            let Some(key) = self.prev_keys.get(ep.0) else {
                return;
            };
            match self.keys.iter().position(|k| k == key) {
                Some(i) => EndpointId(i, self.layout),
                None => return,
            }
        } else {
            return;
        };
        let list = &mut self.idle[ep.0];
        if list.len() >= self.max_idle[ep.0] {
            // Keep the newest: drop the oldest one instead.
            if list.is_empty() {
                return;
            }
            let oldest = list.remove(0);
            self.slots.remove(oldest);
        }
        stream.went_idle();
        let key = self.slots.insert(IdleConn { stream, since: now });
        self.idle[ep.0].push(key);
    }

    /// Close the least recently used idle connection of `cluster`'s
    /// endpoints (room under `max_connections`); whether there was one.
    pub fn evict_one(&mut self, cluster: usize) -> bool {
        let Some(&start) = self.cluster_base.get(cluster) else {
            return false;
        };
        let end = self
            .cluster_base
            .get(cluster + 1)
            .copied()
            .unwrap_or(self.idle.len());
        let oldest = (start..end)
            .filter_map(|ep| self.idle[ep].first().map(|&k| (self.slots[k].since, ep)))
            .min();
        match oldest {
            Some((_, ep)) => {
                let key = self.idle[ep].remove(0);
                self.slots.remove(key);
                true
            }
            None => false,
        }
    }

    /// Close every idle connection older than its timeout.
    pub fn sweep(&mut self) {
        let now = Instant::now();
        for (ep, list) in self.idle.iter_mut().enumerate() {
            let timeout = self.idle_timeout[ep];
            let slots = &mut self.slots;
            list.retain(|&key| {
                let fresh = now.duration_since(slots[key].since) < timeout;
                if !fresh {
                    slots.remove(key);
                }
                fresh
            });
        }
    }

    /// Idle connections held, all endpoints.
    pub fn idle_count(&self) -> usize {
        self.slots.len()
    }

    /// Idle connections held for the endpoint with `key`.
    pub fn idle_for(&self, key: &PoolKey) -> usize {
        self.keys
            .iter()
            .zip(&self.idle)
            .filter(|(k, _)| *k == key)
            .map(|(_, l)| l.len())
            .sum()
    }

    /// Drop every idle connection (drain).
    pub fn clear(&mut self) {
        for list in &mut self.idle {
            list.clear();
        }
        self.slots.clear();
    }
}
