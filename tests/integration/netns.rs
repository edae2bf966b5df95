//! Multi-host fault tests in Linux network namespaces (`docs/mesh.md`,
//! *Fault tests*).
//!
//! ```text
//!   client             proxy                        o1, o2, o3
//!   ringload run ────► ringway :8080 ─round robin─► ringload serve :8080
//!   10.213.0.1         10.213.0.2                   10.213.0.3 – .5 (o2 fails)
//!
//!   each host: its own namespace, lo, eth0 = one end of a veth pair whose
//!   other end is a port of bridge br0 in a hub namespace (10.213.0.0/24)
//! ```
//!
//! One of three origins fails in each case: its process is killed mid-run,
//! its link is set down mid-run, its packets are dropped mid-run (nft, else
//! iptables), it answers 503 to half the requests, or it resets half its
//! connections. Each case runs twice against a fresh topology:
//! - **resilient**: retries (connect failure, reset, per-try timeout, 502 /
//!   503 / 504), passive outlier ejection, a short connect timeout: the
//!   client's success rate is at least 99.9 %;
//! - **plain**: none of them: the failures show (some requests fail).
//!
//! Root and `ip` are needed; without them (or when `ip netns add` is
//! refused) each test prints a SKIP line and passes. The cases run one at a
//! time (they measure), a few seconds each.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::netns::{self, NsProcess, Topology};
use ringway_tests::proxy::{ringload_bin, Proxy};

/// The cases measure success rates: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const CLIENT: &str = "client";
const PROXY: &str = "proxy";
const ORIGINS: [&str; 3] = ["o1", "o2", "o3"];
/// The origin that fails.
const FAULTY: &str = "o2";
const PORT: u16 = 8080;
/// How long the client sends requests, and when a mid-run fault starts.
const RUN: Duration = Duration::from_secs(3);
const FAULT_AT: Duration = Duration::from_millis(1000);
/// Fewer requests than this would make a 99.9 % rate meaningless (one
/// failure in 1,000 is 0.1 %).
const MIN_REQUESTS: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL mid-run: the kernel closes its connections, new ones are
    /// refused.
    Killed,
    /// `ip link set eth0 down` in its namespace mid-run: a blackhole.
    LinkDown,
    /// An nft (or iptables) rule dropping every packet to its port, mid-run:
    /// a blackhole with the link up.
    Dropped,
    /// `--fail-fraction 0.5 --fail-status 503` from the start.
    Half503,
    /// `--reset-fraction 0.5 --close-after 1` from the start: a new
    /// connection per request, half of them reset (RST, no response) at
    /// their request.
    Resets,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Killed => "killed",
            Fault::LinkDown => "link-down",
            Fault::Dropped => "dropped",
            Fault::Half503 => "half-503",
            Fault::Resets => "resets",
        }
    }

    /// Extra `ringload serve` flags of the faulty origin.
    fn serve_flags(self) -> &'static [&'static str] {
        match self {
            Fault::Half503 => &["--fail-fraction", "0.5", "--fail-status", "503"],
            // --reset-fraction draws per connection, at its first request;
            // with one request per connection that is half the requests,
            // all the time (with keep-alive, 0.5 would only thin out the
            // first connections and the survivors would then serve
            // forever; 1.0 would be a dead origin like the kill case).
            Fault::Resets => &["--reset-fraction", "0.5", "--close-after", "1"],
            _ => &[],
        }
    }
}

/// How the faulty origin's packets are dropped.
enum Dropper {
    Nft,
    Iptables,
}

