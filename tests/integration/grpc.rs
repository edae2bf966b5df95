//! gRPC through ringway, both sides real: tonic's `grpc.health.v1` server
//! behind a `protocol = "h2"` cluster, tonic's client in front of an h2
//! listener. Unary calls, a status carried in a trailers-only answer, and a
//! server stream whose messages arrive one by one as the server sends them.
//! (tonic's tokio runtime runs in this test process: it is a peer.)

use std::net::SocketAddr;
use std::time::Duration;

use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::Proxy;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::HealthReporter;

struct GrpcServer {
    addr: SocketAddr,
    reporter: HealthReporter,
    rt: tokio::runtime::Runtime,
}

fn grpc_server() -> GrpcServer {
    grpc_server_with(&["orders"])
}

/// A tokio runtime with `threads` workers, and a listener on 127.0.0.1
/// (port 0) made in it, for origins written with tokio crates (tonic, h2).
pub(crate) fn tokio_listener(
    threads: usize,
) -> (tokio::runtime::Runtime, tokio::net::TcpListener, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (rt, listener, addr)
}

/// A health server that knows `services` (others: NOT_FOUND).
fn grpc_server_with(services: &[&str]) -> GrpcServer {
    let (rt, listener, addr) = tokio_listener(2);
    let (reporter, service) = tonic_health::server::health_reporter();
    for name in services {
        rt.block_on(reporter.set_service_status(*name, tonic_health::ServingStatus::Serving));
    }
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    GrpcServer { addr, reporter, rt }
}

fn check(name: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: name.to_string(),
    }
}

