//! HTTP/2 downstream with real clients: curl (`--http2-prior-knowledge`
//! for cleartext, ALPN over TLS) and h2load (Debian `nghttp2-client`).
//! Every stream goes through the same stages as an HTTP/1.1 request, to an
//! HTTP/1.1 origin. Tests print SKIP when a client is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ringway_tests::certs::Ca;
use ringway_tests::client::Client;
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::{chunked_body, Origin};
use ringway_tests::pattern::Pattern;
use ringway_tests::proxy::{check_config, Proxy};

fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// curl with HTTP/2 support, or None after a SKIP line.
fn curl(test: &str) -> Option<PathBuf> {
    let c = tool("curl");
    let ok = c.as_ref().is_some_and(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("HTTP2"))
    });
    if !ok {
        println!("SKIP {test}: curl with HTTP/2 support not found (Debian: curl)");
        return None;
    }
    c
}

/// One curl exchange.
struct Got {
    version: String,
    status: u16,
    /// Lowercased `name: value` lines.
    headers: Vec<String>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.headers
            .iter()
            .find_map(|h| h.strip_prefix(&prefix))
            .map(str::trim)
    }
}

fn run_curl(curl: &Path, dir: &TestDir, args: &[&str], url: &str) -> Got {
    let head = dir.path().join("curl-head");
    let body = dir.path().join("curl-body");
    let out = Command::new(curl)
        .args(["-sS", "--max-time", "20", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&head).unwrap();
    // The last head (after any 1xx; trailers, when any, follow it).
    let last = head
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .unwrap_or_else(|| panic!("no response head in {head:?}"))
        .to_string();
    let mut lines = last.lines();
    let status_line = lines.next().unwrap();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap().to_string();
    let status = parts.next().unwrap().parse().unwrap();
    Got {
        version,
        status,
        headers: lines.map(|l| l.to_ascii_lowercase()).collect(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn h2_listener(cfg: Config) -> Config {
    cfg.listener_with("public", &[("protocols", r#"["http/1.1", "h2"]"#)])
}

#[test]
fn cleartext_h2_and_http1_share_a_listener() {
    let Some(curl) = curl("cleartext_h2_and_http1_share_a_listener") else {
        return;
    };
    let dir = TestDir::new("h2-cleartext");
    let origin = Origin::start_named("app");
    let cfg = h2_listener(Config::new())
        .route("public", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &cfg);
    let base = format!("http://{}", proxy.addr("public"));
    let h2 = ["--http2-prior-knowledge"];

    // GET: the origin gets an HTTP/1.1 request with Host from :authority.
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/a/b?x=1"));
    assert_eq!((r.version.as_str(), r.status), ("HTTP/2", 200));
    assert_eq!(r.header("x-origin"), Some("app"));
    let rec = origin.last_request().unwrap();
    assert!(
        rec.raw_str().starts_with("GET /a/b?x=1 HTTP/1.1\r\n"),
        "{}",
        rec.raw_str()
    );
    assert_eq!(
        rec.header("host"),
        Some(proxy.addr("public").to_string().as_str())
    );

    // The same listener still speaks HTTP/1.1.
    let r = run_curl(&curl, &dir, &["--http1.1"], &format!("{base}/h1"));
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
    let mut c = Client::connect(proxy.addr("public"));
    assert_eq!(c.get("/plain").status(), 200);

    // A body of known length, echoed.
    let body = dir.write("body.bin", Pattern::new().vec(100_000));
    let at_body = format!("@{}", body.display());
    let r = run_curl(
        &curl,
        &dir,
        &["--http2-prior-knowledge", "--data-binary", &at_body],
        &format!("{base}/echo"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, Pattern::new().vec(100_000));

    // A body without a length (streamed upload): sent upstream chunked.
    let r = run_curl(
        &curl,
        &dir,
        &[
            "--http2-prior-knowledge",
            "-T",
            body.to_str().unwrap(),
            "-H",
            "content-length:",
        ],
        &format!("{base}/stream-up"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 100_000);
    let rec = origin.last_request().unwrap();
    assert_eq!(rec.body_len, Some(100_000));

    // Chunked and large responses, within flow control.
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/chunked"));
    assert_eq!(r.body, chunked_body());
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/bytes/3000000"));
    assert_eq!(r.body.len(), 3_000_000);
    assert_eq!(r.body, Pattern::new().vec(3_000_000));

    // Chunked trailers from the HTTP/1.1 origin reach the client as an
    // HTTP/2 trailer section (curl lists them after the head).
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/trailers"));
    assert_eq!(r.body, b"hello");
    let head = std::fs::read_to_string(dir.path().join("curl-head")).unwrap();
    assert!(head.contains("x-checksum: 5d41402a"), "{head}");
    assert!(head.contains("grpc-status: 0"), "{head}");

    // Close-delimited response, HEAD, 204.
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/close"));
    assert_eq!(r.body, ringway_tests::origin::close_body());
    let r = run_curl(
        &curl,
        &dir,
        &["--http2-prior-knowledge", "-I"],
        &format!("{base}/bytes/10"),
    );
    assert_eq!((r.status, r.header("content-length")), (200, Some("10")));
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/status/204"));
    assert_eq!(r.status, 204);

    // Connection-specific response fields never reach an HTTP/2 client
    // (curl refuses the response if they do).
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/hop"));
    assert_eq!(r.status, 200);
    assert!(r.header("connection").is_none() && r.header("keep-alive").is_none());
    // A field the origin's Connection header lists is hop-by-hop too.
    assert!(r.header("x-resp-hop").is_none());
    assert!(r.header("x-end-to-end").is_some());
}

#[test]
fn tls_listeners_offer_h2_by_alpn() {
    let Some(curl) = curl("tls_listeners_offer_h2_by_alpn") else {
        return;
    };
    let dir = TestDir::new("h2-tls");
    let ca = Ca::new("ringway h2 test CA");
    ca.issue(&["h2.test"]).write(dir.path(), "srv");
    // srv.pem and srv.key
    let ca_file = ca.write_pem(dir.path(), "ca.pem");
    let origin = Origin::start_named("app");
    let tls = r#"{ cert = "srv.pem", key = "srv.key" }"#;
    let cfg = Config::new()
        .listener_with(
            "both",
            &[("tls", tls), ("protocols", r#"["h2", "http/1.1"]"#)],
        )
        .listener_with("h1only", &[("tls", tls)])
        .route("both", "/", "app", &[])
        .route("h1only", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &cfg);
    let url = |l: &str| format!("https://h2.test:{}/x", proxy.addr(l).port());
    let resolve = |l: &str| format!("h2.test:{}:127.0.0.1", proxy.addr(l).port());
    let ca_arg = ca_file.to_str().unwrap();

    let r = run_curl(
        &curl,
        &dir,
        &["--http2", "--cacert", ca_arg, "--resolve", &resolve("both")],
        &url("both"),
    );
    assert_eq!((r.version.as_str(), r.status), ("HTTP/2", 200));
    let r = run_curl(
        &curl,
        &dir,
        &[
            "--http1.1",
            "--cacert",
            ca_arg,
            "--resolve",
            &resolve("both"),
        ],
        &url("both"),
    );
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
    // A listener without "h2" answers an h2-capable client in HTTP/1.1.
    let r = run_curl(
        &curl,
        &dir,
        &[
            "--http2",
            "--cacert",
            ca_arg,
            "--resolve",
            &resolve("h1only"),
        ],
        &url("h1only"),
    );
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
}

#[test]
fn filters_local_answers_and_errors_apply_to_streams() {
    let Some(curl) = curl("filters_local_answers_and_errors_apply_to_streams") else {
        return;
    };
    let dir = TestDir::new("h2-filters");
    let origin = Origin::start_named("app");
    let cfg = h2_listener(Config::new())
        .section("access_log", "path", &q("access.log"))
        .section("access_log", "format", &q("combined"))
        .section("access_log", "flush_interval", &q("50ms"))
        .route(
            "public",
            "/api",
            "app",
            &[(
                "filters",
                r#"[{ type = "headers", request_set = { "x-via-h2" = "$route" }, response_set = { "x-edited" = "yes" } }]"#,
            ), ("name", &q("api"))],
        )
        .route(
            "public",
            "/local",
            "app",
            &[("direct_response", r#"{ status = 418, body = "short and stout" }"#)],
        )
        .route("public", "/dead", "dead", &[])
        .cluster("app", &[origin.addr()], &[])
        .cluster("dead", &["127.0.0.1:1".parse().unwrap()], &[]);
    let mut cfg = cfg;
    cfg.routes[1].retain(|(k, _)| k != "cluster");
    let proxy = Proxy::start(&dir, &cfg);
    let base = format!("http://{}", proxy.addr("public"));
    let h2 = ["--http2-prior-knowledge"];

    let r = run_curl(&curl, &dir, &h2, &format!("{base}/api/v1"));
    assert_eq!((r.status, r.header("x-edited")), (200, Some("yes")));
    assert_eq!(
        origin.last_request().unwrap().header("x-via-h2"),
        Some("api")
    );
    // The same answer over HTTP/1.1: the stream's head (sent as fields)
    // counts as many bytes sent as the HTTP/1.1 head does.
    let r = run_curl(&curl, &dir, &["--http1.1"], &format!("{base}/api/v1"));
    assert_eq!((r.status, r.header("x-edited")), (200, Some("yes")));
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/local"));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (418, &b"short and stout"[..])
    );
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/nowhere"));
    assert_eq!(r.status, 404);
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/dead"));
    assert_eq!(r.status, 502);
    // Requests the HTTP/1.1 path refuses are refused here too: a target
    // that could alias another route.
    let r = run_curl(
        &curl,
        &dir,
        &["--http2-prior-knowledge", "--path-as-is"],
        &format!("{base}/api/../local"),
    );
    assert_eq!(r.status, 400);
    // After all that, the proxy still serves.
    let r = run_curl(&curl, &dir, &h2, &format!("{base}/api/again"));
    assert_eq!(r.status, 200);
    // One access log line per stream, with the protocol the client spoke.
    let log = dir.path().join("access.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 7 {
            assert!(text.contains("\"GET /api/v1 HTTP/2.0\" 200 "), "{text}");
            let sent = |proto: &str| {
                let needle = format!("\"GET /api/v1 {proto}\" 200 ");
                let line = text.lines().find(|l| l.contains(&needle)).unwrap();
                let at = line.find(&needle).unwrap() + needle.len();
                line[at..].split(' ').next().unwrap().to_string()
            };
            assert_eq!(sent("HTTP/2.0"), sent("HTTP/1.1"), "{text}");
            assert!(text.contains("\"GET /local HTTP/2.0\" 418 "), "{text}");
            assert!(text.contains("\"GET /dead HTTP/2.0\" 502 "), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "access log: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn h2load_multiplexes_many_streams_without_a_failure() {
    let Some(h2load) = tool("h2load") else {
        println!("SKIP h2load_multiplexes_many_streams_without_a_failure: h2load not found (Debian: nghttp2-client)");
        return;
    };
    let dir = TestDir::new("h2-h2load");
    let origin = Origin::start_named("app");
    let cfg = h2_listener(Config::new().runtime("workers", "2"))
        .route("public", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &cfg);
    let base = format!("http://{}", proxy.addr("public"));

    // 10 connections x 100 concurrent streams.
    let out = Command::new(&h2load)
        .args([
            "-n",
            "5000",
            "-c",
            "10",
            "-m",
            "100",
            &format!("{base}/load"),
        ])
        .output()
        .expect("run h2load");
    let text = String::from_utf8_lossy(&out.stdout);
    println!(
        "{}",
        text.lines()
            .filter(|l| l.starts_with("requests:") || l.starts_with("status codes:"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        text.contains("5000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{text}"
    );
    assert!(text.contains("status codes: 5000 2xx"), "{text}");
    assert_eq!(origin.request_count(), 5000);

    // Streams of one connection run at the same time: 20 requests that
    // each wait 300 ms upstream take far less than 20 x 300 ms.
    let t = Instant::now();
    let out = Command::new(&h2load)
        .args([
            "-n",
            "20",
            "-c",
            "1",
            "-m",
            "20",
            &format!("{base}/delay/300"),
        ])
        .output()
        .expect("run h2load");
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("20 succeeded"), "{text}");
    assert!(
        took < Duration::from_secs(3),
        "20 streams of 300 ms on one connection took {took:?}: not concurrent"
    );
}

#[test]
fn protocols_are_checked() {
    let dir = TestDir::new("h2-check");
    let cfg = "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\nprotocols = [\"http/1.1\", \"h3\"]\n\n[listener.http2]\nmax_frame_size = \"1KiB\"\n";
    let out = check_config(&dir, "bad.toml", cfg);
    let all = out.all();
    assert_ne!(out.code(), Some(0), "{all}");
    assert!(all.contains("listener[0].protocols[1]"), "{all}");
    assert!(all.contains("unknown protocol \"h3\""), "{all}");
    assert!(all.contains("listener[0].http2.max_frame_size"), "{all}");
}

/// The access log's lines that contain `needle`, waiting up to 5 s for
/// `n` of them (the log is flushed every 50 ms).
fn log_lines(dir: &TestDir, needle: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client that closes its connection, or resets its stream, while the
/// upstream has not answered cancels the upstream request, and the request
/// is logged as nginx logs it: status 499, error `client_closed`, counted
/// as such per route.
#[test]
fn a_client_that_goes_away_cancels_its_upstream_request() {
    let Some(curl) = curl("a_client_that_goes_away_cancels_its_upstream_request") else {
        return;
    };
    use ringway_tests::h2raw::{rst_frame, H2Conn, CANCEL};
    use std::io::Read;
    // An origin that reads the request and never answers, then reports
    // when the proxy closes the upstream connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let asked = Instant::now();
        let closed = matches!(s.read(&mut buf), Ok(0) | Err(_));
        let _ = tx.send((closed, asked.elapsed()));
    });
    let slow = Origin::start_named("slow");
    let dir = TestDir::new("h2-cancel");
    let cfg = h2_listener(Config::new())
        .route("public", "/delay", "slow", &[("timeout", &q("30s"))])
        .route("public", "/", "app", &[("timeout", &q("30s"))])
        .cluster("slow", &[slow.addr()], &[])
        .cluster("app", &[origin], &[])
        .section("access_log", "path", &q("access.log"))
        .section("access_log", "flush_interval", &q("50ms"))
        .admin();
    let proxy = Proxy::start(&dir, &cfg);
    // The connection closes (curl gives up).
    let out = Command::new(curl)
        .args(["-sS", "--http2-prior-knowledge", "--max-time", "1"])
        .arg(format!("http://{}/slow", proxy.addr("public")))
        .output()
        .unwrap();
    assert!(!out.status.success(), "curl should have given up");
    let (closed, after) = rx.recv_timeout(Duration::from_secs(25)).unwrap();
    assert!(closed, "the upstream connection stayed open");
    assert!(
        after < Duration::from_secs(5),
        "the upstream request ran on for {after:?} after the client left"
    );
    let lines = log_lines(&dir, "\"/slow\"", 1);
    assert_eq!(
        lines.len(),
        1,
        "one record for the cancelled stream: {lines:?}"
    );
    assert_eq!(lines[0]["status"], 499, "{}", lines[0]);
    assert_eq!(lines[0]["error"], "client_closed", "{}", lines[0]);
    assert_eq!(lines[0]["method"], "GET", "{}", lines[0]);

    // RST_STREAM on a connection that stays open: the stream alone ends,
    // logged at once (the origin would answer after 3 s).
    let mut h2 = H2Conn::handshake(proxy.addr("public"), &[]).unwrap();
    h2.get(1, "/delay/3000").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    h2.send(&rst_frame(1, CANCEL)).unwrap();
    let lines = log_lines(&dir, "\"/delay/3000\"", 1);
    let took = t.elapsed();
    assert_eq!(lines.len(), 1, "one record for the reset stream: {lines:?}");
    assert_eq!(
        (&lines[0]["status"], &lines[0]["error"]),
        (&serde_json::json!(499), &serde_json::json!("client_closed")),
        "{}",
        lines[0]
    );
    assert!(
        took < Duration::from_secs(2),
        "logged {took:?} after the reset"
    );
    // The same connection still serves.
    h2.get(3, "/delay/10").unwrap();
    let seen = h2.watch(Duration::from_secs(10), |s| s.ended.contains(&3));
    assert!(seen.ended.contains(&3), "{seen:?}");

    // Metrics name the cause: 499s and `client_closed` errors per route.
    let stats: serde_json::Value =
        serde_json::from_slice(&Client::connect(proxy.admin_addr()).get("/stats").body).unwrap();
    let routes = stats["total"]["routes"].as_array().unwrap();
    for r in routes {
        println!("{}: codes {} errors {}", r["name"], r["codes"], r["errors"]);
        assert_eq!(r["codes"]["499"], 1, "{r}");
        assert_eq!(r["errors"]["client_closed"], 1, "{r}");
    }
    let metrics = String::from_utf8(
        Client::connect(proxy.admin_addr())
            .get("/metrics")
            .body
            .clone(),
    )
    .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ringway_errors_total{") && l.contains("client_closed")),
        "{metrics}"
    );
    // Still serving (the one-shot origin is gone: 502).
    assert_eq!(
        Client::connect(proxy.addr("public")).get("/x").status(),
        502
    );
}

#[test]
fn grpc_timeout_shortens_the_route_timeout() {
    let Some(curl) = curl("grpc_timeout_shortens_the_route_timeout") else {
        return;
    };
    let dir = TestDir::new("h2-grpc-timeout");
    let origin = Origin::start_named("app");
    let cfg = h2_listener(Config::new())
        .route("public", "/", "app", &[("timeout", &q("10s"))])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &cfg);
    let url = format!("http://{}/delay/1500", proxy.addr("public"));
    let t = Instant::now();
    let r = run_curl(
        &curl,
        &dir,
        &["--http2-prior-knowledge", "-H", "grpc-timeout: 300m"],
        &url,
    );
    let took = t.elapsed();
    assert_eq!(r.status, 504, "the call's 300 ms deadline");
    assert!(took < Duration::from_millis(1200), "504 after {took:?}");
    // Without it, or with one longer than the wait, the answer comes.
    let r = run_curl(&curl, &dir, &["--http2-prior-knowledge"], &url);
    assert_eq!(r.status, 200);
    let r = run_curl(
        &curl,
        &dir,
        &["--http2-prior-knowledge", "-H", "grpc-timeout: 5S"],
        &url,
    );
    assert_eq!(r.status, 200);
}
