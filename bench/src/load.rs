//! The load generators: `ringload run --json` (every measurement) and `wrk`
//! (one cross-check scenario).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::procs::{Exit, Spawn};

/// What the benchmark reads from `ringload run --json` (other fields ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct LoadResult {
    pub requests: u64,
    pub duration_s: f64,
    pub rps: f64,
    #[serde(default)]
    pub status_counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    #[serde(default)]
    pub errors_total: Option<u64>,
    pub latency_us: Latency,
    #[serde(default)]
    pub interrupted: bool,
    /// Connections opened, and how many resumed a TLS session.
    #[serde(default)]
    pub connects: u64,
    #[serde(default)]
    pub tls_resumed: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LoadResult {
    pub fn parse(json: &str) -> Result<LoadResult, String> {
        serde_json::from_str(json).map_err(|e| format!("cannot read ringload's JSON: {e}"))
    }

    pub fn errors_total(&self) -> u64 {
        self.errors_total
            .unwrap_or_else(|| self.errors.values().sum())
    }

    /// Share of the connections whose TLS handshake resumed a session,
    /// percent (`None` without connections).
    pub fn tls_resumed_pct(&self) -> Option<f64> {
        (self.connects > 0).then(|| 100.0 * self.tls_resumed as f64 / self.connects as f64)
    }

    /// Responses with a 2xx status.
    pub fn ok_2xx(&self) -> u64 {
        self.status_counts
            .iter()
            .filter(|(code, _)| code.starts_with('2'))
            .map(|(_, n)| n)
            .sum()
    }

    /// 2xx responses over every request that ended, failed ones (connect,
    /// reset, timeout, ...) included, percent (`None` when none ended).
    pub fn success_pct(&self) -> Option<f64> {
        let all = self.requests + self.errors_total();
        (all > 0).then(|| 100.0 * self.ok_2xx() as f64 / all as f64)
    }

    /// Responses whose status is not 2xx.
    pub fn non_2xx(&self) -> u64 {
        self.status_counts
            .iter()
            .filter(|(code, _)| !code.starts_with('2'))
            .map(|(_, n)| n)
            .sum()
    }
}

/// One invocation of `ringload run`.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub url: String,
    pub connections: usize,
    pub threads: usize,
    pub cores: Vec<usize>,
    pub duration: Duration,
    pub warmup: Option<Duration>,
    pub rate: Option<f64>,
    pub no_keepalive: bool,
    pub method: &'static str,
    pub body_file: Option<PathBuf>,
    pub insecure: bool,
    /// `--no-tls-resumption`.
    pub no_tls_resumption: bool,
    /// `--client-cert`, `--client-key` (mutual TLS).
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

impl RunSpec {
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "run".to_string(),
            self.url.clone(),
            "-c".into(),
            self.connections.to_string(),
            "-t".into(),
            self.threads.min(self.connections).max(1).to_string(),
            "-d".into(),
            ms(self.duration),
            "--timeout".into(),
            "5s".into(),
            "--json".into(),
        ];
        if !self.cores.is_empty() {
            a.push("--cores".into());
            a.push(crate::placement::format_core_list(&self.cores));
        }
        if let Some(w) = self.warmup {
            a.push("--warmup".into());
            a.push(ms(w));
        }
        if let Some(r) = self.rate {
            a.push("--rate".into());
            a.push(format!("{}", r.round().max(1.0)));
        }
        if self.no_keepalive {
            a.push("--no-keepalive".into());
        }
        if self.method != "GET" {
            a.push("-m".into());
            a.push(self.method.into());
        }
        if let Some(f) = &self.body_file {
            a.push("--body-file".into());
            a.push(f.display().to_string());
        }
        if self.no_tls_resumption {
            a.push("--no-tls-resumption".into());
        }
        if self.insecure {
            a.push("--insecure".into());
        }
        if let Some((cert, key)) = &self.client_identity {
            a.push("--client-cert".into());
            a.push(cert.display().to_string());
            a.push("--client-key".into());
            a.push(key.display().to_string());
        }
        a
    }

    /// Run it (pinned) to completion, bounded; `tick` runs every 200 ms meanwhile.
    pub fn run(
        &self,
        ringload: &Path,
        log_dir: &Path,
        log_name: &str,
        tick: impl FnMut(),
    ) -> Result<(LoadResult, Exit), String> {
        let mut cmd = Command::new(ringload);
        cmd.args(self.args());
        let mut child = Spawn {
            name: "ringload run",
            cmd,
            cores: self.cores.clone(),
            log_dir,
            log_name: log_name.to_string(),
        }
        .start()
        .map_err(|e| e.to_string())?;
        let bound = self.duration + self.warmup.unwrap_or_default() + Duration::from_secs(30);
        let exit = child.wait_timeout(bound, Duration::from_millis(200), tick);
        if exit.timed_out {
            return Err(format!(
                "ringload run did not finish within {bound:?}; killed"
            ));
        }
        let out = child.stdout();
        match LoadResult::parse(&out) {
            Ok(r) => Ok((r, exit)),
            Err(e) => Err(format!(
                "ringload run exited {}: {e}; stderr: {}",
                exit.code,
                child.stderr_tail(3)
            )),
        }
    }
}

