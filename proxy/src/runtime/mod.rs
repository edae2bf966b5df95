//! Thread-per-core runtime: one pinned worker thread per core, each with its
//! own monoio runtime and io_uring ring, its own `SO_REUSEPORT` listener
//! sockets, its own upstream pools and buffers.
//!
//! # Architecture
//! This module is the core the request path stands on: the driver (ring
//! setup), the long-lived per-core state (`worker::Worker`: pool, buffers,
//! deadlines, drain flag), local notifications and the shutdown flag. It
//! imports nothing from the pipeline; the process orchestration (binding,
//! starting workers, signals, reload) is `crate::server`. Workers never
//! share mutable state: per-core state is `!Send` (`Rc`, `Cell`, `RefCell`,
//! `Slab`); across threads there are only immutable snapshots
//! (`Arc<Snapshot>`), single-writer atomics and the shutdown flag.
//!
//! # Shutdown
//! SIGTERM or SIGINT: the main thread sets the flag; each worker stops
//! accepting (closes its listener sockets), closes idle keep-alive
//! connections, lets in-flight requests finish (their responses carry
//! `Connection: close`) for up to `drain_timeout`, then returns. The process
//! exits 0 when every worker is done.

pub mod alloc;
pub mod driver;
pub mod free_list;
pub mod memory;
pub mod notify;
pub mod ring_features;
pub mod shutdown;
pub mod summary;
pub mod watchdog;
pub mod worker;

use crate::config::Config;

/// The CPU each worker is pinned to.
pub fn pin_plan(config: &Config) -> Vec<Option<core_affinity::CoreId>> {
    let online = core_affinity::get_core_ids().unwrap_or_default();
    (0..config.runtime.workers)
        .map(|i| {
            if config.runtime.cores.is_empty() {
                if online.is_empty() {
                    None
                } else {
                    Some(online[i % online.len()])
                }
            } else {
                let cores = &config.runtime.cores;
                Some(core_affinity::CoreId {
                    id: cores[i % cores.len()],
                })
            }
        })
        .collect()
}
