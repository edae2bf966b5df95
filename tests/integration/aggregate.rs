//! `aggregate = { ... }` routes end to end: legs run concurrently (three
//! origins at 10 / 20 / 30 ms answer in about 30 ms, not 60), both failure
//! policies, an oversize leg, a non-JSON leg, a dependent leg reading a
//! field of another leg's answer, per-leg timeouts and the deadline, values
//! percent-encoded as the origin sees them, forwarded headers, and the legs
//! counted as upstream requests in `/metrics`.
//!
//! The origins here are small JSON servers (`JsonOrigin`): each answers by a
//! closure of the request target, after an optional delay, and records the
//! request heads it received.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request, Response};
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::Proxy;

/// What a `JsonOrigin` answers.
struct Reply {
    status: u16,
    delay: Duration,
    body: Vec<u8>,
    chunked: bool,
}

impl Reply {
    fn json(body: &str) -> Reply {
        Reply {
            status: 200,
            delay: Duration::ZERO,
            body: body.as_bytes().to_vec(),
            chunked: false,
        }
    }
    fn status(mut self, s: u16) -> Reply {
        self.status = s;
        self
    }
    fn delay_ms(mut self, ms: u64) -> Reply {
        self.delay = Duration::from_millis(ms);
        self
    }
    fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// One request head as received: the target and the fields (names
/// lower-cased).
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive HTTP/1.1 origin on 127.0.0.1:0, a thread per connection.
struct JsonOrigin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl JsonOrigin {
    fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> JsonOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Handler = Arc::new(handler);
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, h) = (s.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &s, &*h));
            }
        });
        JsonOrigin { addr, seen, stop }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn last(&self) -> Seen {
        self.seen().pop().expect("the origin received a request")
    }
}

impl Drop for JsonOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &(dyn Fn(&str) -> Reply + Sync)) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_nodelay(true);
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        seen.lock().unwrap().push(Seen {
            target: target.clone(),
            headers,
        });
        let reply = handler(&target);
        std::thread::sleep(reply.delay);
        let mut resp = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\n",
            reply.status
        );
        if reply.chunked {
            resp.push_str("transfer-encoding: chunked\r\n\r\n");
            let mut bytes = resp.into_bytes();
            for piece in reply.body.chunks(100) {
                bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                bytes.extend_from_slice(piece);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            if out.write_all(&bytes).is_err() {
                return;
            }
        } else {
            resp.push_str(&format!("content-length: {}\r\n\r\n", reply.body.len()));
            let mut bytes = resp.into_bytes();
            bytes.extend_from_slice(&reply.body);
            if out.write_all(&bytes).is_err() {
                return;
            }
        }
    }
}

/// A proxy with listener "public", admin, the clusters (name, address) and
/// one route "dash" with `path_regex` and `aggregate`.
fn proxy(
    dir: &TestDir,
    clusters: &[(&str, SocketAddr)],
    path_regex: &str,
    aggregate: &str,
) -> Proxy {
    let mut toml = String::from(
        "[runtime]\nworkers = 2\ndrain_timeout = \"5s\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n",
    );
    toml.push_str(&format!(
        "[[route]]\nname = \"dash\"\npath_regex = {path_regex:?}\naggregate = {aggregate}\n\n"
    ));
    for (name, addr) in clusters {
        toml.push_str(&format!(
            "[[cluster]]\nname = \"{name}\"\nendpoints = [\"{addr}\"]\nconnect_timeout = \"1s\"\n\n"
        ));
    }
    Proxy::start_toml(dir, &toml, &[])
}

fn json_body(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {r}"))
}

