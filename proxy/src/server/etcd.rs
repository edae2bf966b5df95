//! The `ringway-etcd` threads: a watcher per configured prefix, and the
//! registration of this process (`[etcd.register]`).
//!
//! # Watch
//! The supervisor (`ringway-etcd`) reads the configuration in force every
//! 250 ms and keeps one watcher thread (`ringway-etcd-watch`) per
//! (etcd cluster, prefix) in it. A watcher resumes from the revision the
//! store's set is complete up to (the first build's range made it):
//! `POST /v3/watch` with `start_revision` = that revision (its own events,
//! already applied, come again and change nothing; every later one is
//! seen, and a compaction past it cancels the watch instead of silently
//! dropping a delete), then applies each event batch to the store (`config::etcd::store`) and tells the
//! supervisor, which waits until the changes stop for 100 ms (at most
//! 1 s) and reloads: the build reads the new sets from the store and the
//! workers get them as a new generation.
//!
//! A broken watch (etcd restarted, connection reset, 60 s without a
//! message) is opened again with a doubling backoff (100 ms to 5 s) from
//! the last applied revision, so nothing written meanwhile is missed.
//! A compacted start revision, or an etcd whose revision went back (its
//! data was lost), means a fresh range that replaces the set. While etcd
//! is unreachable the last known set stays in force.
//!
//! # Registration
//! `ringway-etcd-register` grants a lease of `lease_ttl`, puts the key with
//! it and renews it every third of the TTL. A keepalive that finds the
//! lease gone (etcd lost it, or it expired while etcd was unreachable)
//! grants a new lease and puts the key again. On a clean shutdown (the
//! start of the drain) the lease is revoked, which deletes the key at
//! once. The registration follows reloads (a changed `[etcd.register]`
//! revokes the old lease and registers again).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::reload::Control;
use crate::config::etcd::{counters, store, EtcdClient, Registration};
use crate::config::Config;

/// A watch silent this long is opened again (a member that hangs rather
/// than closing the connection).
const WATCH_IDLE: Duration = Duration::from_secs(60);
/// Changes are applied once none came for this long...
const DEBOUNCE: Duration = Duration::from_millis(100);
/// ... or this long after the first.
const DEBOUNCE_MAX: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

type Current = Arc<dyn Fn() -> Arc<Config> + Send + Sync>;

/// Start the supervisor; it ends (with its watchers) when `stop` is set.
pub fn spawn_watchers(
    control: Arc<Control>,
    current: Current,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringway-etcd".into())
        .spawn(move || supervise(&control, &current, &stop))
}

struct Watcher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    client: EtcdClient,
    prefix: String,
}

fn supervise(control: &Control, current: &Current, stop: &AtomicBool) {
    let (tx, rx) = channel::<String>();
    let mut watchers: HashMap<String, Watcher> = HashMap::new();
    while !stop.load(Ordering::Acquire) {
        reconcile(&current(), &mut watchers, &tx);
        let first = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(p) => p,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut changed = vec![first];
        let started = Instant::now();
        while started.elapsed() < DEBOUNCE_MAX {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(p) => {
                    if !changed.contains(&p) {
                        changed.push(p)
                    }
                }
                Err(_) => break,
            }
        }
        let names = changed.join(", ");
        tracing::info!(prefixes = %names, "etcd endpoints changed: applying");
        match control.reload() {
            Ok(r) => {
                counters().updates_applied.fetch_add(1, Relaxed);
                println!("ringway: endpoints from etcd ({names}) applied: {r}");
            }
            Err(e) => {
                counters().updates_refused.fetch_add(1, Relaxed);
                tracing::error!("etcd endpoints of {names} refused:\n{e}");
                eprintln!("{e}");
            }
        }
    }
    for (_, w) in watchers.drain() {
        w.stop.store(true, Ordering::Release);
        let _ = w.thread.join();
    }
}

