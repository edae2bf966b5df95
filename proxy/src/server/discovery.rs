//! The `ringway-discovery` thread: watches every cluster's `endpoints_file`
//! (`config::discovery`) and applies a change the way a reload does.
//!
//! Every `[reload] interval` (default 1 s) it reads the list of endpoints
//! files from the configuration in force and polls each one (modification
//! time, size, content hash, as `watch.rs` does for the config file). A
//! file that changed and then stayed the same for one more interval
//! triggers a reload: the configuration is built again, reading the
//! endpoints files, and published to every worker (new requests go to the
//! new set; requests in flight finish on theirs; idle pooled connections of
//! removed endpoints are closed). A file that does not parse is refused
//! like a bad config file: the running endpoint set stays, the problem is
//! logged. Because it is a reload, changes made to the config file itself
//! and not yet applied are applied too.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::reload::Control;
use super::watch::fingerprint;
use crate::config::Config;

type Print = Option<(SystemTime, u64, u64)>;

/// Start the thread; it ends when `stop` is set.
pub fn spawn(
    control: Arc<Control>,
    current: Arc<dyn Fn() -> Arc<Config> + Send + Sync>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // The versions the running configuration was built from.
    let mut seen: HashMap<PathBuf, Print> = files(&current())
        .into_iter()
        .map(|f| {
            let p = fingerprint(&f);
            (f, p)
        })
        .collect();
    std::thread::Builder::new()
        .name("ringway-discovery".into())
        .spawn(move || {
            let mut pending: HashMap<PathBuf, Print> = HashMap::new();
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(interval);
                let mut due = Vec::new();
                for f in files(&current()) {
                    let now = fingerprint(&f);
                    let known = seen.entry(f.clone()).or_insert_with(|| now);
                    if *known == now {
                        pending.remove(&f);
                        continue;
                    }
                    // Changed: apply once it stays the same for an interval.
                    if pending.get(&f) != Some(&now) {
                        pending.insert(f.clone(), now);
                        continue;
                    }
                    pending.remove(&f);
                    *known = now;
                    due.push(f);
                }
                if due.is_empty() {
                    continue;
                }
                let names: Vec<String> = due.iter().map(|f| f.display().to_string()).collect();
                tracing::info!(files = %names.join(", "), "endpoints file changed: applying");
                match control.reload() {
                    Ok(r) => println!("ringway: endpoints from {} applied: {r}", names.join(", ")),
                    Err(e) => {
                        tracing::error!("endpoints file {} refused:\n{e}", names.join(", "));
                        eprintln!("{e}");
                    }
                }
            }
        })
}

/// The endpoints files the configuration reads.
fn files(config: &Config) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for c in &config.clusters {
        if let Some(f) = &c.endpoints_file {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
    }
    out
}
