//! The one-screen start-up summary.

use std::net::SocketAddr;

use super::driver::DriverUsed;
use crate::config::Config;

pub fn print(
    config: &Config,
    bound: &[SocketAddr],
    drivers: &[Option<(DriverUsed, bool)>],
    plan: &[Option<core_affinity::CoreId>],
) {
    let rc = &config.runtime;
    println!(
        "ringway {} — {} worker(s), ring_entries {} (completion queue {}), max {} connections/worker",
        env!("CARGO_PKG_VERSION"),
        rc.workers,
        rc.ring_entries,
        rc.cq_entries,
        rc.max_connections_per_worker
    );
    for (i, d) in drivers.iter().enumerate() {
        let core = plan
            .get(i)
            .copied()
            .flatten()
            .map(|c| c.id.to_string())
            .unwrap_or_else(|| "-".into());
        match d {
            Some((driver, pinned)) => println!(
                "ringway: worker {i} core {core}{} driver {driver}",
                if *pinned { "" } else { " (not pinned)" }
            ),
            None => println!("ringway: worker {i} did not report"),
        }
    }
    // The ring features in use (the same on every io_uring worker).
    let on = drivers.iter().flatten().find_map(|(d, _)| match d {
        DriverUsed::IoUring { features, .. } => Some(features.join(" ")),
        DriverUsed::Legacy { .. } => None,
    });
    match on {
        Some(list) => {
            let off: Vec<&str> = super::ring_features::ALL
                .iter()
                .copied()
                .filter(|f| !list.split(' ').any(|x| x == *f))
                .collect();
            println!(
                "ringway: ring features: {}{}",
                if list.is_empty() { "none" } else { &list },
                if off.is_empty() {
                    String::new()
                } else {
                    format!(" (off: {}; see runtime.ring_features)", off.join(" "))
                }
            );
        }
        None => println!("ringway: ring features: none (epoll driver)"),
    }
    println!(
        "ringway: idle_read_release {}",
        if rc.idle_read_release {
            "on (idle keep-alive connections give their read buffer back)"
        } else {
            "off"
        }
    );
    for (l, addr) in config.listeners.iter().zip(bound) {
        println!(
            "ringway: listener {} on {} ({})",
            l.name,
            addr,
            if l.tls.is_some() { "tls" } else { "plain" }
        );
    }
    for c in &config.clusters {
        let eps: Vec<&str> = c.endpoints.iter().map(|e| e.label.as_str()).collect();
        println!(
            "ringway: cluster {} → [{}]{}",
            c.name,
            eps.join(", "),
            if c.tls.is_some() { " (tls)" } else { "" }
        );
    }
    println!("ringway: {} route(s)", config.routes.len());
}
