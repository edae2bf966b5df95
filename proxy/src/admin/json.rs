//! JSON bodies: `/stats`, `/config`, `/workers`.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::prometheus::{route_listener, CODE_CLASSES};
use super::{AdminState, RingStats};
use crate::config::{AccessLogFormat, AccessLogTarget, Config, DriverKind, HashKey, HostMatch};
use crate::stats::merge;
use crate::stats::merge::StatsView;

/// Shown instead of secrets (TLS private key paths).
pub const REDACTED: &str = "<redacted>";

/// A duration the way the config file writes it: `"1h"`, `"5m"`, `"30s"`,
/// `"250ms"`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn path(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

/// Latency summary of a µs histogram: count and quantiles in µs (`null`:
/// dimension switched off).
pub fn latency(h: Option<&Histogram<u64>>) -> Value {
    let Some(h) = h else {
        return Value::Null;
    };
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "min_us": h.min(),
        "mean_us": (h.mean() * 10.0).round() / 10.0,
        "p50_us": h.value_at_quantile(0.5),
        "p90_us": h.value_at_quantile(0.9),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
    })
}

fn classes(c: &[u64; 6]) -> Value {
    let mut m = Map::new();
    for (i, label) in CODE_CLASSES.iter().enumerate() {
        m.insert((*label).to_owned(), json!(c[i]));
    }
    Value::Object(m)
}

fn errors(list: &[(&'static str, u64)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, n)| ((*k).to_owned(), json!(n)))
            .collect(),
    )
}

/// One merged view as JSON.
pub fn view(config: &Config, v: &StatsView) -> Value {
    let listeners: Vec<Value> = v
        .listeners
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "connections_total": l.cx_total,
                "connections_active": l.cx_active,
                "tls_handshake_failures": l.tls_handshake_failures,
                "proxy_protocol_errors": l.proxy_protocol_errors,
                "requests": l.requests,
                "rejected": l.rejected,
                "bytes_in": l.bytes_in,
                "bytes_out": l.bytes_out,
                "bytes_spliced": l.bytes_spliced,
                "latency": latency(l.latency.as_ref()),
            })
        })
        .collect();
    let routes: Vec<Value> = v
        .routes
        .iter()
        .map(|r| {
            let codes: Map<String, Value> = r
                .codes
                .iter()
                .map(|(c, n)| (c.to_string(), json!(n)))
                .collect();
            json!({
                "name": r.name,
                "listener": route_listener(config, r),
                "cluster": r.cluster,
                "requests": r.requests,
                "responses": classes(&r.classes()),
                "codes": codes,
                "errors": errors(&r.errors),
                "bytes_in": r.bytes_in,
                "bytes_out": r.bytes_out,
                "split": r.split.iter().map(|(c, n)| (c.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "grpc": r.grpc.iter().map(|(c, n)| (c.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "latency": latency(r.latency.as_ref()),
                "proxy_latency": latency(r.proxy_latency.as_ref()),
            })
        })
        .collect();
    let clusters: Vec<Value> = v
        .clusters
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "requests": c.requests,
                "retries": c.retries,
                "retries_budget_exhausted": c.retries_budget_exhausted,
                "hedges": { "sent": c.hedges, "won": c.hedge_wins },
                "mirror": { "sent": c.mirror[0], "failed": c.mirror[1], "dropped": c.mirror[2] },
                "overflow": {
                    "max_requests": c.overflow_requests,
                    "max_retries": c.overflow_retries,
                    "max_connections": c.overflow_connections,
                    "max_pending": c.overflow_pending,
                },
                "responses": classes(&c.classes),
                "errors": errors(&c.errors),
                "latency": latency(c.latency.as_ref()),
            })
        })
        .collect();
    let endpoints: Vec<Value> = v
        .endpoints
        .iter()
        .map(|e| {
            json!({
                "cluster": e.cluster,
                "endpoint": e.endpoint,
                "requests": e.requests,
                "responses": classes(&e.classes),
                "connections_new": e.cx_new,
                "connections_reused": e.cx_reused,
                "connect_failures": e.connect_failures,
                "streams_refused": e.streams_refused,
                "timeouts": e.timeouts,
                "ejections": e.ejections,
                "ejected_by_workers": e.ejected_by,
                "latency": latency(e.latency.as_ref()),
            })
        })
        .collect();
    json!({
        "listeners": listeners,
        "routes": routes,
        "clusters": clusters,
        "endpoints": endpoints,
        "pool_idle_connections": v.pool_idle,
    })
}

