//! `versions = [...]` routes end to end: each version source picks the
//! origin, the default, unknown versions (400 / 404 problem+json, the
//! connection kept), deprecation fields, strip and rewrite as the origin
//! sees them, and the per-version counter in `/metrics`.

use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

const VERSIONS: &str = r#"[
  { version = "1", cluster = "v1", deprecated = { date = "2026-01-01T00:00:00Z", sunset = "2027-06-30T00:00:00Z", link = "https://docs.test/v1-sunset" } },
  { version = "2", cluster = "v2", rewrite_prefix = { from = "/orders", to = "/api/orders" } },
]"#;

struct Setup {
    proxy: Proxy,
    v1: Origin,
    v2: Origin,
    _dir: TestDir,
}

/// One route "orders" on `/` with `version_from` and optional
/// `default_version`, versions "1" → origin v1 and "2" → origin v2.
fn start(label: &str, version_from: &str, default: Option<&str>) -> Setup {
    let dir = TestDir::new(label);
    let v1 = Origin::start_named("v1");
    let v2 = Origin::start_named("v2");
    let mut extra = vec![
        ("name", q("orders")),
        ("version_from", version_from.to_string()),
        ("versions", VERSIONS.to_string()),
    ];
    if let Some(d) = default {
        extra.push(("default_version", q(d)));
    }
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut config = Config::new()
        .listener("public")
        .admin()
        .route("public", "/", "v1", &extra)
        .cluster("v1", &[v1.addr()], &[])
        .cluster("v2", &[v2.addr()], &[]);
    config.routes[0].retain(|(k, _)| k != "cluster");
    Setup {
        proxy: Proxy::start(&dir, &config),
        v1,
        v2,
        _dir: dir,
    }
}

fn origin_of(r: &ringway_tests::client::Response) -> String {
    assert_eq!(r.status(), 200, "{r}");
    r.header("x-origin").unwrap_or("none").to_string()
}

fn problem(r: &ringway_tests::client::Response, status: u16) -> serde_json::Value {
    assert_eq!(r.status(), status, "{r}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let body: serde_json::Value = serde_json::from_str(&r.body_str()).expect("json body");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    body
}

#[test]
fn header_source_with_default_and_unknown() {
    let s = start("ver-header", r#"{ header = "api-version" }"#, Some("2"));
    let mut c = Client::connect(s.proxy.addr("public"));
    let r = c.request(&Request::get("/orders/1").header("API-Version", "1"));
    assert_eq!(origin_of(&r), "v1");
    assert_eq!(s.v1.last_request().unwrap().target, "/orders/1");
    // No version: the default, with its rewrite.
    let r = c.get("/orders/7?x=1");
    assert_eq!(origin_of(&r), "v2");
    assert_eq!(s.v2.last_request().unwrap().target, "/api/orders/7?x=1");
    // Unknown: 400 problem, the connection stays usable.
    let r = c.request(&Request::get("/orders").header("api-version", "9"));
    let body = problem(&r, 400);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"9\"") && detail.contains("1, 2"),
        "{detail}"
    );
    let r = c.request(&Request::get("/orders").header("api-version", "2"));
    assert_eq!(origin_of(&r), "v2");
}

#[test]
fn path_source_strips_and_answers_404() {
    let s = start("ver-path", r#"{ path_prefix = true, strip = true }"#, None);
    let mut c = Client::connect(s.proxy.addr("public"));
    assert_eq!(origin_of(&c.get("/v1/orders/3?q=1")), "v1");
    assert_eq!(s.v1.last_request().unwrap().target, "/orders/3?q=1");
    // Strip, then the version's rewrite.
    assert_eq!(origin_of(&c.get("/v2/orders/3")), "v2");
    assert_eq!(s.v2.last_request().unwrap().target, "/api/orders/3");
    let body = problem(&c.get("/v7/orders"), 404);
    assert_eq!(body["title"], "Not Found");
    // No version and no default: 404 too.
    problem(&c.get("/orders"), 404);
    assert_eq!(origin_of(&c.get("/v1/")), "v1");
}

#[test]
fn accept_source() {
    let s = start(
        "ver-accept",
        r#"{ accept = "application/vnd.acme" }"#,
        Some("1"),
    );
    let mut c = Client::connect(s.proxy.addr("public"));
    let r = c.request(&Request::get("/orders").header(
        "accept",
        "application/vnd.acme.v1+json;q=0.2, application/vnd.acme.v2+json",
    ));
    assert_eq!(origin_of(&r), "v2");
    let r = c.request(&Request::get("/orders").header("accept", "application/json; version=1"));
    assert_eq!(origin_of(&r), "v1");
    let r = c.request(&Request::get("/orders").header("accept", "application/json"));
    assert_eq!(origin_of(&r), "v1");
    let r = c.request(&Request::get("/orders").header("accept", "application/vnd.acme.v3+json"));
    problem(&r, 400);
    assert_eq!(origin_of(&c.get("/orders")), "v1");
}

#[test]
fn query_source_deprecation_fields_and_metric() {
    let s = start("ver-query", r#"{ query = "v" }"#, None);
    let mut c = Client::connect(s.proxy.addr("public"));
    let r = c.get("/orders?v=1");
    assert_eq!(origin_of(&r), "v1");
    assert_eq!(r.header("deprecation"), Some("@1767225600"));
    assert_eq!(r.header("sunset"), Some("Wed, 30 Jun 2027 00:00:00 GMT"));
    assert_eq!(
        r.header("link"),
        Some("<https://docs.test/v1-sunset>; rel=\"deprecation\"")
    );
    let r = c.get("/orders?a=b&v=2");
    assert_eq!(origin_of(&r), "v2");
    assert_eq!(r.header("deprecation"), None);
    assert_eq!(r.header("sunset"), None);
    assert_eq!(origin_of(&c.get("/orders?v=2")), "v2");
    let body = problem(&c.get("/orders"), 400);
    assert!(body["detail"].as_str().unwrap().contains("no API version"));

    let text = Client::connect(s.proxy.admin_addr())
        .request(&Request::get("/metrics").host("admin"))
        .body_str();
    let sample = |version: &str| {
        let series = format!(
            "ringway_api_version_requests_total{{route=\"orders\",version=\"{version}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .trim()
            .to_string()
    };
    assert_eq!(sample("1"), "1");
    assert_eq!(sample("2"), "2");
}
