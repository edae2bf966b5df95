//! The `log` stage: runs once per request, whatever the outcome. It records
//! the per-core stats (counters and latency histograms), writes the access
//! log line when the access log is on, and emits a `tracing` event (debug;
//! info for failures).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::forward::Exchange;
use super::route::Route;
use crate::accesslog::{LogLine, RequestMeta};
use crate::error::{ErrorKind, ProxyError};
use crate::runtime::worker::Worker;

use super::generation::WorkerGen;
use crate::stats::layout::{class_of, code_slot};

/// Everything the log stage knows about one request.
pub struct RequestRecord<'a> {
    pub listener: usize,
    pub peer: SocketAddr,
    pub route: Option<&'a Route>,
    pub ex: &'a Exchange,
    pub error: Option<&'a ProxyError>,
    /// When the request's head was in (what `elapsed` is measured from;
    /// span export places its spans by it).
    pub started: Instant,
    pub elapsed: Duration,
    /// Captured request facts (only when the access log is on).
    pub meta: Option<&'a RequestMeta>,
    pub trace: Option<&'a super::trace::TraceContext>,
    /// Variables the route's filters set.
    pub vars: Option<&'a super::filters::Vars>,
}

pub fn log_request(worker: &Worker, gen: &WorkerGen, rec: &RequestRecord<'_>) {
    record_stats(gen, rec);
    if let Some(log) = &worker.access_log {
        let config = gen.config();
        let upstream = match (rec.ex.cluster, rec.ex.endpoint) {
            (Some(c), Some(e)) => Some(config.clusters[c].endpoints[e].label.as_str()),
            _ => None,
        };
        log.write(&LogLine {
            worker: worker.id,
            client: rec.peer,
            meta: rec.meta,
            listener: &config.listeners[rec.listener].name,
            route: rec.route.map(|r| r.name.as_str()),
            status: rec.ex.status,
            bytes_in: rec.ex.bytes_in,
            bytes_out: rec.ex.bytes_out,
            duration: rec.elapsed,
            upstream,
            upstream_time: rec.ex.upstream_time,
            trace_id: rec.trace.map(|t| t.trace_id()),
            error: rec.error.map(|e| e.name()),
            vars: rec.vars,
            grpc_status: rec.ex.grpc_status,
        });
    }
    super::spans::export(worker, gen, rec);
    let ex = rec.ex;
    match rec.error {
        None => tracing::debug!(
            worker = worker.id,
            route = rec.route.map(|r| r.name.as_str()).unwrap_or("-"),
            status = ex.status,
            bytes_in = ex.bytes_in,
            bytes_out = ex.bytes_out,
            endpoint = ex.endpoint.map(|e| e as i64).unwrap_or(-1),
            reused = ex.reused_connection,
            us = rec.elapsed.as_micros() as u64,
            "request"
        ),
        Some(e) => tracing::info!(
            worker = worker.id,
            route = rec.route.map(|r| r.name.as_str()).unwrap_or("-"),
            status = ex.status,
            error = %e,
            us = rec.elapsed.as_micros() as u64,
            "request failed"
        ),
    }
}

fn record_stats(gen: &WorkerGen, rec: &RequestRecord<'_>) {
    let stats = &gen.stats;
    let ex = rec.ex;
    let l = &stats.listeners[rec.listener];
    l.requests.inc();
    l.bytes_in.add(ex.bytes_in);
    l.bytes_out.add(ex.bytes_out);
    if ex.bytes_spliced > 0 {
        l.bytes_spliced.add(ex.bytes_spliced);
    }
    let Some(route) = rec.route else {
        l.rejected.inc();
        gen.histograms
            .record(rec.listener, None, None, rec.elapsed, None);
        return;
    };
    let rs = &stats.routes[route.index];
    rs.requests.inc();
    rs.codes[code_slot(ex.status)].inc();
    rs.bytes_in.add(ex.bytes_in);
    rs.bytes_out.add(ex.bytes_out);
    if let Some(e) = rec.error {
        rs.errors[e.kind.index()].inc();
    }
    if let Some(g) = ex.grpc_status {
        let slot = if (g as usize) < rs.grpc.len() {
            g as usize
        } else {
            2
        };
        rs.grpc[slot].inc();
    }
    let mut upstream = None;
    if let (Some(cluster), Some(ep)) = (ex.cluster, ex.endpoint) {
        count_upstream(gen, cluster, ep, ex.status, rec.error.map(|e| &e.kind));
        if let Some(t) = ex.upstream_time {
            upstream = Some((cluster, ep, t));
        }
    }
    // The time ringway added: only for requests that reached an upstream
    // (a locally answered request has no upstream time to subtract).
    let proxy_added = ex.upstream_time.map(|t| rec.elapsed.saturating_sub(t));
    gen.histograms.record(
        rec.listener,
        Some(route.index),
        upstream,
        rec.elapsed,
        proxy_added,
    );
}

/// Count one upstream exchange with `endpoint` of `cluster`: requests and
/// the status class on the cluster and the endpoint, the error kind, a
/// timeout, and what outlier detection learns from it. Used for forwarded
/// requests (here), failed attempts that are retried (`forward`) and
/// aggregation legs (`aggregate`).
pub(super) fn count_upstream(
    gen: &WorkerGen,
    cluster: usize,
    endpoint: usize,
    status: u16,
    error: Option<&ErrorKind>,
) {
    let stats = &gen.stats;
    let class = class_of(status);
    let cs = &stats.clusters[cluster];
    cs.requests.inc();
    cs.classes[class].inc();
    let es = stats.endpoint(cluster, endpoint);
    es.requests.inc();
    es.classes[class].inc();
    if let Some(k) = error {
        cs.errors[k.index()].inc();
        if matches!(k, ErrorKind::UpstreamTimeout | ErrorKind::ConnectTimeout) {
            es.timeouts.inc();
        }
    }
    if let Some(b) = gen.balancers.get(cluster) {
        b.observe_outcome(
            endpoint,
            crate::upstream::lb::outlier::Outcome::of(status, error),
        );
    }
}
