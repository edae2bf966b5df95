//! Tests of the whole config layer: text → `Config` or errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConnection, ServerConnection};
use rustls_pki_types::{CertificateDer, ServerName};

use super::*;

const MINIMAL: &str = r#"
[runtime]
workers = 1                  # or "auto"

[[listener]]
name = "public"
address = "127.0.0.1:8080"   # add tls = { cert = "...", key = "..." } to terminate TLS

[[route]]
listener = "public"
path_prefix = "/"
cluster = "app"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:9000"]

[admin]
address = "127.0.0.1:9901"
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::parse(text, None) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// The single error at `path`, failing with the full list otherwise.
fn error_at<'e>(errs: &'e [ConfigError], path: &str) -> &'e ConfigError {
    let found: Vec<_> = errs.iter().filter(|e| e.path == path).collect();
    assert_eq!(found.len(), 1, "no single error at {path}: {errs:#?}");
    found[0]
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in text"))
        + 1
}

#[test]
fn minimal_file_uses_documented_defaults() {
    let c = Config::parse(MINIMAL, None).unwrap();
    let rt = &c.runtime;
    assert_eq!(rt.workers, 1);
    assert!(rt.cores.is_empty());
    assert_eq!(rt.driver, DriverKind::Auto);
    assert_eq!(rt.ring_entries, 1024);
    assert_eq!(rt.cq_entries, 32_768, "2 x 10,000 connections, rounded up");
    assert_eq!(rt.sqpoll_idle, None);
    assert_eq!(
        rt.ring_flags,
        RingFlags {
            single_issuer: true,
            defer_taskrun: false,
            coop_taskrun: true
        }
    );
    assert_eq!(rt.max_connections_per_worker, 10_000);
    assert_eq!(rt.drain_timeout, Duration::from_secs(30));
    assert_eq!(rt.drain_idle_grace, Duration::from_secs(1));
    assert!(rt.idle_read_release);
    assert_eq!(rt.log_level, "info");

    let l = &c.limits;
    assert_eq!(l.max_head_bytes, 64 * 1024);
    assert_eq!(l.max_headers, 100);
    assert_eq!(l.header_read_timeout, Duration::from_secs(10));
    assert_eq!(l.body_read_timeout, Duration::from_secs(30));
    assert_eq!(l.idle_timeout, Duration::from_secs(60));
    assert_eq!(l.request_buffer_bytes, 64 * 1024);
    assert_eq!(l.splice_min_bytes, 256 * 1024);
    assert_eq!(l.splice_min_request_bytes, 2 << 20);

    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name, "public");
    assert_eq!(c.listeners[0].address, "127.0.0.1:8080".parse().unwrap());
    assert!(c.listeners[0].tls.is_none());

    assert_eq!(c.routes.len(), 1);
    let r = &c.routes[0];
    assert_eq!(r.name, "route0");
    assert_eq!(r.listener, Some(0));
    assert_eq!(r.host, None);
    assert_eq!(r.path.config_key(), ("path_prefix", "/"));
    assert_eq!(r.clusters(), [0]);
    assert_eq!(r.max_body_bytes, None);
    assert_eq!(r.timeout, Duration::from_secs(30));

    assert_eq!(c.clusters.len(), 1);
    let k = &c.clusters[0];
    assert_eq!(k.name, "app");
    assert_eq!(k.endpoints.len(), 1);
    assert_eq!(k.endpoints[0].address, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(k.endpoints[0].label, "127.0.0.1:9000");
    assert_eq!(k.lb, LbPolicy::RoundRobin);
    assert_eq!(k.connect_timeout, Duration::from_secs(2));
    assert_eq!(k.idle_timeout, Duration::from_secs(60));
    assert_eq!(k.max_idle_per_endpoint, 64);
    assert!(k.tls.is_none());

    assert_eq!(
        c.admin.as_ref().map(|a| a.address),
        Some("127.0.0.1:9901".parse().unwrap())
    );
    assert_eq!(c.source, None);
}

#[test]
fn auto_workers_and_absent_sections() {
    let text = r#"
[[listener]]
name = "l"
address = "[::1]:0"
[[route]]
cluster = "c"
[[cluster]]
name = "c"
endpoints = ["localhost:80"]
"#;
    let c = Config::parse(text, None).unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(c.runtime.workers, cpus);
    assert!(c.admin.is_none());
    assert_eq!(c.routes[0].listener, None);
    assert_eq!(c.clusters[0].endpoints[0].label, "localhost:80");
    assert_eq!(c.clusters[0].endpoints[0].address.port(), 80);
    assert!(c.clusters[0].endpoints[0].address.ip().is_loopback());

    // workers = "auto" with cores: one worker per listed core; [admin] with
    // no keys gets the default address.
    let text = text.replace(
        "[[listener]]",
        "[runtime]\nworkers = \"auto\"\ncores = [0]\n[admin]\n[[listener]]",
    );
    let c = Config::parse(&text, None).unwrap();
    assert_eq!(c.runtime.workers, 1);
    assert_eq!(c.runtime.cores, vec![0]);
    assert_eq!(
        c.admin.map(|a| a.address),
        Some("127.0.0.1:9901".parse().unwrap())
    );
}

#[test]
fn every_key_parses() {
    let text = r#"
[runtime]
workers = 3
cores = [0]
driver = "legacy"
ring_entries = 4096
sqpoll_idle = "250ms"
ring_flags = ["single_issuer", "coop_taskrun"]
max_connections_per_worker = 5
drain_timeout = "0s"
log_level = "ringway=debug,warn"

[limits]
max_head_bytes = "1MiB"
max_headers = 1000
header_read_timeout = "1s"
body_read_timeout = "2m"
idle_timeout = "1h"

[[listener]]
name = "a"
address = "0.0.0.0:80"

[[listener]]
name = "b"
address = "127.0.0.1:0"

[[route]]
name = "api"
listener = "b"
host = "API.Example.com"
path_prefix = "/api/"
cluster = "two"
max_body_bytes = "512B"
timeout = "250ms"

[[route]]
host = "*.example.com"
cluster = "one"
max_body_bytes = 100

[[cluster]]
name = "one"
endpoints = ["127.0.0.1:1"]

[[cluster]]
name = "two"
endpoints = ["127.0.0.1:2", "[::1]:3"]
lb = "round_robin"
connect_timeout = "100ms"
idle_timeout = "5m"
max_idle_per_endpoint = 0
"#;
    let c = Config::parse(text, None).unwrap();
    let rt = &c.runtime;
    assert_eq!(rt.workers, 3);
    assert_eq!(rt.driver, DriverKind::Legacy);
    assert_eq!(rt.ring_entries, 4096);
    assert_eq!(rt.sqpoll_idle, Some(Duration::from_millis(250)));
    assert_eq!(
        rt.ring_flags,
        RingFlags {
            single_issuer: true,
            defer_taskrun: false,
            coop_taskrun: true
        }
    );
    assert_eq!(rt.max_connections_per_worker, 5);
    assert_eq!(rt.drain_timeout, Duration::ZERO);
    assert_eq!(rt.log_level, "ringway=debug,warn");
    assert_eq!(c.limits.max_head_bytes, 1 << 20);
    assert_eq!(c.limits.max_headers, 1000);
    assert_eq!(c.limits.idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.routes[0].name, "api");
    assert_eq!(c.routes[0].listener, Some(1));
    assert_eq!(
        c.routes[0].host,
        Some(HostMatch::Exact("api.example.com".into()))
    );
    assert_eq!(c.routes[0].clusters(), [1]);
    assert_eq!(c.routes[0].max_body_bytes, Some(512));
    assert_eq!(c.routes[0].timeout, Duration::from_millis(250));
    assert_eq!(c.routes[1].name, "route1");
    assert_eq!(
        c.routes[1].host,
        Some(HostMatch::Suffix(".example.com".into()))
    );
    assert_eq!(c.routes[1].max_body_bytes, Some(100));
    assert_eq!(c.clusters[1].endpoints.len(), 2);
    assert_eq!(c.clusters[1].connect_timeout, Duration::from_millis(100));
    assert_eq!(c.clusters[1].max_idle_per_endpoint, 0);
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[test]
fn examples_load() {
    for name in [
        "minimal.toml",
        "gateway.toml",
        "mesh-sidecar.toml",
        "both.toml",
    ] {
        let path = example(name);
        match Config::load(&path) {
            Ok(c) => assert_eq!(c.source.as_deref(), Some(path.as_path())),
            Err(e) => panic!("{name}:\n{e}"),
        }
    }
}

#[test]
fn minimal_example_is_the_documented_minimal_file() {
    let c = Config::load(&example("minimal.toml")).unwrap();
    assert_eq!(c.runtime.workers, 1);
    assert_eq!(c.listeners[0].name, "public");
    assert_eq!(c.routes[0].clusters(), [0]);
}

#[test]
fn unknown_key_has_path_and_line() {
    let text = MINIMAL.replace(
        "address = \"127.0.0.1:8080\"",
        "adress = \"127.0.0.1:8080\"",
    );
    let errs = errors(&text);
    let e = error_at(&errs, "listener[0].adress");
    assert_eq!(e.line, Some(line_of(&text, "adress")));
    assert!(
        e.message.starts_with("unknown key `adress`"),
        "{}",
        e.message
    );
    assert!(e.message.contains("`address`"), "{}", e.message);
    // The element could not be read, so its missing `address` is not
    // reported a second time, and the route that names it still resolves.
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        e.to_string(),
        format!(
            "listener[0].adress (line {}): {}",
            e.line.unwrap(),
            e.message
        )
    );
}

