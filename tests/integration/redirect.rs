//! Redirects: the route action `redirect = {…}` and `type = "redirect"`.
//! A redirect never reaches the origin, keeps the connection, and never
//! reflects a Host that is not a plain authority.

use ringway_tests::certs::Ca;
use ringway_tests::client::{Client, Request, TlsOptions};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;
use ringway_tests::setup::Setup;

/// A route on `listener` for `prefix` whose action is `redirect = <table>`,
/// ahead of the config's other routes.
fn redirect_route(mut c: Config, listener: &str, prefix: &str, table: &str) -> Config {
    c.routes.insert(
        0,
        vec![
            ("listener".to_string(), q(listener)),
            ("path_prefix".to_string(), q(prefix)),
            ("redirect".to_string(), table.to_string()),
        ],
    );
    c
}

#[test]
fn http_to_https_route_action_keeps_the_connection() {
    let s = Setup::new("redirect-https", |c| {
        redirect_route(c, "public", "/shop", r#"{ scheme = "https" }"#)
    });
    let mut c = s.client();
    let r = c.request(&Request::get("/shop/cart?item=7&n=2").host("shop.test"));
    assert_eq!(r.status(), 301, "{r}");
    assert_eq!(
        r.header("location"),
        Some("https://shop.test/shop/cart?item=7&n=2"),
        "{r}"
    );
    assert_eq!(r.header("content-length"), Some("0"), "{r}");
    assert!(r.body.is_empty());
    assert!(!r.has_token("connection", "close"), "{r}");
    // The next request on the same socket is served (by the origin).
    let r = c.request(&Request::get("/other").host("shop.test"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(s.origin.request_count(), 1);
    assert_eq!(s.origin.last_request().unwrap().target, "/other");
    // The plain listener's port is not carried over to https; HEAD too.
    let r = c.request(&Request::new("HEAD", "/shop").host("shop.test:8080"));
    assert_eq!(r.status(), 301, "{r}");
    assert_eq!(r.header("location"), Some("https://shop.test/shop"), "{r}");
    assert_eq!(s.origin.request_count(), 1, "a redirect reached the origin");
}

#[test]
fn redirect_filter_with_prefix_status_and_host() {
    let s = Setup::new("redirect-filter", |c| {
        c.all_routes(
            "filters",
            r#"[{ type = "redirect", status = 308, host = "new.test", port = 8443, prefix = { from = "/old/", to = "/new/" }, strip_query = true }]"#,
        )
    });
    let mut c = s.client();
    let r = c.request(&Request::post("/old/page?utm=x").body("form=1"));
    assert_eq!(r.status(), 308, "{r}");
    assert_eq!(
        r.header("location"),
        Some("http://new.test:8443/new/page"),
        "{r}"
    );
    // The body was read: the connection goes on.
    let r = c.get("/elsewhere");
    assert_eq!(r.status(), 308, "{r}");
    assert_eq!(
        r.header("location"),
        Some("http://new.test:8443/elsewhere"),
        "{r}"
    );
    assert_eq!(s.origin.request_count(), 0, "a redirect reached the origin");
}

#[test]
fn absolute_form_targets_redirect_to_their_path() {
    let s = Setup::new("redirect-absolute", |c| {
        redirect_route(c, "public", "/", r#"{ scheme = "https" }"#)
    });
    let mut c = s.client();
    let r = c.request(&Request::get("http://abs.test/p/q?x=1").host("abs.test"));
    assert_eq!(r.status(), 301, "{r}");
    assert_eq!(
        r.header("location"),
        Some("https://abs.test/p/q?x=1"),
        "{r}"
    );
    let r = c.request(&Request::get("http://abs.test").host("abs.test"));
    assert_eq!(r.header("location"), Some("https://abs.test/"), "{r}");
    assert_eq!(s.origin.request_count(), 0);
}

#[test]
fn hosts_that_are_not_authorities_are_refused_not_reflected() {
    let s = Setup::new("redirect-injection", |c| {
        redirect_route(c, "public", "/", r#"{ scheme = "https" }"#)
    });
    for host in [
        "evil.test@good.test",
        "evil.test/x",
        "evil.test\\x",
        "a b.test",
        "",
        "good.test:99999",
    ] {
        let mut c = s.client();
        let raw = format!("GET /p HTTP/1.1\r\nHost: {host}\r\n\r\n");
        c.send(raw.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status(), 400, "Host {host:?}: {r}");
        assert!(
            r.header("location").is_none(),
            "Host {host:?} reflected: {r}"
        );
    }
    // A header break in the Host or the target never makes it into a field.
    for raw in [
        "GET /p HTTP/1.1\r\nHost: a.test\rSet-Cookie: x=1\r\n\r\n",
        "GET /p\rSet-Cookie:x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n",
    ] {
        let mut c = s.client();
        c.send(raw.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status(), 400, "{raw:?}: {r}");
        assert!(r.header("set-cookie").is_none(), "{r}");
    }
    // Encoded CR LF in the path stays encoded.
    let mut c = s.client();
    let r = c.request(&Request::get("/a%0d%0aSet-Cookie:%20x=1").host("a.test"));
    assert_eq!(r.status(), 301, "{r}");
    assert_eq!(
        r.header("location"),
        Some("https://a.test/a%0d%0aSet-Cookie:%20x=1"),
        "{r}"
    );
    assert!(r.header("set-cookie").is_none(), "{r}");
    // HTTP/1.0 with a Host is redirected; without one there is nothing to
    // redirect to.
    let mut c = s.client();
    let r = c.request(&Request::get("/p").http10().host("h10.test"));
    assert_eq!(r.status(), 301, "{r}");
    assert_eq!(r.header("location"), Some("https://h10.test/p"), "{r}");
    let mut c = s.client();
    c.send(b"GET /p HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status(), 400, "{r}");
    assert_eq!(s.origin.request_count(), 0);
}

#[test]
fn the_scheme_defaults_to_https_on_a_tls_listener() {
    let dir = TestDir::new("redirect-tls");
    let ca = Ca::new("ringway test CA");
    ca.issue(&["a.test"]).write(dir.path(), "srv");
    let origin = Origin::start();
    let config = Config::new()
        .listener_with(
            "secure",
            &[("tls", r#"{ cert = "srv.pem", key = "srv.key" }"#)],
        )
        .route("secure", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let config = redirect_route(
        config,
        "secure",
        "/login",
        r#"{ path = "/sso/start", status = 302 }"#,
    );
    let proxy = Proxy::start(&dir, &config);
    let tls = TlsOptions::new("a.test", ca.cert_der());
    let mut c = Client::connect_tls(proxy.addr("secure"), &tls);
    let r = c.request(&Request::get("/login?next=%2Fhome").host("a.test:8443"));
    assert_eq!(r.status(), 302, "{r}");
    assert_eq!(
        r.header("location"),
        Some("https://a.test:8443/sso/start?next=%2Fhome"),
        "{r}"
    );
    let r = c.request(&Request::get("/app").host("a.test"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(origin.request_count(), 1);
}
