//! The traffic shapes, in report order (`small-get-keepalive` first).

/// A fault scenario: several origins form one upstream group and one of
/// them fails part of its requests (`ringload serve --fail-fraction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Origins in the group (every contender gets all of them).
    pub origins: usize,
    /// Index of the failing origin in the group.
    pub faulty: usize,
    /// Share of its requests it fails, percent.
    pub fail_percent: u32,
    /// Status of those failures.
    pub fail_status: u16,
}

impl Fault {
    /// `--fail-fraction` of origin `i` (None for a healthy one).
    pub fn fail_fraction(&self, i: usize) -> Option<f64> {
        (i == self.faulty && self.fail_percent > 0).then(|| f64::from(self.fail_percent) / 100.0)
    }

    /// The success rate a proxy without retries or ejection would give:
    /// round robin sends 1/origins of the requests to the failing one.
    pub fn success_pct_without_retries(&self) -> f64 {
        100.0 - f64::from(self.fail_percent) / self.origins as f64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    /// Open connections of the load generator.
    pub connections: usize,
    /// Origin response body size (`ringload serve --body-size`).
    pub response_body: usize,
    /// Request body (POST) size; 0 = GET without body.
    pub request_body: usize,
    /// A new connection per request (`--no-keepalive`).
    pub new_connection_per_request: bool,
    /// TLS between load generator and contender (the proxy terminates it).
    pub tls: bool,
    /// TLS: the client never resumes a session (every handshake is full).
    pub full_handshakes: bool,
    /// Mutual TLS: the client presents a certificate (signed by the run's
    /// CA, `tls::mint_mtls`) and every contender requires and verifies it.
    /// Needs `tls`.
    pub client_cert: bool,
    /// Several origins, one failing part of its requests; the proxies are
    /// configured with retries and passive ejection (`None`: one origin).
    pub fault: Option<Fault>,
    /// HTTP/2 downstream: this many concurrent streams per connection, load
    /// from h2load (`-c connections -m streams`, closed loop only); every
    /// proxy listens for h2 (h2c by prior knowledge, or ALPN h2 with `tls`)
    /// and speaks HTTP/1.1 keep-alive to the origin. `None`: HTTP/1.1 from
    /// ringload.
    pub h2_streams: Option<usize>,
    /// Run when no `--scenarios` is given (`all` runs every scenario).
    pub default: bool,
}

impl Scenario {
    pub fn method(&self) -> &'static str {
        if self.request_body > 0 {
            "POST"
        } else {
            "GET"
        }
    }

    /// Why `direct` (load straight at the origin) cannot run this scenario.
    pub fn direct_skip_reason(&self) -> Option<&'static str> {
        if self.h2_streams.is_some() {
            return Some(
                "the origin (ringload serve) speaks HTTP/1.1 only; h2load's HTTP/2 load needs a proxy in front of it",
            );
        }
        if self.fault.is_some() {
            return Some(
                "the three origins form one group only a proxy can make (retries, ejection); load straight at one origin measures neither the fault nor its handling",
            );
        }
        self.tls.then_some(
            "TLS termination is what this scenario measures; the origin speaks plain HTTP, so there is nothing to compare against",
        )
    }

    /// What one request stands for when every request opens a new TLS
    /// connection: the report reads req/s as handshakes per second and CPU
    /// µs/req as CPU per handshake (plus its one request).
    pub fn per_request_note(&self) -> Option<&'static str> {
        match (self.tls && self.new_connection_per_request, self.client_cert) {
            (false, _) => None,
            (true, false) => Some(
                "one request per new TLS connection: req/s = new TLS connections/s, CPU µs/req = CPU µs per TLS handshake (and its one request)",
            ),
            (true, true) => Some(
                "one request per new mutual-TLS connection: req/s = new mTLS connections/s, CPU µs/req = CPU µs per full mTLS handshake (client certificate verified; and its one request)",
            ),
        }
    }

    /// Why this scenario has no open-loop part (None: it has one).
    pub fn open_loop_skip_reason(&self) -> Option<&'static str> {
        self.h2_streams.map(|_| {
            "closed loop only: h2load keeps every stream busy (-c × -m in flight); its -r is a rate of new connections, and its --rps paces requests per connection but times each one from when it is sent, not from when it was due, so it is no match for ringload's corrected open loop. CPU µs/req comes from the closed-loop runs, over h2load's main phase only (warm-up excluded)"
        })
    }

    /// Number of origins to start.
    pub fn origins(&self) -> usize {
        self.fault.as_ref().map_or(1, |f| f.origins)
    }

    /// Body bytes one request moves through a proxy: the larger of the
    /// request and the response body.
    pub fn body_bytes(&self) -> usize {
        self.request_body.max(self.response_body)
    }

    /// A large-body scenario (a request or response body of at least
    /// `LARGE_BODY` bytes): nginx gets its large-body settings and the
    /// report adds CPU per MiB moved.
    pub fn large_body(&self) -> bool {
        self.body_bytes() >= LARGE_BODY
    }

    /// Large-body scenarios: the body one request moves, in MiB (what CPU
    /// µs/req is divided by for CPU µs/MiB).
    pub fn moved_mib(&self) -> Option<f64> {
        self.large_body()
            .then(|| self.body_bytes() as f64 / f64::from(1u32 << 20))
    }
}