#[test]
fn unknown_nested_and_top_level_keys() {
    let text = format!("{MINIMAL}\n[listeners]\nx = 1\n");
    let errs = errors(&text);
    let e = error_at(&errs, "listeners");
    assert_eq!(e.line, Some(line_of(&text, "[listeners]")));
    assert!(
        e.message.contains("did you mean `listener`"),
        "{}",
        e.message
    );

    let text = MINIMAL.replace(
        "endpoints = [\"127.0.0.1:9000\"]",
        "endpoints = [\"127.0.0.1:9000\"]\ntls = { ca = \"x.pem\", verify = false }",
    );
    let errs = errors(&text);
    let e = error_at(&errs, "cluster[0].tls.verify");
    assert_eq!(e.line, Some(line_of(&text, "verify")));
}

#[test]
fn idle_read_release_switch() {
    let text = MINIMAL.replace("workers = 1", "workers = 1\nidle_read_release = false");
    assert!(
        !Config::parse(&text, None)
            .unwrap()
            .runtime
            .idle_read_release
    );
    let text = MINIMAL.replace("workers = 1", "workers = 1\nidle_read_release = \"off\"");
    let errs = errors(&text);
    let e = error_at(&errs, "runtime.idle_read_release");
    assert_eq!(e.line, Some(line_of(&text, "idle_read_release")));
    assert!(e.message.contains("invalid type"), "{}", e.message);
}

#[test]
fn wrong_type() {
    let text = MINIMAL.replace("workers = 1", "workers = true");
    let errs = errors(&text);
    let e = error_at(&errs, "runtime.workers");
    assert_eq!(e.line, Some(line_of(&text, "workers = true")));
    assert!(e.message.contains("invalid type: boolean"), "{}", e.message);
    assert!(e.message.contains("\"auto\""), "{}", e.message);

    let text = MINIMAL.replace(
        "endpoints = [\"127.0.0.1:9000\"]",
        "endpoints = \"127.0.0.1:9000\"",
    );
    let errs = errors(&text);
    let e = error_at(&errs, "cluster[0].endpoints");
    assert_eq!(e.line, Some(line_of(&text, "endpoints =")));
    assert!(e.message.contains("expected an array"), "{}", e.message);

    let text = format!("{MINIMAL}\n[limits]\nmax_headers = \"many\"\n");
    let errs = errors(&text);
    let e = error_at(&errs, "limits.max_headers");
    assert!(e.message.contains("expected an integer"), "{}", e.message);

    // [listener] instead of [[listener]]
    let text = MINIMAL.replace("[[listener]]", "[listener]");
    let errs = errors(&text);
    let e = error_at(&errs, "listener");
    assert!(e.message.contains("[[listener]]"), "{}", e.message);
}

#[test]
fn missing_required_key() {
    let text = MINIMAL.replace("cluster = \"app\"", "");
    let errs = errors(&text);
    let e = error_at(&errs, "route[0]");
    assert_eq!(
        e.message,
        "a route needs one action: `cluster`, `split`, `direct_response`, `redirect`, `versions` or `aggregate`"
    );
    assert_eq!(e.line, Some(line_of(&text, "[[route]]")));
}

#[test]
fn redirect_route_action() {
    let text = MINIMAL.replace(
        "cluster = \"app\"",
        "redirect = { scheme = \"https\", status = 308 }",
    );
    let c = Config::parse(&text, None).unwrap();
    assert!(matches!(
        &c.routes[0].action,
        RouteAction::Local(crate::pipeline::filters::Filter::Redirect(r)) if r.status == 308
    ));

    let text = MINIMAL.replace(
        "cluster = \"app\"",
        "redirect = { scheme = \"ftp\", path = \"x\" }",
    );
    let errs = errors(&text);
    let e = error_at(&errs, "route[0].redirect.scheme");
    assert!(e.message.contains("\"http\" or \"https\""), "{}", e.message);
    error_at(&errs, "route[0].redirect.path");

    let text = MINIMAL.replace("cluster = \"app\"", "redirect = {}");
    let e = error_at(&errors(&text), "route[0].redirect")
        .message
        .clone();
    assert!(e.contains("at least one of"), "{e}");

    let text = MINIMAL.replace(
        "cluster = \"app\"",
        "cluster = \"app\"\nredirect = { scheme = \"https\" }",
    );
    let errs = errors(&text);
    assert_eq!(
        error_at(&errs, "route[0]").message,
        "a route has one action; found cluster and redirect"
    );
}