/// `/stats`: `total` (summed over workers) always; `by_worker` too when
/// `stats.per_worker` is on.
pub fn stats(state: &AdminState) -> Value {
    let reg = state.registry.load();
    let config = &reg.config;
    let mut out = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": (state.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "workers": reg.workers.len(),
        "draining": state.draining.is_set(),
        "latency_unit": "us",
        "total": view(config, &merge(&reg, None)),
    });
    if config.trace.otlp.is_some() {
        use std::sync::atomic::Ordering::Relaxed;
        let c = crate::otel::counters();
        out["trace_export"] = json!({
            "spans_exported": c.exported.load(Relaxed),
            "spans_dropped_queue_full": c.dropped_queue_full.load(Relaxed),
            "spans_dropped_export_failed": c.dropped_export_failed.load(Relaxed),
            "requests_ok": c.requests_ok.load(Relaxed),
            "requests_failed": c.requests_failed.load(Relaxed),
        });
    }
    if config.etcd.is_some() {
        use std::sync::atomic::Ordering::Relaxed;
        let c = crate::config::etcd::counters();
        out["etcd"] = json!({
            "watch_reconnects": c.watch_reconnects.load(Relaxed),
            "compactions": c.compactions.load(Relaxed),
            "events": c.events.load(Relaxed),
            "updates_applied": c.updates_applied.load(Relaxed),
            "updates_refused": c.updates_refused.load(Relaxed),
            "malformed_values": c.malformed_values.load(Relaxed),
            "registrations": c.registrations.load(Relaxed),
            "keepalive_failures": c.keepalive_failures.load(Relaxed),
        });
    }
    if config.stats.per_worker {
        let by_worker: Vec<Value> = reg
            .workers
            .iter()
            .map(|w| {
                let mut v = view(config, &merge(&reg, Some(w.worker)));
                v["worker"] = json!(w.worker);
                v
            })
            .collect();
        out["by_worker"] = Value::Array(by_worker);
    }
    out
}

/// `/clusters`: every cluster's endpoints with their weight, source and
/// health (active checks), and what the workers counted for them.
pub fn clusters(state: &AdminState) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let reg = state.registry.load();
    let config = &reg.config;
    let view = merge(&reg, None);
    let list: Vec<Value> = config
        .clusters
        .iter()
        .map(|c| {
            let health = crate::upstream::health::registry().cluster(c);
            let endpoints: Vec<Value> = c
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let counted = view
                        .endpoints
                        .iter()
                        .find(|v| v.cluster == c.name && v.endpoint == e.label);
                    let mut v = json!({
                        "endpoint": e.label,
                        "address": e.address.to_string(),
                        "weight": e.weight,
                        "zone": e.zone,
                        "source": if c.endpoints_file.is_some() {
                            "file"
                        } else if c.dns.is_some() {
                            "dns"
                        } else if c.etcd.is_some() {
                            "etcd"
                        } else {
                            "static"
                        },
                        "requests": counted.map_or(0, |v| v.requests),
                        "responses_5xx": counted.map_or(0, |v| v.classes[5]),
                        "connect_failures": counted.map_or(0, |v| v.connect_failures),
                        "timeouts": counted.map_or(0, |v| v.timeouts),
                        "ejections": counted.map_or(0, |v| v.ejections),
                        "ejected_by_workers": counted.map_or(0, |v| v.ejected_by),
                    });
                    if let Some(m) = &e.metadata {
                        v["metadata"] = Value::Object((**m).clone());
                    }
                    v["health"] = match &health {
                        None => json!("unchecked"),
                        Some(h) => {
                            let cell = &h.cells[i];
                            v["checks"] = json!({
                                "passed": cell.passes.load(Relaxed),
                                "failed": cell.failures.load(Relaxed),
                                "last_status": cell.last_status.load(Relaxed),
                                "times_unhealthy": cell.transitions_down.load(Relaxed),
                            });
                            json!(if cell.is_healthy() {
                                "healthy"
                            } else {
                                "unhealthy"
                            })
                        }
                    };
                    v
                })
                .collect();
            let (healthy, panic) = match &health {
                None => (c.endpoints.len(), false),
                Some(h) => {
                    let n = h.healthy_count();
                    (
                        n,
                        (n as f64) < c.panic_threshold / 100.0 * c.endpoints.len() as f64,
                    )
                }
            };
            json!({
                "name": c.name,
                "lb": c.lb.name(),
                "health_check": c.health_check.as_ref().map(|h| json!({
                    "path": h.path,
                    "interval": duration(h.interval),
                    "timeout": duration(h.timeout),
                    "healthy_threshold": h.healthy_threshold,
                    "unhealthy_threshold": h.unhealthy_threshold,
                })),
                "panic_threshold": c.panic_threshold,
                "endpoints_file": c.endpoints_file.as_deref().map(path),
                "etcd_prefix": c.etcd,
                "outlier_detection": c.outlier_detection.as_ref().map(|o| json!({
                    "consecutive_5xx": o.consecutive_5xx,
                    "consecutive_gateway_errors": o.consecutive_gateway_errors,
                    "base_ejection_time": duration(o.base_ejection_time),
                    "max_ejection_time": duration(o.max_ejection_time),
                    "max_ejection_percent": o.max_ejection_percent,
                })),
                "healthy_endpoints": healthy,
                "panic": panic,
                "endpoints": endpoints,
            })
        })
        .collect();
    json!({ "generation": reg.generation, "clusters": list })
}