impl Dropper {
    /// Finds a firewall tool that works in `host`'s namespace (and sets up
    /// an empty nft table there); Err with why neither does.
    fn prepare(topo: &Topology, host: &str) -> Result<Dropper, String> {
        let nft = topo
            .run_in(host, "nft", &["add", "table", "inet", "ringway_fault"])
            .and_then(|_| {
                topo.run_in(
                    host,
                    "nft",
                    &[
                        "add",
                        "chain",
                        "inet",
                        "ringway_fault",
                        "input",
                        "{ type filter hook input priority 0 ; policy accept ; }",
                    ],
                )
            });
        let nft_err = match nft {
            Ok(_) => return Ok(Dropper::Nft),
            Err(e) => e,
        };
        match topo.run_in(host, "iptables", &["-S", "INPUT"]) {
            Ok(_) => Ok(Dropper::Iptables),
            Err(e) => Err(format!("neither nft nor iptables works: {nft_err}; {e}")),
        }
    }

    fn drop_port(&self, topo: &Topology, host: &str, port: u16) -> Result<(), String> {
        let port = port.to_string();
        match self {
            Dropper::Nft => topo.run_in(
                host,
                "nft",
                &[
                    "add",
                    "rule",
                    "inet",
                    "ringway_fault",
                    "input",
                    "tcp",
                    "dport",
                    &port,
                    "drop",
                ],
            ),
            Dropper::Iptables => topo.run_in(
                host,
                "iptables",
                &["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "DROP"],
            ),
        }
        .map(|_| ())
    }
}

/// What the client saw.
#[derive(Debug)]
struct Outcome {
    ok: u64,
    failed: u64,
    report: serde_json::Value,
}

impl Outcome {
    fn total(&self) -> u64 {
        self.ok + self.failed
    }

    fn rate(&self) -> f64 {
        100.0 * self.ok as f64 / self.total().max(1) as f64
    }

    /// Non-2xx statuses and client errors, for messages.
    fn failures(&self) -> String {
        let statuses: Vec<String> = self.report["status_counts"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !k.starts_with('2'))
                    .map(|(k, v)| format!("{k}×{v}"))
                    .collect()
            })
            .unwrap_or_default();
        let errors: Vec<String> = self.report["errors"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v.as_u64() != Some(0))
                    .map(|(k, v)| format!("{k}×{v}"))
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "statuses [{}] errors [{}]",
            statuses.join(" "),
            errors.join(" ")
        )
    }
}