#[test]
fn bad_durations_and_sizes() {
    let text = MINIMAL.replace(
        "path_prefix = \"/\"",
        "path_prefix = \"/\"\ntimeout = \"10 seconds\"\nmax_body_bytes = \"1MB\"",
    );
    let text = format!("{text}\n[limits]\nidle_timeout = 30\nmax_head_bytes = 512\n");
    let errs = errors(&text);
    let e = error_at(&errs, "route[0].timeout");
    assert_eq!(e.line, Some(line_of(&text, "10 seconds")));
    assert!(
        e.message.contains("\"250ms\", \"10s\", \"5m\" or \"1h\""),
        "{}",
        e.message
    );
    let e = error_at(&errs, "route[0].max_body_bytes");
    assert_eq!(e.line, Some(line_of(&text, "1MB")));
    let e = error_at(&errs, "limits.idle_timeout");
    assert!(e.message.contains("needs a unit"), "{}", e.message);
    assert!(e.message.contains("\"30s\""), "{}", e.message);
    let e = error_at(&errs, "limits.max_head_bytes");
    assert!(e.message.contains("between 1KiB and 1MiB"), "{}", e.message);
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn splice_min_bytes_is_off_or_at_least_64kib() {
    let with = |v: &str| format!("{MINIMAL}\n[limits]\nsplice_min_bytes = {v}\n");
    let parsed = |t: &str| Config::parse(t, None).unwrap().limits.splice_min_bytes;
    assert_eq!(parsed(&with("0")), 0);
    assert_eq!(parsed(&with("\"1MiB\"")), 1 << 20);
    for bad in ["\"4KiB\"", "\"2GiB\""] {
        let text = with(bad);
        let errs = errors(&text);
        let e = error_at(&errs, "limits.splice_min_bytes");
        assert_eq!(e.line, Some(line_of(&text, bad)));
        assert!(
            e.message.contains("0 (off) or between 64KiB and 1GiB"),
            "{}",
            e.message
        );
    }
    // Request bodies have their own threshold.
    let text = format!("{MINIMAL}\n[limits]\nsplice_min_request_bytes = \"8MiB\"\n");
    let l = Config::parse(&text, None).unwrap().limits;
    assert_eq!(
        (l.splice_min_bytes, l.splice_min_request_bytes),
        (256 << 10, 8 << 20)
    );
    let text = format!("{MINIMAL}\n[limits]\nsplice_min_request_bytes = \"1KiB\"\n");
    let errs = errors(&text);
    error_at(&errs, "limits.splice_min_request_bytes");
}

#[test]
fn unknown_cluster_with_line() {
    let text = MINIMAL.replace("cluster = \"app\"", "cluster = \"ap\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = error_at(&errs, "route[0].cluster");
    assert_eq!(e.line, Some(line_of(&text, "cluster = \"ap\"")));
    assert!(
        e.message.contains("unknown cluster \"ap\""),
        "{}",
        e.message
    );
    assert!(e.message.contains("known: \"app\""), "{}", e.message);
}

#[test]
fn the_completion_queue_follows_the_connection_limit_or_is_set() {
    let rt = |extra: &str| {
        let text = MINIMAL.replacen("[runtime]", &format!("[runtime]\n{extra}"), 1);
        assert_ne!(text, MINIMAL, "MINIMAL has a [runtime] table");
        Config::parse(&text, None).map(|c| c.runtime)
    };
    let cq = |extra: &str| rt(extra).unwrap().cq_entries;
    // Two per connection, never under twice the submission queue, at
    // most the kernel's 65536.
    assert_eq!(cq("max_connections_per_worker = 100"), 2048);
    assert_eq!(cq("max_connections_per_worker = 1500"), 4096);
    assert_eq!(
        cq("max_connections_per_worker = 100\nring_entries = 4096"),
        8192
    );
    assert_eq!(cq("max_connections_per_worker = 1000000"), 65_536);
    // Set: a power of two from ring_entries to 65536.
    assert_eq!(cq("cq_entries = 1024"), 1024);
    assert_eq!(cq("cq_entries = 65536"), 65_536);
    for bad in [
        "cq_entries = 512",
        "cq_entries = 3000",
        "cq_entries = 131072",
        "cq_entries = 0",
        "cq_entries = 4096\nring_entries = 8192",
    ] {
        let text = MINIMAL.replacen("[runtime]", &format!("[runtime]\n{bad}"), 1);
        let errs = errors(&text);
        let e = error_at(&errs, "runtime.cq_entries");
        assert!(
            e.message.contains("power of two between ring_entries"),
            "{bad}: {e:?}"
        );
        assert_eq!(e.line, Some(line_of(&text, "cq_entries")), "{bad}");
    }
}

#[test]
fn several_errors_are_all_reported_in_line_order() {
    let text = r#"
[runtime]
workers = 0
driver = "uring"
ring_entries = 1000
ring_flags = ["defer_taskrun"]
cores = [100000]

[limits]
max_headers = 0

[[listener]]
name = "a"
address = "localhost:80"

[[listener]]
name = "a"
address = "127.0.0.1:81"
bogus = 1

[[listener]]
name = "lonely"
address = "127.0.0.1:82"

[[route]]
listener = "nope"
host = "example.com:443"
path_prefix = "api"
cluster = "missing"
timeout = "soon"

[[route]]
name = "route0"
listener = "a"
cluster = "c"

[[cluster]]
name = "c"
endpoints = ["127.0.0.1:1", "127.0.0.1", "::1:80", "127.0.0.1:99999"]
lb = "fastest"
connect_timeout = "0ms"

[[cluster]]
name = "c"
endpoints = []

[admin]
address = "nowhere"
"#;
    let errs = errors(text);
    let expect = [
        ("runtime.workers", "workers = 0"),
        ("runtime.driver", "driver ="),
        ("runtime.ring_entries", "ring_entries"),
        ("runtime.ring_flags", "ring_flags"),
        ("runtime.cores[0]", "cores ="),
        ("limits.max_headers", "max_headers"),
        ("listener[0].address", "localhost:80"),
        ("listener[1].name", "name = \"a\""),
        ("listener[1].bogus", "bogus"),
        ("listener[2]", "[[listener]]"),
        ("route[0].listener", "\"nope\""),
        ("route[0].host", "example.com:443"),
        ("route[0].path_prefix", "\"api\""),
        ("route[0].cluster", "\"missing\""),
        ("route[0].timeout", "\"soon\""),
        ("route[1].name", "name = \"route0\""),
        ("cluster[0].endpoints[1]", "endpoints = [\"127.0.0.1:1\""),
        ("cluster[0].endpoints[2]", "endpoints = [\"127.0.0.1:1\""),
        ("cluster[0].endpoints[3]", "endpoints = [\"127.0.0.1:1\""),
        ("cluster[0].lb", "fastest"),
        ("cluster[0].connect_timeout", "0ms"),
        ("cluster[1].name", "name = \"c\"\nendpoints = []"),
        ("cluster[1].endpoints", "endpoints = []"),
        ("admin.address", "nowhere"),
    ];
    for (path, needle) in expect {
        let e = error_at(&errs, path);
        let first_line = needle.lines().next().unwrap();
        // `listener[2]` is the third [[listener]] header; the duplicate
        // names are the second occurrences.
        let second = |needle: &str| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| *l == needle)
                .nth(1)
                .unwrap()
                .0
                + 1
        };
        let want = match path {
            "listener[2]" => line_of(text, "name = \"lonely\"") - 1,
            "listener[1].name" => second("name = \"a\""),
            "cluster[1].name" => second("name = \"c\""),
            _ => line_of(text, first_line),
        };
        assert_eq!(e.line, Some(want), "{path}: {e}");
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    // Sorted by line.
    let lines: Vec<_> = errs.iter().map(|e| e.line.unwrap()).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    // The listener without routes is named.
    assert!(error_at(&errs, "listener[2]")
        .message
        .contains("\"lonely\""));
    // The Display of the whole list is one error per line.
    let shown = ConfigErrors(errs.clone()).to_string();
    assert_eq!(shown.lines().count(), errs.len());
}

#[test]
fn duplicate_and_missing_sections() {
    let errs = errors("");
    for path in ["listener", "route", "cluster"] {
        let e = error_at(&errs, path);
        assert_eq!(e.line, None);
    }
    let errs = errors("[runtime]\nworkers = ");
    assert_eq!(errs[0].path, "syntax");
    assert_eq!(errs[0].line, Some(2));
}

#[test]
fn host_matching_rules() {
    use super::build::parse_host;
    assert_eq!(
        parse_host("API.example.COM"),
        Ok(HostMatch::Exact("api.example.com".into()))
    );
    assert_eq!(
        parse_host("*.example.com"),
        Ok(HostMatch::Suffix(".example.com".into()))
    );
    assert_eq!(
        parse_host("localhost"),
        Ok(HostMatch::Exact("localhost".into()))
    );
    for bad in [
        "",
        "a.com:80",
        "http://a.com",
        "*",
        "*.",
        "a.*.com",
        "a b",
        "a..b",
        "é.com",
    ] {
        assert!(parse_host(bad).is_err(), "{bad}");
    }
}

#[test]
fn endpoint_errors() {
    use super::build::resolve_endpoint;
    assert!(resolve_endpoint("127.0.0.1:80").is_ok());
    assert_eq!(resolve_endpoint("[::1]:80").unwrap().1, "::1");
    assert_eq!(resolve_endpoint("localhost:80").unwrap().1, "localhost");
    for bad in ["127.0.0.1", ":80", "host:", "host:x", "::1:80", "a b:80"] {
        assert!(resolve_endpoint(bad).is_err(), "{bad}");
    }
}

#[test]
fn load_errors() {
    let errs = Config::load(Path::new("/nonexistent/ringway.toml")).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs.0[0].to_string(),
        "/nonexistent/ringway.toml: cannot read config file: No such file or directory"
    );
}