/// Start a watcher for every prefix of `config` without one; stop those
/// no longer configured.
fn reconcile(config: &Config, watchers: &mut HashMap<String, Watcher>, tx: &Sender<String>) {
    let Some(etcd) = &config.etcd else {
        for (_, w) in watchers.drain() {
            w.stop.store(true, Ordering::Release);
            store::forget(&w.client, &w.prefix);
        }
        return;
    };
    let client = &etcd.client;
    let id = |prefix: &str| format!("{:?} {prefix}", client.endpoints);
    let wanted: Vec<&String> = config
        .clusters
        .iter()
        .filter_map(|c| c.etcd.as_ref())
        .collect();
    watchers.retain(|k, w| {
        let keep = wanted.iter().any(|p| id(p) == *k) && !w.thread.is_finished();
        if !keep {
            w.stop.store(true, Ordering::Release);
            store::forget(&w.client, &w.prefix);
        }
        keep
    });
    for prefix in wanted {
        let k = id(prefix);
        if watchers.contains_key(&k) {
            continue;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (c, p, s, t) = (client.clone(), prefix.clone(), stop.clone(), tx.clone());
        match std::thread::Builder::new()
            .name("ringway-etcd-watch".into())
            .spawn(move || watch(&c, &p, &s, &t))
        {
            Ok(thread) => {
                watchers.insert(
                    k,
                    Watcher {
                        stop,
                        thread,
                        client: client.clone(),
                        prefix: prefix.clone(),
                    },
                );
            }
            Err(e) => tracing::error!(prefix, "cannot start an etcd watcher: {e}"),
        }
    }
}

/// Sleep `d` in short steps; false when `stop` was set.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    !stop.load(Ordering::Acquire)
}

/// Read `prefix` afresh into the store; tell the supervisor when it
/// changed.
fn refresh(client: &EtcdClient, prefix: &str, tx: &Sender<String>) -> Result<(), String> {
    let r = client.range_prefix(prefix)?;
    if store::replace(client, prefix, &r) {
        let _ = tx.send(prefix.to_owned());
    }
    Ok(())
}

