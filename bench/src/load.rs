//! The load generators: `ringload run --json` (every HTTP/1.1 measurement),
//! `h2load` (the HTTP/2 scenarios) and `wrk` (one cross-check scenario).

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

// ---------------------------------------------------------------------------
// h2load: the HTTP/2 scenarios (`Scenario::h2_streams`)

/// One invocation of `h2load` (nghttp2): a closed loop, every one of the
/// `connections × streams` streams busy all the time.
#[derive(Debug, Clone)]
pub struct H2loadSpec {
    pub url: String,
    pub connections: usize,
    /// Concurrent streams per connection (`-m`).
    pub streams: usize,
    pub threads: usize,
    pub cores: Vec<usize>,
    /// Main phase (`-D`): only its requests are counted and logged.
    pub duration: Duration,
    /// `--warm-up-time`: before the main phase, on the same connections.
    pub warmup: Duration,
    /// `--log-file`: one line per request of the main phase.
    pub log_file: PathBuf,
}

/// h2load's progress lines on stdout (flushed as they happen), one per
/// worker thread.
pub const H2LOAD_MAIN_STARTED: &str = "Main benchmark duration is started for thread";
pub const H2LOAD_MAIN_OVER: &str = "Main benchmark duration is over for thread";

/// The main phase of an h2load run began or ended (every thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Phase {
    MainStarted,
    MainOver,
}

impl H2loadSpec {
    pub fn thread_count(&self) -> usize {
        self.threads.min(self.connections).max(1)
    }

    pub fn args(&self) -> Vec<String> {
        vec![
            "-c".into(),
            self.connections.to_string(),
            "-m".into(),
            self.streams.to_string(),
            "-t".into(),
            self.thread_count().to_string(),
            "-D".into(),
            ms(self.duration),
            format!("--warm-up-time={}", ms(self.warmup)),
            format!("--log-file={}", self.log_file.display()),
            self.url.clone(),
        ]
    }

    /// Run it (pinned) to completion, bounded. `phase` is called when every
    /// thread has started its main phase and again when every thread has
    /// ended it (from h2load's own progress lines, polled every 10 ms): the
    /// caller's CPU window. `tick` runs every 200 ms (samplers).
    pub fn run(
        &self,
        h2load: &Path,
        log_dir: &Path,
        log_name: &str,
        mut phase: impl FnMut(H2Phase, i32),
        mut tick: impl FnMut(),
    ) -> Result<(LoadResult, Exit), String> {
        // h2load appends to its log file.
        let _ = std::fs::remove_file(&self.log_file);
        let mut cmd = Command::new(h2load);
        cmd.args(self.args());
        let mut child = Spawn {
            name: "h2load",
            cmd,
            cores: self.cores.clone(),
            log_dir,
            log_name: log_name.to_string(),
        }
        .start()
        .map_err(|e| e.to_string())?;
        let threads = self.thread_count();
        let pid = child.pid;
        let stdout_path = child.stdout_path.clone();
        let mut seen = (false, false);
        let mut next_tick = std::time::Instant::now();
        let bound = self.duration + self.warmup + Duration::from_secs(30);
        let exit = child.wait_timeout(bound, Duration::from_millis(10), || {
            if !seen.1 {
                let out = std::fs::read_to_string(&stdout_path).unwrap_or_default();
                if !seen.0 && out.matches(H2LOAD_MAIN_STARTED).count() >= threads {
                    seen.0 = true;
                    phase(H2Phase::MainStarted, pid);
                }
                if seen.0 && out.matches(H2LOAD_MAIN_OVER).count() >= threads {
                    seen.1 = true;
                    phase(H2Phase::MainOver, pid);
                }
            }
            let now = std::time::Instant::now();
            if now >= next_tick {
                tick();
                next_tick = now + Duration::from_millis(200);
            }
        });
        if exit.timed_out {
            return Err(format!("h2load did not finish within {bound:?}; killed"));
        }
        // h2load exits a few ms after its main phase: often before the next
        // poll saw the line. The window then ends here (the load generator
        // has exited; its CPU is in `exit`).
        if seen.0 && !seen.1 && child.stdout().matches(H2LOAD_MAIN_OVER).count() >= threads {
            phase(H2Phase::MainOver, pid);
        }
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        match parse_h2load(&child.stdout(), &log, self.duration, self.connections) {
            Ok(r) => Ok((r, exit)),
            Err(e) => Err(format!(
                "h2load exited {}: {e}; stderr: {}",
                exit.code,
                child.stderr_tail(3)
            )),
        }
    }
}