#[test]
fn build_without_source_has_no_lines() {
    let file: file::FileConfig = toml::from_str(MINIMAL).unwrap();
    let mut bad = file.clone();
    bad.route[0].cluster = Some("zzz".into());
    let errs = Config::build(bad, &build::BuildContext::default()).unwrap_err();
    assert_eq!(errs.0[0].path, "route[0].cluster");
    assert_eq!(errs.0[0].line, None);
    assert!(Config::build(file, &build::BuildContext::default()).is_ok());
}

// ---------------------------------------------------------------------------
// TLS

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ringway-config-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test PKI: a CA and leaf certificates it signs.
struct Pki {
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
    ca_pem: String,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ringway test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca_params: params,
            ca_key: key,
        }
    }

    fn leaf(&self, names: &[&str], client: bool) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// Run a handshake in memory. Returns the client connection for
/// inspection, and the server's.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    name: &str,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c = ClientConnection::new(client, server_name)?;
    let mut s = ServerConnection::new(server)?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        let server_result = s.process_new_packets();
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        server_result?;
        c.process_new_packets()?;
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok((c, s));
        }
    }
    panic!("handshake did not finish");
}

/// A plain client trusting `ca_pem`.
fn test_client(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

#[test]
fn tls_listener_with_sni_and_cluster_with_mtls() {
    let pki = Pki::new();
    let dir = TempDir::new("tls");
    let a = pki.leaf(&["a.example"], false);
    let b = pki.leaf(&["*.b.example"], false);
    let default = pki.leaf(&["default.example"], false);
    let client = pki.leaf(&["sidecar.example"], true);
    let upstream = pki.leaf(&["upstream.example"], false);
    dir.write("ca.pem", &pki.ca_pem);
    for (name, leaf) in [
        ("a", &a),
        ("b", &b),
        ("default", &default),
        ("client", &client),
    ] {
        dir.write(&format!("{name}-cert.pem"), &leaf.cert_pem);
        dir.write(&format!("{name}-key.pem"), &leaf.key_pem);
    }
    let config_text = r#"
[[listener]]
name = "tls"
address = "127.0.0.1:8443"
tls = { sni = [
  { names = ["A.example"], cert = "a-cert.pem", key = "a-key.pem" },
  { names = ["*.b.example"], cert = "b-cert.pem", key = "b-key.pem" },
] }

[[listener]]
name = "tls-default"
address = "127.0.0.1:8444"
[listener.tls]
cert = "default-cert.pem"
key = "default-key.pem"
sni = [{ names = ["a.example"], cert = "a-cert.pem", key = "a-key.pem" }]

[[route]]
cluster = "secure"

[[cluster]]
name = "secure"
endpoints = ["127.0.0.1:9443"]
tls = { ca = "ca.pem", server_name = "upstream.example", cert = "client-cert.pem", key = "client-key.pem" }

[[cluster]]
name = "derived-name"
endpoints = ["localhost:9443"]
tls = { ca = "ca.pem" }
"#;
    let config_path = dir.write("ringway.toml", config_text);
    // Relative TLS paths are resolved against the config file's directory.
    let c = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let sni_only = c.listeners[0].tls.clone().unwrap();
    let with_default = c.listeners[1].tls.clone().unwrap();
    // The resolved file paths are kept for display (admin `/config`).
    let files = c.listeners[1].tls_files.clone().unwrap();
    assert_eq!(files.cert, Some(dir.0.join("default-cert.pem")));
    assert_eq!(files.key, Some(dir.0.join("default-key.pem")));
    assert_eq!(files.sni[0].names, vec!["a.example".to_owned()]);
    assert_eq!(files.sni[0].key, dir.0.join("a-key.pem"));
    let files = c.clusters[0].tls_files.clone().unwrap();
    assert_eq!(files.ca, Some(dir.0.join("ca.pem")));
    assert_eq!(files.key, Some(dir.0.join("client-key.pem")));
    assert!(!files.insecure_skip_verify);
    assert_eq!(sni_only.alpn_protocols, vec![b"http/1.1".to_vec()]);

    let client_cfg = test_client(&pki.ca_pem);
    // Exact name, case-insensitive in the config.
    let (conn, _) = handshake(client_cfg.clone(), sni_only.clone(), "a.example").unwrap();
    assert_eq!(conn.peer_certificates().unwrap()[0], a.der);
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    // One-label wildcard.
    let (conn, _) = handshake(client_cfg.clone(), sni_only.clone(), "x.b.example").unwrap();
    assert_eq!(conn.peer_certificates().unwrap()[0], b.der);
    // Two labels deep: no match and no default → handshake fails.
    assert!(handshake(client_cfg.clone(), sni_only.clone(), "y.x.b.example").is_err());
    assert!(handshake(client_cfg.clone(), sni_only, "other.example").is_err());
    // With a default certificate, unknown names get it.
    let (conn, s) = handshake(client_cfg.clone(), with_default.clone(), "default.example").unwrap();
    assert_eq!(conn.peer_certificates().unwrap()[0], default.der);
    assert_eq!(s.server_name(), Some("default.example"));
    let (conn, _) = handshake(client_cfg, with_default, "a.example").unwrap();
    assert_eq!(conn.peer_certificates().unwrap()[0], a.der);

    // The cluster's client config: verifies the upstream against ca.pem and
    // presents the client certificate to a server that requires one.
    let up = c.clusters[0].tls.clone().unwrap();
    assert_eq!(
        up.server_name,
        ServerName::try_from("upstream.example").unwrap()
    );
    assert_eq!(up.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        tls::provider(),
    )
    .build()
    .unwrap();
    let upstream_key =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(upstream.key_pem.as_bytes()).unwrap();
    let upstream_server = Arc::new(
        rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![upstream.der.clone()], upstream_key)
            .unwrap(),
    );
    let (conn, s) = handshake(
        up.config.clone(),
        upstream_server.clone(),
        "upstream.example",
    )
    .unwrap();
    assert_eq!(conn.peer_certificates().unwrap()[0], upstream.der);
    assert_eq!(s.peer_certificates().unwrap()[0], client.der);
    // The wrong name fails verification.
    assert!(handshake(up.config.clone(), upstream_server, "other.example").is_err());

    // server_name defaults to the host of the first endpoint.
    let derived = c.clusters[1].tls.clone().unwrap();
    assert_eq!(
        derived.server_name,
        ServerName::try_from("localhost").unwrap()
    );
}