/// One prefix's watcher.
fn watch(client: &EtcdClient, prefix: &str, stop: &AtomicBool, tx: &Sender<String>) {
    let mut backoff = BACKOFF_MIN;
    // The last problem logged (an outage is logged once, not per attempt).
    let mut broken: Option<String> = None;
    // Whether the next watch replaces a broken one (counted); a quiet
    // one reopened after WATCH_IDLE is not.
    let mut after_break = false;
    while !stop.load(Ordering::Acquire) {
        let from = match store::revision(client, prefix) {
            Some(r) => r,
            None => {
                if let Err(e) = refresh(client, prefix, tx) {
                    note_broken(&mut broken, prefix, &e);
                    if !pause(backoff, stop) {
                        return;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                continue;
            }
        };
        // From the last applied revision itself, not the next one: its
        // events come again (applying them again changes nothing), and a
        // compaction of any revision after it cancels the watch. (Watching
        // from exactly the compacted revision is allowed, but a delete at
        // that revision is gone with the compaction.)
        let mut w = match client.watch(prefix, from) {
            Ok(w) => w,
            Err(e) => {
                after_break = true;
                note_broken(&mut broken, prefix, &e);
                if !pause(backoff, stop) {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if std::mem::take(&mut after_break) {
            counters().watch_reconnects.fetch_add(1, Relaxed);
        }
        let mut last_message = Instant::now();
        let problem = loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let m = match w.next(Duration::from_millis(250)) {
                Ok(Some(m)) => m,
                Ok(None) if last_message.elapsed() > WATCH_IDLE => {
                    break None;
                }
                Ok(None) => continue,
                Err(e) => break Some(e),
            };
            last_message = Instant::now();
            if m.created {
                if broken.take().is_some() {
                    tracing::info!(prefix, after = from, "etcd watch resumed");
                    println!("ringway: etcd watch on {prefix} resumed after revision {from}");
                }
                backoff = BACKOFF_MIN;
                // etcd's history went back (its data was lost): what we
                // hold is from another history.
                if m.revision != 0 && m.revision < from {
                    tracing::warn!(prefix, "etcd revision went back: reading the prefix again");
                    break refresh(client, prefix, tx).err();
                }
            }
            if m.canceled {
                if m.compact_revision > 0 {
                    counters().compactions.fetch_add(1, Relaxed);
                    tracing::info!(
                        prefix,
                        "etcd revisions after {from} compacted: reading the prefix again"
                    );
                    break refresh(client, prefix, tx).err();
                }
                break Some(format!("watch canceled: {}", m.cancel_reason));
            }
            if !m.events.is_empty() {
                counters().events.fetch_add(m.events.len() as u64, Relaxed);
                if store::apply(client, prefix, &m) {
                    let _ = tx.send(prefix.to_owned());
                }
            }
        };
        if let Some(e) = problem {
            after_break = true;
            note_broken(&mut broken, prefix, &e);
            if !pause(backoff, stop) {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

fn note_broken(broken: &mut Option<String>, prefix: &str, problem: &str) {
    if broken.is_none() {
        tracing::warn!(
            prefix,
            "etcd watch broken (endpoints kept, retrying): {problem}"
        );
        eprintln!("ringway: etcd watch on {prefix} broken (endpoints kept, retrying): {problem}");
    }
    *broken = Some(problem.to_owned());
}

/// Start the registration thread; on `stop` it revokes the lease and ends.
pub fn spawn_registration(
    current: Current,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringway-etcd-register".into())
        .spawn(move || register(&current, &stop))
}

/// A registration in force.
struct Lease {
    client: EtcdClient,
    reg: Registration,
    id: i64,
    renewed: Instant,
    tried: Instant,
}

fn register(current: &Current, stop: &AtomicBool) {
    let mut lease: Option<Lease> = None;
    let mut backoff = BACKOFF_MIN;
    let mut next_try = Instant::now();
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        let config = current();
        let wanted = config
            .etcd
            .as_ref()
            .and_then(|e| Some((e.client.clone(), e.register.clone()?)));
        // Changed or removed by a reload: leave under the old key.
        if let Some(l) = &lease {
            if wanted
                .as_ref()
                .is_none_or(|(c, r)| *c != l.client || *r != l.reg)
            {
                revoke(l);
                lease = None;
            }
        }
        let Some((client, reg)) = wanted else {
            continue;
        };
        match &mut lease {
            None => {
                if Instant::now() < next_try {
                    continue;
                }
                match grant_and_put(&client, &reg) {
                    Ok(id) => {
                        counters().registrations.fetch_add(1, Relaxed);
                        tracing::info!(key = %reg.key, lease = id, "registered in etcd");
                        println!("ringway: registered in etcd as {} (lease {id})", reg.key);
                        let now = Instant::now();
                        lease = Some(Lease {
                            client,
                            reg,
                            id,
                            renewed: now,
                            tried: now,
                        });
                        backoff = BACKOFF_MIN;
                    }
                    Err(e) => {
                        tracing::warn!(key = %reg.key, "etcd registration failed (retrying): {e}");
                        next_try = Instant::now() + backoff;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
            Some(l) => {
                let ttl = l.reg.lease_ttl;
                // Every third of the TTL; more often after a failure.
                let every = if l.tried > l.renewed {
                    ttl / 10
                } else {
                    ttl / 3
                };
                if l.tried.elapsed() < every {
                    continue;
                }
                l.tried = Instant::now();
                match l.client.keepalive(l.id) {
                    Ok(true) => l.renewed = Instant::now(),
                    Ok(false) => {
                        counters().keepalive_failures.fetch_add(1, Relaxed);
                        tracing::warn!(key = %l.reg.key, "etcd lease lost: registering again");
                        lease = None;
                    }
                    Err(e) => {
                        counters().keepalive_failures.fetch_add(1, Relaxed);
                        tracing::warn!(key = %l.reg.key, "etcd keepalive failed: {e}");
                        if l.renewed.elapsed() > ttl {
                            // Expired by now: a new lease when etcd is back.
                            lease = None;
                        }
                    }
                }
            }
        }
    }
    if let Some(l) = &lease {
        revoke(l);
    }
}

fn grant_and_put(client: &EtcdClient, reg: &Registration) -> Result<i64, String> {
    let id = client.grant(reg.lease_ttl.as_secs())?;
    if let Err(e) = client.put(&reg.key, reg.value.as_bytes(), id) {
        let _ = client.revoke(id);
        return Err(e);
    }
    Ok(id)
}

fn revoke(l: &Lease) {
    match l.client.revoke(l.id) {
        Ok(()) => {
            tracing::info!(key = %l.reg.key, "etcd registration revoked");
            println!("ringway: etcd registration {} revoked", l.reg.key);
        }
        Err(e) => tracing::warn!(key = %l.reg.key, "etcd lease revoke failed (it expires): {e}"),
    }
}
