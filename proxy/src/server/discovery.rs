//! The `ringway-discovery` thread: watches every cluster's `endpoints_file`
//! (`config::discovery`) and every TLS listener's certificate, `client_ca`
//! and `crl` files, and re-resolves every cluster's `dns`
//! (`config::dns`) when its TTL runs out, and applies a change the way a
//! reload does.
//!
//! DNS: each cluster's answer is kept for its TTL (within `min_ttl` and
//! `max_ttl`); then the name is resolved again, and when the set of
//! addresses (or SRV weights) differs from the endpoints in force, a
//! reload rebuilds the configuration (which resolves again) and publishes
//! it. A failed lookup keeps the running set and is retried after
//! `min_ttl`.
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
use std::time::{Duration, Instant, SystemTime};

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
            // DNS clusters: when each is resolved again.
            let mut dns_next: HashMap<String, Instant> = HashMap::new();
            let mut files_checked = Instant::now();
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(interval.min(Duration::from_millis(250)));
                if let Some(changed) = dns_changes(&current(), &mut dns_next) {
                    tracing::info!(clusters = %changed, "DNS answer changed: applying");
                    match control.reload() {
                        Ok(r) => println!("ringway: endpoints from DNS ({changed}) applied: {r}"),
                        Err(e) => {
                            tracing::error!("DNS endpoints of {changed} refused:\n{e}");
                            eprintln!("{e}");
                        }
                    }
                }
                // Endpoints files: every `interval`.
                if files_checked.elapsed() < interval {
                    continue;
                }
                files_checked = Instant::now();
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

/// Resolve the DNS clusters whose answer expired; the names of those whose
/// endpoints changed (comma-separated), if any.
fn dns_changes(config: &Config, next: &mut HashMap<String, Instant>) -> Option<String> {
    let now = Instant::now();
    let mut changed = Vec::new();
    for c in &config.clusters {
        let Some(q) = &c.dns else { continue };
        let due = next.entry(c.name.clone()).or_insert(now + q.min_ttl);
        if now < *due {
            continue;
        }
        match crate::config::dns::resolve(q) {
            Ok((found, ttl)) => {
                *due = now + ttl;
                let mut current: Vec<(std::net::SocketAddr, u32)> =
                    c.endpoints.iter().map(|e| (e.address, e.weight)).collect();
                current.sort();
                if current != found {
                    changed.push(c.name.clone());
                }
            }
            Err(e) => {
                *due = now + q.min_ttl;
                tracing::warn!(cluster = %c.name, "DNS lookup failed (endpoints kept): {e}");
            }
        }
    }
    next.retain(|name, _| {
        config
            .clusters
            .iter()
            .any(|c| &c.name == name && c.dns.is_some())
    });
    (!changed.is_empty()).then(|| changed.join(", "))
}

/// The endpoints files the configuration reads, and its listeners'
/// certificate files, client CA bundles and CRLs (a changed one is applied
/// like a changed endpoint list: new connections get the new certificate or
/// are verified against the new bundle).
fn files(config: &Config) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut add = |f: &PathBuf| {
        if !out.contains(f) {
            out.push(f.clone());
        }
    };
    for c in &config.clusters {
        if let Some(f) = &c.endpoints_file {
            add(f);
        }
        // Upstream TLS: a rotated client certificate or CA is used by new
        // connections; pooled ones made under the old files are closed
        // (their pool key holds the files' fingerprint).
        if let Some(t) = &c.tls_files {
            t.ca.iter().chain(&t.cert).chain(&t.key).for_each(&mut add);
        }
    }
    for l in &config.listeners {
        if let Some(t) = &l.tls_files {
            t.client_ca.iter().chain(&t.crl).for_each(&mut add);
            // The listener's own certificates: a rotated file is served to
            // new connections without a signal.
            t.cert.iter().chain(&t.key).for_each(&mut add);
            for sni in &t.sni {
                add(&sni.cert);
                add(&sni.key);
            }
        }
    }
    out
}