#[test]
fn tls_file_errors_name_the_key() {
    let pki = Pki::new();
    let dir = TempDir::new("tls-errors");
    let a = pki.leaf(&["a.example"], false);
    let other = pki.leaf(&["b.example"], false);
    dir.write("a-cert.pem", &a.cert_pem);
    dir.write("a-key.pem", &a.key_pem);
    dir.write("other-key.pem", &other.key_pem);
    dir.write("empty.pem", "");
    let missing = dir.0.join("missing.pem");
    let text = format!(
        r#"
[[listener]]
name = "l"
address = "127.0.0.1:8443"
tls = {{ cert = "{missing}", key = "a-key.pem" }}

[[listener]]
name = "m"
address = "127.0.0.1:8444"
[listener.tls]
cert = "a-cert.pem"
key = "other-key.pem"
sni = [{{ names = ["ok.example", "bad name"], cert = "empty.pem", key = "a-cert.pem" }}]

[[listener]]
name = "n"
address = "127.0.0.1:8445"
tls = {{ key = "a-key.pem" }}

[[listener]]
name = "o"
address = "127.0.0.1:8446"
tls = {{}}

[[route]]
cluster = "c"

[[cluster]]
name = "c"
endpoints = ["127.0.0.1:1"]
tls = {{ server_name = "bad name!", cert = "a-cert.pem" }}

[[cluster]]
name = "d"
endpoints = ["127.0.0.1:1"]
tls = {{ ca = "a-key.pem", insecure_skip_verify = false }}
"#,
        missing = missing.display()
    );
    let path = dir.write("ringway.toml", &text);
    let errs = Config::load(&path).unwrap_err().0;
    let e = error_at(&errs, "listener[0].tls.cert");
    assert_eq!(e.line, Some(line_of(&text, "missing.pem")));
    assert_eq!(
        e.message,
        format!(
            "cannot read {}: No such file or directory",
            missing.display()
        )
    );
    let e = error_at(&errs, "listener[1].tls.key");
    assert!(e.message.contains("does not belong"), "{}", e.message);
    assert_eq!(e.line, Some(line_of(&text, "other-key.pem")));
    let e = error_at(&errs, "listener[1].tls.sni[0].names[1]");
    assert!(e.message.contains("invalid SNI name"), "{}", e.message);
    let e = error_at(&errs, "listener[1].tls.sni[0].cert");
    assert!(e.message.contains("no certificate found"), "{}", e.message);
    let e = error_at(&errs, "listener[1].tls.sni[0].key");
    assert!(e.message.contains("no private key found"), "{}", e.message);
    error_at(&errs, "listener[2].tls.cert");
    let e = error_at(&errs, "listener[3].tls");
    assert!(e.message.contains("default certificate"), "{}", e.message);
    error_at(&errs, "cluster[0].tls.server_name");
    error_at(&errs, "cluster[0].tls.key");
    let e = error_at(&errs, "cluster[0].tls.ca");
    assert!(e.message.contains("insecure_skip_verify"), "{}", e.message);
    let e = error_at(&errs, "cluster[1].tls.ca");
    assert!(e.message.contains("no certificate found"), "{}", e.message);
    assert_eq!(errs.len(), 11, "{errs:#?}");
}

// ---------------------------------------------------------------------------
// [admin], [stats], [access_log], [tracing]

#[test]
fn observability_sections_default() {
    let c = Config::parse(MINIMAL, None).unwrap();
    let s = &c.stats;
    assert_eq!(s.histogram_sigfig, 3);
    assert_eq!(s.publish_interval, Duration::from_secs(1));
    assert!(s.listener_histograms && s.route_histograms);
    assert!(s.cluster_histograms && s.endpoint_histograms);
    assert!(!s.per_worker);
    assert!(c.access_log.is_none());
    assert_eq!(
        c.trace,
        TraceConfig {
            w3c: true,
            otlp: None
        }
    );

    // Present but empty tables: defaults too; `[access_log]` alone turns the
    // log on (JSON to stdout).
    let text = format!("{MINIMAL}\n[stats]\n[access_log]\n[tracing]\n");
    let c = Config::parse(&text, None).unwrap();
    assert_eq!(c.stats.histogram_sigfig, 3);
    assert!(c.stats.endpoint_histograms);
    let log = c.access_log.unwrap();
    assert_eq!(log.target, AccessLogTarget::Stdout);
    assert_eq!(log.format, AccessLogFormat::Json);
    assert_eq!(log.buffer_bytes, 64 * 1024);
    assert_eq!(log.flush_interval, Duration::from_secs(1));
    assert!(c.trace.w3c);
}

#[test]
fn observability_keys_parse() {
    let dir = TempDir::new("obs");
    let text = MINIMAL.replace("address = \"127.0.0.1:9901\"", "listen = \"127.0.0.1:0\"")
        + r#"
[stats]
histogram_sigfig = 5
publish_interval = "50ms"
histograms = ["route", "endpoint"]
per_worker = true

[access_log]
path = "logs/access.log"
format = "combined"
buffer = "4KiB"
flush_interval = "250ms"

[tracing]
w3c = false
"#;
    std::fs::create_dir_all(dir.0.join("logs")).unwrap();
    let path = dir.write("ringway.toml", &text);
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.admin.map(|a| a.address),
        Some("127.0.0.1:0".parse().unwrap())
    );
    let s = &c.stats;
    assert_eq!(s.histogram_sigfig, 5);
    assert_eq!(s.publish_interval, Duration::from_millis(50));
    assert!(!s.listener_histograms && s.route_histograms);
    assert!(!s.cluster_histograms && s.endpoint_histograms);
    assert!(s.per_worker);
    let log = c.access_log.unwrap();
    // Relative to the config file's directory.
    assert_eq!(
        log.target,
        AccessLogTarget::File(dir.0.join("logs/access.log"))
    );
    assert_eq!(log.format, AccessLogFormat::Combined);
    assert_eq!(log.buffer_bytes, 4096);
    assert_eq!(log.flush_interval, Duration::from_millis(250));
    assert!(!c.trace.w3c);

    // `histograms = []`: counters only; `path = "stdout"` explicitly.
    let text = format!(
        "{MINIMAL}\n[stats]\nhistograms = []\n[access_log]\npath = \"stdout\"\nbuffer = 16777216\n"
    );
    let c = Config::parse(&text, None).unwrap();
    let s = &c.stats;
    assert!(!s.listener_histograms && !s.route_histograms);
    assert!(!s.cluster_histograms && !s.endpoint_histograms);
    let log = c.access_log.unwrap();
    assert_eq!(log.target, AccessLogTarget::Stdout);
    assert_eq!(log.buffer_bytes, 16 << 20);
}

