//! The files in `examples/`: every one passes `ringway check`, and the API
//! gateway example does what its comments say when run against real
//! origins (its addresses moved to port 0 and the test origins).

use std::time::Duration;

use ringway_tests::client::{Client, Request};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{run_ringway, Proxy};

fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("examples")
}

#[test]
fn every_example_passes_check() {
    let mut n = 0;
    for entry in std::fs::read_dir(examples_dir()).expect("examples/") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = run_ringway(
            &["check", "-c", path.to_str().unwrap()],
            None,
            Duration::from_secs(10),
        );
        assert_eq!(out.code(), Some(0), "{}: {out}", path.display());
        n += 1;
    }
    assert!(n >= 5, "only {n} example files found");
}

#[test]
fn api_gateway_example_works_end_to_end() {
    let dir = TestDir::new("example-gateway");
    let text = std::fs::read_to_string(examples_dir().join("api-gateway.toml")).unwrap();
    let names = [
        ("127.0.0.1:9101", "orders-v1"),
        ("127.0.0.1:9102", "orders-v2a"),
        ("127.0.0.1:9103", "orders-v2b"),
        ("127.0.0.1:9201", "catalog-a"),
        ("127.0.0.1:9202", "catalog-b"),
        ("127.0.0.1:9301", "canary"),
    ];
    let origins: Vec<Origin> = names.iter().map(|(_, n)| Origin::start_named(n)).collect();
    let mut toml = text
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0");
    for ((addr, _), o) in names.iter().zip(&origins) {
        toml = toml.replace(addr, &o.addr().to_string());
    }
    let proxy = Proxy::start_toml(&dir, &toml, &[]);
    let addr = proxy.addr("public");
    let key = "demo-key-change-me";
    let mut c = Client::connect(addr);

    let r = c.request(&Request::get("/healthz").host("anything.test"));
    assert_eq!((r.status(), r.body_str().as_str()), (200, "ok\n"), "{r}");

    let r = c.request(&Request::get("/old/page?x=1").host("legacy.example.com"));
    assert_eq!(r.status(), 301, "{r}");
    assert_eq!(
        r.header("location"),
        Some("http://api.example.com/old/page?x=1")
    );

    // No API key: 401, nothing forwarded.
    let r = c.request(&Request::get("/orders/1").host("api.example.com"));
    assert_eq!(r.status(), 401, "{r}");
    // Default version 2 (peak-EWMA over two instances), key id forwarded,
    // the key itself not.
    let r = c.request(
        &Request::get("/orders/1")
            .host("api.example.com")
            .header("x-api-key", key),
    );
    assert_eq!(r.status(), 200, "{r}");
    assert!(
        matches!(r.header("x-origin"), Some("orders-v2a" | "orders-v2b")),
        "{r}"
    );
    assert!(r.header("x-request-id").is_some(), "{r}");
    let seen = origins
        .iter()
        .find_map(|o| {
            o.last_request()
                .filter(|_| o.name().starts_with("orders-v2"))
        })
        .unwrap();
    assert_eq!(seen.header("x-api-key-id"), Some("demo"));
    assert_eq!(seen.header("x-api-key"), None);
    // Version 1: deprecated.
    let r = c.request(
        &Request::get("/orders/1")
            .host("api.example.com")
            .header("x-api-key", key)
            .header("api-version", "1"),
    );
    assert_eq!(r.header("x-origin"), Some("orders-v1"), "{r}");
    assert!(r.header("deprecation").is_some(), "{r}");
    assert!(r.header("sunset").is_some(), "{r}");
    // An unknown version: problem+json 400.
    let r = c.request(
        &Request::get("/orders/1")
            .host("api.example.com")
            .header("x-api-key", key)
            .header("api-version", "9"),
    );
    assert_eq!(r.status(), 400, "{r}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));

    // Catalog: sticky per user, 95/5 split.
    let mut first_by_user = Vec::new();
    for u in 0..20 {
        let req = Request::get("/catalog/items")
            .host("api.example.com")
            .header("x-user", &format!("user-{u}"));
        // The split is sticky per cluster; inside `catalog-stable` the
        // endpoints take turns by weight.
        let cluster = |o: &str| match o {
            "catalog-a" | "catalog-b" => "stable",
            "canary" => "canary",
            other => panic!("unexpected origin {other}"),
        };
        let a = cluster(c.request(&req).header("x-origin").unwrap());
        let b = cluster(c.request(&req).header("x-origin").unwrap());
        assert_eq!(a, b, "user-{u} moved between clusters");
        first_by_user.push(a);
    }
    assert!(first_by_user.contains(&"stable"));

    // The dashboard: three legs on one call. The echo origins answer
    // empty bodies (not JSON): orders is a string, so the leg reading
    // `orders.0.id` has no value and fails; policy partial names it.
    let dash = Request::get("/dashboard/42?limit=3").host("api.example.com");
    assert_eq!(c.request(&dash).status(), 401, "no key, no legs");
    let r = c.request(&dash.header("x-api-key", key));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-ringway-partial"), Some("latest"), "{r}");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["orders"], "", "{v}");
    assert_eq!(v["recommended"], "", "{v}");
    assert!(v["latest"].is_null(), "{v}");
    let targets: Vec<String> = origins
        .iter()
        .flat_map(|o| o.requests())
        .map(|r| r.target)
        .collect();
    assert!(
        targets.iter().any(|t| t == "/orders?user=42"),
        "{targets:?}"
    );
    assert!(
        targets
            .iter()
            .any(|t| t == "/catalog/recommended?user=42&limit=3"),
        "{targets:?}"
    );

    // Anything else on the API host: 404 from ringway.
    let r = c.request(&Request::get("/nope").host("api.example.com"));
    assert_eq!(
        (r.status(), r.body_str().as_str()),
        (404, "no such API\n"),
        "{r}"
    );
}
