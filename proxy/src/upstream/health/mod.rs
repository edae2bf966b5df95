//! Active health checks (`health_check` on a `[[cluster]]`): one process-
//! wide checker, results published to every worker.
//!
//! # Architecture
//! ```text
//! ringway-health thread (its own small monoio runtime, epoll driver):
//!   every tick: the current configuration → for each endpoint of each
//!   cluster with a health_check, when its next check is due, a task:
//!   connect (the cluster's TLS / PROXY settings) → GET path → status
//!   → consecutive passes / failures → HealthCell.healthy (atomic)
//!
//! workers: pick an endpoint (upstream::lb) → unhealthy? pick again, then
//!   the next healthy one; fewer healthy than panic_threshold % → use all
//! ```
//! - A [`HealthCell`] per (cluster name, endpoint) lives in the process-wide
//!   [`registry`]: every configuration generation that has the same cluster
//!   and endpoint gets the same cell, so health survives a reload and a new
//!   endpoint starts healthy (it takes `unhealthy_threshold` failed checks
//!   to leave the rotation, `healthy_threshold` passes to come back).
//! - Workers only read the cells (one relaxed atomic load per pick of a
//!   cluster with checks); the checker is the only writer. No lock on the
//!   request path; the registry's mutex is taken when a generation is built
//!   and by the checker, never by a worker.
//! - Checks run once per process, not once per worker; each is bounded by
//!   its `timeout`, and checks of different endpoints run concurrently.

pub mod check;
pub mod checker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::{ClusterConfig, Config};

/// The health of one endpoint, shared by the checker (writer) and the
/// workers (readers).
#[derive(Debug)]
pub struct HealthCell {
    healthy: AtomicBool,
    /// Consecutive passes (while unhealthy) or failures (while healthy).
    streak: AtomicU32,
    pub passes: AtomicU64,
    pub failures: AtomicU64,
    /// Status of the last check (0: no answer).
    pub last_status: AtomicU16,
    /// Times the endpoint left the rotation.
    pub transitions_down: AtomicU64,
}

impl Default for HealthCell {
    fn default() -> Self {
        HealthCell {
            healthy: AtomicBool::new(true),
            streak: AtomicU32::new(0),
            passes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_status: AtomicU16::new(0),
            transitions_down: AtomicU64::new(0),
        }
    }
}

impl HealthCell {
    #[inline]
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Fold one check result in (checker only); `Some(new state)` when the
    /// endpoint changed state.
    pub fn record(
        &self,
        passed: bool,
        status: u16,
        healthy_after: u32,
        unhealthy_after: u32,
    ) -> Option<bool> {
        self.last_status.store(status, Ordering::Relaxed);
        if passed {
            self.passes.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let healthy = self.is_healthy();
        if passed == healthy {
            // The state holds: no streak toward a change.
            self.streak.store(0, Ordering::Relaxed);
            return None;
        }
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        let needed = if healthy {
            unhealthy_after
        } else {
            healthy_after
        };
        if streak >= needed {
            self.streak.store(0, Ordering::Relaxed);
            self.healthy.store(!healthy, Ordering::Relaxed);
            if healthy {
                self.transitions_down.fetch_add(1, Ordering::Relaxed);
            }
            return Some(!healthy);
        }
        None
    }
}

/// The cells of one cluster's endpoints, in endpoint order.
#[derive(Debug)]
pub struct ClusterHealth {
    pub cells: Box<[Arc<HealthCell>]>,
}

impl ClusterHealth {
    #[inline]
    pub fn is_healthy(&self, endpoint: usize) -> bool {
        self.cells.get(endpoint).is_none_or(|c| c.is_healthy())
    }

    pub fn healthy_count(&self) -> usize {
        self.cells.iter().filter(|c| c.is_healthy()).count()
    }
}

/// Cells by (cluster name, endpoint label).
#[derive(Default)]
pub struct Registry {
    cells: Mutex<HashMap<(String, String), Arc<HealthCell>>>,
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    /// The cells of `cluster` (None when it has no health check).
    pub fn cluster(&self, cluster: &ClusterConfig) -> Option<Arc<ClusterHealth>> {
        cluster.health_check.as_ref()?;
        let mut map = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let cells = cluster
            .endpoints
            .iter()
            .map(|e| {
                map.entry((cluster.name.clone(), e.label.clone()))
                    .or_default()
                    .clone()
            })
            .collect();
        Some(Arc::new(ClusterHealth { cells }))
    }

    /// Per cluster of `config`: its cells.
    pub fn for_config(&self, config: &Config) -> Vec<Option<Arc<ClusterHealth>>> {
        config.clusters.iter().map(|c| self.cluster(c)).collect()
    }

    /// Forget cells no configuration uses any more (called by the checker
    /// with the current one).
    pub fn retain(&self, config: &Config) {
        let mut map = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(cluster, label), _| {
            config.clusters.iter().any(|c| {
                c.name == *cluster
                    && c.health_check.is_some()
                    && c.endpoints.iter().any(|e| e.label == *label)
            })
        });
    }
}

#[cfg(test)]
mod tests;