#[test]
fn admin_listen_is_an_alias_of_address() {
    let text = MINIMAL.replace("address = \"127.0.0.1:9901\"", "listen = \"[::1]:9902\"");
    let c = Config::parse(&text, None).unwrap();
    assert_eq!(c.admin.unwrap().address, "[::1]:9902".parse().unwrap());

    let text = MINIMAL.replace(
        "address = \"127.0.0.1:9901\"",
        "address = \"127.0.0.1:9901\"\nlisten = \"127.0.0.1:9902\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = error_at(&errs, "admin.listen");
    assert_eq!(e.line, Some(line_of(&text, "listen = ")));
    assert!(e.message.contains("only one"), "{}", e.message);

    let text = MINIMAL.replace("address = \"127.0.0.1:9901\"", "listen = \"localhost:1\"");
    let errs = errors(&text);
    let e = error_at(&errs, "admin.listen");
    assert_eq!(e.line, Some(line_of(&text, "listen = ")));
    assert!(e.message.contains("invalid address"), "{}", e.message);

    let text = MINIMAL.replace("address = \"127.0.0.1:9901\"", "port = 1");
    let e = error_at(&errors(&text), "admin.port").clone();
    assert!(e.message.contains("`listen`"), "{}", e.message);
}

#[test]
fn stats_errors_have_paths_and_lines() {
    let text = format!(
        "{MINIMAL}\n[stats]\nhistogram_sigfig = 6\npublish_interval = \"5ms\"\nhistograms = [\"route\", \"upstream\"]\nper_worker = \"yes\"\n"
    );
    let errs = errors(&text);
    // `per_worker` has the wrong type: the table could not be read, so the
    // value checks don't run (like any other table with a type error).
    let e = error_at(&errs, "stats.per_worker");
    assert_eq!(e.line, Some(line_of(&text, "per_worker")));
    assert_eq!(errs.len(), 1, "{errs:#?}");

    let text = text.replace("per_worker = \"yes\"", "per_worker = false");
    let errs = errors(&text);
    let e = error_at(&errs, "stats.histogram_sigfig");
    assert_eq!(e.line, Some(line_of(&text, "histogram_sigfig")));
    assert!(e.message.contains("between 1 and 5"), "{}", e.message);
    let e = error_at(&errs, "stats.publish_interval");
    assert_eq!(e.line, Some(line_of(&text, "publish_interval")));
    assert!(e.message.contains("at least 10ms"), "{}", e.message);
    let e = error_at(&errs, "stats.histograms[1]");
    assert_eq!(e.line, Some(line_of(&text, "histograms = ")));
    assert!(
        e.message.contains("\"upstream\"") && e.message.contains("\"endpoint\""),
        "{}",
        e.message
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");

    let text = format!("{MINIMAL}\n[stats]\npublish_interval = 1\nhistogram_sigfig = 0\n");
    let errs = errors(&text);
    assert!(error_at(&errs, "stats.publish_interval")
        .message
        .contains("needs a unit"));
    assert!(error_at(&errs, "stats.histogram_sigfig")
        .message
        .contains("between 1 and 5"));

    let text = format!("{MINIMAL}\n[stats]\nhistogram = [\"route\"]\n");
    let e = error_at(&errors(&text), "stats.histogram").clone();
    assert!(e.message.contains("`histograms`"), "{}", e.message);
}

#[test]
fn access_log_errors_have_paths_and_lines() {
    let text = format!(
        "{MINIMAL}\n[access_log]\npath = \"/nonexistent-ringway-dir/a.log\"\nformat = \"clf\"\nbuffer = \"1KiB\"\nflush_interval = \"0s\"\nredact_query = [\"ok\", \"a=b\"]\n"
    );
    let errs = errors(&text);
    let e = error_at(&errs, "access_log.redact_query[1]");
    assert_eq!(e.line, Some(line_of(&text, "redact_query = ")));
    assert!(e.message.contains("\"a=b\""), "{}", e.message);
    let e = error_at(&errs, "access_log.path");
    assert_eq!(e.line, Some(line_of(&text, "path = ")));
    assert!(e.message.contains("does not exist"), "{}", e.message);
    let e = error_at(&errs, "access_log.format");
    assert_eq!(e.line, Some(line_of(&text, "format = ")));
    assert!(e.message.contains("\"combined\""), "{}", e.message);
    let e = error_at(&errs, "access_log.buffer");
    assert_eq!(e.line, Some(line_of(&text, "buffer = ")));
    assert!(
        e.message.contains("between 4KiB and 16MiB"),
        "{}",
        e.message
    );
    let e = error_at(&errs, "access_log.flush_interval");
    assert_eq!(e.line, Some(line_of(&text, "flush_interval")));
    assert!(e.message.contains("greater than zero"), "{}", e.message);
    assert_eq!(errs.len(), 5, "{errs:#?}");

    let text = format!("{MINIMAL}\n[access_log]\npath = \"\"\nbuffer = \"32MiB\"\n");
    let errs = errors(&text);
    assert!(error_at(&errs, "access_log.path")
        .message
        .contains("must not be empty"));
    assert!(error_at(&errs, "access_log.buffer")
        .message
        .contains("found 32MiB"));

    let text = format!("{MINIMAL}\n[access_log]\npath = \"/tmp\"\n");
    assert!(error_at(&errors(&text), "access_log.path")
        .message
        .contains("is a directory"));
}

#[test]
fn tracing_errors_have_paths_and_lines() {
    let text = format!("{MINIMAL}\n[tracing]\nw3c = \"on\"\n");
    let errs = errors(&text);
    let e = error_at(&errs, "tracing.w3c");
    assert_eq!(e.line, Some(line_of(&text, "w3c")));
    let text = format!("{MINIMAL}\n[tracing]\nb3 = true\n");
    let errs = errors(&text);
    let e = error_at(&errs, "tracing.b3");
    assert_eq!(e.line, Some(line_of(&text, "b3")));
    assert!(e.message.contains("`w3c`"), "{}", e.message);
}

/// MINIMAL with the route's `path_prefix = "/"` line replaced by `keys`.
fn with_route_keys(keys: &str) -> String {
    MINIMAL.replace("path_prefix = \"/\"\n", &format!("{keys}\n"))
}

#[test]
fn route_matchers_are_built() {
    let text = with_route_keys(
        r#"path_segment_prefix = "/api/"
methods = ["GET", "POST"]
headers = [
  { name = "X-Canary", exact = "1" },
  { name = "x-env", prefix = "stag" },
  { name = "x-id", regex = "^[0-9]+$" },
  { name = "x-debug", present = true },
  { name = "x-block", absent = true },
]
query = [{ name = "v", exact = "2" }, { name = "debug", present = true }, { name = "id", regex = "^[0-9]+$" }]"#,
    );
    let c = Config::parse(&text, None).unwrap();
    let r = &c.routes[0];
    // One trailing '/' is dropped.
    assert!(matches!(&r.path, PathMatch::SegmentPrefix(p) if p == "/api"));
    assert_eq!(r.methods, ["GET", "POST"]);
    let headers: Vec<_> = r
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.config_key()))
        .collect();
    assert_eq!(
        headers,
        [
            ("x-canary", ("exact", Some("1"))),
            ("x-env", ("prefix", Some("stag"))),
            ("x-id", ("regex", Some("^[0-9]+$"))),
            ("x-debug", ("present", None)),
            ("x-block", ("absent", None)),
        ]
    );
    let query: Vec<_> = r
        .query
        .iter()
        .map(|q| (q.name.as_str(), q.value.config_key()))
        .collect();
    assert_eq!(
        query,
        [
            ("v", ("exact", Some("2"))),
            ("debug", ("present", None)),
            ("id", ("regex", Some("^[0-9]+$"))),
        ]
    );
    // `/config` shows the matchers as written.
    let v = crate::admin::json::config(&c);
    let route = &v["routes"][0];
    assert_eq!(
        route["path"],
        serde_json::json!({ "path_segment_prefix": "/api" })
    );
    assert_eq!(route["methods"], serde_json::json!(["GET", "POST"]));
    assert_eq!(
        route["headers"][0],
        serde_json::json!({ "name": "x-canary", "exact": "1" })
    );
    assert_eq!(
        route["headers"][3],
        serde_json::json!({ "name": "x-debug", "present": true })
    );
    assert_eq!(
        route["query"][2],
        serde_json::json!({ "name": "id", "regex": "^[0-9]+$" })
    );

    for (keys, kind, value) in [
        ("path = \"/exact\"", "path", "/exact"),
        ("path_prefix = \"/p\"", "path_prefix", "/p"),
        ("path_segment_prefix = \"/\"", "path_segment_prefix", "/"),
        ("path_regex = \"/u/[0-9]+\"", "path_regex", "/u/[0-9]+"),
        ("", "path_prefix", "/"),
    ] {
        let c = Config::parse(&with_route_keys(keys), None).unwrap();
        assert_eq!(c.routes[0].path.config_key(), (kind, value), "{keys}");
        assert!(c.routes[0].methods.is_empty());
    }
    let c = Config::parse(&with_route_keys("path_regex = \"/a|/b\""), None).unwrap();
    let PathMatch::Regex(p) = &c.routes[0].path else {
        panic!("not a regex")
    };
    // Anchored to the whole path, alternation included.
    assert!(p.regex.is_match(b"/b"));
    assert!(!p.regex.is_match(b"/bc"));
}

