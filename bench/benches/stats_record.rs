//! The per-request statistics record path: the counter increments of one
//! proxied request (listener, route, status code, cluster, endpoint, bytes)
//! plus the latency histogram record (listener, route, cluster, endpoint),
//! on a `WorkerStats` + `WorkerHistograms` built from a config. Mirrors
//! `pipeline::log::record_stats` (private) step for step.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ringway::config::Config;
use ringway::stats::layout::{class_of, code_slot};
use ringway::stats::{WorkerHistograms, WorkerStats};

const CONFIG: &str = r#"
[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
listener = "public"
path_prefix = "/"
cluster = "app"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"]
"#;

fn record(
    stats: &WorkerStats,
    hist: &WorkerHistograms,
    status: u16,
    endpoint: usize,
    total: Duration,
) {
    let (listener, route, cluster) = (0, 0, 0);
    let l = &stats.listeners[listener];
    l.requests.inc();
    l.bytes_in.add(320);
    l.bytes_out.add(180);
    let rs = &stats.routes[route];
    rs.requests.inc();
    rs.codes[code_slot(status)].inc();
    rs.bytes_in.add(320);
    rs.bytes_out.add(180);
    let class = class_of(status);
    let cs = &stats.clusters[cluster];
    cs.requests.inc();
    cs.classes[class].inc();
    let es = stats.endpoint(cluster, endpoint);
    es.requests.inc();
    es.classes[class].inc();
    hist.record(
        listener,
        Some(route),
        Some((cluster, endpoint, total / 2)),
        total,
        Some(total - total / 2),
    );
}

fn bench(c: &mut Criterion) {
    let cfg = Config::parse(CONFIG, None).expect("config");
    let stats = WorkerStats::new(0, &cfg);
    let hist = WorkerHistograms::new(&cfg);
    // Latencies spread like a real run so the histogram buckets vary.
    let lat: Vec<Duration> = (0..1024u64)
        .map(|i| Duration::from_micros(80 + (i * 7919) % 5000))
        .collect();
    let mut i = 0usize;
    c.bench_function("stats_record/counters_and_histograms", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            record(black_box(&stats), &hist, 200, i % 3, lat[i]);
        })
    });
    let mut i = 0usize;
    c.bench_function("stats_record/counters_only", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let s = black_box(&stats);
            s.listeners[0].requests.inc();
            s.routes[0].requests.inc();
            s.routes[0].codes[code_slot(200)].inc();
            s.clusters[0].requests.inc();
            s.endpoint(0, i % 3).requests.inc();
        })
    });
    assert!(stats.listeners[0].requests.get() > 0);
    black_box(hist.snapshot());
}

criterion_group!(benches, bench);
criterion_main!(benches);
