//! Split accuracy at volume: a weighted split over 10,000 requests from
//! `ringload` on two workers lands within ±2 percentage points of its
//! weights, and a sticky split (by header) assigns 10,000 distinct users
//! within ±2 points of its weights, each user always on the same side.

use std::collections::HashMap;

use ringway_tests::client::{Client, Request};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::load::Load;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

const N: usize = 10_000;

/// Share of `part` in `total`, percent.
fn pct(part: usize, total: usize) -> f64 {
    100.0 * part as f64 / total as f64
}

fn assert_within_2_points(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 2.0,
        "{what}: {got:.2} % where the weights say {want} % (±2 points)"
    );
}

#[test]
fn a_three_way_split_holds_its_weights_over_10000_requests() {
    let dir = TestDir::new("split-accuracy-load");
    let origins = [
        Origin::start_named("stable"),
        Origin::start_named("canary"),
        Origin::start_named("preview"),
    ];
    let split = r#"[{ cluster = "stable", weight = 80 }, { cluster = "canary", weight = 15 }, { cluster = "preview", weight = 5 }]"#;
    let cfg = Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/", "stable", &[("split", split)])
        .cluster("stable", &[origins[0].addr()], &[])
        .cluster("canary", &[origins[1].addr()], &[])
        .cluster("preview", &[origins[2].addr()], &[]);
    let mut cfg = cfg;
    cfg.routes[0].retain(|(k, _)| k != "cluster");
    let proxy = Proxy::start(&dir, &cfg);
    let url = format!("http://{}/shift", proxy.addr("public"));
    // 16 connections spread over both workers.
    let Some(load) = Load::count("split_accuracy", &url, 16, N as u64) else {
        return;
    };
    let sent = load.assert_no_failure();
    assert_eq!(sent, N as u64);
    let counts: Vec<usize> = origins.iter().map(Origin::request_count).collect();
    assert_eq!(counts.iter().sum::<usize>(), N, "{counts:?}");
    println!("10,000 requests split 80/15/5 on two workers: {counts:?}");
    for (o, (count, want)) in origins.iter().zip(counts.iter().zip([80.0, 15.0, 5.0])) {
        assert_within_2_points(o.name(), pct(*count, N), want);
    }
}

#[test]
fn a_sticky_split_assigns_10000_users_by_its_weights() {
    let dir = TestDir::new("split-accuracy-sticky");
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let split = r#"[{ cluster = "a", weight = 90 }, { cluster = "b", weight = 10 }]"#;
    let mut cfg = Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route(
            "public",
            "/",
            "a",
            &[("split", split), ("split_by", r#"{ header = "x-user" }"#)],
        )
        .cluster("a", &[a.addr()], &[])
        .cluster("b", &[b.addr()], &[]);
    cfg.routes[0].retain(|(k, _)| k != "cluster");
    let proxy = Proxy::start(&dir, &cfg);

    let side = |c: &mut Client, user: &str| -> String {
        let r = c.request(&Request::get("/u").header("x-user", user));
        assert_eq!(r.status(), 200, "{r}");
        r.header("x-origin").expect("x-origin").to_string()
    };
    let mut c = Client::connect(proxy.addr("public"));
    let mut assigned: HashMap<String, String> = HashMap::with_capacity(N);
    for i in 0..N {
        let user = format!("user-{i:05}");
        let s = side(&mut c, &user);
        assigned.insert(user, s);
    }
    let on_b = assigned.values().filter(|s| *s == "b").count();
    println!(
        "10,000 users split 90/10 by x-user: {} on a, {on_b} on b",
        N - on_b
    );
    assert_within_2_points("users on b", pct(on_b, N), 10.0);

    // Every user stays on its side: 1,000 of them again, on connections
    // that land on either worker.
    for chunk in 0..10 {
        let mut c = Client::connect(proxy.addr("public"));
        for i in (chunk * 1000..N).step_by(100).take(100) {
            let user = format!("user-{i:05}");
            assert_eq!(side(&mut c, &user), assigned[&user], "{user} moved");
        }
    }
}