/// What the benchmark reads from wrk's text report (`--latency`).
#[derive(Debug, Clone, PartialEq)]
pub struct WrkResult {
    pub rps: f64,
    pub requests: u64,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: u64,
}

/// `1.23ms` → 1230.0 µs.
pub fn parse_wrk_duration_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(v * mult)
}

pub fn parse_wrk(text: &str) -> Result<WrkResult, String> {
    let mut rps = None;
    let mut requests = 0;
    let mut pct = BTreeMap::new();
    let mut errors = 0u64;
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some((p, v)) = l.split_once('%') {
            if let Ok(p) = p.trim().parse::<f64>() {
                if let Some(us) = parse_wrk_duration_us(v) {
                    pct.insert((p * 10.0) as u64, us);
                }
            }
        } else if l.contains(" requests in ") {
            requests = l
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            errors += v
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1))
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
        }
    }
    let rps = rps.ok_or_else(|| "no Requests/sec line in wrk's output".to_string())?;
    Ok(WrkResult {
        rps,
        requests,
        p50_us: pct.get(&500).copied(),
        p90_us: pct.get(&900).copied(),
        p99_us: pct.get(&990).copied(),
        errors,
    })
}

/// Run `wrk -t T -c C -d D --latency URL` pinned to `cores`, bounded.
#[allow(clippy::too_many_arguments)]
pub fn run_wrk(
    wrk: &Path,
    url: &str,
    connections: usize,
    threads: usize,
    duration: Duration,
    cores: &[usize],
    log_dir: &Path,
    log_name: &str,
) -> Result<WrkResult, String> {
    let mut cmd = Command::new(wrk);
    cmd.args([
        "-t",
        &threads.min(connections).max(1).to_string(),
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{}s", duration.as_secs().max(1)),
        "--latency",
        url,
    ]);
    let mut child = Spawn {
        name: "wrk",
        cmd,
        cores: cores.to_vec(),
        log_dir,
        log_name: log_name.to_string(),
    }
    .start()
    .map_err(|e| e.to_string())?;
    let bound = duration + Duration::from_secs(30);
    let exit = child.wait_timeout(bound, Duration::from_secs(3600), || {});
    if exit.timed_out {
        return Err("wrk did not finish in time; killed".into());
    }
    parse_wrk(&child.stdout())
        .map_err(|e| format!("{e} (exit {}; {})", exit.code, child.stderr_tail(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RINGLOAD: &str = r#"{
      "url": "http://127.0.0.1:39525/", "method": "GET", "mode": "closed",
      "connections": 50, "workers": 1, "pipeline": 1, "rate": null,
      "driver": "io_uring (single_issuer, coop_taskrun)",
      "requests": 23396, "duration_s": 2.001191, "rps": 11691.04,
      "bytes": 1356968, "bytes_per_s": 678080.08, "connects": 50, "interrupted": false,
      "status_counts": {"200": 23390, "502": 6},
      "errors": {"closed": 0, "connect": 1, "io": 0, "malformed": 0, "reset": 0, "timeout": 2, "tls": 0},
      "errors_total": 3,
      "latency_us": {"min": 884, "mean": 4267.17, "stdev": 3648.1, "p50": 2105, "p75": 6139,
                     "p90": 9919, "p99": 16831, "p999": 21791, "p9999": 24943, "max": 24943}
    }"#;

    #[test]
    fn ringload_json() {
        let r = LoadResult::parse(RINGLOAD).unwrap();
        assert_eq!(r.requests, 23396);
        assert_eq!(r.rps, 11691.04);
        assert_eq!(r.latency_us.p99, 16831.0);
        assert_eq!(r.latency_us.p999, 21791.0);
        assert_eq!(r.errors_total(), 3);
        assert_eq!(r.non_2xx(), 6);
        assert_eq!(r.ok_2xx(), 23390);
        // 23,390 of 23,396 responses + 3 failed requests.
        let pct = r.success_pct().unwrap();
        assert!((pct - 100.0 * 23390.0 / 23399.0).abs() < 1e-9, "{pct}");
        // Without errors_total the kinds are summed.
        let r = LoadResult::parse(&RINGLOAD.replace("\"errors_total\": 3,", "")).unwrap();
        assert_eq!(r.errors_total(), 3);
        let none = RINGLOAD
            .replace("\"requests\": 23396", "\"requests\": 0")
            .replace("\"200\": 23390, \"502\": 6", "")
            .replace("\"errors_total\": 3", "\"errors_total\": 0");
        assert_eq!(LoadResult::parse(&none).unwrap().success_pct(), None);
        assert!(LoadResult::parse("{}").is_err());
        assert!(LoadResult::parse("").is_err());
    }

    #[test]
    fn ringload_args() {
        let s = RunSpec {
            url: "https://127.0.0.1:1/".into(),
            connections: 50,
            threads: 1,
            cores: vec![0],
            duration: Duration::from_secs(2),
            warmup: Some(Duration::from_millis(500)),
            rate: Some(1234.4),
            no_keepalive: true,
            method: "POST",
            body_file: Some("/tmp/b".into()),
            insecure: true,
            no_tls_resumption: false,
            client_identity: None,
        };
        let a = s.args().join(" ");
        assert_eq!(
            a,
            "run https://127.0.0.1:1/ -c 50 -t 1 -d 2000ms --timeout 5s --json --cores 0 \
             --warmup 500ms --rate 1234 --no-keepalive -m POST --body-file /tmp/b --insecure"
        );
        let m = RunSpec {
            no_tls_resumption: true,
            client_identity: Some(("/r/c.pem".into(), "/r/k.pem".into())),
            ..s
        };
        assert!(m.args().join(" ").ends_with(
            "--no-tls-resumption --insecure --client-cert /r/c.pem --client-key /r/k.pem"
        ));
    }

    const WRK: &str = "Running 2s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  350.00us   9.87ms   90.00%
    Req/Sec    24.00k     1.00k   25.00k    80.00%
  Latency Distribution
     50%    2.05ms
     75%    2.20ms
     90%  612.00us
     99%    1.02s
  48000 requests in 2.00s, 4.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  23999.50
Transfer/sec:      2.00MB
";

    #[test]
    fn wrk_output() {
        let r = parse_wrk(WRK).unwrap();
        assert_eq!(r.rps, 23999.5);
        assert_eq!(r.requests, 48000);
        assert_eq!(r.p50_us, Some(2050.0));
        assert_eq!(r.p90_us, Some(612.0));
        assert_eq!(r.p99_us, Some(1.02e6));
        assert_eq!(r.errors, 7);
        assert!(parse_wrk("unable to connect").is_err());
    }

    #[test]
    fn wrk_units() {
        assert_eq!(parse_wrk_duration_us("5us"), Some(5.0));
        assert_eq!(parse_wrk_duration_us("1.5m"), Some(90e6));
        assert_eq!(parse_wrk_duration_us("3x"), None);
        assert_eq!(parse_wrk_duration_us("ms"), None);
    }
}