/// From this body size on (request or response) a scenario is a large-body
/// one (`Scenario::large_body`): 1 MiB, nginx's default
/// `client_max_body_size`.
pub const LARGE_BODY: usize = 1 << 20;

/// The open-file limit of this container (hard, per process; prlimit cannot
/// raise it). The connection-count-dependent peer limits (nginx
/// `worker_rlimit_nofile`) stay within it.
pub const NOFILE_LIMIT: usize = 20_000;

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "small-get-keepalive",
        description: "GET, 2-byte response, 50 keep-alive connections",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "get-1k",
        description: "GET, 1 KiB response, 50 keep-alive connections",
        connections: 50,
        response_body: 1024,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "get-64k",
        description: "GET, 64 KiB response, 50 keep-alive connections",
        connections: 50,
        response_body: 64 * 1024,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "post-16k",
        description: "POST with a 16 KiB body, 2-byte response, 50 keep-alive connections",
        connections: 50,
        response_body: 2,
        request_body: 16 * 1024,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "new-connection-per-request",
        description:
            "GET, 2-byte response, a new client connection per request (upstream pool kept)",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: true,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "tls-keepalive",
        description: "GET, 2-byte response, 50 keep-alive TLS connections terminated at the proxy",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: true,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "tls-new-connection",
        description: "GET, 2-byte response, a new TLS connection per request (handshake at the proxy; the client resumes sessions with the tickets it is given)",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: true,
        tls: true,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "tls-new-connection-full",
        description: "As tls-new-connection, but the client never resumes: a full handshake per request",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: true,
        tls: true,
        full_handshakes: true,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "mtls-keepalive",
        description: "GET, 2-byte response, 50 keep-alive mutual-TLS connections: the client presents a certificate, every proxy requires it and verifies it against the run's CA",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: true,
        full_handshakes: false,
        client_cert: true,
        fault: None,
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "mtls-new-connection",
        description: "GET, 2-byte response, a new mutual-TLS connection per request: a full handshake with a client certificate verified by the proxy every time (the client never resumes: ringway does not resume on mTLS listeners, so no contender does here)",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: true,
        tls: true,
        full_handshakes: true,
        client_cert: true,
        fault: None,
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "conns-1000",
        description: "GET, 2-byte response, 1,000 keep-alive connections",
        connections: 1000,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: true,
    },
    Scenario {
        name: "conns-9900",
        description: "GET, 2-byte response, 9,900 keep-alive connections: the largest count all contenders can hold under a 20,000-descriptor limit per process (a proxy needs a client and an upstream descriptor per busy connection, and HAProxy asks for 2 × maxconn + 14 at start), so 10,000 is not measurable here",
        connections: 9900,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "get-1m",
        description: "GET, 1 MiB response, 10 keep-alive connections",
        connections: 10,
        response_body: 1 << 20,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "get-64m",
        description: "GET, 64 MiB response, 10 keep-alive connections",
        connections: 10,
        response_body: 64 << 20,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "post-1m",
        description: "POST with a 1 MiB body, 2-byte response, 10 keep-alive connections",
        connections: 10,
        response_body: 2,
        request_body: 1 << 20,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "post-64m",
        description: "POST with a 64 MiB body, 2-byte response, 10 keep-alive connections",
        connections: 10,
        response_body: 2,
        request_body: 64 << 20,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "fault-503",
        description: "GET, 2-byte response, 50 keep-alive connections; three origins in one group, one answers 503 to half its requests; the proxies retry on another origin and eject the failing one",
        connections: 50,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: Some(Fault {
            origins: 3,
            faulty: 1,
            fail_percent: 50,
            fail_status: 503,
        }),
        h2_streams: None,
        default: false,
    },
    Scenario {
        name: "h2c-streams",
        description: "HTTP/2 cleartext (h2c, prior knowledge), GET, 2-byte response, 10 connections × 100 concurrent streams (h2load); HTTP/1.1 keep-alive to the origin",
        connections: 10,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: false,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: Some(100),
        default: false,
    },
    Scenario {
        name: "h2-tls-streams",
        description: "HTTP/2 over TLS (ALPN h2) terminated at the proxy, GET, 2-byte response, 10 connections × 100 concurrent streams (h2load); HTTP/1.1 keep-alive to the origin",
        connections: 10,
        response_body: 2,
        request_body: 0,
        new_connection_per_request: false,
        tls: true,
        full_handshakes: false,
        client_cert: false,
        fault: None,
        h2_streams: Some(100),
        default: false,
    },
];