/// Counts from `ringload run --json`: 2xx responses succeed; other
/// statuses and errors (connect, reset, timeout, ...) fail.
fn outcome(report: serde_json::Value) -> Outcome {
    let counts = report["status_counts"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let ok: u64 = counts
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    let responses = report["requests"].as_u64().unwrap_or(0);
    let errors = report["errors_total"].as_u64().unwrap_or(0);
    Outcome {
        ok,
        failed: responses - ok + errors,
        report,
    }
}

fn origin_addr(topo: &Topology, origin: &str) -> SocketAddr {
    SocketAddr::new(topo.addr(origin).into(), PORT)
}

fn config(topo: &Topology, resilient: bool) -> Config {
    let eps: Vec<SocketAddr> = ORIGINS.iter().map(|o| origin_addr(topo, o)).collect();
    let listen = q(&format!("{}:{PORT}", topo.addr(PROXY)));
    let c = Config::new()
        .runtime("workers", "2")
        .listener_with("public", &[("address", &listen)])
        .admin();
    if resilient {
        // Retries and passive ejection only (no active health checks, so
        // what they do is what is measured). A blackholed endpoint costs
        // one per-try timeout (or connect timeout) before the retry goes
        // to another endpoint; three gateway errors in a row on a worker
        // eject it there for 1 s, then 2 s (max 34 %: one of three).
        c.route(
            "public",
            "/",
            "app",
            &[
                ("timeout", &q("3s")),
                (
                    "retries",
                    r#"{ attempts = 2, per_try_timeout = "300ms", backoff = "1ms", max_backoff = "10ms" }"#,
                ),
            ],
        )
        .cluster(
            "app",
            &eps,
            &[
                ("connect_timeout", &q("200ms")),
                (
                    "outlier_detection",
                    r#"{ consecutive_gateway_errors = 3, base_ejection_time = "1s", max_ejection_percent = 34, interval = "1s", success_rate_minimum_hosts = 3, success_rate_request_volume = 50 }"#,
                ),
            ],
        )
    } else {
        c.route("public", "/", "app", &[("timeout", &q("1s"))])
            .cluster("app", &eps, &[("connect_timeout", &q("1s"))])
    }
}

fn start_origin(
    topo: &Topology,
    ringload: &Path,
    origin: &str,
    flags: &[&str],
) -> Result<NsProcess, String> {
    let listen = origin_addr(topo, origin).to_string();
    let mut args = vec!["serve", "-l", &listen, "-t", "1"];
    args.extend_from_slice(flags);
    topo.spawn(
        origin,
        ringload,
        &args,
        "ringload serve: listening on",
        Duration::from_secs(10),
    )
}

/// `ringload run` in the client namespace, started now; the report once it
/// ends.
/// Killed on drop if still running.
struct Load {
    child: std::process::Child,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Load {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Load {
    fn start(topo: &Topology, ringload: &Path) -> Load {
        let url = format!("http://{}:{PORT}/", topo.addr(PROXY));
        let secs = format!("{}ms", RUN.as_millis());
        let mut child = topo
            .command(CLIENT, ringload)
            .args([
                "run",
                &url,
                "-c",
                "4",
                "-t",
                "1",
                "-d",
                &secs,
                "--timeout",
                "5s",
                "--json",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringload run");
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = read(Box::new(child.stdout.take().unwrap()));
        let err = read(Box::new(child.stderr.take().unwrap()));
        Load {
            child,
            out: Some(out),
            err: Some(err),
        }
    }

    fn finish(mut self) -> Outcome {
        let deadline = Instant::now() + RUN + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "ringload run did not finish within {:?}",
                    RUN + Duration::from_secs(20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = self.out.take().unwrap().join().unwrap_or_default();
        let err = self.err.take().unwrap().join().unwrap_or_default();
        assert!(status.success(), "ringload run: {status}\n{out}\n{err}");
        let report: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ringload --json output: {e}\n{out}\n{err}"));
        outcome(report)
    }
}

/// The proxy's own account of a run, from its admin API (queried from
/// inside its namespace).
struct ProxyView {
    /// Requests its route counted, and the 5xx answers among them.
    requests: u64,
    answered_5xx: u64,
    /// Retries, budget refusals and per-endpoint figures, for the report.
    summary: String,
}

/// Reads `/stats` once the route's request count has stopped moving (the
/// log stage counts a request once its answer is written; requests the
/// client abandoned at its deadline may still be finishing).
fn proxy_view(topo: &Topology, proxy: &Proxy) -> ProxyView {
    let admin = proxy.admin_addr();
    let read = || {
        topo.http_get(PROXY, admin, "/stats")
            .ok()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .unwrap_or_else(|| panic!("no /stats from ringway\n{}", proxy.output_report()))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stats = read();
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let next = read();
        let same =
            next["total"]["routes"][0]["requests"] == stats["total"]["routes"][0]["requests"];
        stats = next;
        if same || Instant::now() > deadline {
            break;
        }
    }
    let route = &stats["total"]["routes"][0];
    let c = &stats["total"]["clusters"][0];
    let eps: Vec<String> = stats["total"]["endpoints"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{} req {} 5xx {} cf {} to {} ej {}",
                        e["endpoint"].as_str().unwrap_or("?"),
                        e["requests"],
                        e["responses"]["5xx"],
                        e["connect_failures"],
                        e["timeouts"],
                        e["ejections"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let requests = route["requests"].as_u64().unwrap_or(0);
    let answered_5xx = route["responses"]["5xx"].as_u64().unwrap_or(0);
    ProxyView {
        requests,
        answered_5xx,
        summary: format!(
            "{requests} requests, {answered_5xx} answered 5xx, max {} ms, retries {} budget_exhausted {}; {}",
            route["latency"]["max_us"].as_u64().unwrap_or(0) / 1000,
            c["retries"],
            c["retries_budget_exhausted"],
            eps.join("; ")
        ),
    }
}

/// One run of `fault` against a fresh topology; None (after a SKIP line)
/// when the topology or the fault cannot be set up here.
fn run_once(
    test: &str,
    fault: Fault,
    resilient: bool,
    ringload: &Path,
) -> Option<(Outcome, ProxyView)> {
    let mode = if resilient { "resilient" } else { "plain" };
    let topo = match Topology::create(&[CLIENT, PROXY, ORIGINS[0], ORIGINS[1], ORIGINS[2]]) {
        Ok(t) => t,
        Err(e) => {
            println!("SKIP {test}: cannot build the namespaces: {e}");
            return None;
        }
    };
    let dropper = if fault == Fault::Dropped {
        match Dropper::prepare(&topo, FAULTY) {
            Ok(d) => Some(d),
            Err(e) => {
                println!("SKIP {test}: {e} (Debian nftables; ./run.sh test installs it as root)");
                return None;
            }
        }
    } else {
        None
    };
    let mut origins: Vec<NsProcess> = ORIGINS
        .iter()
        .map(|o| {
            let flags = if *o == FAULTY {
                fault.serve_flags()
            } else {
                &[]
            };
            start_origin(&topo, ringload, o, flags).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let dir = TestDir::new(&format!("netns-{}-{mode}", fault.name()));
    let proxy = Proxy::try_start_via(
        &dir,
        &config(&topo, resilient).to_toml(),
        &[("RUST_LOG", "warn")],
        &topo.launcher(PROXY),
    )
    .unwrap_or_else(|e| panic!("ringway in its namespace: {e}"));

    let load = Load::start(&topo, ringload);
    let faulty = ORIGINS.iter().position(|o| *o == FAULTY).unwrap();
    match fault {
        Fault::Killed | Fault::LinkDown | Fault::Dropped => {
            std::thread::sleep(FAULT_AT);
            match fault {
                Fault::Killed => origins[faulty].kill(),
                Fault::LinkDown => topo.link_down(FAULTY).unwrap(),
                _ => dropper
                    .as_ref()
                    .unwrap()
                    .drop_port(&topo, FAULTY, PORT)
                    .unwrap(),
            }
        }
        Fault::Half503 | Fault::Resets => {}
    }
    let out = load.finish();
    let view = proxy_view(&topo, &proxy);
    println!(
        "netns {:<9} {:<9}: {:>6} of {:>6} ok = {:8.4} %; failed {} ({}); {:.2} s, p99 {} ms, max {} ms; proxy: {}",
        fault.name(),
        mode,
        out.ok,
        out.total(),
        out.rate(),
        out.failed,
        out.failures(),
        out.report["duration_s"].as_f64().unwrap_or(0.0),
        out.report["latency_us"]["p99"].as_u64().unwrap_or(0) / 1000,
        out.report["latency_us"]["max"].as_u64().unwrap_or(0) / 1000,
        view.summary
    );
    drop(proxy);
    drop(origins);
    Some((out, view))
}

fn fault_case(test: &str, fault: Fault) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = netns::unsupported() {
        println!("SKIP {test}: {why}");
        return;
    }
    let Some(ringload) = ringload_bin() else {
        println!("SKIP {test}: ringload binary not built (cargo build --workspace --bins)");
        return;
    };
    let ringload: PathBuf = ringload;
    netns::cleanup_stale();

    let Some((resilient, view)) = run_once(test, fault, true, &ringload) else {
        return;
    };
    let Some((plain, _)) = run_once(test, fault, false, &ringload) else {
        return;
    };
    assert!(
        resilient.total() >= MIN_REQUESTS,
        "{test}: only {} requests in {RUN:?}: {:?}",
        resilient.total(),
        resilient.report
    );
    assert!(
        resilient.rate() >= 99.9,
        "{test}: with retries and ejection {:.4} % succeeded ({} of {}; {})",
        resilient.rate(),
        resilient.ok,
        resilient.total(),
        resilient.failures()
    );
    // ringload abandons the requests in flight at its deadline (at most one
    // per connection) without counting them: the proxy's own count of 5xx
    // answers covers those too.
    assert!(
        view.answered_5xx * 1000 <= view.requests,
        "{test}: with retries and ejection ringway answered {} of {} requests with 5xx",
        view.answered_5xx,
        view.requests
    );
    assert!(
        plain.failed > 0,
        "{test}: without retries and ejection nothing failed ({} requests): the fault did not happen",
        plain.total()
    );
}

#[test]
fn netns_origin_killed_mid_run() {
    fault_case("netns_origin_killed_mid_run", Fault::Killed);
}

#[test]
fn netns_origin_link_down_mid_run() {
    fault_case("netns_origin_link_down_mid_run", Fault::LinkDown);
}

#[test]
fn netns_origin_packets_dropped_mid_run() {
    fault_case("netns_origin_packets_dropped_mid_run", Fault::Dropped);
}

#[test]
fn netns_origin_answering_503_to_half_the_requests() {
    fault_case(
        "netns_origin_answering_503_to_half_the_requests",
        Fault::Half503,
    );
}

#[test]
fn netns_origin_resetting_half_its_connections() {
    fault_case("netns_origin_resetting_half_its_connections", Fault::Resets);
}

#[test]
fn netns_topology_is_isolated_and_removed_on_drop() {
    let test = "netns_topology_is_isolated_and_removed_on_drop";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = netns::unsupported() {
        println!("SKIP {test}: {why}");
        return;
    }
    netns::cleanup_stale();
    let subnet_in_root = || -> Vec<String> {
        netns::ip(&["-4", "addr", "show"])
            .unwrap()
            .lines()
            .filter(|l| l.contains("10.213.0."))
            .map(str::to_owned)
            .collect()
    };
    let before = subnet_in_root();
    let topo = match Topology::create(&[CLIENT, "server"]) {
        Ok(t) => t,
        Err(e) => {
            println!("SKIP {test}: cannot build the namespaces: {e}");
            return;
        }
    };
    // rwnt-<pid>-<n>-: the hub and both hosts.
    let id = topo.ns(CLIENT).strip_suffix(CLIENT).unwrap().to_string();
    // Only the /24 is routed: nothing leaves the namespaces.
    let routes = netns::ip(&["-n", topo.ns(CLIENT), "-4", "route", "show"]).unwrap();
    assert_eq!(
        routes.trim(),
        format!(
            "10.213.0.0/24 dev eth0 proto kernel scope link src {}",
            topo.addr(CLIENT)
        ),
        "routes of the client"
    );
    let outside = topo
        .within(CLIENT, || {
            std::net::TcpStream::connect_timeout(
                &"192.0.2.1:80".parse().unwrap(),
                Duration::from_secs(1),
            )
            .map(|_| ())
            .map_err(|e| e.raw_os_error())
        })
        .unwrap();
    assert_eq!(outside, Err(Some(libc::ENETUNREACH)));
    // Hosts reach each other over the bridge.
    let at = SocketAddr::new(topo.addr("server").into(), PORT);
    let listener = topo
        .within("server", move || std::net::TcpListener::bind(at))
        .unwrap()
        .unwrap();
    let seen = topo
        .within(CLIENT, move || {
            std::net::TcpStream::connect_timeout(&at, Duration::from_secs(2))
                .map(|s| s.local_addr())
        })
        .unwrap()
        .unwrap()
        .unwrap();
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer, seen);
    assert_eq!(peer.ip(), std::net::IpAddr::from(topo.addr(CLIENT)));
    // The test's own namespace gets no address of the /24.
    assert_eq!(subnet_in_root(), before, "root namespace addresses");
    drop(listener);
    drop(topo);
    let left = netns::ip(&["netns", "list"]).unwrap();
    assert!(!left.contains(&id), "{id}* left behind: {left}");
}
