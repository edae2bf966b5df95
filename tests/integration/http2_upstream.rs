//! HTTP/2 to upstreams (`protocol = "h2"` on a cluster): a client speaks
//! HTTP/1.1 to ringway "edge", whose cluster speaks HTTP/2 to ringway
//! "inner" (an h2-only listener, cleartext or TLS with ALPN), in front of
//! the HTTP/1.1 test origin. Everything the origin does must come back
//! through both translations unchanged.

use std::time::{Duration, Instant};

use ringway_tests::certs::Ca;
use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::load::Load;
use ringway_tests::origin::{chunked_body, Origin};
use ringway_tests::pattern::Pattern;
use ringway_tests::proxy::{check_config, Proxy};

struct Chain {
    origin: Origin,
    inner: Proxy,
    edge: Proxy,
    dirs: (TestDir, TestDir),
}

fn chain(name: &str, tls: bool, route_extra: &[(&str, &str)]) -> Chain {
    chain_with(name, tls, route_extra, None)
}

/// As [`chain`], with the inner listener's `[listener.http2]` table.
fn chain_with(
    name: &str,
    tls: bool,
    route_extra: &[(&str, &str)],
    inner_http2: Option<&str>,
) -> Chain {
    chain_custom(name, tls, route_extra, inner_http2, &[], |c| c)
}

