//! Per-worker pool of idle keep-alive upstream connections.
//!
//! Storage is one `Slab` of idle connections; each endpoint keeps a LIFO list
//! of slab keys (the most recently used connection is the warmest and the
//! least likely to have been closed by the upstream). A connection idle for
//! longer than the cluster's `idle_timeout` is dropped (closed) when found.
//! The pool is owned by one worker; nothing here is `Send`.

use std::time::{Duration, Instant};

use slab::Slab;

use super::stream::UpstreamStream;
use crate::config::Config;

/// An endpoint across all clusters: the index into the pool's per-endpoint
/// lists (`cluster base + endpoint index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointId(pub usize);

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
}

impl UpstreamPool {
    pub fn new(config: &Config) -> Self {
        let mut pool = UpstreamPool {
            slots: Slab::new(),
            idle: Vec::new(),
            max_idle: Vec::new(),
            idle_timeout: Vec::new(),
            cluster_base: Vec::with_capacity(config.clusters.len()),
        };
        for cluster in &config.clusters {
            pool.cluster_base.push(pool.idle.len());
            for _ in &cluster.endpoints {
                pool.idle.push(Vec::new());
                pool.max_idle.push(cluster.max_idle_per_endpoint);
                pool.idle_timeout.push(cluster.idle_timeout);
            }
        }
        pool
    }

    pub fn endpoint_id(&self, cluster: usize, endpoint: usize) -> EndpointId {
        EndpointId(self.cluster_base[cluster] + endpoint)
    }

    /// The warmest idle connection to `ep` that has not outlived its idle
    /// timeout, if any.
    pub fn checkout(&mut self, ep: EndpointId) -> Option<UpstreamStream> {
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

    /// Return a reusable connection. Dropped (closed) when the endpoint
    /// already keeps `max_idle_per_endpoint` connections.
    pub fn checkin(&mut self, ep: EndpointId, stream: UpstreamStream) {
        let list = &mut self.idle[ep.0];
        if list.len() >= self.max_idle[ep.0] {
            // Keep the newest: drop the oldest one instead.
            if list.is_empty() {
                return;
            }
            let oldest = list.remove(0);
            self.slots.remove(oldest);
        }
        let key = self.slots.insert(IdleConn {
            stream,
            since: Instant::now(),
        });
        self.idle[ep.0].push(key);
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

    /// Drop every idle connection (drain).
    pub fn clear(&mut self) {
        for list in &mut self.idle {
            list.clear();
        }
        self.slots.clear();
    }
}
