//! Route matching (host exact/wildcard, path prefix, first match), 404,
//! round robin over endpoints.

use std::time::Duration;

use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

#[test]
fn no_matching_route_gets_404() {
    let dir = TestDir::new("404");
    let origin = Origin::start();
    let config = Config::new()
        .listener("public")
        .route("public", "/", "app", &[("host", &q("api.test"))])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let mut c = Client::connect(proxy.addr("public"));
    let r = c.request(&Request::get("/x").host("other.test"));
    assert_eq!(r.status(), 404, "{r}");
    assert!(
        r.has_token("connection", "close"),
        "error responses close: {r}"
    );
    c.assert_closed(Duration::from_secs(3), "after 404");
    assert_eq!(origin.request_count(), 0);

    let r = Client::connect(proxy.addr("public")).request(&Request::get("/x").host("api.test"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-echo-host"), Some("api.test"));
}

#[test]
fn host_and_path_prefix_first_match() {
    let dir = TestDir::new("routes");
    let a = Origin::start_named("a");
    let b = Origin::start_named("b");
    let c = Origin::start_named("c");
    let d = Origin::start_named("d");
    let config = Config::new()
        .listener("public")
        // First match wins: /api catches /api/v2 before the more specific route.
        .route("public", "/api", "a", &[("host", &q("api.test"))])
        .route("public", "/api/v2", "c", &[("host", &q("api.test"))])
        .route("public", "/", "b", &[("host", &q("*.wild.test"))])
        .route("public", "/static", "c", &[])
        .route("public", "/", "d", &[])
        .cluster("a", &[a.addr()], &[])
        .cluster("b", &[b.addr()], &[])
        .cluster("c", &[c.addr()], &[])
        .cluster("d", &[d.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let addr = proxy.addr("public");
    let table = [
        ("api.test", "/api/users", "a"),
        ("api.test", "/api/v2/users", "a"),
        ("api.test", "/other", "d"),
        ("x.wild.test", "/api/users", "b"),
        ("wild.test", "/static/x", "c"),
        ("else.test", "/static/app.js", "c"),
        ("else.test", "/", "d"),
    ];
    let mut failures = Vec::new();
    let mut client = Client::connect(addr);
    for (host, path, want) in table {
        let r = client.request(&Request::get(path).host(host));
        let got = r.header("x-origin").unwrap_or("none");
        if r.status() != 200 || got != want {
            failures.push(format!(
                "Host: {host}, GET {path}: want origin {want}, got {} from {got}",
                r.status()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "routing mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn round_robin_over_endpoints() {
    let dir = TestDir::new("round-robin");
    let a = Origin::start_named("a");
    let b = Origin::start_named("b");
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[a.addr(), b.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let mut c = Client::connect(proxy.addr("public"));
    let order: Vec<String> = (0..10)
        .map(|i| {
            let r = c.get(&format!("/rr/{i}"));
            assert_eq!(r.status(), 200, "{r}");
            r.header("x-origin").unwrap_or("?").to_string()
        })
        .collect();
    assert_eq!(a.request_count(), 5, "order: {order:?}");
    assert_eq!(b.request_count(), 5, "order: {order:?}");
    assert!(
        order.windows(2).all(|w| w[0] != w[1]),
        "not alternating: {order:?}"
    );
}

#[test]
fn routes_are_scoped_to_their_listener() {
    let dir = TestDir::new("listener-routes");
    let a = Origin::start_named("a");
    let b = Origin::start_named("b");
    let config = Config::new()
        .listener("one")
        .listener("two")
        .route("one", "/", "a", &[])
        .cluster("a", &[a.addr()], &[])
        .cluster("b", &[b.addr()], &[]);
    // A route without `listener` applies to every listener.
    let mut toml = config.to_toml();
    toml.push_str("[[route]]\npath_prefix = \"/\"\ncluster = \"b\"\n");
    let proxy = Proxy::start_toml(&dir, &toml, &[]);
    let r = Client::connect(proxy.addr("one")).get("/x");
    assert_eq!(r.header("x-origin"), Some("a"), "listener one: {r}");
    let r = Client::connect(proxy.addr("two")).get("/x");
    assert_eq!(r.header("x-origin"), Some("b"), "listener two: {r}");
}