/// `/workers`: per worker core, driver, load and ring figures.
pub fn workers(state: &AdminState, rings: &[Option<RingStats>]) -> Value {
    let reg = state.registry.load();
    let idle_read_release = reg.config.runtime.idle_read_release;
    let list: Vec<Value> = reg
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let active: i64 = w.listeners.iter().map(|l| l.cx_active.get()).sum();
            let accepted: u64 = w.listeners.iter().map(|l| l.cx_total.get()).sum();
            let requests: u64 = w.listeners.iter().map(|l| l.requests.get()).sum();
            let ring = match rings.get(i).copied().flatten() {
                None => Value::Null,
                Some(r) => json!({
                    "sq_entries": r.sq_entries,
                    "cq_entries": r.cq_entries,
                    "submissions": r.submissions,
                    "completions": r.completions,
                    "inflight_estimate": r.inflight,
                    "cq_overflow": r.cq_overflow,
                }),
            };
            json!({
                "worker": w.worker,
                "core": state.cores.get(i).copied().flatten(),
                "generation": state.registry.reloads.applied.get(i)
                    .map(|a| a.load(std::sync::atomic::Ordering::Acquire)),
                "driver": state.drivers.get(i),
                "idle_read_release": idle_read_release,
                "ring_features": state.ring_features.get(i).cloned().unwrap_or_default(),
                "connections_active": active,
                "connections_total": accepted,
                "requests": requests,
                "pool_idle_connections": w.pool_idle.get(),
                // `buffer_ring` (null when off): buffers the worker's
                // provided-buffer ring holds, and idle reads that found
                // it empty.
                "buffer_ring": if state.ring_features.get(i).is_some_and(|f| f.contains(&"buffer_ring")) {
                    json!({ "buffers": w.ring.buffers.get(), "ran_dry": w.ring.ran_dry.get() })
                } else {
                    Value::Null
                },
                // `fixed_files` (null when off): sockets in the worker's
                // registered-files table, its size, and registrations that
                // found every slot taken (the socket used its descriptor and
                // asks again at its next request).
                "fixed_files": if state.ring_features.get(i).is_some_and(|f| f.contains(&"fixed_files")) {
                    json!({
                        "in_use": w.ring.fixed_in_use.get(),
                        "slots": w.ring.fixed_slots.get(),
                        "went_without": w.ring.fixed_went_without.get(),
                    })
                } else {
                    Value::Null
                },
                // `multishot_recv` (null when off): multishot receives
                // armed now (one per parked or busy plain HTTP/1.1
                // connection that has not uploaded), and armed in all.
                "multishot_recv": if state.ring_features.get(i).is_some_and(|f| f.contains(&"multishot_recv")) {
                    json!({ "armed": w.ring.multishot_armed.get(), "arms": w.ring.multishot_arms.get() })
                } else {
                    Value::Null
                },
                "ring": ring,
            })
        })
        .collect();
    json!({ "workers": list })
}