/// An address nothing listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn legs_run_concurrently() {
    let dir = TestDir::new("agg-concurrent");
    let a = JsonOrigin::start(|t| {
        Reply::json(&format!("{{\"leg\":\"a\",\"t\":\"{t}\"}}")).delay_ms(10)
    });
    let b = JsonOrigin::start(|_| Reply::json("{\"leg\":\"b\"}").delay_ms(20));
    let c = JsonOrigin::start(|_| Reply::json("[3]").delay_ms(30));
    let p = proxy(
        &dir,
        &[("a", a.addr), ("b", b.addr), ("c", c.addr)],
        "^/dash/(?P<id>[0-9]+)$",
        r#"{ legs = [
  { name = "a", cluster = "a", path = "/a/{id}" },
  { name = "b", cluster = "b", path = "/b" },
  { name = "c", cluster = "c", path = "/c" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let mut best = Duration::MAX;
    for _ in 0..6 {
        let t0 = Instant::now();
        let r = client.get("/dash/42");
        let took = t0.elapsed();
        assert_eq!(r.status(), 200, "{r}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.header("x-ringway-partial").is_none());
        // Members in leg order, the legs' JSON verbatim.
        assert_eq!(
            r.body_str(),
            r#"{"a":{"leg":"a","t":"/a/42"},"b":{"leg":"b"},"c":[3]}"#
        );
        best = best.min(took);
    }
    assert!(
        best >= Duration::from_millis(30),
        "faster than the slowest leg: {best:?}"
    );
    assert!(
        best < Duration::from_millis(55),
        "legs did not run concurrently: best of 6 took {best:?} (sequential would be 60ms)"
    );
}

#[test]
fn policy_all_names_the_failed_leg() {
    let dir = TestDir::new("agg-all");
    let ok = JsonOrigin::start(|_| Reply::json("{\"ok\":true}"));
    let bad = JsonOrigin::start(|_| Reply::json("{\"error\":\"boom\"}").status(503));
    let p = proxy(
        &dir,
        &[("ok", ok.addr), ("bad", bad.addr), ("down", closed_port())],
        "^/dash$",
        r#"{ policy = "all", legs = [
  { name = "user", cluster = "ok", path = "/u" },
  { name = "orders", cluster = "bad", path = "/o" },
  { name = "stock", cluster = "down", path = "/s" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let r = client.get("/dash");
    assert_eq!(r.status(), 502, "{r}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = json_body(&r);
    assert_eq!(v["status"], 502);
    assert_eq!(v["detail"], "aggregate failed: leg(s) orders, stock");
    assert_eq!(v["legs"]["user"], "ok");
    assert_eq!(v["legs"]["orders"], "status 503");
    let stock = v["legs"]["stock"].as_str().unwrap();
    assert!(stock.contains("connect_failed"), "{stock}");
    // A local answer: the connection stays open.
    let r = client.get("/dash");
    assert_eq!(r.status(), 502, "{r}");
}

#[test]
fn policy_partial_nulls_failed_legs() {
    let dir = TestDir::new("agg-partial");
    let ok = JsonOrigin::start(|t| Reply::json(&format!("{{\"path\":\"{t}\"}}")));
    let bad = JsonOrigin::start(|_| Reply::json("oops").status(500));
    let p = proxy(
        &dir,
        &[("ok", ok.addr), ("bad", bad.addr)],
        "^/dash$",
        r#"{ policy = "partial", legs = [
  { name = "a", cluster = "ok", path = "/a" },
  { name = "b", cluster = "bad", path = "/b" },
  { name = "c", cluster = "ok", path = "/c" },
  { name = "d", cluster = "bad", path = "/d" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let r = client.get("/dash");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-ringway-partial"), Some("b,d"));
    assert_eq!(
        json_body(&r),
        serde_json::json!({"a": {"path": "/a"}, "b": null, "c": {"path": "/c"}, "d": null})
    );
    // Nothing failed: no header.
    let p2dir = TestDir::new("agg-partial-ok");
    let p2 = proxy(
        &p2dir,
        &[("ok", ok.addr)],
        "^/dash$",
        r#"{ policy = "partial", legs = [ { name = "a", cluster = "ok", path = "/a" } ] }"#,
    );
    let r = Client::connect(p2.addr("public")).get("/dash");
    assert_eq!(r.status(), 200, "{r}");
    assert!(r.header("x-ringway-partial").is_none(), "{r}");
}

#[test]
fn oversize_leg_fails() {
    let dir = TestDir::new("agg-oversize");
    let origin = JsonOrigin::start(|t| {
        let big = format!("\"{}\"", "x".repeat(2000));
        match t {
            "/small" => Reply::json("{\"n\":1}"),
            "/big" => Reply::json(&big),
            "/big-chunked" => Reply::json(&big).chunked(),
            // Exactly the limit (1024 bytes), chunked: accepted.
            _ => Reply::json(&format!("\"{}\"", "y".repeat(1022))).chunked(),
        }
    });
    let p = proxy(
        &dir,
        &[("o", origin.addr)],
        "^/dash$",
        r#"{ policy = "partial", max_leg_bytes = "1KiB", legs = [
  { name = "small", cluster = "o", path = "/small" },
  { name = "big", cluster = "o", path = "/big" },
  { name = "chunked", cluster = "o", path = "/big-chunked" },
  { name = "limit", cluster = "o", path = "/limit" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let r = client.get("/dash");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-ringway-partial"), Some("big,chunked"));
    let v = json_body(&r);
    assert_eq!(v["small"]["n"], 1);
    assert!(v["big"].is_null() && v["chunked"].is_null());
    assert_eq!(v["limit"].as_str().unwrap().len(), 1022);
    // Under policy "all" the reason is named.
    let dir2 = TestDir::new("agg-oversize-all");
    let p2 = proxy(
        &dir2,
        &[("o", origin.addr)],
        "^/dash$",
        r#"{ max_leg_bytes = "1KiB", legs = [ { name = "big", cluster = "o", path = "/big-chunked" } ] }"#,
    );
    let r = Client::connect(p2.addr("public")).get("/dash");
    assert_eq!(r.status(), 502, "{r}");
    assert_eq!(
        json_body(&r)["legs"]["big"],
        "body over max_leg_bytes (1024 bytes)"
    );
}

#[test]
fn non_json_leg_is_a_string() {
    let dir = TestDir::new("agg-text");
    let origin = JsonOrigin::start(|t| match t {
        "/text" => Reply::json("hello \"world\"\n"),
        "/empty" => Reply::json(""),
        _ => Reply::json(" {\"a\": [1, 2]} \n"),
    });
    let p = proxy(
        &dir,
        &[("o", origin.addr)],
        "^/dash$",
        r#"{ legs = [
  { name = "text", cluster = "o", path = "/text" },
  { name = "empty", cluster = "o", path = "/empty" },
  { name = "json", cluster = "o", path = "/json" },
] }"#,
    );
    let r = Client::connect(p.addr("public")).get("/dash");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(
        json_body(&r),
        serde_json::json!({"text": "hello \"world\"\n", "empty": "", "json": {"a": [1, 2]}})
    );
}

#[test]
fn dependent_leg_uses_a_field() {
    let dir = TestDir::new("agg-dependent");
    let users = JsonOrigin::start(|t| match t {
        "/users/7" => {
            Reply::json(r#"{"id": 7, "name": "Ann/B C", "team": {"id": "t-1"}}"#).delay_ms(20)
        }
        _ => Reply::json(r#"{"name": "no id"}"#),
    });
    let orders = JsonOrigin::start(|t| Reply::json(&format!("{{\"target\":{t:?}}}")));
    let p = proxy(
        &dir,
        &[("users", users.addr), ("orders", orders.addr)],
        "^/dash/(?P<id>[0-9]+)$",
        r#"{ policy = "partial", legs = [
  { name = "orders", cluster = "orders", path = "/orders?user={user.id}&team={user.team.id}&n={user.name}&limit={query.limit}" },
  { name = "user", cluster = "users", path = "/users/{id}" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let r = client.get("/dash/7?limit=5");
    assert_eq!(r.status(), 200, "{r}");
    assert!(r.header("x-ringway-partial").is_none(), "{r}");
    let want = "/orders?user=7&team=t-1&n=Ann%2FB%20C&limit=5";
    assert_eq!(orders.last().target, want);
    let v = json_body(&r);
    assert_eq!(v["orders"]["target"], want);
    assert_eq!(v["user"]["id"], 7);
    // Members in leg order (orders first), whatever order they ran in.
    assert!(r.body_str().starts_with("{\"orders\":"), "{r}");

    // The field is missing: the dependent leg fails, naming the placeholder.
    let sent = orders.seen().len();
    let r = client.get("/dash/8?limit=5");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-ringway-partial"), Some("orders"));
    assert_eq!(orders.seen().len(), sent, "the dependent leg was not sent");
    // A missing query parameter fails the leg the same way (policy all
    // would name it; here it is null).
    let r = client.get("/dash/7");
    assert_eq!(r.header("x-ringway-partial"), Some("orders"), "{r}");
    assert_eq!(orders.seen().len(), sent);
}

#[test]
fn dependent_leg_errors_are_named() {
    let dir = TestDir::new("agg-dependent-all");
    let users = JsonOrigin::start(|t| match t {
        "/users/1" => Reply::json("{}"),
        _ => Reply::json("{}").status(404),
    });
    let p = proxy(
        &dir,
        &[("users", users.addr)],
        "^/dash/(?P<id>[0-9]+)$",
        r#"{ legs = [
  { name = "user", cluster = "users", path = "/users/{id}" },
  { name = "more", cluster = "users", path = "/more/{user.id}" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let v = json_body(&client.get("/dash/1"));
    assert_eq!(v["legs"]["user"], "ok");
    assert_eq!(v["legs"]["more"], "missing value for {user.id}");
    let v = json_body(&client.get("/dash/2"));
    assert_eq!(v["legs"]["user"], "status 404");
    assert_eq!(v["legs"]["more"], "not sent: leg \"user\" failed");
}

#[test]
fn leg_timeout_and_deadline() {
    let dir = TestDir::new("agg-timeout");
    let slow = JsonOrigin::start(|_| Reply::json("{}").delay_ms(1500));
    let fast = JsonOrigin::start(|_| Reply::json("{\"fast\":1}"));
    let p = proxy(
        &dir,
        &[("slow", slow.addr), ("fast", fast.addr)],
        "^/dash$",
        r#"{ policy = "partial", legs = [
  { name = "fast", cluster = "fast", path = "/f" },
  { name = "slow", cluster = "slow", path = "/s", timeout = "100ms" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let t0 = Instant::now();
    let r = client.get("/dash");
    let took = t0.elapsed();
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-ringway-partial"), Some("slow"));
    assert_eq!(
        json_body(&r),
        serde_json::json!({"fast": {"fast": 1}, "slow": null})
    );
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(
        took < Duration::from_millis(1000),
        "the leg timeout did not cut: {took:?}"
    );

    let dir2 = TestDir::new("agg-deadline");
    let p2 = proxy(
        &dir2,
        &[("slow", slow.addr), ("fast", fast.addr)],
        "^/dash$",
        r#"{ deadline = "150ms", legs = [
  { name = "fast", cluster = "fast", path = "/f", timeout = "1s" },
  { name = "slow", cluster = "slow", path = "/s", timeout = "1s" },
] }"#,
    );
    let t0 = Instant::now();
    let r = Client::connect(p2.addr("public")).get("/dash");
    let took = t0.elapsed();
    assert_eq!(r.status(), 502, "{r}");
    let v = json_body(&r);
    assert_eq!(v["legs"]["fast"], "ok");
    assert_eq!(v["legs"]["slow"], "deadline of 150ms passed");
    assert!(took < Duration::from_millis(1000), "{took:?}");
}

#[test]
fn placeholder_values_are_encoded() {
    let dir = TestDir::new("agg-encode");
    let origin = JsonOrigin::start(|_| Reply::json("{}"));
    let p = proxy(
        &dir,
        &[("o", origin.addr)],
        "^/dash/(?P<id>[^/]+)$",
        r#"{ legs = [ { name = "a", cluster = "o", path = "/items/{id}?q={query.q}&x=1" } ] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let r = client.get("/dash/a%2Fb%0D%0AX-Injected:%201%3Fz?q=1%26admin%3Dtrue/../x%0d%0a#f");
    assert_eq!(r.status(), 200, "{r}");
    let seen = origin.last();
    assert_eq!(
        seen.target,
        "/items/a%2Fb%0D%0AX-Injected%3A%201%3Fz?q=1%26admin%3Dtrue%2F..%2Fx%0D%0A&x=1"
    );
    assert!(seen.header("x-injected").is_none(), "{seen:?}");
}

#[test]
fn dot_segment_and_empty_values_never_reach_a_leg_path() {
    // `..` from the query or from another leg's JSON would move the leg to
    // another resource (`/users/../profile` = `/profile`); an empty value
    // to a list (`/users/`). The leg fails instead and nothing is sent.
    let dir = TestDir::new("agg-dots");
    let origin = JsonOrigin::start(|target| {
        if target.starts_with("/who") {
            Reply::json(r#"{"id":".."}"#)
        } else {
            Reply::json("{}")
        }
    });
    let p = proxy(
        &dir,
        &[("o", origin.addr)],
        "^/dash$",
        r#"{ policy = "partial", legs = [
  { name = "q", cluster = "o", path = "/users/{query.id}/profile" },
  { name = "who", cluster = "o", path = "/who" },
  { name = "dep", cluster = "o", path = "/users/{who.id}/profile" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    for query in ["?id=..", "?id=.", "?id=", "?id=%2E%2E"] {
        let r = client.get(&format!("/dash{query}"));
        assert_eq!(r.status(), 200, "{query}: {r}");
        assert_eq!(r.header("x-ringway-partial"), Some("q,dep"), "{query}: {r}");
    }
    let seen: Vec<String> = origin.seen().into_iter().map(|s| s.target).collect();
    assert!(
        seen.iter().all(|t| t == "/who"),
        "a dot segment or empty value reached the origin: {seen:?}"
    );
}

#[test]
fn forwarded_headers_and_metrics() {
    let dir = TestDir::new("agg-headers");
    let a = JsonOrigin::start(|_| Reply::json("{}"));
    let b = JsonOrigin::start(|_| Reply::json("{}").status(500));
    let p = proxy(
        &dir,
        &[("a", a.addr), ("b", b.addr)],
        "^/dash$",
        r#"{ policy = "partial", legs = [
  { name = "a", cluster = "a", path = "/a", headers = ["authorization", "x-tenant"] },
  { name = "b", cluster = "b", path = "/b", method = "POST" },
] }"#,
    );
    let mut client = Client::connect(p.addr("public"));
    let r = client.request(
        &Request::get("/dash")
            .host("dash.test")
            .header("Authorization", "Bearer t0k")
            .header("X-Tenant", "acme")
            .header("X-Other", "no")
            .header("X-Request-Id", "rid-123"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let sa = a.last();
    assert_eq!(sa.header("authorization"), Some("Bearer t0k"));
    assert_eq!(sa.header("x-tenant"), Some("acme"));
    assert_eq!(sa.header("x-other"), None);
    assert_eq!(sa.header("host"), Some(a.addr.to_string().as_str()));
    assert_eq!(sa.header("x-request-id"), Some("rid-123"));
    assert_eq!(sa.header("x-forwarded-host"), Some("dash.test"));
    assert_eq!(sa.header("x-forwarded-for"), Some("127.0.0.1"));
    let sb = b.last();
    assert_eq!(sb.header("authorization"), None);
    assert_eq!(sb.header("x-request-id"), Some("rid-123"));
    assert_eq!(sb.header("content-length"), Some("0"));

    // Each leg counts as an upstream request of its cluster.
    let admin = p.admin_addr();
    let count = |cluster: &str| -> u64 {
        let r =
            Client::connect(admin).request(&Request::get("/metrics").header("Connection", "close"));
        r.body_str()
            .lines()
            .filter(|l| {
                l.starts_with("ringway_upstream_requests_total{")
                    && l.contains(&format!("cluster=\"{cluster}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while (count("a"), count("b")) != (1, 1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((count("a"), count("b")), (1, 1));
}

#[test]
fn check_names_the_key_of_a_bad_leg() {
    let dir = TestDir::new("agg-check");
    let toml = r#"
[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
name = "dash"
path_regex = "/dash/(?P<id>[0-9]+)"
aggregate = { policy = "some", legs = [
  { name = "user", cluster = "users", path = "/users/{id}" },
  { name = "orders", cluster = "orderz", path = "/orders?u={usr.id}" },
] }

[[cluster]]
name = "users"
endpoints = ["127.0.0.1:9"]
"#;
    let path = dir.write("bad.toml", toml);
    let out = ringway_tests::proxy::run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let text = out.all();
    for needle in [
        "route[0].aggregate.policy",
        "expected \"all\" or \"partial\"",
        "route[0].aggregate.legs[1].cluster",
        "unknown cluster \"orderz\"",
        "route[0].aggregate.legs[1].path",
        "unknown placeholder {usr.id}",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // The same route, fixed, checks clean.
    let good = toml
        .replace("\"some\"", "\"all\"")
        .replace("orderz", "users")
        .replace("usr.id", "user.id");
    let path = dir.write("good.toml", &good);
    let out = ringway_tests::proxy::run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(0), "{out}");
}