/// The scenarios run by `--quick` unless `--scenarios` says otherwise.
/// `h2c-streams` is closed loop only (no open-loop half) and has no
/// `direct`: about 10 s with the --quick durations.
pub const QUICK: &[&str] = &[
    "small-get-keepalive",
    "tls-keepalive",
    "fault-503",
    "h2c-streams",
];

/// Parse `--scenarios a,b` (or `all`) into scenarios in report order.
pub fn select(list: Option<&str>, quick: bool) -> Result<Vec<Scenario>, String> {
    let names: Vec<String> = match list {
        None if quick => QUICK.iter().map(|s| s.to_string()).collect(),
        None => return Ok(ALL.iter().filter(|s| s.default).cloned().collect()),
        Some(l) if l.trim() == "all" => return Ok(ALL.to_vec()),
        Some(l) => l
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    for n in &names {
        if !ALL.iter().any(|s| s.name == n) {
            let known: Vec<&str> = ALL.iter().map(|s| s.name).collect();
            return Err(format!(
                "unknown scenario {n:?} (known: {})",
                known.join(", ")
            ));
        }
    }
    if names.is_empty() {
        return Err("no scenario selected".into());
    }
    Ok(ALL
        .iter()
        .filter(|s| names.iter().any(|n| n == s.name))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_get_is_first() {
        assert_eq!(ALL[0].name, "small-get-keepalive");
        let s = select(Some("conns-1000,small-get-keepalive"), false).unwrap();
        assert_eq!(s[0].name, "small-get-keepalive");
        assert_eq!(s[1].name, "conns-1000");
        assert_eq!(select(None, true).unwrap()[0].name, "small-get-keepalive");
        assert_eq!(select(Some("all"), true).unwrap().len(), ALL.len());
    }

    #[test]
    fn mtls_scenarios_run_only_when_named() {
        let default = select(None, false).unwrap();
        assert!(default.iter().all(|s| !s.client_cert));
        assert!(select(None, true).unwrap().iter().all(|s| !s.client_cert));
        let m = select(Some("mtls-new-connection,mtls-keepalive"), false).unwrap();
        let names: Vec<&str> = m.iter().map(|s| s.name).collect();
        assert_eq!(names, ["mtls-keepalive", "mtls-new-connection"]);
        for s in &m {
            assert!(s.tls && s.client_cert && s.direct_skip_reason().is_some());
            assert_eq!((s.connections, s.response_body), (50, 2));
        }
        assert!(!m[0].new_connection_per_request && !m[0].full_handshakes);
        assert!(m[0].per_request_note().is_none());
        assert!(m[1].new_connection_per_request && m[1].full_handshakes);
        assert!(m[1].per_request_note().unwrap().contains("mTLS handshake"));
        // Every scenario with a client certificate is a TLS one.
        assert!(ALL.iter().all(|s| !s.client_cert || s.tls));
    }

    #[test]
    fn fault_scenarios_run_only_when_named() {
        let default = select(None, false).unwrap();
        assert!(default.iter().all(|s| s.fault.is_none()));
        assert_eq!(default.len(), ALL.iter().filter(|s| s.default).count());
        assert_eq!(ALL.iter().filter(|s| !s.default).count(), 10);
        assert!(select(Some("all"), false)
            .unwrap()
            .iter()
            .any(|s| s.name == "fault-503"));
        let f = select(Some("fault-503"), false).unwrap();
        assert_eq!(f.len(), 1);
        let fault = f[0].fault.as_ref().unwrap();
        assert_eq!(f[0].origins(), 3);
        assert_eq!(fault.fail_status, 503);
        assert_eq!(fault.fail_fraction(1), Some(0.5));
        assert_eq!(fault.fail_fraction(0), None);
        assert_eq!(fault.fail_fraction(2), None);
        // Round robin over three, one failing half: 1/6 fail without retries.
        assert!((fault.success_pct_without_retries() - 83.333).abs() < 0.01);
        assert!(f[0].direct_skip_reason().is_some());
        assert!(!f[0].tls);
        assert_eq!(ALL.iter().filter(|s| s.origins() > 1).count(), 1);
        // --quick runs it briefly (end to end in ./run.sh test).
        assert!(select(None, true)
            .unwrap()
            .iter()
            .any(|s| s.name == "fault-503"));
    }

    #[test]
    fn h2_scenarios_run_only_when_named_or_quick() {
        let default = select(None, false).unwrap();
        assert!(default.iter().all(|s| s.h2_streams.is_none()));
        let h = select(Some("h2-tls-streams,h2c-streams"), false).unwrap();
        let names: Vec<&str> = h.iter().map(|s| s.name).collect();
        assert_eq!(names, ["h2c-streams", "h2-tls-streams"]);
        for s in &h {
            assert_eq!((s.connections, s.h2_streams), (10, Some(100)));
            assert_eq!((s.response_body, s.method()), (2, "GET"));
            assert!(s.direct_skip_reason().unwrap().contains("HTTP/1.1 only"));
            assert!(s.open_loop_skip_reason().is_some());
            assert!(!s.new_connection_per_request && !s.client_cert);
        }
        assert!(!h[0].tls && h[1].tls);
        // Only the short h2c one is in --quick.
        let quick = select(None, true).unwrap();
        assert!(quick.iter().any(|s| s.name == "h2c-streams"));
        assert!(!quick.iter().any(|s| s.name == "h2-tls-streams"));
        // HTTP/1.1 scenarios keep their open loop.
        assert!(ALL
            .iter()
            .filter(|s| s.h2_streams.is_none())
            .all(|s| s.open_loop_skip_reason().is_none()));
    }

    #[test]
    fn large_body_scenarios_run_only_when_named() {
        let default = select(None, false).unwrap();
        assert!(default.iter().all(|s| !s.large_body()));
        assert!(select(None, true).unwrap().iter().all(|s| !s.large_body()));
        let l = select(Some("post-64m,get-1m,post-1m,get-64m"), false).unwrap();
        let names: Vec<&str> = l.iter().map(|s| s.name).collect();
        assert_eq!(names, ["get-1m", "get-64m", "post-1m", "post-64m"]);
        for s in &l {
            assert!(s.large_body(), "{}", s.name);
            assert_eq!(s.connections, 10);
            assert!(s.description.contains("10 keep-alive connections"));
            assert!(s.direct_skip_reason().is_none());
            assert!(s.open_loop_skip_reason().is_none());
            assert!(!s.tls && !s.new_connection_per_request && s.fault.is_none());
        }
        assert_eq!(l[0].moved_mib(), Some(1.0));
        assert_eq!(l[1].moved_mib(), Some(64.0));
        // The 16 KiB POST and the 64 KiB GET are not large-body scenarios.
        let by = |n: &str| ALL.iter().find(|s| s.name == n).unwrap();
        assert_eq!(by("post-16k").moved_mib(), None);
        assert!(!by("get-64k").large_body());
        assert_eq!(
            ALL.iter().filter(|s| s.large_body()).count(),
            4,
            "only the four named ones"
        );
    }

    #[test]
    fn conns_9900_runs_only_when_named_and_fits_the_descriptor_limit() {
        let default = select(None, false).unwrap();
        assert!(default.iter().all(|s| s.connections <= 1000));
        let s = &select(Some("conns-9900"), false).unwrap()[0];
        assert_eq!(
            (s.connections, s.response_body, s.method()),
            (9900, 2, "GET")
        );
        assert!(!s.new_connection_per_request && !s.tls && !s.large_body());
        assert!(s.description.contains("20,000-descriptor limit"));
        // A client and an upstream descriptor per connection fit (each
        // peer's own limits: contenders.rs).
        assert!(2 * s.connections < NOFILE_LIMIT);
    }

    #[test]
    fn unknown_scenario() {
        assert!(select(Some("nope"), false).unwrap_err().contains("known:"));
        assert!(select(Some(","), false).is_err());
    }

    #[test]
    fn shapes() {
        let by = |n: &str| ALL.iter().find(|s| s.name == n).unwrap();
        assert_eq!(by("post-16k").method(), "POST");
        assert_eq!(by("get-64k").response_body, 65536);
        assert_eq!(by("conns-1000").connections, 1000);
        assert_eq!(by("conns-9900").connections, 9900);
        assert_eq!(by("get-1m").response_body, 1 << 20);
        assert_eq!(by("get-64m").response_body, 64 << 20);
        assert_eq!(
            (by("get-64m").request_body, by("get-64m").method()),
            (0, "GET")
        );
        assert_eq!(by("post-1m").request_body, 1 << 20);
        assert_eq!(by("post-64m").request_body, 64 << 20);
        assert_eq!(
            (by("post-64m").response_body, by("post-64m").method()),
            (2, "POST")
        );
        assert!(by("tls-keepalive").direct_skip_reason().is_some());
        assert!(by("get-1k").direct_skip_reason().is_none());
    }
}