/// `/config`: the effective configuration (after defaults and name
/// resolution). TLS private key paths are replaced by [`REDACTED`];
/// certificate and CA paths are shown.
/// A route's action for `/config`.
fn action(c: &Config, a: &crate::config::RouteAction) -> Value {
    use crate::config::{RouteAction, StickyKey};
    match a {
        RouteAction::Forward(k) => json!({ "forward": c.clusters[*k].name }),
        RouteAction::Split(s) => json!({
            "split": s.targets.iter().map(|&(k, w)| json!({
                "cluster": c.clusters[k].name, "weight": w,
            })).collect::<Vec<_>>(),
            "split_by": s.sticky.as_ref().map(|k| match k {
                StickyKey::Header(h) => json!({ "header": h }),
                StickyKey::Cookie(n) => json!({ "cookie": n }),
            }),
        }),
        RouteAction::Local(f) => json!({ "local": f.kind() }),
        RouteAction::Versioned(v) => json!({
            "versions": v.versions.iter().map(|x| json!({
                "version": x.name, "cluster": c.clusters[x.cluster].name,
                "deprecated": !x.deprecation.is_empty(),
            })).collect::<Vec<_>>(),
            "default_version": v.default.map(|i| v.versions[i].name.as_str()),
        }),
        RouteAction::Aggregate(a) => json!({
            "aggregate": {
                "policy": match a.policy {
                    crate::pipeline::aggregate::Policy::All => "all",
                    crate::pipeline::aggregate::Policy::Partial => "partial",
                },
                "deadline": duration(a.deadline),
                "max_leg_bytes": a.max_leg_bytes,
                "legs": a.legs.iter().enumerate().map(|(i, l)| json!({
                    "name": l.name,
                    "cluster": c.clusters[l.cluster].name,
                    "method": String::from_utf8_lossy(&l.method),
                    "path": a.leg_path(i),
                    "timeout": duration(l.timeout),
                    "headers": l.headers.iter().map(|h| String::from_utf8_lossy(h)).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }
        }),
    }
}

pub fn config(c: &Config) -> Value {
    let rt = &c.runtime;
    let mut flags = Vec::new();
    if rt.ring_flags.single_issuer {
        flags.push("single_issuer");
    }
    if rt.ring_flags.defer_taskrun {
        flags.push("defer_taskrun");
    }
    if rt.ring_flags.coop_taskrun {
        flags.push("coop_taskrun");
    }
    let runtime = json!({
        "workers": rt.workers,
        "cores": rt.cores,
        "driver": match rt.driver {
            DriverKind::Auto => "auto",
            DriverKind::IoUring => "io_uring",
            DriverKind::Legacy => "legacy",
        },
        "ring_entries": rt.ring_entries,
        "sqpoll_idle": rt.sqpoll_idle.map(duration),
        "ring_flags": flags,
        "max_connections_per_worker": rt.max_connections_per_worker,
        "drain_timeout": duration(rt.drain_timeout),
        "idle_read_release": rt.idle_read_release,
        "log_level": rt.log_level,
    });
    let l = &c.limits;
    let limits = json!({
        "max_head_bytes": l.max_head_bytes,
        "max_headers": l.max_headers,
        "header_read_timeout": duration(l.header_read_timeout),
        "body_read_timeout": duration(l.body_read_timeout),
        "idle_timeout": duration(l.idle_timeout),
        "request_buffer_bytes": l.request_buffer_bytes,
        "splice_min_bytes": l.splice_min_bytes,
        "splice_min_request_bytes": l.splice_min_request_bytes,
    });
    let listeners: Vec<Value> = c
        .listeners
        .iter()
        .map(|l| {
            let tls = match (&l.tls, &l.tls_files) {
                (None, _) => Value::Null,
                (Some(_), None) => json!({ "enabled": true }),
                (Some(_), Some(f)) => {
                    let sni: Vec<Value> = f
                        .sni
                        .iter()
                        .map(
                            |s| json!({ "names": s.names, "cert": path(&s.cert), "key": REDACTED }),
                        )
                        .collect();
                    json!({
                        "enabled": true,
                        "cert": f.cert.as_deref().map(path),
                        "key": f.key.as_ref().map(|_| REDACTED),
                        "sni": sni,
                    })
                }
            };
            let ip_acl = l.ip_acl.as_ref().map(|a| {
                json!({
                    "allow": a.allow.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    "deny": a.deny.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                })
            });
            json!({
                "name": l.name,
                "address": l.address.to_string(),
                "tls": tls,
                "ip_acl": ip_acl,
                "proxy_protocol": l.proxy_protocol,
                "accept": l.accept.name(),
                "default_deny": l.default_deny,
                "trusted_proxies": l.trusted_proxies.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let routes: Vec<Value> = c
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "listener": r.listener.map(|i| c.listeners[i].name.as_str()),
                "host": r.host.as_ref().map(|h| match h {
                    HostMatch::Exact(n) => n.clone(),
                    HostMatch::Suffix(s) => format!("*{s}"),
                }),
                // The path matcher and conditions as written: `{ "path_prefix": "/" }`,
                // `[{ "name": "x-env", "prefix": "stag" }, { "name": "x-debug", "present": true }]`.
                "path": Value::Object(
                    [r.path.config_key()]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), Value::from(v)))
                        .collect(),
                ),
                "methods": r.methods,
                "headers": r.headers.iter().map(|h| {
                    let (k, v) = h.value.config_key();
                    json!({ "name": h.name, k: v.map_or(Value::Bool(true), Value::from) })
                }).collect::<Vec<_>>(),
                "query": r.query.iter().map(|q| {
                    let (k, v) = q.value.config_key();
                    json!({ "name": q.name, k: v.map_or(Value::Bool(true), Value::from) })
                }).collect::<Vec<_>>(),
                "cluster": r.target_label(&c.clusters),
                "action": action(c, &r.action),
                "filters": r.filters.iter().map(|f| f.kind()).collect::<Vec<_>>(),
                "max_body_bytes": r.max_body_bytes,
                "timeout": duration(r.timeout),
            })
        })
        .collect();
    let clusters: Vec<Value> = c
        .clusters
        .iter()
        .map(|k| {
            let endpoints: Vec<Value> = k
                .endpoints
                .iter()
                .map(|e| {
                    json!({
                        "endpoint": e.label,
                        "address": e.address.to_string(),
                        "weight": e.weight,
                    })
                })
                .collect();
            let hash_key = k.hash_key.as_ref().map(|h| match h {
                HashKey::Header(n) => json!({ "header": n }),
                HashKey::Cookie(n) => json!({ "cookie": n }),
                HashKey::ClientIp => json!({ "client_ip": true }),
                HashKey::Path => json!({ "path": true }),
                HashKey::Query(n) => json!({ "query": n }),
            });
            let tls = match &k.tls {
                None => Value::Null,
                Some(t) => {
                    let f = k.tls_files.clone().unwrap_or_default();
                    json!({
                        "server_name": t.server_name.to_str(),
                        "ca": f.ca.as_deref().map(path),
                        "cert": f.cert.as_deref().map(path),
                        "key": f.key.as_ref().map(|_| REDACTED),
                        "insecure_skip_verify": f.insecure_skip_verify,
                    })
                }
            };
            json!({
                "name": k.name,
                "endpoints": endpoints,
                "lb": k.lb.name(),
                "endpoints_file": k.endpoints_file.as_deref().map(path),
                "etcd_prefix": k.etcd,
                "hash_key": hash_key,
                "bounded_load": k.bounded_load,
                "connect_timeout": duration(k.connect_timeout),
                "send_proxy_protocol": k.send_proxy_protocol.map(|v| format!("{v:?}").to_ascii_lowercase()),
                "idle_timeout": duration(k.idle_timeout),
                "max_idle_per_endpoint": k.max_idle_per_endpoint,
                "tls": tls,
            })
        })
        .collect();
    let s = &c.stats;
    let mut histograms = Vec::new();
    for (on, name) in [
        (s.listener_histograms, "listener"),
        (s.route_histograms, "route"),
        (s.cluster_histograms, "cluster"),
        (s.endpoint_histograms, "endpoint"),
    ] {
        if on {
            histograms.push(name);
        }
    }
    let stats = json!({
        "histogram_sigfig": s.histogram_sigfig,
        "publish_interval": duration(s.publish_interval),
        "histograms": histograms,
        "per_worker": s.per_worker,
    });
    let access_log = c.access_log.as_ref().map(|a| {
        json!({
            "path": match &a.target {
                AccessLogTarget::Stdout => json!("stdout"),
                AccessLogTarget::File(p) => path(p),
            },
            "format": match a.format {
                AccessLogFormat::Json => "json",
                AccessLogFormat::Combined => "combined",
            },
            "buffer": a.buffer_bytes,
            "flush_interval": duration(a.flush_interval),
        })
    });
    json!({
        "source": c.source.as_deref().map(path),
        "runtime": runtime,
        "limits": limits,
        "listeners": listeners,
        "routes": routes,
        "clusters": clusters,
        "admin": c.admin.as_ref().map(|a| json!({ "address": a.address.to_string() })),
        "stats": stats,
        "access_log": access_log,
        "tracing": { "w3c": c.trace.w3c },
        "etcd": c.etcd.as_ref().map(|e| json!({
            "endpoints": e.client.endpoints.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            "timeout": duration(e.client.timeout),
            "dial_timeout": duration(e.client.dial_timeout),
            "register": e.register.as_ref().map(|r| json!({
                "key": r.key,
                "value": r.value,
                "lease_ttl": duration(r.lease_ttl),
            })),
        })),
    })
}