/// The number just before `label` in `line` ("6 total": 6 for "total").
pub fn count_before(line: &str, label: &str) -> Option<u64> {
    let words: Vec<&str> = line
        .split(|c: char| c == ',' || c == ':' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[1] == label)
        .and_then(|w| w[0].parse().ok())
}

/// Nearest-rank percentile of sorted `v` (`q` in 0..=1).
fn percentile(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1] as f64
}

/// h2load's stdout summary and its `--log-file` (start µs since the epoch,
/// status or -1 for a failed stream, µs until the end of the response; tab
/// separated) as the harness's [`LoadResult`]. req/s is h2load's own (main
/// phase only); status counts and latency percentiles come from the log;
/// `requests` counts the responses (any status), failed streams are errors,
/// as in ringload's JSON. h2load's "failed" also counts 4xx/5xx responses,
/// so it is not used; "errored" (resets, connection errors, timeouts) is.
/// Rows with status 0 (a response begun in the warm-up) are left out.
pub fn parse_h2load(
    stdout: &str,
    log: &str,
    duration: Duration,
    connections: usize,
) -> Result<LoadResult, String> {
    let rps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|f| f.trim().strip_suffix(" req/s"))
        .and_then(|f| f.trim().parse::<f64>().ok())
        .ok_or_else(|| "no \"finished in ..., N req/s\" line in h2load's output".to_string())?;
    let req_line = stdout
        .lines()
        .find(|l| l.starts_with("requests: "))
        .ok_or_else(|| "no \"requests:\" line in h2load's output".to_string())?;
    let errored = count_before(req_line, "errored").unwrap_or(0);
    let timeout = count_before(req_line, "timeout").unwrap_or(0);
    let mut status_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut durations = Vec::new();
    let mut failed_streams = 0u64;
    let mut straddling = 0u64;
    for (i, line) in log.lines().enumerate() {
        let mut f = line.split('\t');
        let (_start, status, dur) = (f.next(), f.next(), f.next());
        let (Some(status), Some(dur)) = (status, dur) else {
            return Err(format!("h2load log line {}: {line:?}", i + 1));
        };
        let dur: u64 = dur
            .trim()
            .parse()
            .map_err(|_| format!("h2load log line {}: {line:?}", i + 1))?;
        match status.trim() {
            "-1" => failed_streams += 1,
            // A stream begun in the warm-up and ended in the main phase,
            // logged with status 0 (about one per run in captured logs;
            // h2load's summary counts it as succeeded but in no status
            // class). Its status is unknown: left out.
            "0" => straddling += 1,
            s => {
                *status_counts.entry(s.to_string()).or_default() += 1;
                durations.push(dur);
            }
        }
    }
    durations.sort_unstable();
    let requests = durations.len() as u64;
    let errors_total = errored.max(failed_streams);
    let mut errors = BTreeMap::new();
    errors.insert("errored".to_string(), errored);
    errors.insert("timeout".to_string(), timeout);
    errors.insert("failed_streams".to_string(), failed_streams);
    // Not an error (see above); kept for the raw record.
    errors.insert("warmup_straddling_status_0".to_string(), straddling);
    Ok(LoadResult {
        requests,
        duration_s: duration.as_secs_f64(),
        rps,
        status_counts,
        errors,
        errors_total: Some(errors_total),
        latency_us: Latency {
            p50: percentile(&durations, 0.50),
            p90: percentile(&durations, 0.90),
            p99: percentile(&durations, 0.99),
            p999: percentile(&durations, 0.999),
            max: durations.last().copied().unwrap_or(0) as f64,
        },
        interrupted: false,
        connects: connections as u64,
        tls_resumed: 0,
    })
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

    /// Captured: `h2load -c 2 -m 2 -D 1 --warm-up-time=1 --rps 3
    /// --log-file=... http://127.0.0.1:28555/ http://127.0.0.1:28555/
    /// http://127.0.0.1:28555/busy` against nginx 1.22 (`listen ... http2`,
    /// `/busy` answers 503), h2load nghttp2/1.52.0.
    const H2LOAD_OUT: &str = "starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 1s of warm-up time and 1s of main duration for measurements.