/// As [`chain_with`], with more keys on the edge's cluster and a last say
/// on the edge's configuration.
fn chain_custom(
    name: &str,
    tls: bool,
    route_extra: &[(&str, &str)],
    inner_http2: Option<&str>,
    cluster_extra: &[(&str, &str)],
    edge_more: impl FnOnce(Config) -> Config,
) -> Chain {
    let inner_dir = TestDir::new(&format!("{name}-inner"));
    let edge_dir = TestDir::new(&format!("{name}-edge"));
    let origin = Origin::start_named("app");
    let mut listener = vec![("protocols", r#"["h2"]"#)];
    let ca = Ca::new("h2 upstream CA");
    let tls_conf = r#"{ cert = "srv.pem", key = "srv.key" }"#;
    if tls {
        ca.issue(&["inner.test"]).write(inner_dir.path(), "srv");
        listener.push(("tls", tls_conf));
    }
    if let Some(h) = inner_http2 {
        listener.push(("http2", h));
    }
    let inner_cfg = Config::new()
        .listener_with("h2in", &listener)
        .route("h2in", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[])
        .admin();
    let inner = Proxy::start(&inner_dir, &inner_cfg);
    let ca_path = ca.write_pem(edge_dir.path(), "ca.pem");
    let upstream_tls = format!(
        r#"{{ ca = "{}", server_name = "inner.test" }}"#,
        ca_path.display()
    );
    let mut cluster = vec![("protocol", r#""h2""#)];
    if tls {
        cluster.push(("tls", upstream_tls.as_str()));
    }
    cluster.extend_from_slice(cluster_extra);
    let edge_cfg = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "inner", route_extra)
        .cluster("inner", &[inner.addr("h2in")], &cluster)
        .admin();
    let edge = Proxy::start(&edge_dir, &edge_more(edge_cfg));
    Chain {
        origin,
        inner,
        edge,
        dirs: (inner_dir, edge_dir),
    }
}

fn stats(proxy: &Proxy) -> serde_json::Value {
    serde_json::from_slice(&Client::connect(proxy.admin_addr()).get("/stats").body).unwrap()
}

fn exercise(c: &Chain) {
    let mut client = Client::connect(c.edge.addr("public"));
    // GET: the origin sees the path and the Host the client sent.
    let r = client.request(&Request::get("/a/b?x=1").host("svc.test"));
    assert_eq!(
        (r.status(), r.header("x-origin")),
        (200, Some("app")),
        "{r}"
    );
    let rec = c.origin.last_request().unwrap();
    assert!(
        rec.raw_str().starts_with("GET /a/b?x=1 HTTP/1.1\r\n"),
        "{}",
        rec.raw_str()
    );
    assert_eq!(rec.header("host"), Some("svc.test"));

    // Bodies: known length and chunked, echoed back.
    let body = Pattern::new().vec(200_000);
    let r = client.request(&Request::new("POST", "/echo").body(body.clone()));
    assert_eq!((r.status(), r.body.len()), (200, body.len()));
    assert_eq!(r.body, body);
    let r =
        client.request(&Request::new("POST", "/echo-chunked").chunked(&body, &[1000, 7, 50_000]));
    assert_eq!(r.status(), 200);
    assert_eq!(r.body, body);

    // Responses: chunked, large, trailers, HEAD, 204.
    let r = client.get("/chunked");
    assert_eq!(r.body, chunked_body());
    let r = client.get("/bytes/3000000");
    assert_eq!(r.body, Pattern::new().vec(3_000_000));
    let r = client.get("/trailers");
    assert_eq!(r.body, b"hello");
    let trailers = &r.chunked.as_ref().expect("a chunked response").trailers;
    assert!(
        trailers.iter().any(|(n, v)| n == "grpc-status" && v == "0"),
        "trailers through HTTP/2 and back: {trailers:?}"
    );
    let r = client.request(&Request::new("HEAD", "/bytes/10"));
    assert_eq!((r.status(), r.header("content-length")), (200, Some("10")));
    assert!(r.body.is_empty());
    assert_eq!(client.get("/status/204").status(), 204);
}

#[test]
fn requests_cross_an_http2_upstream_and_share_its_connection() {
    let c = chain("h2up-clear", false, &[]);
    exercise(&c);
    // Under load from 16 client connections, the edge keeps one HTTP/2
    // connection to the inner proxy (its streams are multiplexed).
    let url = format!("http://{}/load", c.edge.addr("public"));
    if let Some(load) = Load::count("h2 upstream", &url, 16, 3000) {
        assert_eq!(load.assert_no_failure(), 3000);
    }
    let s = stats(&c.edge);
    let ep = &s["total"]["endpoints"][0];
    println!("edge → inner: {ep}");
    assert_eq!(ep["connections_new"], 1, "{ep}");
}

#[test]
fn tls_upstreams_are_asked_for_h2_by_alpn() {
    let c = chain("h2up-tls", true, &[]);
    exercise(&c);
}

#[test]
fn a_slow_stream_times_out_alone_and_a_dead_upstream_is_a_502() {
    let c = chain("h2up-timeout", false, &[("timeout", &q("500ms"))]);
    let edge = c.edge.addr("public");
    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        let r = Client::connect(edge).get("/delay/3000");
        (r.status(), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    // Meanwhile, on the same upstream connection, other streams work.
    let mut client = Client::connect(edge);
    for _ in 0..5 {
        assert_eq!(client.get("/fast").status(), 200);
    }
    let (status, took) = slow.join().unwrap();
    assert_eq!(status, 504);
    assert!(took < Duration::from_secs(2), "504 after {took:?}");
    assert_eq!(client.get("/after").status(), 200);

    // Nothing listening: 502, and the edge keeps serving.
    let dir = TestDir::new("h2up-dead");
    let dead: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let cfg = Config::new()
        .listener("public")
        .route("public", "/", "dead", &[])
        .cluster("dead", &[dead], &[("protocol", r#""h2""#)]);
    let p = Proxy::start(&dir, &cfg);
    for path in ["/x", "/y"] {
        assert_eq!(Client::connect(p.addr("public")).get(path).status(), 502);
    }
}

#[test]
fn cluster_protocol_is_checked() {
    let dir = TestDir::new("h2up-check");
    let cfg = "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\n\n[[route]]\nlistener = \"a\"\ncluster = \"c\"\n\n[[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9\"]\nprotocol = \"h3\"\n\n[[cluster]]\nname = \"d\"\nendpoints = [\"127.0.0.1:9\"]\nprotocol = \"h2\"\nsend_proxy_protocol = \"v2\"\n";
    let out = check_config(&dir, "bad.toml", cfg);
    let all = out.all();
    assert_ne!(out.code(), Some(0), "{all}");
    assert!(all.contains("cluster[0].protocol"), "{all}");
    assert!(all.contains("unknown protocol \"h3\""), "{all}");
    assert!(all.contains("cluster[1].send_proxy_protocol"), "{all}");
}

#[test]
fn mirror_copies_travel_over_http2_too() {
    let c = chain(
        "h2up-mirror",
        false,
        &[("mirror", r#"{ cluster = "inner" }"#)],
    );
    let mut client = Client::connect(c.edge.addr("public"));
    for i in 0..5 {
        assert_eq!(client.get(&format!("/m/{i}")).status(), 200);
    }
    // Each request reached the origin twice: itself and its copy.
    assert!(
        c.origin
            .wait_until(Duration::from_secs(5), |o| o.request_count() >= 10),
        "{} requests at the origin",
        c.origin.request_count()
    );
}

/// The inner proxy allows 2 streams per connection: 8 requests at once
/// make the edge open more connections instead of queueing, and all 8 are
/// answered.
#[test]
fn a_full_connection_makes_the_edge_open_another() {
    let c = chain_with(
        "h2up-full",
        false,
        &[],
        Some("{ max_concurrent_streams = 2 }"),
    );
    let edge = c.edge.addr("public");
    // One request first: the edge learns the inner proxy's limit.
    assert_eq!(Client::connect(edge).get("/first").status(), 200);
    let t = Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                Client::connect(edge)
                    .get(&format!("/delay/500?{i}"))
                    .status()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.join().unwrap(), 200);
    }
    let took = t.elapsed();
    let s = stats(&c.edge);
    let ep = &s["total"]["endpoints"][0];
    println!("8 concurrent requests, 2 streams per connection: {took:?}, {ep}");
    let opened = ep["connections_new"].as_u64().unwrap();
    assert!(
        opened >= 4,
        "{opened} connections for 8 streams of 2 each: {ep}"
    );
    // The new connections start from the limit the first one learned, so
    // none sends a stream past it before the peer's SETTINGS arrive.
    assert_eq!(ep["streams_refused"], 0, "{ep}");
    assert!(
        took < Duration::from_millis(1400),
        "8 x 500 ms with room for all at once took {took:?}"
    );
}

/// An HTTP/2 origin (the `h2` crate on tokio) that refuses the first
/// `refuse` streams it gets with REFUSED_STREAM, unprocessed, and answers
/// the others `200 ok`. Counts the streams it got.
struct RefusingOrigin {
    addr: std::net::SocketAddr,
    streams: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

fn refusing_origin(refuse: usize) -> RefusingOrigin {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (rt, listener, addr) = crate::grpc::tokio_listener(1);
    let streams = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = streams.clone();
    rt.spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = conn.accept().await {
                    if counted.fetch_add(1, Ordering::SeqCst) < refuse {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    let head = http::Response::builder()
                        .status(200)
                        .header("content-length", "2")
                        .body(())
                        .unwrap();
                    if let Ok(mut body) = respond.send_response(head, false) {
                        let _ = body.send_data(bytes::Bytes::from_static(b"ok"), true);
                    }
                }
            });
        }
    });
    RefusingOrigin {
        addr,
        streams,
        _rt: rt,
    }
}

/// A stream the HTTP/2 upstream refuses unprocessed (REFUSED_STREAM, RFC
/// 9113 §8.7) is sent again, at most 3 times: three refusals in a row still
/// end in the origin's answer; an origin that refuses every stream gets
/// four and the client a 502. Each refusal is counted.
#[test]
fn refused_streams_are_sent_again_at_most_three_times() {
    use std::sync::atomic::Ordering;
    let three = refusing_origin(3);
    let always = refusing_origin(usize::MAX);
    let dir = TestDir::new("h2up-refused");
    let h2 = [("protocol", r#""h2""#)];
    let cfg = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/always", "always", &[])
        .route("public", "/", "three", &[])
        .cluster("three", &[three.addr], &h2)
        .cluster("always", &[always.addr], &h2)
        .admin();
    let proxy = Proxy::start(&dir, &cfg);
    let mut client = Client::connect(proxy.addr("public"));

    let r = client.get("/after-three-refusals");
    assert_eq!((r.status(), r.body_str().as_str()), (200, "ok"), "{r}");
    assert_eq!(three.streams.load(Ordering::SeqCst), 4);

    let r = client.get("/always");
    assert_eq!(r.status(), 502, "{r}");
    assert_eq!(
        always.streams.load(Ordering::SeqCst),
        4,
        "sent once and again three times"
    );

    let s = stats(&proxy);
    let refused = |cluster: &str| {
        s["total"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["cluster"] == cluster)
            .unwrap()["streams_refused"]
            .as_u64()
            .unwrap()
    };
    assert_eq!((refused("three"), refused("always")), (3, 4), "{s}");
    let metrics =
        String::from_utf8(Client::connect(proxy.admin_addr()).get("/metrics").body).unwrap();
    assert!(
        metrics.contains("ringway_upstream_streams_refused_total{cluster=\"always\""),
        "{metrics}"
    );
    // The proxy goes on serving (the 502 closed that client connection).
    let again = Client::connect(proxy.addr("public")).get("/again");
    assert_eq!(again.status(), 200);
}

/// The inner proxy's HTTP/2 listener: connections open and accepted so far
/// (each one an upstream connection of the edge).
fn inner_connections(c: &Chain) -> (u64, u64) {
    let s = stats(&c.inner);
    let l = &s["total"]["listeners"][0];
    (
        l["connections_active"].as_u64().unwrap(),
        l["connections_total"].as_u64().unwrap(),
    )
}

/// Polls `f` every 50 ms until it holds or `timeout` passes; whether it held.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP/2 upstream connection with no stream for the cluster's
/// `idle_timeout` is closed and leaves the pool; the next request opens a
/// new one.
#[test]
fn an_idle_http2_upstream_connection_closes_after_the_idle_timeout() {
    let c = chain_custom(
        "h2up-idle",
        false,
        &[],
        None,
        &[("idle_timeout", &q("1s"))],
        |c| c,
    );
    let edge = c.edge.addr("public");
    let mut client = Client::connect(edge);
    // Streams keep it in use past the idle timeout.
    for _ in 0..4 {
        assert_eq!(client.get("/delay/400").status(), 200);
    }
    assert_eq!(inner_connections(&c), (1, 1), "one connection, kept in use");
    let idle_from = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(inner_connections(&c).0, 1, "closed before its idle timeout");
    assert!(
        eventually(Duration::from_secs(5), || inner_connections(&c).0 == 0),
        "still open {:?} after its last stream (idle_timeout 1s)",
        idle_from.elapsed()
    );
    let closed_after = idle_from.elapsed();
    println!("closed {closed_after:?} after its last stream");
    assert!(
        closed_after >= Duration::from_millis(900),
        "{closed_after:?}"
    );
    // The pool forgot it: the next request opens another.
    assert_eq!(client.get("/again").status(), 200);
    assert_eq!(inner_connections(&c), (1, 2));
}

/// `circuit_breakers.max_connections` counts HTTP/2 connections: with the
/// inner proxy allowing one stream per connection and the edge two
/// connections, a third request waits for a stream to end (up to
/// `connect_timeout`), and past that wait gets the HTTP/1.1 path's answer,
/// 503 `x-ringway-overflow: max_connections`.
#[test]
fn max_connections_counts_http2_upstream_connections() {
    let c = chain_custom(
        "h2up-maxconn",
        false,
        &[("timeout", &q("10s"))],
        Some("{ max_concurrent_streams = 1 }"),
        &[
            ("circuit_breakers", "{ max_connections = 2 }"),
            ("connect_timeout", &q("1500ms")),
        ],
        |c| c,
    );
    let edge = c.edge.addr("public");
    // One request first: the edge learns the inner proxy's limit.
    assert_eq!(Client::connect(edge).get("/first").status(), 200);
    let run = |paths: Vec<String>| {
        let calls: Vec<_> = paths
            .into_iter()
            .map(|p| {
                std::thread::spawn(move || {
                    let t = Instant::now();
                    let r = Client::connect(edge).get(&p);
                    let overflow = r.header("x-ringway-overflow").map(str::to_string);
                    (r.status(), overflow, t.elapsed())
                })
            })
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    };
    // Three at once: the third waits for one of the first two to end.
    let got = run((0..3).map(|i| format!("/delay/500?w{i}")).collect());
    println!("3 requests, 2 connections of 1 stream: {got:?}");
    assert!(got.iter().all(|g| g.0 == 200), "{got:?}");
    let slowest = got.iter().map(|g| g.2).max().unwrap();
    assert!(
        slowest >= Duration::from_millis(900),
        "nobody waited: {got:?}"
    );
    assert_eq!(inner_connections(&c).1, 2, "two connections at most");
    // Four at once, each longer than the wait: two are answered, two get
    // 503 when the wait ends.
    let got = run((0..4).map(|i| format!("/delay/3000?o{i}")).collect());
    println!("4 requests past the wait: {got:?}");
    let ok = got.iter().filter(|g| g.0 == 200).count();
    let refused: Vec<_> = got.iter().filter(|g| g.0 == 503).collect();
    assert_eq!((ok, refused.len()), (2, 2), "{got:?}");
    for r in &refused {
        assert_eq!(r.1.as_deref(), Some("max_connections"), "{got:?}");
        assert!(
            r.2 >= Duration::from_millis(1400) && r.2 < Duration::from_millis(2900),
            "refused after {:?}, not after connect_timeout",
            r.2
        );
    }
    assert_eq!(inner_connections(&c).1, 2, "two connections at most");
    let s = stats(&c.edge);
    assert_eq!(
        s["total"]["clusters"][0]["overflow"]["max_connections"], 2,
        "{}",
        s["total"]["clusters"][0]
    );
}

/// When the cluster's TLS files change (a CA bundle rolled over), the
/// HTTP/2 connections made with the old material take no new stream: the
/// next request opens a new connection, a request in flight on the old one
/// finishes, and the old one then closes.
#[test]
fn rotated_tls_files_retire_http2_upstream_connections() {
    let c = chain_custom("h2up-rotate", true, &[], None, &[], |c| {
        c.section("reload", "interval", &q("100ms"))
    });
    let edge = c.edge.addr("public");
    assert_eq!(Client::connect(edge).get("/before").status(), 200);
    assert_eq!(inner_connections(&c), (1, 1));
    // A stream in flight on the old connection across the change.
    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        (
            Client::connect(edge).get("/delay/2500").status(),
            t.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    // The CA bundle rolls over: the old CA plus a new one.
    let ca_path = c.dirs.1.join("ca.pem");
    let mut bundle = std::fs::read_to_string(&ca_path).unwrap();
    bundle.push_str(Ca::new("next h2 upstream CA").cert_pem());
    std::fs::write(c.dirs.1.join("ca.pem.tmp"), bundle).unwrap();
    std::fs::rename(c.dirs.1.join("ca.pem.tmp"), &ca_path).unwrap();
    // New requests go on a new connection once the edge has the new files.
    let mut client = Client::connect(edge);
    assert!(
        eventually(Duration::from_secs(5), || {
            assert_eq!(client.get("/after").status(), 200);
            inner_connections(&c).1 == 2
        }),
        "no new connection after the CA file changed: {:?}",
        inner_connections(&c)
    );
    assert_eq!(inner_connections(&c).0, 2, "the old one serves its stream");
    // The stream in flight on the retired connection finishes.
    let (status, took) = slow.join().unwrap();
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(2400), "{took:?}");
    // Then the retired connection closes; new streams stay on the new one.
    assert!(
        eventually(Duration::from_secs(3), || inner_connections(&c).0 == 1),
        "the retired connection stayed open: {:?}",
        inner_connections(&c)
    );
    for _ in 0..5 {
        assert_eq!(client.get("/later").status(), 200);
    }
    assert_eq!(inner_connections(&c), (1, 2));
}