#[test]
fn invalid_regexes_name_the_key_and_line() {
    let text = with_route_keys(
        "path_regex = \"/users/(\"\nheaders = [\n  { name = \"x-a\", exact = \"1\" },\n  { name = \"x-id\", regex = \"[0-9\" },\n]\nquery = [{ name = \"id\", regex = \"a{99999999}\" }]",
    );
    let errs = errors(&text);
    let e = error_at(&errs, "route[0].path_regex");
    assert_eq!(e.line, Some(line_of(&text, "path_regex")));
    assert!(
        e.message.contains("invalid regex \"/users/(\""),
        "{}",
        e.message
    );
    assert!(!e.message.contains('\n'), "{}", e.message);
    let e = error_at(&errs, "route[0].headers[1].regex");
    assert_eq!(e.line, Some(line_of(&text, "\"[0-9\"")));
    assert!(e.message.contains("invalid regex"), "{}", e.message);
    let e = error_at(&errs, "route[0].query[0].regex");
    assert_eq!(e.line, Some(line_of(&text, "query = ")));
    assert!(
        e.message.contains("too large") || e.message.contains("invalid regex"),
        "{}",
        e.message
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");

    // A pattern must not escape the anchoring group.
    let errs = errors(&with_route_keys("path_regex = \"a)|(b\""));
    error_at(&errs, "route[0].path_regex");
}

#[test]
fn route_matcher_errors() {
    // Two path matchers.
    let text = with_route_keys("path_prefix = \"/a\"\npath = \"/b\"");
    let errs = errors(&text);
    let e = error_at(&errs, "route[0].path");
    assert_eq!(e.line, Some(line_of(&text, "path = \"/b\"")));
    assert!(
        e.message.contains("found `path_prefix` and `path`"),
        "{}",
        e.message
    );
    let errs = errors(&with_route_keys(
        "path_segment_prefix = \"/a\"\npath_regex = \"/b\"",
    ));
    error_at(&errs, "route[0].path_regex");

    // Literal paths are checked like path_prefix.
    let errs = errors(&with_route_keys("path = \"b\""));
    assert!(error_at(&errs, "route[0].path")
        .message
        .contains("must start with '/'"));
    let errs = errors(&with_route_keys("path_segment_prefix = \"/a b\""));
    error_at(&errs, "route[0].path_segment_prefix");

    // Methods: not empty, tokens.
    let text = with_route_keys("methods = []");
    let errs = errors(&text);
    let e = error_at(&errs, "route[0].methods");
    assert_eq!(e.line, Some(line_of(&text, "methods")));
    assert!(e.message.contains("must not be empty"), "{}", e.message);
    let errs = errors(&with_route_keys("methods = [\"GET\", \"BAD METHOD\"]"));
    error_at(&errs, "route[0].methods[1]");

    // Header and query entries: exactly one condition, valid names.
    let text = with_route_keys(
        "headers = [\n  { name = \"x-a\" },\n  { name = \"x-b\", exact = \"1\", prefix = \"2\" },\n  { name = \"bad name\", present = true },\n  { name = \"x-c\", present = false },\n]\nquery = [{ name = \"v\" }, { name = \"\", exact = \"1\" }, { name = \"v\", exact = \"1\", absent = true }]",
    );
    let errs = errors(&text);
    let e = error_at(&errs, "route[0].headers[0]");
    assert_eq!(e.line, Some(line_of(&text, "name = \"x-a\"")));
    assert!(e.message.contains("needs one condition"), "{}", e.message);
    let e = error_at(&errs, "route[0].headers[1]");
    assert_eq!(e.line, Some(line_of(&text, "name = \"x-b\"")));
    assert!(
        e.message.contains("found exact and prefix"),
        "{}",
        e.message
    );
    error_at(&errs, "route[0].headers[2].name");
    error_at(&errs, "route[0].headers[3].present");
    error_at(&errs, "route[0].query[0]");
    error_at(&errs, "route[0].query[1].name");
    assert!(error_at(&errs, "route[0].query[2]")
        .message
        .contains("found exact and absent"));
    assert_eq!(errs.len(), 7, "{errs:#?}");

    // Unknown keys in a condition are rejected by the file layer.
    let errs = errors(&with_route_keys(
        "headers = [{ name = \"x-a\", equals = \"1\" }]",
    ));
    assert!(
        errs.iter()
            .any(|e| e.path.starts_with("route[0].headers[0]")),
        "{errs:#?}"
    );
}

const VERSIONED: &str = r#"
[[route]]
name = "orders"
path_prefix = "/orders"
version_from = { header = "api-version" }
default_version = "2"
versions = [
  { version = "1", cluster = "app", deprecated = { sunset = "2027-06-30T00:00:00Z", link = "https://docs.example/v1-sunset" } },
  { version = "2", cluster = "app2", rewrite_prefix = { from = "/orders", to = "/api/orders" } },
]

[[cluster]]
name = "app2"
endpoints = ["127.0.0.1:9001"]
"#;

#[test]
fn versions_route_action() {
    let text = format!("{MINIMAL}{VERSIONED}");
    let c = Config::parse(&text, None).unwrap();
    let r = c.routes.iter().find(|r| r.name == "orders").unwrap();
    let RouteAction::Versioned(v) = &r.action else {
        panic!("expected a versions action")
    };
    assert_eq!(v.default, Some(1));
    assert_eq!(r.clusters(), [0, 1]);
    assert_eq!(r.target_label(&c.clusters), "app,app2");
}

#[test]
fn versions_route_errors() {
    let base = format!("{MINIMAL}{VERSIONED}");
    // Two sources.
    let text = base.replace(
        "version_from = { header = \"api-version\" }",
        "version_from = { header = \"api-version\", query = \"v\" }",
    );
    let errs = errors(&text);
    let e = error_at(&errs, "route[1].version_from");
    assert_eq!(e.message, "one source only; found header and query");
    // Unknown cluster in versions.
    let text = base.replace("cluster = \"app2\"", "cluster = \"nope\"");
    let e = error_at(&errors(&text), "route[1].versions[1].cluster")
        .message
        .clone();
    assert!(e.contains("unknown cluster \"nope\""), "{e}");
    // Duplicate versions.
    let text = base.replace("version = \"2\"", "version = \"1\"");
    let errs = errors(&text);
    assert_eq!(
        error_at(&errs, "route[1].versions[1].version").message,
        "duplicate version \"1\""
    );
    // Bad sunset date.
    let text = base.replace("2027-06-30T00:00:00Z", "next summer");
    let e = error_at(&errors(&text), "route[1].versions[0].deprecated.sunset")
        .message
        .clone();
    assert!(e.contains("RFC 3339"), "{e}");
    // Two actions.
    let text = base.replace(
        "default_version = \"2\"",
        "default_version = \"2\"\ncluster = \"app\"",
    );
    assert_eq!(
        error_at(&errors(&text), "route[1]").message,
        "a route has one action; found cluster and versions"
    );
    // version_from without versions.
    let text = MINIMAL.replace(
        "cluster = \"app\"",
        "cluster = \"app\"\nversion_from = { query = \"v\" }",
    );
    assert_eq!(
        error_at(&errors(&text), "route[0].version_from").message,
        "only applies to a `versions` route"
    );
}

#[test]
fn load_balancing_keys() {
    let text = MINIMAL.replace(
        "endpoints = [\"127.0.0.1:9000\"]",
        "endpoints = [\"127.0.0.1:9000\", { address = \"127.0.0.1:9001\", weight = 3 }]\n\
         lb = \"maglev\"\nhash_key = { header = \"X-User\" }\nbounded_load = 1.25",
    );
    let c = Config::parse(&text, None).expect("valid");
    let k = &c.clusters[0];
    assert_eq!(k.lb, LbPolicy::Maglev);
    assert_eq!(k.hash_key, Some(HashKey::Header("x-user".into())));
    assert_eq!(k.bounded_load, Some(1.25));
    let w: Vec<u32> = k.endpoints.iter().map(|e| e.weight).collect();
    assert_eq!(w, [1, 3]);
    assert_eq!(k.endpoints[1].label, "127.0.0.1:9001");

    let bad = |extra: &str, path: &str, needle: &str| {
        let text = MINIMAL.replace(
            "endpoints = [\"127.0.0.1:9000\"]",
            &format!("endpoints = [\"127.0.0.1:9000\"]\n{extra}"),
        );
        let errs = errors(&text);
        let e = error_at(&errs, path);
        assert!(e.message.contains(needle), "{extra}: {}", e.message);
    };
    bad("lb = \"fastest\"", "cluster[0].lb", "peak_ewma");
    bad(
        "lb = \"ring_hash\"",
        "cluster[0].hash_key",
        "needs a hash_key",
    );
    bad(
        "lb = \"ring_hash\"\nhash_key = { header = \"a\", path = true }",
        "cluster[0].hash_key",
        "exactly one",
    );
    bad(
        "hash_key = { path = true }",
        "cluster[0].hash_key",
        "only used",
    );
    bad(
        "lb = \"maglev\"\nhash_key = { client_ip = true }\nbounded_load = 0.5",
        "cluster[0].bounded_load",
        "above 1",
    );
    let text = MINIMAL.replace(
        "endpoints = [\"127.0.0.1:9000\"]",
        "endpoints = [{ address = \"127.0.0.1:9000\", weight = 0 }]",
    );
    let errs = errors(&text);
    assert!(error_at(&errs, "cluster[0].endpoints[0].weight")
        .message
        .contains("between 1 and 1000"));
}

#[test]
fn health_check_errors_name_the_key() {
    let with = |keys: &str| {
        MINIMAL.replace(
            "endpoints = [\"127.0.0.1:9000\"]\n",
            &format!("endpoints = [\"127.0.0.1:9000\"]\n{keys}"),
        )
    };
    let text = with("health_check = { path = \"healthz\", interval = \"0s\", healthy_threshold = 0, expected_statuses = [\"200\", \"299-200\", \"abc\"] }\npanic_threshold = 150\n");
    let errs = errors(&text);
    for key in [
        "cluster[0].health_check.path",
        "cluster[0].health_check.interval",
        "cluster[0].health_check.healthy_threshold",
        "cluster[0].health_check.expected_statuses[1]",
        "cluster[0].health_check.expected_statuses[2]",
        "cluster[0].panic_threshold",
    ] {
        let e = error_at(&errs, key);
        assert!(e.line.is_some(), "{key}: no line");
    }
    assert_eq!(errs.len(), 6, "{errs:#?}");
    let ok = with(
        "health_check = { path = \"/healthz\", expected_statuses = [\"200-299\", \"404\"] }\n",
    );
    let c = Config::parse(&ok, None).unwrap();
    let hc = c.clusters[0].health_check.as_ref().unwrap();
    assert!(hc.expects(204) && hc.expects(404) && !hc.expects(503));
    assert_eq!(hc.interval, Duration::from_secs(5));
    assert_eq!((hc.healthy_threshold, hc.unhealthy_threshold), (2, 3));
    assert_eq!(c.clusters[0].panic_threshold, 50.0);
}

#[test]
fn outlier_detection_defaults_and_errors() {
    let with = |keys: &str| {
        MINIMAL.replace(
            "endpoints = [\"127.0.0.1:9000\"]\n",
            &format!("endpoints = [\"127.0.0.1:9000\"]\n{keys}"),
        )
    };
    let c = Config::parse(&with("outlier_detection = {}\n"), None).unwrap();
    let o = c.clusters[0].outlier_detection.as_ref().unwrap();
    assert_eq!((o.consecutive_5xx, o.consecutive_gateway_errors), (5, 5));
    assert_eq!(o.base_ejection_time, Duration::from_secs(30));
    assert_eq!(o.max_ejection_time, Duration::from_secs(300));
    assert_eq!(o.max_ejection_percent, 10.0);
    let text = with("outlier_detection = { consecutive_5xx = -1, base_ejection_time = \"10s\", max_ejection_time = \"5s\", max_ejection_percent = 120 }\n");
    let errs = errors(&text);
    for key in [
        "cluster[0].outlier_detection.consecutive_5xx",
        "cluster[0].outlier_detection.max_ejection_time",
        "cluster[0].outlier_detection.max_ejection_percent",
    ] {
        assert!(error_at(&errs, key).line.is_some(), "{key}");
    }
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn dns_discovery_errors_name_the_key() {
    let with = |keys: &str| MINIMAL.replace("endpoints = [\"127.0.0.1:9000\"]\n", keys);
    let text = with("dns = { name = \"svc.test\", record = \"MX\", resolver = \"nope\" }\n");
    let errs = errors(&text);
    for key in [
        "cluster[0].dns.record",
        "cluster[0].dns.port",
        "cluster[0].dns.resolver",
    ] {
        assert!(error_at(&errs, key).line.is_some(), "{key}: {errs:#?}");
    }
    let text = with("endpoints = [\"127.0.0.1:1\"]\ndns = { name = \"svc.test\", port = 80, resolver = \"127.0.0.1:9\", timeout = \"100ms\" }\n");
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.path == "cluster[0].dns" && e.message.contains("one of")),
        "{errs:#?}"
    );
}

