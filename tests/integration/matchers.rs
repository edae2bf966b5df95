//! Route matchers beyond host + path prefix, through real HTTP: exact path,
//! segment prefix, path regex, methods, header and query conditions, and a
//! table large enough to be indexed. Each route forwards to its own origin
//! (`x-origin` tells which answered); a last catch-all goes to "fallback".

use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

const PATH_KEYS: [&str; 3] = ["path", "path_segment_prefix", "path_regex"];

/// A running proxy with its origins (kept alive with it).
struct Setup {
    proxy: Proxy,
    _origins: Vec<Origin>,
    _dir: TestDir,
}

/// Routes in order: `(origin name, extra route keys as raw TOML)`; a route
/// with another path key has no `path_prefix`. Then `/` → "fallback".
fn start(label: &str, routes: &[(&str, &[(&str, &str)])]) -> Setup {
    let dir = TestDir::new(label);
    let mut config = Config::new().listener("public");
    let mut origins = Vec::new();
    let mut names: Vec<&str> = routes.iter().map(|r| r.0).collect();
    names.push("fallback");
    for (name, keys) in routes {
        config = config.route("public", "/", name, keys);
        if keys.iter().any(|(k, _)| PATH_KEYS.contains(k)) {
            let r = config.routes.last_mut().expect("route just added");
            r.retain(|(k, _)| k != "path_prefix");
        }
    }
    config = config.route("public", "/", "fallback", &[]);
    names.sort_unstable();
    names.dedup();
    for name in names {
        let o = Origin::start_named(name);
        config = config.cluster(name, &[o.addr()], &[]);
        origins.push(o);
    }
    Setup {
        proxy: Proxy::start(&dir, &config),
        _origins: origins,
        _dir: dir,
    }
}

