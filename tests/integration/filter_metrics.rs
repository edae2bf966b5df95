//! The filters' own counters in `/metrics`: API keys by id and result,
//! requests refused without a key, rate-limited and concurrency-limited
//! requests per route.

use std::net::SocketAddr;
use std::time::Duration;

use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{run_ringway, Proxy};

fn metric(admin: SocketAddr, series: &str) -> Option<f64> {
    let text = Client::connect(admin)
        .request(&Request::get("/metrics").host("admin"))
        .body_str();
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn filter_counters_are_exported() {
    let dir = TestDir::new("filter-metrics");
    let origin = Origin::start();
    let hash = run_ringway(
        &["apikey", "hash", "secret-key-1"],
        None,
        Duration::from_secs(10),
    );
    assert_eq!(hash.code(), Some(0), "{hash}");
    let hash = hash.stdout.trim().to_string();
    let filters = format!(
        r#"[{{ type = "api_key", keys = [{{ id = "team-a", sha256 = "{hash}" }}] }}, {{ type = "rate_limit", key = "route", rate = "1/m", burst = 2 }}]"#
    );
    let config = Config::new()
        .listener("public")
        .admin()
        .route(
            "public",
            "/",
            "app",
            &[("name", &q("api")), ("filters", &filters)],
        )
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let admin = proxy.admin_addr();
    let mut c = Client::connect(proxy.addr("public"));
    // No key: 401 (missing); a wrong key: 401 (unknown).
    assert_eq!(c.get("/").status(), 401);
    let r = c.request(&Request::get("/").header("x-api-key", "nope"));
    assert_eq!(r.status(), 401, "{r}");
    // Three with the key: two pass the limiter (burst 2), one gets 429.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = c.request(&Request::get("/").header("x-api-key", "secret-key-1"));
        statuses.push(r.status());
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        metric(
            admin,
            r#"ringway_api_key_requests_total{route="api",key="team-a",result="ok"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(
            admin,
            r#"ringway_api_key_refused_total{route="api",reason="missing"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            admin,
            r#"ringway_api_key_refused_total{route="api",reason="unknown"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(admin, r#"ringway_rate_limited_total{route="api"}"#),
        Some(1.0)
    );
    assert_eq!(origin.request_count(), 2);
}