#[test]
fn hedge_policy_is_built_and_checked() {
    let text = MINIMAL.replace(
        "cluster = \"app\"\n\n[[cluster]]",
        "cluster = \"app\"\nhedge = { delay = \"20ms\" }\n\n[[cluster]]",
    );
    let c = Config::parse(&text, None).unwrap();
    assert_eq!(
        c.routes[0].hedge,
        Some(HedgePolicy {
            delay: Duration::from_millis(20)
        })
    );
    assert_eq!(Config::parse(MINIMAL, None).unwrap().routes[0].hedge, None);
    for (bad, says) in [
        ("hedge = {}", "is required"),
        ("hedge = { delay = \"0s\" }", "greater than zero"),
    ] {
        let text = MINIMAL.replace(
            "cluster = \"app\"\n\n[[cluster]]",
            &format!("cluster = \"app\"\n{bad}\n\n[[cluster]]"),
        );
        let errs = errors(&text);
        let e = error_at(&errs, "route[0].hedge.delay");
        assert!(e.message.contains(says), "{bad}: {e:?}");
    }
    let text = MINIMAL.replace(
        "cluster = \"app\"\n\n[[cluster]]",
        "cluster = \"app\"\nhedge = { after = \"20ms\" }\n\n[[cluster]]",
    );
    assert!(!errors(&text).is_empty());
}

#[test]
fn connection_breakers_are_built_and_checked() {
    let with = |b: &str| {
        MINIMAL.replace(
            "endpoints = [\"127.0.0.1:9000\"]",
            &format!("endpoints = [\"127.0.0.1:9000\"]\ncircuit_breakers = {b}"),
        )
    };
    let c = Config::parse(&with("{ max_connections = 8, max_pending = 4 }"), None).unwrap();
    assert_eq!(c.clusters[0].max_connections, Some(8));
    assert_eq!(c.clusters[0].max_pending, Some(4));
    let errs = errors(&with("{ max_pending = 4 }"));
    assert!(error_at(&errs, "cluster[0].circuit_breakers.max_pending")
        .message
        .contains("only with max_connections"));
    let errs = errors(&with("{ max_connections = 0 }"));
    error_at(&errs, "cluster[0].circuit_breakers.max_connections");
}

#[test]
fn listener_accept_modes() {
    let with = |m: &str| {
        MINIMAL.replace(
            "address = \"127.0.0.1:8080\"",
            &format!("address = \"127.0.0.1:8080\"\naccept = \"{m}\""),
        )
    };
    assert_eq!(
        Config::parse(MINIMAL, None).unwrap().listeners[0].accept,
        AcceptMode::Reuseport
    );
    assert_eq!(
        Config::parse(&with("balanced"), None).unwrap().listeners[0].accept,
        AcceptMode::Balanced
    );
    let errs = errors(&with("round-robin"));
    assert!(error_at(&errs, "listener[0].accept")
        .message
        .contains("balanced"));
}

#[test]
fn cluster_spiffe_checks_are_validated() {
    let with = |t: &str| {
        MINIMAL.replace(
            "endpoints = [\"127.0.0.1:9000\"]",
            &format!("endpoints = [\"127.0.0.1:9000\"]\ntls = {t}"),
        )
    };
    let errs = errors(&with(
        r#"{ ca = "missing.pem", spiffe_id = "http://example.org/x" }"#,
    ));
    error_at(&errs, "cluster[0].tls.spiffe_id");
    let errs = errors(&with(
        r#"{ ca = "missing.pem", spiffe_id = "spiffe://example.org/x", spiffe_trust_domain = "example.org" }"#,
    ));
    assert!(error_at(&errs, "cluster[0].tls.spiffe_trust_domain")
        .message
        .contains("not both"));
    let errs = errors(&with(
        r#"{ ca = "missing.pem", spiffe_trust_domain = "Example.org" }"#,
    ));
    error_at(&errs, "cluster[0].tls.spiffe_trust_domain");
    let errs = errors(&with(
        r#"{ insecure_skip_verify = true, spiffe_trust_domain = "example.org" }"#,
    ));
    error_at(&errs, "cluster[0].tls.insecure_skip_verify");
}
