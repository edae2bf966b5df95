//! `/dashboard`: one self-contained page (HTML, CSS and script inline, no
//! external fetch, no library) that reads `/dashboard.json` every second
//! and draws workers, listeners, routes with five-minute sparklines
//! ([`super::history`]), clusters and endpoints, and the configuration
//! generation.
//!
//! The page is read-only and served by the admin listener (loopback by
//! default, like every admin endpoint). Its numbers are the ones `/stats`
//! and `/workers` give, from the same merge; each shown figure carries a
//! `data-k` attribute (`route:api:requests`, …) so tests can compare the
//! rendered page with `/stats`.

use serde_json::{json, Value};

use super::history::History;
use super::{json, AdminState, RingStats};
use crate::stats::merge;

/// The page (`dashboard.html`, compiled in).
pub const PAGE: &str = include_str!("dashboard.html");

/// `/dashboard.json`: `/stats`' totals, `/workers`, the generation and
/// each route's history.
pub fn data(state: &AdminState, rings: &[Option<RingStats>], history: &History) -> Value {
    let reg = state.registry.load();
    let config = &reg.config;
    let mut total = json::view(config, &merge(&reg, None));
    if let Some(routes) = total["routes"].as_array_mut() {
        for r in routes {
            let name = r["name"].as_str().unwrap_or_default().to_owned();
            r["history"] = history.json(&name);
        }
    }
    let lbs: Vec<Value> = config
        .clusters
        .iter()
        .map(|c| json!({ "name": c.name, "lb": c.lb.name(), "endpoints": c.endpoints.len() }))
        .collect();
    // Endpoint health (active checks): "cluster/endpoint" → state.
    let mut health = serde_json::Map::new();
    for c in &config.clusters {
        let h = crate::upstream::health::registry().cluster(c);
        for (i, e) in c.endpoints.iter().enumerate() {
            let state = match &h {
                None => "unchecked",
                Some(h) if h.is_healthy(i) => "healthy",
                Some(_) => "unhealthy",
            };
            health.insert(format!("{}/{}", c.name, e.label), json!(state));
        }
    }
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "generation": reg.generation,
        "uptime_seconds": (state.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "draining": state.draining.is_set(),
        "workers": json::workers(state, rings)["workers"].clone(),
        "cluster_config": lbs,
        "endpoint_health": health,
        "history_seconds": super::history::POINTS,
        "total": total,
    })
}