Warm-up started for thread #0.
progress: 50% of clients started
progress: 100% of clients started
Application protocol: h2c
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 6.00 req/s, 416B/s
requests: 6 total, 6 started, 6 done, 4 succeeded, 2 failed, 0 errored, 0 timeout
status codes: 4 2xx, 0 3xx, 0 4xx, 2 5xx
traffic: 416B (416) total, 592B (592) headers (space savings 49.66%), 24B (24) data
                     min         max         mean         sd        +/- sd
time for request:      130us       298us       205us        74us    50.00%
time for connect:        0us         0us         0us         0us     0.00%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :       3.00        3.00        3.00        0.00   100.00%
";
    const H2LOAD_LOG: &str = "1795990287747627\t200\t164
1795990287747561\t200\t294
1795990288078348\t200\t130
1795990288078298\t200\t203
1795990288411084\t503\t141
1795990288410960\t503\t298
";

    #[test]
    fn h2load_output_and_log() {
        let r = parse_h2load(H2LOAD_OUT, H2LOAD_LOG, Duration::from_secs(1), 2).unwrap();
        assert_eq!(r.rps, 6.0);
        assert_eq!(r.requests, 6);
        assert_eq!(r.duration_s, 1.0);
        assert_eq!(r.ok_2xx(), 4);
        assert_eq!(r.non_2xx(), 2);
        assert_eq!(r.status_counts["503"], 2);
        // h2load's "2 failed" are the 503 responses, not transport errors.
        assert_eq!(r.errors_total(), 0);
        assert_eq!(r.success_pct(), Some(100.0 * 4.0 / 6.0));
        // Sorted: 130 141 164 203 294 298 (nearest rank).
        assert_eq!(r.latency_us.p50, 164.0);
        assert_eq!(r.latency_us.p90, 298.0);
        assert_eq!(r.latency_us.p99, 298.0);
        assert_eq!(r.latency_us.max, 298.0);
        assert_eq!(r.connects, 2);
        assert!(H2LOAD_OUT.contains(H2LOAD_MAIN_STARTED) && H2LOAD_OUT.contains(H2LOAD_MAIN_OVER));
        // A failed stream (status -1) is an error, not a response.
        let log = format!("{H2LOAD_LOG}1795990288411090\t-1\t5000\n");
        let out = H2LOAD_OUT.replace("0 errored", "1 errored");
        let r = parse_h2load(&out, &log, Duration::from_secs(1), 2).unwrap();
        assert_eq!((r.requests, r.errors_total()), (6, 1));
        assert_eq!(r.latency_us.max, 298.0);
        // Status 0 (captured from a 1 s run against nginx: started 12 ms
        // before the first main-phase request, ended after it) is left
        // out: neither a non-2xx nor an error.
        let log = format!("{H2LOAD_LOG}1795990228089148\t0\t20093\n");
        let r = parse_h2load(H2LOAD_OUT, &log, Duration::from_secs(1), 2).unwrap();
        assert_eq!((r.requests, r.non_2xx(), r.errors_total()), (6, 2, 0));
        assert_eq!(r.latency_us.max, 298.0);
        // Nothing measured: zero requests, no latency, still a result.
        let r = parse_h2load(H2LOAD_OUT, "", Duration::from_secs(1), 2).unwrap();
        assert_eq!((r.requests, r.latency_us.p99), (0, 0.0));
        assert_eq!(r.success_pct(), None);
        assert!(
            parse_h2load("connect: Connection refused", "", Duration::from_secs(1), 2).is_err()
        );
        assert!(parse_h2load(H2LOAD_OUT, "garbage\n", Duration::from_secs(1), 2).is_err());
    }

    #[test]
    fn h2load_args() {
        let s = H2loadSpec {
            url: "http://127.0.0.1:1/".into(),
            connections: 10,
            streams: 100,
            threads: 2,
            cores: vec![0],
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            log_file: "/r/h2.tsv".into(),
        };
        assert_eq!(
            s.args().join(" "),
            "-c 10 -m 100 -t 2 -D 10000ms --warm-up-time=2000ms --log-file=/r/h2.tsv http://127.0.0.1:1/"
        );
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7], 0.999), 7.0);
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.99), 990.0);
        assert_eq!(percentile(&v, 0.999), 999.0);
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