#[test]
fn grpc_unary_status_and_streaming_calls_cross_ringway() {
    let server = grpc_server();
    let dir = TestDir::new("grpc");
    let cfg = Config::new()
        .section("access_log", "path", &q("access.log"))
        .section("access_log", "flush_interval", &q("50ms"))
        .listener_with("grpc", &[("protocols", r#"["h2"]"#)])
        .route("grpc", "/", "health", &[("timeout", &q("10s"))])
        .cluster("health", &[server.addr], &[("protocol", r#""h2""#)])
        .admin();
    let proxy = Proxy::start(&dir, &cfg);
    let url = format!("http://{}", proxy.addr("grpc"));
    let reporter = server.reporter.clone();
    server.rt.block_on(async move {
        let channel = tonic::transport::Endpoint::from_shared(url)
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect through ringway");
        let mut client = HealthClient::new(channel);

        // Unary: the answer and its OK status (in the trailers).
        let r = client.check(check("orders")).await.expect("unary call");
        assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
        let r = client.check(check("")).await.expect("unary call");
        assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);

        // A status without a message: NOT_FOUND in a trailers-only answer.
        let e = client
            .check(check("nope"))
            .await
            .expect_err("unknown service");
        assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");

        // Server streaming: the first message at once, the next when the
        // server's state changes (nothing buffered in between).
        let mut stream = client
            .watch(check("orders"))
            .await
            .expect("watch call")
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("first message in time")
            .expect("stream ok")
            .expect("a message");
        assert_eq!(first.status, ServingStatus::Serving as i32);
        reporter
            .set_service_status("orders", tonic_health::ServingStatus::NotServing)
            .await;
        let second = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("second message in time")
            .expect("stream ok")
            .expect("a message");
        assert_eq!(second.status, ServingStatus::NotServing as i32);

        // Many concurrent calls on one client connection.
        let mut calls = Vec::new();
        for _ in 0..50 {
            let mut c = client.clone();
            calls.push(tokio::spawn(async move { c.check(check("")).await }));
        }
        for call in calls {
            let r = call.await.unwrap().expect("concurrent call");
            assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
        }
    });

    // grpc-status counted per route (52 OK, from the trailers; 1 NOT_FOUND,
    // from a trailers-only head) and in the access log.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let grpc = loop {
        let stats = ringway_tests::client::Client::connect(proxy.admin_addr()).get("/stats");
        let v: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
        let g = v["total"]["routes"][0]["grpc"].clone();
        if g["0"] == 52 || std::time::Instant::now() > deadline {
            break g;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(grpc["0"], 52, "{grpc}");
    assert_eq!(grpc["5"], 1, "{grpc}");
    let metrics = ringway_tests::client::Client::connect(proxy.admin_addr()).get("/metrics");
    let text = metrics.body_str();
    assert!(
        text.contains(r#"ringway_grpc_responses_total{route="route0",grpc_status="5"} 1"#),
        "{text}"
    );
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default();
    assert!(
        log.lines().any(|l| l.contains(r#""grpc_status":5"#)),
        "{log}"
    );
}

/// `retries = { grpc_statuses = [...] }`: a call answered with a listed
/// status in a trailers-only answer goes to another endpoint. One endpoint
/// does not know the service (NOT_FOUND), the other does: with the retry
/// every call succeeds; without it, the calls the first endpoint gets fail.
/// (The request body, a unary call's message, is in hand, so it can be
/// sent again.)
#[test]
fn grpc_statuses_are_retried_on_another_endpoint() {
    let stranger = grpc_server_with(&[]);
    let knows = grpc_server_with(&["orders"]);
    let dir = TestDir::new("grpc-retry");
    let cfg = Config::new()
        .runtime("workers", "1")
        .listener_with("retrying", &[("protocols", r#"["h2"]"#)])
        .listener_with("plain", &[("protocols", r#"["h2"]"#)])
        .route(
            "retrying",
            "/",
            "health",
            &[(
                "retries",
                r#"{ attempts = 2, grpc_statuses = ["not-found"], backoff = "1ms", max_backoff = "2ms" }"#,
            )],
        )
        .route("plain", "/", "health", &[])
        .cluster(
            "health",
            &[stranger.addr, knows.addr],
            &[
                ("protocol", r#""h2""#),
                // Enough budget for every call's retry (the default
                // budget, rightly, refuses a retry storm).
                ("retry_budget", "{ ratio = 1.0, min_per_second = 100 }"),
            ],
        )
        .admin();
    let proxy = Proxy::start(&dir, &cfg);
    let calls = |listener: &str| {
        let url = format!("http://{}", proxy.addr(listener));
        knows.rt.block_on(async move {
            let channel = tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .connect()
                .await
                .expect("connect through ringway");
            let mut client = HealthClient::new(channel);
            let mut ok = 0;
            for _ in 0..20 {
                if client.check(check("orders")).await.is_ok() {
                    ok += 1;
                }
            }
            ok
        })
    };
    let with_retries = calls("retrying");
    let without = calls("plain");
    let stats = ringway_tests::client::Client::connect(proxy.admin_addr()).get("/stats");
    let v: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    println!(
        "20 calls: {with_retries} succeeded with retries, {without} without; cluster: {}",
        v["total"]["clusters"][0]
    );
    assert_eq!(with_retries, 20);
    assert!(without < 20, "round robin sends some calls to the stranger");
}

/// `health_check = { grpc_service = "orders" }`: `grpc.health.v1` checks
/// over HTTP/2 take an endpoint whose service is NOT_SERVING out of
/// rotation and bring it back when it serves again.
#[test]
fn grpc_health_checks_follow_the_serving_status() {
    let a = grpc_server_with(&["orders"]);
    let b = grpc_server_with(&["orders"]);
    let dir = TestDir::new("grpc-health");
    let cfg = Config::new()
        .runtime("workers", "1")
        .listener_with("grpc", &[("protocols", r#"["h2"]"#)])
        .route("grpc", "/", "health", &[])
        .cluster(
            "health",
            &[a.addr, b.addr],
            &[
                ("protocol", r#""h2""#),
                (
                    "health_check",
                    r#"{ grpc_service = "orders", interval = "100ms", jitter = "0s", healthy_threshold = 1, unhealthy_threshold = 1, timeout = "1s" }"#,
                ),
            ],
        );
    let proxy = Proxy::start(&dir, &cfg);
    let url = format!("http://{}", proxy.addr("grpc"));
    // Statuses seen by 20 calls through ringway.
    let statuses = |rt: &tokio::runtime::Runtime| {
        let url = url.clone();
        rt.block_on(async move {
            let channel = tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .connect()
                .await
                .expect("connect through ringway");
            let mut client = HealthClient::new(channel);
            let mut seen = Vec::new();
            for _ in 0..20 {
                let r = client.check(check("orders")).await.expect("call");
                seen.push(r.into_inner().status);
            }
            seen
        })
    };
    let serving = ServingStatus::Serving as i32;
    // Both serve: both answer.
    std::thread::sleep(Duration::from_millis(500));
    assert!(statuses(&a.rt).iter().all(|s| *s == serving));
    // a stops serving: after a check or two, only b answers.
    a.rt.block_on(
        a.reporter
            .set_service_status("orders", tonic_health::ServingStatus::NotServing),
    );
    std::thread::sleep(Duration::from_millis(800));
    let seen = statuses(&a.rt);
    assert!(
        seen.iter().all(|s| *s == serving),
        "a NOT_SERVING endpoint still got calls: {seen:?}"
    );
    // a serves again and b stops: a takes every call.
    a.rt.block_on(
        a.reporter
            .set_service_status("orders", tonic_health::ServingStatus::Serving),
    );
    b.rt.block_on(
        b.reporter
            .set_service_status("orders", tonic_health::ServingStatus::NotServing),
    );
    std::thread::sleep(Duration::from_millis(800));
    let seen = statuses(&a.rt);
    assert!(
        seen.iter().all(|s| *s == serving),
        "after the swap: {seen:?}"
    );
}
