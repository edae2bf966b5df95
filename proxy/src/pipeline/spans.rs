//! The log stage's span export: decide whether the request becomes spans
//! (`crate::otel::sample`) and build them from what the log stage already
//! has (the record, the captured request facts, the trace context).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::generation::WorkerGen;
use super::log::RequestRecord;
use super::trace::TraceContext;
use crate::config::RouteAction;
use crate::otel::proto::hex_id;
use crate::otel::sample;
use crate::otel::span::{ClientSpan, ServerSpan};
use crate::runtime::worker::Worker;

/// Export the request's spans when it is sampled or kept.
pub fn export(worker: &Worker, gen: &WorkerGen, rec: &RequestRecord<'_>) {
    let (Some(spans), Some(t)) = (&worker.spans, rec.trace) else {
        return;
    };
    let config = gen.config();
    let Some(otlp) = &config.trace.otlp else {
        return;
    };
    if !t.sampled && !sample::keep(otlp, rec.ex.status, rec.error.is_some(), rec.elapsed) {
        return;
    }
    let Some(ids) = Ids::of(t) else { return };
    let now = Instant::now();
    let end_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let before =
        |at: Instant| end_ns.saturating_sub(now.saturating_duration_since(at).as_nanos() as u64);
    // From the same clock readings as the client spans' starts: `elapsed`
    // was read earlier than `now`, and a start derived from it would lie
    // later than the request's, after an upstream send that came quickly.
    let start_ns = before(rec.started);

    let listener = &config.listeners[rec.listener];
    let tls = listener.tls.is_some();
    let empty: &[u8] = b"";
    let (method, target, host, user_agent, request_id) = match rec.meta {
        Some(m) => (
            m.method(),
            m.target(),
            m.host(),
            m.user_agent(),
            m.request_id(),
        ),
        None => (empty, empty, empty, empty, empty),
    };
    let http10 = rec
        .meta
        .is_some_and(|m| m.version == crate::http::Version::Http10);
    let server_port = host_port(host)
        .or((listener.address.port() != 0).then_some(listener.address.port()))
        .unwrap_or(if tls { 443 } else { 80 });
    let server = ServerSpan {
        trace_id: ids.trace,
        span_id: ids.server,
        parent: ids.parent,
        start_ns,
        end_ns,
        method,
        target,
        host,
        user_agent,
        route: rec.route.map(|r| r.name.as_str()),
        listener: &listener.name,
        worker: worker.id,
        tls,
        server_port,
        client: rec.peer.ip(),
        http10,
        status: rec.ex.status,
        bytes_in: rec.ex.bytes_in,
        bytes_out: rec.ex.bytes_out,
        error: rec.error.map(|e| e.name()),
        request_id,
    };
    let ex = rec.ex;
    let client = match (ex.cluster, ex.endpoint, ex.upstream_sent) {
        (Some(c), Some(e), Some(sent)) => {
            let cluster = &config.clusters[c];
            let ep = &cluster.endpoints[e];
            Some(ClientSpan {
                span_id: ids.client,
                start_ns: before(sent),
                end_ns,
                method,
                endpoint: &ep.label,
                peer: ep.address,
                cluster: &cluster.name,
                // The status the upstream gave (0: none came).
                status: if ex.upstream_time.is_some() {
                    ex.status
                } else {
                    0
                },
                reused: ex.reused_connection,
                error: if ex.upstream_time.is_some() {
                    None
                } else {
                    rec.error.map(|e| e.name())
                },
                leg: None,
            })
        }
        _ => None,
    };
    // An aggregate request: one client span per leg sent.
    let mut legs: Vec<ClientSpan<'_>> = Vec::new();
    let agg = match rec.route.map(|r| &r.action) {
        Some(RouteAction::Aggregate(a)) => Some(a),
        _ => None,
    };
    for (leg, conf) in agg.iter().flat_map(|a| {
        ex.legs
            .iter()
            .filter_map(|l| a.legs.get(l.leg).map(|c| (l, c)))
    }) {
        let cluster = &config.clusters[leg.cluster];
        let ep = leg.endpoint.map(|e| &cluster.endpoints[e]);
        let Some(span_id) = hex_id::<8>(&leg.span_id) else {
            continue;
        };
        legs.push(ClientSpan {
            span_id,
            start_ns: before(leg.started),
            end_ns: before(leg.ended),
            method: &conf.method,
            endpoint: ep.map_or("-", |e| e.label.as_str()),
            peer: ep.map_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0)), |e| e.address),
            cluster: &cluster.name,
            status: leg.status,
            reused: leg.reused,
            error: leg.error.as_deref(),
            leg: Some(&conf.name),
        });
    }
    match client {
        Some(c) => spans.record(&server, std::slice::from_ref(&c)),
        None => spans.record(&server, &legs),
    }
}

/// The request's ids as bytes.
struct Ids {
    trace: [u8; 16],
    server: [u8; 8],
    client: [u8; 8],
    parent: Option<[u8; 8]>,
}

impl Ids {
    fn of(t: &TraceContext) -> Option<Ids> {
        Some(Ids {
            trace: hex_id::<16>(t.trace_id())?,
            server: hex_id::<8>(&t.server_span)?,
            client: hex_id::<8>(t.span_id())?,
            parent: match &t.parent {
                Some(p) => Some(hex_id::<8>(p)?),
                None => None,
            },
        })
    }
}

/// The port of a `Host` value, if it names one.
fn host_port(host: &[u8]) -> Option<u16> {
    let colon = memchr::memrchr(b':', host)?;
    if host[colon..].contains(&b']') {
        return None;
    }
    std::str::from_utf8(&host[colon + 1..]).ok()?.parse().ok()
}
