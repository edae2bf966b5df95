//! The `headers` filter (request and response edits, templates), the
//! `direct_response` filter and route action (keep-alive rules), the `split`
//! route action (smooth weighted round robin, `split_by` stickiness), and
//! the config errors `ringway check` reports for them.

use std::collections::BTreeMap;
use std::time::Duration;

use ringway_tests::client::{Client, Eof, Request, Response};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::{Origin, RecordedRequest};
use ringway_tests::proxy::{check_config as check, Proxy};
use ringway_tests::setup::Setup;

/// Removes the `cluster` key of route `i` (for routes whose action is
/// `split` or `direct_response`).
fn without_cluster(mut cfg: Config, i: usize) -> Config {
    cfg.routes[i].retain(|(k, _)| k != "cluster");
    cfg
}

fn last(origin: &Origin) -> RecordedRequest {
    origin
        .last_request()
        .expect("the origin received no request")
}

// ---------------------------------------------------------------------
// headers filter: request side
// ---------------------------------------------------------------------

const REQUEST_EDITS: &str = r#"[{ type = "headers", request_set = { "x-user" = "$var.sub", "x-ip" = "$client_ip", "x-rid" = "$request_id", "x-route" = "$route", "x-host" = "$host", "x-path" = "$path", "x-braced" = "${route}-x", "x-dollar" = "cost $$5 $$route" }, request_add = { "x-multi" = "added-$route" }, request_remove = ["X-Secret"] }]"#;