/// Sends each request (one keep-alive connection) and fails with every
/// mismatch at once.
fn expect(setup: &Setup, cases: &[(Request, &str)]) {
    let mut client = Client::connect(setup.proxy.addr("public"));
    let mut failures = Vec::new();
    for (req, want) in cases {
        let r = client.request(req);
        let got = r.header("x-origin").unwrap_or("none");
        if r.status() != 200 || got != *want {
            failures.push(format!(
                "{} {} {:?}: want origin {want}, got {} from {got}",
                req.method,
                req.target,
                req.headers,
                r.status()
            ));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

fn get(target: &str) -> Request {
    Request::get(target)
}

#[test]
fn exact_path() {
    let s = start("m-exact", &[("exact", &[("path", &q("/health"))])]);
    expect(
        &s,
        &[
            (get("/health"), "exact"),
            (get("/health?verbose=1"), "exact"),
            (get("/health/"), "fallback"),
            (get("/healthz"), "fallback"),
            (get("/Health"), "fallback"),
        ],
    );
}

#[test]
fn segment_prefix() {
    let s = start(
        "m-segment",
        &[("api", &[("path_segment_prefix", &q("/api/"))])],
    );
    expect(
        &s,
        &[
            (get("/api"), "api"),
            (get("/api/"), "api"),
            (get("/api/v1/users?x=1"), "api"),
            (get("/api?x=1"), "api"),
            (get("/apix"), "fallback"),
            (get("/ap"), "fallback"),
        ],
    );
}

#[test]
fn path_regex() {
    let s = start(
        "m-regex",
        &[
            ("user", &[("path_regex", &q(r"/users/[0-9]+"))]),
            ("ci", &[("path_regex", &q("(?i)/docs(/.*)?"))]),
        ],
    );
    expect(
        &s,
        &[
            (get("/users/42"), "user"),
            (get("/users/42?tab=1"), "user"),
            // Anchored: the whole path must match.
            (get("/users/42/posts"), "fallback"),
            (get("/v1/users/42"), "fallback"),
            (get("/users/abc"), "fallback"),
            (get("/DOCS/Intro"), "ci"),
            (get("/docs"), "ci"),
            (get("/docsx"), "fallback"),
        ],
    );
}

#[test]
fn methods() {
    let s = start(
        "m-methods",
        &[("write", &[("methods", r#"["POST", "PUT"]"#)])],
    );
    expect(
        &s,
        &[
            (Request::post("/x").body("a"), "write"),
            (Request::new("PUT", "/x").body("b"), "write"),
            (get("/x"), "fallback"),
            (Request::new("DELETE", "/x"), "fallback"),
            // Methods are case-sensitive.
            (Request::new("post", "/x").body("c"), "fallback"),
        ],
    );
}

#[test]
fn header_conditions() {
    let s = start(
        "m-headers",
        &[
            (
                "canary",
                &[(
                    "headers",
                    r#"[{ name = "X-Canary", exact = "1" }, { name = "x-block", absent = true }]"#,
                )],
            ),
            (
                "staging",
                &[("headers", r#"[{ name = "x-env", prefix = "stag" }]"#)],
            ),
            (
                "id",
                &[("headers", r#"[{ name = "x-id", regex = "^[0-9]+$" }]"#)],
            ),
            (
                "debug",
                &[("headers", r#"[{ name = "x-debug", present = true }]"#)],
            ),
        ],
    );
    expect(
        &s,
        &[
            (get("/").header("x-canary", "1"), "canary"),
            // Names are case-insensitive; values are not.
            (get("/").header("X-CANARY", "1"), "canary"),
            (get("/").header("x-canary", "2"), "fallback"),
            // A header sent twice matches if either value does.
            (
                get("/").header("x-canary", "0").header("x-canary", "1"),
                "canary",
            ),
            (
                get("/").header("x-canary", "1").header("x-block", "yes"),
                "fallback",
            ),
            (get("/").header("x-env", "staging-eu"), "staging"),
            (get("/").header("x-env", "Staging"), "fallback"),
            (get("/").header("x-id", "12345"), "id"),
            (get("/").header("x-id", "12a"), "fallback"),
            (get("/").header("x-debug", ""), "debug"),
            (get("/").header("x-debug", "0"), "debug"),
            (get("/"), "fallback"),
        ],
    );
}

#[test]
fn query_conditions() {
    let s = start(
        "m-query",
        &[
            ("v2", &[("query", r#"[{ name = "v", exact = "2" }]"#)]),
            (
                "debug",
                &[("query", r#"[{ name = "debug", present = true }]"#)],
            ),
            (
                "id",
                &[("query", r#"[{ name = "id", regex = "^[0-9]+$" }]"#)],
            ),
            ("raw", &[("query", r#"[{ name = "q", exact = "a%20b" }]"#)]),
        ],
    );
    expect(
        &s,
        &[
            (get("/x?v=2"), "v2"),
            (get("/x?a=1&v=2&b"), "v2"),
            (get("/x?v=3&v=2"), "v2"),
            (get("/x?v=3"), "fallback"),
            (get("/x?V=2"), "fallback"),
            (get("/x?debug"), "debug"),
            (get("/x?debug=0"), "debug"),
            (get("/x?id=77"), "id"),
            (get("/x?id=7x"), "fallback"),
            // Raw values: not percent-decoded.
            (get("/x?q=a%20b"), "raw"),
            (get("/x?q=a+b"), "fallback"),
            (get("/x"), "fallback"),
        ],
    );
}

/// More than 16 routes: the indexed lookup must check the conditions of
/// the routes it finds and keep file order.
#[test]
fn indexed_table_keeps_first_match() {
    let mut routes: Vec<(String, Vec<(String, String)>)> = vec![
        (
            "post-api".into(),
            vec![
                ("path_segment_prefix".into(), q("/api")),
                ("methods".into(), r#"["POST"]"#.into()),
            ],
        ),
        (
            "canary-api".into(),
            vec![
                ("path_segment_prefix".into(), q("/api")),
                (
                    "headers".into(),
                    r#"[{ name = "x-canary", present = true }]"#.into(),
                ),
            ],
        ),
        (
            "item".into(),
            vec![("path_regex".into(), q("/api/items/[0-9]+"))],
        ),
        (
            "api".into(),
            vec![("path_segment_prefix".into(), q("/api"))],
        ),
    ];
    for i in 0..20 {
        routes.push((
            format!("pad{i}"),
            vec![
                ("host".into(), q(&format!("pad{i}.test"))),
                ("path".into(), q(&format!("/pad/{i}"))),
            ],
        ));
    }
    let borrowed: Vec<(&str, Vec<(&str, &str)>)> = routes
        .iter()
        .map(|(n, keys)| {
            (
                n.as_str(),
                keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            )
        })
        .collect();
    let table: Vec<(&str, &[(&str, &str)])> =
        borrowed.iter().map(|(n, k)| (*n, k.as_slice())).collect();
    let s = start("m-indexed", &table);
    expect(
        &s,
        &[
            (Request::post("/api/items/3").body("x"), "post-api"),
            (get("/api/items/3").header("x-canary", "1"), "canary-api"),
            (get("/api/items/3"), "item"),
            (get("/api/items/3x"), "api"),
            (get("/api"), "api"),
            (get("/apix"), "fallback"),
            (get("/pad/7").host("pad7.test"), "pad7"),
            (get("/pad/7").host("pad8.test"), "fallback"),
        ],
    );
}
