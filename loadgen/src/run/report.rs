//! The result of a run: wrk-like text, one JSON document, or an
//! HdrHistogram interval log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::stats::{ErrorKind, WorkerStats};
use crate::units::{format_bytes, format_micros};

/// Everything a report shows.
pub struct Summary {
    pub url: String,
    pub method: String,
    pub connections: usize,
    pub workers: usize,
    pub pipeline: usize,
    pub rate: Option<f64>,
    pub driver: String,
    /// What was asked for: "10.00s test" or "10000 requests".
    pub planned: String,
    pub duration: Duration,
    pub interrupted: bool,
    pub stats: WorkerStats,
}

/// Latency figures in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency {
                min: 0,
                mean: 0.0,
                stdev: 0.0,
                p50: 0,
                p75: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                p9999: 0,
                max: 0,
            };
        }
        let q = |p: f64| h.value_at_quantile(p);
        Latency {
            min: h.min(),
            mean: round2(h.mean()),
            stdev: round2(h.stdev()),
            p50: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: h.max(),
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The `--json` document. Scripts read these names; add, never rename.
#[derive(Debug, Serialize)]
pub struct JsonReport {
    pub url: String,
    pub method: String,
    /// "closed" or "open".
    pub mode: &'static str,
    pub connections: usize,
    pub workers: usize,
    pub pipeline: usize,
    /// Target rate of an open-loop run (requests/s), else null.
    pub rate: Option<f64>,
    pub driver: String,
    /// Complete responses (any status).
    pub requests: u64,
    pub duration_s: f64,
    /// Responses per second.
    pub rps: f64,
    /// Bytes read (heads and bodies).
    pub bytes: u64,
    pub bytes_per_s: f64,
    /// Connections opened.
    pub connects: u64,
    /// TLS connections that resumed a session (ticket or session id).
    pub tls_resumed: u64,
    /// The run was stopped early by Ctrl-C.
    pub interrupted: bool,
    pub status_counts: BTreeMap<String, u64>,
    /// Failed requests by kind; every kind is present.
    pub errors: BTreeMap<&'static str, u64>,
    pub errors_total: u64,
    pub latency_us: Latency,
}

impl Summary {
    fn secs(&self) -> f64 {
        self.duration.as_secs_f64().max(1e-9)
    }

    pub fn json(&self) -> JsonReport {
        let s = &self.stats;
        JsonReport {
            url: self.url.clone(),
            method: self.method.clone(),
            mode: if self.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            connections: self.connections,
            workers: self.workers,
            pipeline: self.pipeline,
            rate: self.rate,
            driver: self.driver.clone(),
            requests: s.responses,
            duration_s: round6(self.duration.as_secs_f64()),
            rps: round2(s.responses as f64 / self.secs()),
            bytes: s.bytes,
            bytes_per_s: round2(s.bytes as f64 / self.secs()),
            connects: s.connects,
            tls_resumed: s.tls_resumed,
            interrupted: self.interrupted,
            status_counts: s
                .status_counts()
                .into_iter()
                .map(|(code, n)| (code.to_string(), n))
                .collect(),
            errors: ErrorKind::ALL
                .iter()
                .map(|k| (k.name(), s.errors[*k as usize]))
                .collect(),
            errors_total: s.error_total(),
            latency_us: Latency::of(&s.latency),
        }
    }

    pub fn json_text(&self) -> String {
        serde_json::to_string_pretty(&self.json()).expect("report serialises")
    }

    pub fn text(&self) -> String {
        let s = &self.stats;
        let mut out = String::new();
        let mode = match self.rate {
            Some(r) => format!("open loop at {r} req/s (latency from intended send times)"),
            None => "closed loop".to_string(),
        };
        out += &format!(
            "Running {} @ {}\n  {} workers, {} connections, {mode}, pipeline {}, driver {}\n",
            self.planned, self.url, self.workers, self.connections, self.pipeline, self.driver
        );
        if self.interrupted {
            out += "  (interrupted)\n";
        }
        let l = Latency::of(&s.latency);
        out += "  Latency\n";
        let rows: [(&str, f64); 9] = [
            ("min", l.min as f64),
            ("mean", l.mean),
            ("p50", l.p50 as f64),
            ("p75", l.p75 as f64),
            ("p90", l.p90 as f64),
            ("p99", l.p99 as f64),
            ("p99.9", l.p999 as f64),
            ("p99.99", l.p9999 as f64),
            ("max", l.max as f64),
        ];
        for (name, us) in rows {
            out += &format!("    {name:<8}{:>12}\n", format_micros(us));
        }
        out += &format!("    {:<8}{:>12}\n", "stdev", format_micros(l.stdev));
        let codes = s.status_counts();
        if codes.is_empty() {
            out += "  Status codes: none\n";
        } else {
            let list: Vec<String> = codes.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            out += &format!("  Status codes: {}\n", list.join(", "));
        }
        let errors: Vec<String> = ErrorKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), s.errors[*k as usize]))
            .collect();
        out += &format!(
            "  Errors: {} (total {})\n",
            errors.join(", "),
            s.error_total()
        );
        if self.url.starts_with("https://") {
            out += &format!(
                "  Connections: {} opened, {} TLS handshakes resumed\n",
                s.connects, s.tls_resumed
            );
        }
        out += &format!(
            "  {} requests in {:.2}s, {} read\n",
            s.responses,
            self.duration.as_secs_f64(),
            format_bytes(s.bytes as f64)
        );
        out += &format!(
            "Requests/sec: {:>12.2}\nTransfer/sec: {:>12}\n",
            s.responses as f64 / self.secs(),
            format_bytes(s.bytes as f64 / self.secs())
        );
        out
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Write the merged per-second histograms as an HdrHistogram interval log
/// (values in microseconds; the max column in milliseconds).
pub fn write_hdr_log(
    path: &Path,
    started: SystemTime,
    intervals: &BTreeMap<u64, Histogram<u64>>,
    duration: Duration,
    interval: Duration,
) -> Result<(), String> {
    let fail =
        |e: &dyn std::fmt::Display| format!("cannot write --hdr-log {}: {e}", path.display());
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| fail(&e))?);
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment(concat!(
                "ringload ",
                env!("CARGO_PKG_VERSION"),
                " latency log"
            ))
            .add_comment("values in microseconds")
            .with_start_time(started)
            .with_base_time(started)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut file, &mut serializer)
            .map_err(|e| fail(&e))?;
        for (&index, h) in intervals {
            let start = interval * index as u32;
            if start >= duration && index > 0 {
                continue;
            }
            let length = (duration.saturating_sub(start)).min(interval);
            writer
                .write_histogram(h, start, length, None)
                .map_err(|e| fail(&format!("{e:?}")))?;
        }
    }
    file.flush().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        let mut stats = WorkerStats::default();
        for us in 1..=1000u64 {
            stats.record_response(200, Duration::from_micros(us));
        }
        stats.record_response(503, Duration::from_millis(5));
        stats.record_error(ErrorKind::Timeout);
        stats.bytes = 1_234_567;
        Summary {
            url: "http://127.0.0.1:1/".into(),
            method: "GET".into(),
            connections: 4,
            workers: 2,
            pipeline: 1,
            rate: None,
            driver: "io_uring".into(),
            planned: "2.00s test".into(),
            duration: Duration::from_secs(2),
            interrupted: false,
            stats,
        }
    }

    #[test]
    fn json_has_the_documented_names() {
        let v: serde_json::Value = serde_json::from_str(&summary().json_text()).unwrap();
        assert_eq!(v["requests"], 1001);
        assert_eq!(v["duration_s"], 2.0);
        assert_eq!(v["rps"], 500.5);
        assert_eq!(v["bytes"], 1_234_567);
        assert_eq!(v["status_counts"]["200"], 1000);
        assert_eq!(v["status_counts"]["503"], 1);
        assert_eq!(v["errors"]["timeout"], 1);
        assert_eq!(v["errors"]["connect"], 0);
        assert_eq!(v["errors_total"], 1);
        assert_eq!(v["mode"], "closed");
        for key in [
            "min", "mean", "p50", "p75", "p90", "p99", "p999", "p9999", "max",
        ] {
            assert!(v["latency_us"][key].is_number(), "{key}");
        }
        let p50 = v["latency_us"]["p50"].as_u64().unwrap();
        assert!((499..=501).contains(&p50), "{p50}");
        assert!(v["latency_us"]["max"].as_u64().unwrap() >= 4990);
    }

    #[test]
    fn text_has_the_totals() {
        let t = summary().text();
        assert!(t.contains("1001 requests in 2.00s"), "{t}");
        assert!(t.contains("Status codes: 200: 1000, 503: 1"), "{t}");
        assert!(t.contains("timeout 1"), "{t}");
        assert!(t.contains("(total 1)"), "{t}");
        assert!(t.contains("Requests/sec:"), "{t}");
        assert!(t.contains("p99.99"), "{t}");
    }

    #[test]
    fn empty_run_reports_zeros() {
        let mut s = summary();
        s.stats = WorkerStats::default();
        let v: serde_json::Value = serde_json::from_str(&s.json_text()).unwrap();
        assert_eq!(v["requests"], 0);
        assert_eq!(v["latency_us"]["p99"], 0);
        assert!(s.text().contains("Status codes: none"));
    }

    #[test]
    fn hdr_log_round_trips() {
        let dir = std::env::temp_dir().join(format!("ringload-hdr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.hlog");
        let mut intervals = BTreeMap::new();
        for i in 0..3u64 {
            let mut h = super::super::stats::new_histogram();
            h.record(100 + i).unwrap();
            intervals.insert(i, h);
        }
        write_hdr_log(
            &path,
            SystemTime::now(),
            &intervals,
            Duration::from_millis(2500),
            Duration::from_secs(1),
        )
        .unwrap();
        let text = std::fs::read(&path).unwrap();
        let entries: Vec<_> =
            hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&text)
                .filter_map(|e| match e.unwrap() {
                    hdrhistogram::serialization::interval_log::LogEntry::Interval(h) => {
                        Some((h.start_timestamp(), h.duration()))
                    }
                    _ => None,
                })
                .collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].0, Duration::from_secs(2));
        assert_eq!(entries[2].1, Duration::from_millis(500));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