#[test]
fn headers_filter_edits_the_request_sent_upstream() {
    let s = Setup::new("filters-req", |c| {
        c.all_routes("name", &q("api"))
            .all_routes("filters", REQUEST_EDITS)
    });
    let mut c = s.client();
    let r = c.request(
        &Request::get("/p/q?x=1")
            .host("h.test")
            .header("X-User", "admin")
            .header("x-user", "root")
            .header("X-Multi", "client")
            .header("x-secret", "s1")
            .header("X-SECRET", "s2")
            .header("X-Kept", "yes"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let rec = last(&s.origin);
    let raw = rec.raw_str();
    // set: both client copies gone, one field with the (empty: unset
    // variable) value.
    assert_eq!(rec.headers_all("x-user"), vec![""], "{raw}");
    // add: the client's kept, one more after it.
    assert_eq!(
        rec.headers_all("x-multi"),
        vec!["client", "added-api"],
        "{raw}"
    );
    // remove: case-insensitive, every copy.
    assert!(!rec.has_header("x-secret"), "{raw}");
    assert_eq!(rec.header("x-kept"), Some("yes"), "{raw}");
    // Templates.
    assert_eq!(rec.header("x-ip"), Some("127.0.0.1"), "{raw}");
    let id = rec
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id: {raw}"));
    assert!(!id.is_empty(), "{raw}");
    assert_eq!(rec.header("x-rid"), Some(id), "$request_id: {raw}");
    assert_eq!(rec.header("x-route"), Some("api"), "{raw}");
    assert_eq!(rec.header("x-host"), Some("h.test"), "{raw}");
    assert_eq!(
        rec.header("x-path"),
        Some("/p/q"),
        "$path has no query: {raw}"
    );
    assert_eq!(rec.header("x-braced"), Some("api-x"), "{raw}");
    assert_eq!(rec.header("x-dollar"), Some("cost $5 $route"), "{raw}");
    // ringway's own fields are still there.
    let xff = rec
        .header("x-forwarded-for")
        .unwrap_or_else(|| panic!("no X-Forwarded-For: {raw}"));
    assert_eq!(xff, "127.0.0.1", "{raw}");
    assert_eq!(rec.header("x-forwarded-host"), Some("h.test"), "{raw}");
    assert_eq!(rec.target, "/p/q?x=1", "{raw}");

    // Same connection: a client X-Request-Id is what `$request_id` gives,
    // and per-request values do not leak from the previous request.
    let r = c.request(
        &Request::get("/other")
            .host("o.test")
            .header("X-Request-Id", "client-rid-7"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let rec = last(&s.origin);
    let raw = rec.raw_str();
    assert_eq!(
        rec.headers_all("x-request-id"),
        vec!["client-rid-7"],
        "{raw}"
    );
    assert_eq!(rec.headers_all("x-rid"), vec!["client-rid-7"], "{raw}");
    assert_eq!(rec.headers_all("x-host"), vec!["o.test"], "{raw}");
    assert_eq!(rec.headers_all("x-path"), vec!["/other"], "{raw}");
    assert_eq!(rec.headers_all("x-multi"), vec!["added-api"], "{raw}");
    assert_eq!(rec.headers_all("x-user"), vec![""], "{raw}");
    assert_eq!(s.origin.request_count(), 2);
}

/// One origin ("app") behind listener "public"; the routes `(path_prefix,
/// extra keys)`, in order, all to cluster "app".
fn setup_routes(label: &str, routes: &[(&str, &[(&str, &str)])]) -> Setup {
    Setup::new(label, |mut c| {
        c.routes.clear();
        routes.iter().fold(c, |c, (prefix, extra)| {
            c.route("public", prefix, "app", extra)
        })
    })
}

#[test]
fn headers_filter_can_replace_or_remove_ringway_fields() {
    let s = setup_routes(
        "filters-xff",
        &[
            (
                "/set",
                &[(
                    "filters",
                    r#"[{ type = "headers", request_set = { "X-Forwarded-For" = "edge-$client_ip", "x-request-id" = "fixed-id" } }]"#,
                )],
            ),
            (
                "/rm",
                &[(
                    "filters",
                    r#"[{ type = "headers", request_remove = ["x-forwarded-for", "X-Forwarded-Host", "x-request-id"] }]"#,
                )],
            ),
            (
                "/add",
                &[(
                    "filters",
                    r#"[{ type = "headers", request_add = { "x-forwarded-for" = "extra" } }]"#,
                )],
            ),
        ],
    );
    let mut c = s.client();

    for rid in [None, Some("client-id")] {
        let mut req = Request::get("/set").header("X-Forwarded-For", "192.0.2.1");
        if let Some(id) = rid {
            req = req.header("X-Request-Id", id);
        }
        assert_eq!(c.request(&req).status(), 200);
        let rec = last(&s.origin);
        let raw = rec.raw_str();
        assert_eq!(
            rec.headers_all("x-forwarded-for"),
            vec!["edge-127.0.0.1"],
            "request_set replaces ringway's X-Forwarded-For: {raw}"
        );
        assert_eq!(
            rec.headers_all("x-request-id"),
            vec!["fixed-id"],
            "client id {rid:?}: {raw}"
        );
    }

    let r = c.request(
        &Request::get("/rm")
            .host("rm.test")
            .header("X-Forwarded-For", "192.0.2.1")
            .header("X-Request-Id", "client-id"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let rec = last(&s.origin);
    let raw = rec.raw_str();
    assert!(!rec.has_header("x-forwarded-for"), "{raw}");
    assert!(!rec.has_header("x-forwarded-host"), "{raw}");
    assert!(!rec.has_header("x-request-id"), "{raw}");
    assert_eq!(rec.header("x-forwarded-proto"), Some("http"), "{raw}");
    assert_eq!(rec.header("host"), Some("rm.test"), "{raw}");

    let r = c.request(&Request::get("/add").header("X-Forwarded-For", "192.0.2.1"));
    assert_eq!(r.status(), 200, "{r}");
    let rec = last(&s.origin);
    assert_eq!(
        rec.headers_all("x-forwarded-for"),
        vec!["192.0.2.1, 127.0.0.1", "extra"],
        "{}",
        rec.raw_str()
    );
}

// ---------------------------------------------------------------------
// headers filter: response side
// ---------------------------------------------------------------------

#[test]
fn headers_filter_edits_the_response_sent_downstream() {
    let s = Setup::new("filters-resp", |c| {
        c.all_routes("name", &q("web")).all_routes(
            "filters",
            r#"[{ type = "headers", response_set = { "x-origin" = "via-$host$path", "x-route" = "$route" }, response_remove = ["X-Origin-Conn"], response_add = { "x-origin-req" = "extra", "x-rid" = "$request_id", "x-ip" = "$client_ip" } }]"#,
        )
    });
    let mut c = s.client();
    for (host, target, path) in [
        ("r.test", "/r/s?q=1", "/r/s"),
        ("other.test", "/zz", "/zz"),
        ("r.test", "/status/404", "/status/404"),
    ] {
        let r = c.request(&Request::get(target).host(host));
        let want_status = if target.starts_with("/status/") {
            404
        } else {
            200
        };
        assert_eq!(r.status(), want_status, "{r}");
        assert_eq!(
            r.headers_all("x-origin"),
            vec![format!("via-{host}{path}")],
            "response_set overrides the origin's field: {r}"
        );
        assert!(r.header("x-origin-conn").is_none(), "{r}");
        let reqs = r.headers_all("x-origin-req");
        assert_eq!(reqs.len(), 2, "response_add keeps the origin's: {r}");
        assert_eq!(reqs[1], "extra", "{r}");
        assert_eq!(r.header("x-route"), Some("web"), "{r}");
        assert_eq!(r.header("x-ip"), Some("127.0.0.1"), "{r}");
        let seen = last(&s.origin);
        let id = seen.header("x-request-id").unwrap_or("?").to_string();
        assert_eq!(r.header("x-rid"), Some(id.as_str()), "{r}");
    }
    assert_eq!(s.origin.request_count(), 3);
}

/// Two headers filters whose response templates both read `$host` and
/// `$path`.
const TWO_RESPONSE_TEMPLATE_FILTERS: &str = r#"[{ type = "headers", response_set = { "x-p1" = "$path", "x-h1" = "$host" } }, { type = "headers", response_set = { "x-p2" = "$path", "x-h2" = "$host" } }]"#;

#[test]
fn response_templates_read_the_request_of_each_filter() {
    // Two filters both ask for `$host` / `$path` in the response phase.
    let s = Setup::new("filters-resp-two", |c| {
        c.all_routes("filters", TWO_RESPONSE_TEMPLATE_FILTERS)
    });
    let mut c = s.client();
    let r = c.request(&Request::get("/abc?x").host("two.test"));
    assert_eq!(r.status(), 200, "{r}");
    for name in ["x-p1", "x-p2"] {
        assert_eq!(r.headers_all(name), vec!["/abc"], "{name}: {r}");
    }
    for name in ["x-h1", "x-h2"] {
        assert_eq!(r.headers_all(name), vec!["two.test"], "{name}: {r}");
    }
    // The next request on the connection gets its own values.
    let r = c.request(&Request::get("/second").host("b.test"));
    assert_eq!(r.status(), 200, "{r}");
    for name in ["x-p1", "x-p2"] {
        assert_eq!(r.headers_all(name), vec!["/second"], "{name}: {r}");
    }
    for name in ["x-h1", "x-h2"] {
        assert_eq!(r.headers_all(name), vec!["b.test"], "{name}: {r}");
    }
}

#[test]
fn response_templates_without_host_read_the_path_once() {
    let s = Setup::new("filters-resp-nohost", |c| {
        c.all_routes("filters", TWO_RESPONSE_TEMPLATE_FILTERS)
    });
    // An HTTP/1.0 request without Host: `$host` is empty, `$path` is the
    // path (once, whatever the number of filters asking for it).
    let mut c = s.client();
    c.send(b"GET /nohost HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status(), 200, "{r}");
    for name in ["x-h1", "x-h2"] {
        assert_eq!(r.headers_all(name), vec![""], "{name}: {r}");
    }
    for name in ["x-p1", "x-p2"] {
        assert_eq!(r.headers_all(name), vec!["/nohost"], "{name}: {r}");
    }
}

// ---------------------------------------------------------------------
// local replies carry response edits
// ---------------------------------------------------------------------

#[test]
fn response_edits_apply_to_local_replies() {
    let dir = TestDir::new("filters-local-edits");
    let origin = Origin::start();
    let cfg = Config::new()
        .listener("public")
        .route(
            "public",
            "/f",
            "app",
            &[(
                "filters",
                r#"[{ type = "headers", response_set = { "x-frame-options" = "DENY", "content-type" = "application/json" }, response_add = { "x-rid" = "$request_id", "x-p" = "$path" } }, { type = "direct_response", status = 200, body = "{}" }]"#,
            )],
        )
        .route(
            "public",
            "/late",
            "app",
            &[(
                "filters",
                r#"[{ type = "direct_response", status = 200, body = "early" }, { type = "headers", response_set = { "x-late" = "1" } }]"#,
            )],
        )
        .route(
            "public",
            "/a",
            "app",
            &[
                ("name", "\"gone-route\""),
                (
                    "filters",
                    r#"[{ type = "headers", response_set = { "x-served-by" = "ringway-$route" }, response_remove = ["content-type"] }]"#,
                ),
                ("direct_response", r#"{ status = 410, body = "gone" }"#),
            ],
        )
        .cluster("app", &[origin.addr()], &[]);
    let cfg = without_cluster(cfg, 2);
    let proxy = Proxy::start(&dir, &cfg);
    let mut c = Client::connect(proxy.addr("public"));

    let r = c.request(&Request::get("/f/x").header("X-Request-Id", "rid-1"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.body_str(), "{}", "{r}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{r}");
    assert_eq!(
        r.headers_all("content-type"),
        vec!["application/json"],
        "response_set replaces the reply's Content-Type: {r}"
    );
    assert_eq!(r.header("x-rid"), Some("rid-1"), "{r}");
    assert_eq!(r.header("x-p"), Some("/f/x"), "{r}");
    assert_eq!(r.headers_all("content-length"), vec!["2"], "{r}");

    // A filter after the direct response never ran: no response edit.
    let r = c.get("/late");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.body_str(), "early", "{r}");
    assert!(r.header("x-late").is_none(), "{r}");

    // The route action answers after the route's filters: their edits apply.
    let r = c.get("/a");
    assert_eq!(r.status(), 410, "{r}");
    assert_eq!(r.body_str(), "gone", "{r}");
    assert_eq!(r.header("x-served-by"), Some("ringway-gone-route"), "{r}");
    assert!(r.header("content-type").is_none(), "{r}");
    assert_eq!(r.headers_all("content-length"), vec!["4"], "{r}");

    assert_eq!(
        origin.request_count(),
        0,
        "a local reply reached the origin"
    );
}

// ---------------------------------------------------------------------
// direct_response: route action and filter, keep-alive rules
// ---------------------------------------------------------------------

/// Routes: `/direct` (action 201 "made\n" text/x-test), `/filter` (a
/// direct_response filter, 503 "down"), `/empty` (action 202, no body),
/// `/` → the origin.
fn direct_setup(label: &str) -> (TestDir, Origin, Proxy) {
    let dir = TestDir::new(label);
    let origin = Origin::start();
    let cfg = Config::new()
        .listener("public")
        .route(
            "public",
            "/direct",
            "app",
            &[(
                "direct_response",
                r#"{ status = 201, body = "made\n", content_type = "text/x-test" }"#,
            )],
        )
        .route(
            "public",
            "/filter",
            "app",
            &[(
                "filters",
                r#"[{ type = "direct_response", status = 503, body = "down" }]"#,
            )],
        )
        .route(
            "public",
            "/empty",
            "app",
            &[("direct_response", "{ status = 202 }")],
        )
        .route("public", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let cfg = without_cluster(without_cluster(cfg, 0), 2);
    let proxy = Proxy::start(&dir, &cfg);
    (dir, origin, proxy)
}

fn assert_made(r: &Response, what: &str) {
    assert_eq!(r.status(), 201, "{what}: {r}");
    assert_eq!(r.body_str(), "made\n", "{what}: {r}");
    assert_eq!(
        r.headers_all("content-type"),
        vec!["text/x-test"],
        "{what}: {r}"
    );
    assert_eq!(r.headers_all("content-length"), vec!["5"], "{what}: {r}");
    assert!(!r.has_token("connection", "close"), "{what}: {r}");
    assert!(r.header("x-origin").is_none(), "{what}: {r}");
}

#[test]
fn direct_response_answers_and_keeps_the_connection() {
    let (_dir, origin, proxy) = direct_setup("filters-direct");
    let mut c = Client::connect(proxy.addr("public"));

    assert_made(&c.get("/direct"), "GET");

    let r = c.request(&Request::new("HEAD", "/direct"));
    assert_eq!(r.status(), 201, "{r}");
    assert_eq!(
        r.headers_all("content-length"),
        vec!["5"],
        "HEAD gets GET's length: {r}"
    );
    assert_eq!(r.header("content-type"), Some("text/x-test"), "{r}");
    assert!(!r.has_token("connection", "close"), "{r}");
    // No body bytes after the HEAD answer: the next response parses.
    assert_made(&c.get("/direct/again"), "GET after HEAD");

    let r = c.get("/filter");
    assert_eq!(r.status(), 503, "{r}");
    assert_eq!(r.body_str(), "down", "{r}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{r}"
    );
    assert!(
        !r.has_token("connection", "close"),
        "a direct 503 is not an error: {r}"
    );

    let r = c.get("/empty");
    assert_eq!(r.status(), 202, "{r}");
    assert_eq!(r.headers_all("content-length"), vec!["0"], "{r}");
    assert!(r.header("content-type").is_none(), "{r}");
    assert!(r.body.is_empty(), "{r}");

    // A POST whose small body arrives with the head: the body is consumed,
    // not parsed as the next request (it looks like one).
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n";
    let r = c.request(&Request::post("/direct").body(smuggled));
    assert_made(&r, "POST with a body");
    assert_made(&c.get("/direct"), "GET after POST");
    match c.read_eof(Duration::from_millis(300)) {
        Eof::TimedOut => {}
        other => panic!("expected silence on the connection, got {other:?}"),
    }

    // Pipelined in one write: GET, then a POST with a body, then a GET.
    let mut three = Request::get("/direct").to_bytes();
    three.extend_from_slice(&Request::post("/direct").body(smuggled).to_bytes());
    three.extend_from_slice(&Request::get("/filter").to_bytes());
    c.send(&three);
    assert_made(&c.read_response(), "pipelined 1");
    assert_made(&c.read_response(), "pipelined 2 (POST)");
    let r = c.read_response();
    assert_eq!(r.status(), 503, "pipelined 3: {r}");
    match c.read_eof(Duration::from_millis(300)) {
        Eof::TimedOut => {}
        other => panic!("expected silence after the pipelined answers, got {other:?}"),
    }

    // The connection still forwards to the origin afterwards.
    let r = c.get("/to-origin");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-origin"), Some("origin"), "{r}");
    let targets: Vec<String> = origin.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        vec!["/to-origin"],
        "only the forwarded request reached the origin"
    );
}

#[test]
fn direct_response_closes_when_the_body_is_not_in_hand() {
    let (_dir, origin, proxy) = direct_setup("filters-direct-close");

    // Chunked body: answered, then closed (the body is not read).
    let mut c = Client::connect(proxy.addr("public"));
    let r = c.request(&Request::post("/direct").chunked(b"hello chunked body", &[5, 3]));
    assert_eq!(r.status(), 201, "{r}");
    assert_eq!(r.body_str(), "made\n", "{r}");
    assert!(r.has_token("connection", "close"), "{r}");
    c.assert_closed(Duration::from_secs(3), "after a chunked POST");

    // A declared body that has not arrived: answered without waiting, closed.
    let mut c = Client::connect(proxy.addr("public"));
    c.send(b"POST /filter HTTP/1.1\r\nHost: test.local\r\nContent-Length: 100\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status(), 503, "{r}");
    assert!(r.has_token("connection", "close"), "{r}");
    c.assert_closed(
        Duration::from_secs(3),
        "after a POST whose body was not sent",
    );

    // HTTP/1.0: kept only when asked for.
    let mut c = Client::connect(proxy.addr("public"));
    let r = c.request(
        &Request::get("/direct")
            .http10()
            .header("Connection", "keep-alive"),
    );
    assert_eq!(r.status(), 201, "{r}");
    assert!(r.has_token("connection", "keep-alive"), "{r}");
    let r = c.request(&Request::get("/direct").http10());
    assert_eq!(r.status(), 201, "{r}");
    assert!(r.has_token("connection", "close"), "{r}");
    c.assert_closed(Duration::from_secs(3), "after an HTTP/1.0 request");

    assert_eq!(
        origin.request_count(),
        0,
        "a local reply reached the origin"
    );
}

// ---------------------------------------------------------------------
// split
// ---------------------------------------------------------------------

const SPLIT_90_10: &str = r#"[{ cluster = "a", weight = 90 }, { cluster = "b", weight = 10 }]"#;
const SPLIT_50_50: &str = r#"[{ cluster = "a", weight = 50 }, { cluster = "b", weight = 50 }]"#;

/// One worker; clusters "a" and "b" (origins named so); routes
/// `/plain` 90/10, `/hdr` 50/50 by `x-user`, `/hdr90` 90/10 by `x-user`,
/// `/cookie` 50/50 by cookie `uid`.
fn split_config(a: &Origin, b: &Origin) -> Config {
    let by_header = r#"{ header = "X-User" }"#;
    let cfg = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/plain", "a", &[("split", SPLIT_90_10)])
        .route(
            "public",
            "/hdr90",
            "a",
            &[("split", SPLIT_90_10), ("split_by", by_header)],
        )
        .route(
            "public",
            "/hdr",
            "a",
            &[("split", SPLIT_50_50), ("split_by", by_header)],
        )
        .route(
            "public",
            "/cookie",
            "a",
            &[
                ("split", SPLIT_50_50),
                ("split_by", r#"{ cookie = "uid" }"#),
            ],
        )
        .cluster("a", &[a.addr()], &[])
        .cluster("b", &[b.addr()], &[]);
    (0..4).fold(cfg, without_cluster)
}

/// The origin ("a" or "b") that answered.
fn cluster_of(c: &mut Client, req: &Request) -> String {
    let r = c.request(req);
    assert_eq!(r.status(), 200, "{r}");
    r.header("x-origin")
        .unwrap_or_else(|| panic!("no x-origin: {r}"))
        .to_string()
}

fn count(picks: &[String], name: &str) -> usize {
    picks.iter().filter(|p| *p == name).count()
}

#[test]
fn split_is_exact_per_cycle_and_spread() {
    let dir = TestDir::new("filters-split");
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let proxy = Proxy::start(&dir, &split_config(&a, &b));
    let mut c = Client::connect(proxy.addr("public"));
    let mut picks = Vec::new();
    for i in 0..100 {
        picks.push(cluster_of(&mut c, &Request::get(&format!("/plain/{i}"))));
    }
    assert_eq!(
        (count(&picks, "a"), count(&picks, "b")),
        (90, 10),
        "{picks:?}"
    );
    assert!(
        picks.windows(2).all(|w| !(w[0] == "b" && w[1] == "b")),
        "the 10% share is not spread: {picks:?}"
    );
    // A second cycle, on new connections.
    for i in 100..200 {
        let mut c = Client::connect(proxy.addr("public"));
        picks.push(cluster_of(&mut c, &Request::get(&format!("/plain/{i}"))));
    }
    assert_eq!(
        (count(&picks, "a"), count(&picks, "b")),
        (180, 20),
        "{picks:?}"
    );
    assert_eq!((a.request_count(), b.request_count()), (180, 20));
}

/// Sends `make(key)` for each key (twice, and 20 times for the first two);
/// asserts each key always lands on one cluster and that both clusters are
/// used. Returns key → cluster.
fn assert_sticky(
    c: &mut Client,
    keys: &[String],
    make: &dyn Fn(&str) -> Request,
) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for round in 0..2 {
        for k in keys {
            let got = cluster_of(c, &make(k));
            let first = map.entry(k.clone()).or_insert_with(|| got.clone());
            assert_eq!(*first, got, "key {k:?} moved in round {round}");
        }
    }
    for k in &keys[..2] {
        for i in 0..20 {
            assert_eq!(cluster_of(c, &make(k)), map[k], "key {k:?}, repeat {i}");
        }
    }
    let on_a = map.values().filter(|v| *v == "a").count();
    assert!(
        on_a > 0 && on_a < keys.len(),
        "{} distinct keys all on one cluster: {map:?}",
        keys.len()
    );
    map
}

#[test]
fn split_by_header_is_sticky_and_stable() {
    let dir = TestDir::new("filters-split-header");
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let cfg = split_config(&a, &b);
    let proxy = Proxy::start(&dir, &cfg);
    let mut c = Client::connect(proxy.addr("public"));
    let keys: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let map = assert_sticky(&mut c, &keys, &|k| Request::get("/hdr").header("x-user", k));

    // The header name matches case-insensitively.
    for k in &keys[..10] {
        let got = cluster_of(&mut c, &Request::get("/hdr/x").header("X-USER", k));
        assert_eq!(got, map[k], "key {k:?} sent as X-USER");
    }

    // Without the header (or with an empty one), the weights hold, even
    // with sticky requests in between.
    let mut picks = Vec::new();
    for i in 0..100 {
        let req = if i % 2 == 0 {
            Request::get("/hdr90")
        } else {
            Request::get("/hdr90").header("x-user", "")
        };
        picks.push(cluster_of(&mut c, &req));
        cluster_of(
            &mut c,
            &Request::get("/hdr90").header("x-user", &format!("u{i}")),
        );
    }
    assert_eq!(
        (count(&picks, "a"), count(&picks, "b")),
        (90, 10),
        "{picks:?}"
    );

    // Another ringway process with the same weights maps keys the same way.
    let dir2 = TestDir::new("filters-split-header-2");
    let proxy2 = Proxy::start(&dir2, &cfg);
    let mut c2 = Client::connect(proxy2.addr("public"));
    for k in &keys {
        let got = cluster_of(&mut c2, &Request::get("/hdr").header("x-user", k));
        assert_eq!(got, map[k], "key {k:?} in a second process");
    }
}

#[test]
fn split_by_cookie_is_sticky() {
    let dir = TestDir::new("filters-split-cookie");
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let proxy = Proxy::start(&dir, &split_config(&a, &b));
    let mut c = Client::connect(proxy.addr("public"));
    let keys: Vec<String> = (0..40).map(|i| format!("u-{i}")).collect();
    let map = assert_sticky(&mut c, &keys, &|k| {
        Request::get("/cookie").header("Cookie", &format!("theme=dark; uid={k}; lang=en"))
    });
    // The cookie in a second Cookie field, or first in the list.
    for k in &keys[..10] {
        let got = cluster_of(
            &mut c,
            &Request::get("/cookie")
                .header("Cookie", "theme=dark")
                .header("Cookie", &format!("uid={k}")),
        );
        assert_eq!(got, map[k], "key {k:?} in a second Cookie field");
    }
    // No `uid` cookie (only one whose name ends with it): the weights hold.
    let mut picks = Vec::new();
    for _ in 0..100 {
        picks.push(cluster_of(
            &mut c,
            &Request::get("/cookie").header("Cookie", "xuid=u-3; theme=dark"),
        ));
    }
    assert_eq!(
        (count(&picks, "a"), count(&picks, "b")),
        (50, 50),
        "{picks:?}"
    );
}

// ---------------------------------------------------------------------
// config errors
// ---------------------------------------------------------------------

/// The 1-based number of the first line containing `needle`.
fn line_of(toml: &str, needle: &str) -> usize {
    toml.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in\n{toml}"))
        + 1
}

const CHECK_BASE: &str = r#"[[listener]]
name = "public"
address = "127.0.0.1:0"

[[cluster]]
name = "a"
endpoints = ["127.0.0.1:9"]

[[cluster]]
name = "b"
endpoints = ["127.0.0.1:10"]

[[route]]
listener = "public"
"#;

#[test]
fn check_reports_action_and_filter_errors() {
    let dir = TestDir::new("filters-check");
    // (route body, key path, text of the line the error points at, words
    // the message has)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "cluster = \"a\"\ndirect_response = { status = 200 }\n",
            "route[0]",
            "[[route]]",
            "cluster and direct_response",
        ),
        (
            "path_prefix = \"/\"\n",
            "route[0]",
            "[[route]]",
            "one action",
        ),
        (
            "split = [{ cluster = \"a\", weight = 1 }, { cluster = \"zz\", weight = 1 }]\n",
            "route[0].split[1].cluster",
            "split =",
            "zz",
        ),
        (
            "split = [{ cluster = \"a\", weight = 0 }, { cluster = \"b\", weight = 0 }]\n",
            "route[0].split",
            "split =",
            "weight",
        ),
        (
            "cluster = \"a\"\nsplit_by = { header = \"x-user\" }\n",
            "route[0].split_by",
            "split_by",
            "split",
        ),
        (
            "cluster = \"a\"\n\n[[route.filters]]\ntype = \"headers\"\nrequest_set = { \"Content-Length\" = \"5\" }\n",
            "route[0].filters[0].request_set.Content-Length",
            "request_set",
            "cannot be edited",
        ),
        (
            "cluster = \"a\"\nfilters = [{ type = \"headers\", response_remove = [\"transfer-encoding\"] }]\n",
            "route[0].filters[0].response_remove[0]",
            "filters =",
            "cannot be edited",
        ),
        (
            "cluster = \"a\"\n\n[[route.filters]]\ntype = \"gzip\"\n",
            "route[0].filters[0].type",
            "type = \"gzip\"",
            "gzip",
        ),
        (
            "cluster = \"a\"\n\n[[route.filters]]\ntype = \"headers\"\nresponse_add = { \"x-a\" = \"v-$nope\" }\n",
            "route[0].filters[0].response_add.x-a",
            "response_add",
            "$nope",
        ),
        (
            "cluster = \"a\"\nfilters = [{ type = \"headers\", request_set = { \"x-a\" = \"${route\" } }]\n",
            "route[0].filters[0].request_set.x-a",
            "filters =",
            "${",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (route, path, line_text, words)) in cases.iter().enumerate() {
        let toml = format!("{CHECK_BASE}{route}");
        let out = check(&dir, &format!("case-{i}.toml"), &toml);
        let line = line_of(&toml, line_text);
        let want = format!("error: {path} (line {line}): ");
        let ok = out.code() == Some(1)
            && out
                .all()
                .lines()
                .any(|l| l.starts_with(&want) && l[want.len()..].contains(words));
        if !ok || out.all().contains("panicked") {
            failures.push(format!(
                "case {i}: want `{want}…{words}…`, exit 1\n{out}\n--- config ---\n{toml}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // And the valid forms pass.
    let good = format!(
        "{CHECK_BASE}split = {SPLIT_90_10}\nsplit_by = {{ cookie = \"uid\" }}\n\n[[route.filters]]\ntype = \"headers\"\nrequest_set = {{ \"x-a\" = \"$client_ip ${{route}}-x $$ $var.sub\" }}\nresponse_remove = [\"server\"]\n\n[[route]]\nlistener = \"public\"\npath_prefix = \"/d\"\ndirect_response = {{ status = 204 }}\n"
    );
    let out = check(&dir, "good.toml", &good);
    assert_eq!(out.code(), Some(0), "{out}\n--- config ---\n{good}");
}
