//! Traffic shifting through the admin API: `POST /routes/NAME/weights`
//! changes a split route's weights on every worker at once, `/config` shows
//! them, a reload of the file keeps them, and bad requests change nothing.

use std::net::SocketAddr;

use ringway_tests::client::{Client, Request, Response};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

fn admin(addr: SocketAddr, method: &str, path: &str) -> Response {
    Client::connect(addr).request(&Request::new(method, path))
}

/// Requests answered by each origin, out of `n` on fresh connections
/// (both workers see some).
fn shares(proxy: &Proxy, n: usize) -> (usize, usize) {
    let mut stable = 0;
    let mut canary = 0;
    for i in 0..n {
        let r = Client::connect(proxy.addr("public")).get(&format!("/w/{i}"));
        assert_eq!(r.status(), 200);
        match r.header("x-origin") {
            Some("stable") => stable += 1,
            Some("canary") => canary += 1,
            other => panic!("answered by {other:?}"),
        }
    }
    (stable, canary)
}

fn toml(stable: SocketAddr, canary: SocketAddr, w: (u32, u32)) -> String {
    format!(
        r#"
[runtime]
workers = 2

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
name = "checkout"
listener = "public"
path_prefix = "/"
split = [{{ cluster = "stable", weight = {} }}, {{ cluster = "canary", weight = {} }}]

[[cluster]]
name = "stable"
endpoints = ["{stable}"]

[[cluster]]
name = "canary"
endpoints = ["{canary}"]

[admin]
address = "127.0.0.1:0"
"#,
        w.0, w.1
    )
}

#[test]
fn weights_shift_traffic_on_every_worker_and_survive_a_reload() {
    let stable = Origin::start_named("stable");
    let canary = Origin::start_named("canary");
    let dir = TestDir::new("weights");
    let proxy = Proxy::start_toml(&dir, &toml(stable.addr(), canary.addr(), (100, 0)), &[]);
    let a = proxy.admin_addr();
    assert_eq!(shares(&proxy, 20), (20, 0));

    // All to the canary.
    let r = admin(a, "POST", "/routes/checkout/weights?stable=0&canary=100");
    assert_eq!(r.status(), 200, "{}", r.body_str());
    assert!(r.body_str().contains("every worker"), "{}", r.body_str());
    assert_eq!(shares(&proxy, 20), (0, 20));
    let config = admin(a, "GET", "/config").body_str();
    assert!(config.contains("canary"), "{config}");

    // 50/50: within a few requests of half, over both workers.
    let r = admin(a, "POST", "/routes/checkout/weights?stable=50&canary=50");
    assert_eq!(r.status(), 200, "{}", r.body_str());
    let (s, c) = shares(&proxy, 40);
    assert!((14..=26).contains(&s) && s + c == 40, "{s}/{c}");

    // A reload of the (unchanged, 100/0) file keeps the API's weights.
    let r = admin(a, "POST", "/routes/checkout/weights?canary=100&stable=0");
    assert_eq!(r.status(), 200);
    assert_eq!(admin(a, "POST", "/reload").status(), 200);
    assert_eq!(shares(&proxy, 10), (0, 10));

    // Per-split counters: every request so far, by cluster (20 + 0 + 10
    // to stable, 20 + 40 + 10 split; counted when the cluster is picked).
    let v: serde_json::Value = serde_json::from_slice(&admin(a, "GET", "/stats").body).unwrap();
    let split = &v["total"]["routes"][0]["split"];
    let (s_n, c_n) = (
        split["stable"].as_u64().unwrap(),
        split["canary"].as_u64().unwrap(),
    );
    assert_eq!(s_n + c_n, 20 + 20 + 40 + 10, "{split}");
    assert!(s_n >= 20 + 14 && c_n >= 20 + 10 + 14, "{split}");
    let m = admin(a, "GET", "/metrics").body_str();
    assert!(
        m.contains(&format!(
            "ringway_split_requests_total{{route=\"checkout\",cluster=\"canary\"}} {c_n}"
        )),
        "{m}"
    );

    // Refused, nothing changes.
    for (path, status, says) in [
        ("/routes/nope/weights?stable=1", 404, "no route"),
        ("/routes/checkout/weights?other=1", 400, "does not send to"),
        (
            "/routes/checkout/weights?stable=0&canary=0",
            400,
            "add up to 0",
        ),
        ("/routes/checkout/weights?stable=x", 400, "whole number"),
        ("/routes/checkout/weights?stable", 400, "CLUSTER=WEIGHT"),
        ("/routes/checkout/weights", 400, "usage"),
    ] {
        let r = admin(a, "POST", path);
        assert_eq!(r.status(), status, "{path}: {}", r.body_str());
        assert!(r.body_str().contains(says), "{path}: {}", r.body_str());
    }
    assert_eq!(
        admin(a, "GET", "/routes/checkout/weights?stable=1").status(),
        405
    );
    assert_eq!(shares(&proxy, 10), (0, 10));
}
