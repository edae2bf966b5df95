//! `type = "redirect"`: config checks, the `Location` it builds, and the
//! Host values it refuses to reflect.

use super::filter::parse_authority;
use crate::error::ErrorKind;
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{Filter, FilterFile, FilterState, Flow, RequestCx, TlsFacts};

fn filter(toml_text: &str) -> Result<Filter, Vec<(String, String)>> {
    let f: FilterFile = toml::from_str(toml_text).expect("filter parses");
    let mut p = Vec::new();
    match f.build(&mut p) {
        Some(f) if p.is_empty() => Ok(f),
        _ => Err(p),
    }
}

fn redirect(keys: &str) -> Filter {
    filter(&format!("type = \"redirect\"\n{keys}")).unwrap()
}

fn problems(keys: &str) -> Vec<(String, String)> {
    filter(&format!("type = \"redirect\"\n{keys}")).expect_err("expected problems")
}

/// Run `f` on a raw request head; the flow and the `Location` set.
fn run_raw(f: &Filter, raw: &[u8], tls: bool) -> (Flow, Option<String>) {
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut head).unwrap());
    let facts = TlsFacts::default();
    let mut state = FilterState::default();
    let mut cx = RequestCx {
        buf: raw,
        head: &head,
        client: "192.0.2.1:1000".parse().unwrap(),
        listener: "l",
        tls: tls.then_some(&facts),
        route: "r",
        request_id: b"",
        state: &mut state,
    };
    let flow = f.on_request(&mut cx);
    let loc = state
        .response
        .get(b"location")
        .map(|v| String::from_utf8(v.to_vec()).unwrap());
    (flow, loc)
}

fn location(f: &Filter, target: &str, host: &str, tls: bool) -> String {
    let raw = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let (flow, loc) = run_raw(f, raw.as_bytes(), tls);
    let Flow::Respond(reply) = flow else {
        panic!("expected a redirect, got {flow:?}")
    };
    assert!(reply.body.as_bytes().is_empty());
    assert!((301..=308).contains(&reply.status));
    loc.expect("a Location")
}

fn status_of(flow: &Flow) -> u16 {
    match flow {
        Flow::Respond(r) => r.status,
        Flow::Reject(e) => e.status().unwrap(),
        Flow::Continue => 0,
    }
}

#[test]
fn http_to_https_keeps_host_path_and_query() {
    let f = redirect(r#"scheme = "https""#);
    assert_eq!(
        location(&f, "/a/b?x=1&y=2", "shop.test", false),
        "https://shop.test/a/b?x=1&y=2"
    );
    // The scheme changes: the plain listener's port is not carried over.
    assert_eq!(
        location(&f, "/", "shop.test:8080", false),
        "https://shop.test/"
    );
    let raw = b"GET /p HTTP/1.1\r\nHost: shop.test\r\n\r\n";
    let (flow, _) = run_raw(&f, raw, false);
    assert_eq!(status_of(&flow), 301);
}

#[test]
fn the_scheme_defaults_to_the_listeners() {
    let f = redirect(r#"path = "/login""#);
    assert_eq!(
        location(&f, "/x?q", "a.test", false),
        "http://a.test/login?q"
    );
    assert_eq!(
        location(&f, "/x?q", "a.test", true),
        "https://a.test/login?q"
    );
    // Same scheme: the request's port stays (unless it is the default).
    assert_eq!(
        location(&f, "/x", "a.test:8443", true),
        "https://a.test:8443/login"
    );
    assert_eq!(
        location(&f, "/x", "a.test:443", true),
        "https://a.test/login"
    );
    assert_eq!(
        location(&f, "/x", "[2001:db8::1]:8080", false),
        "http://[2001:db8::1]:8080/login"
    );
}

#[test]
fn host_port_prefix_status_and_strip_query() {
    let f = redirect(
        r#"status = 308
host = "WWW.Example.COM"
port = 8443
scheme = "https"
prefix = { from = "/old/", to = "/new/" }
strip_query = true"#,
    );
    assert_eq!(
        location(&f, "/old/page?utm=1", "evil.test", false),
        "https://www.example.com:8443/new/page"
    );
    // Not under the prefix: the path is kept.
    assert_eq!(
        location(&f, "/other", "x.test", false),
        "https://www.example.com:8443/other"
    );
    let (flow, _) = run_raw(&f, b"GET /old/ HTTP/1.1\r\nHost: a\r\n\r\n", false);
    assert_eq!(status_of(&flow), 308);
    // The default port of the scheme is omitted.
    let f = redirect(
        r#"scheme = "http"
port = 80"#,
    );
    assert_eq!(location(&f, "/", "a.test:9000", false), "http://a.test/");
    let f = redirect("port = 9000");
    assert_eq!(
        location(&f, "/", "a.test:8000", false),
        "http://a.test:9000/"
    );
}

#[test]
fn absolute_form_targets_give_their_path_and_query() {
    let f = redirect(r#"scheme = "https""#);
    assert_eq!(
        location(&f, "http://a.test/p/q?x=1#frag", "a.test", false),
        "https://a.test/p/q?x=1"
    );
    assert_eq!(
        location(&f, "http://a.test", "a.test", false),
        "https://a.test/"
    );
}

#[test]
fn a_host_that_is_not_an_authority_is_refused() {
    let f = redirect(r#"scheme = "https""#);
    // Values the HTTP parser lets through but a Location must not carry
    // (or that the parser would refuse: the filter must hold on its own).
    for host in [
        "",
        "evil.test@good.test",
        "good.test%2fevil",
        "a b",
        "evil.test/path",
        "evil.test\\x",
        "a.test:99999",
        "a.test:0",
        "a.test:80:80",
        "[::1",
        "[nothex]",
    ] {
        let mut raw = b"GET /p HTTP/1.1\r\nHost: ".to_vec();
        raw.extend_from_slice(host.as_bytes());
        raw.extend_from_slice(b"\r\n\r\n");
        let mut head = RequestHead::default();
        let limits = HeadLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        };
        if !matches!(parse_request_head(&raw, &limits, &mut head), Ok(true)) {
            // Refused by the parser already (400 before any filter); the
            // filter's own check is covered by `parse_authority` below.
            assert!(parse_authority(host.as_bytes()).is_none(), "{host:?}");
            continue;
        }
        let (flow, loc) = run_raw(&f, &raw, false);
        assert_eq!(status_of(&flow), 400, "{host:?}");
        assert!(loc.is_none(), "{host:?} reflected: {loc:?}");
    }
    for host in [
        "evil.test@good.test",
        "a/b",
        "a\\b",
        "a b",
        "a\r\nSet-Cookie: x=1",
        "a\0",
        "a%2e",
        "a.test:",
        "[::1]x",
    ] {
        if host == "a.test:" {
            assert_eq!(
                parse_authority(host.as_bytes()),
                Some((&b"a.test"[..], None))
            );
        } else {
            assert!(parse_authority(host.as_bytes()).is_none(), "{host:?}");
        }
    }
    let long = "a".repeat(super::filter::MAX_AUTHORITY + 1);
    assert!(parse_authority(long.as_bytes()).is_none());
    // HTTP/1.0 without Host: nothing to redirect to.
    let (flow, loc) = run_raw(&f, b"GET /p HTTP/1.0\r\n\r\n", false);
    assert!(matches!(&flow, Flow::Reject(e) if matches!(e.kind, ErrorKind::BadRequest(_))));
    assert!(loc.is_none());
    // With a configured host the request's Host does not matter.
    let f = redirect(r#"host = "good.test""#);
    let (flow, loc) = run_raw(&f, b"GET /p HTTP/1.0\r\n\r\n", false);
    assert_eq!(status_of(&flow), 301);
    assert_eq!(loc.as_deref(), Some("http://good.test/p"));
}

#[test]
fn a_star_target_is_refused_unless_the_path_is_fixed() {
    let raw = b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let (flow, _) = run_raw(&redirect(r#"scheme = "https""#), raw, false);
    assert_eq!(status_of(&flow), 400);
    let (flow, loc) = run_raw(&redirect(r#"path = "/""#), raw, false);
    assert_eq!(status_of(&flow), 301);
    assert_eq!(loc.as_deref(), Some("http://a.test/"));
}

#[test]
fn bad_redirect_files_name_their_keys() {
    let p = problems(
        r#"status = 200
scheme = "ftp"
host = "a.test:80"
port = 70000"#,
    );
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["status", "scheme", "host", "port"], "{p:?}");
    let p = problems(r#"host = "evil.test/x""#);
    assert_eq!(p[0].0, "host");
    let p = problems(r#"host = "a@b""#);
    assert_eq!(p[0].0, "host");
    let p = problems(
        r#"path = "/a"
prefix = { from = "/b", to = "/c" }"#,
    );
    assert!(p[0].1.contains("not both"), "{p:?}");
    let p = problems(r#"path = "no-slash""#);
    assert_eq!(p[0].0, "path");
    let p = problems(r#"path = "/a?b""#);
    assert_eq!(p[0].0, "path");
    let p = problems(r#"prefix = { from = "/b", to = "c" }"#);
    assert_eq!(p[0].0, "prefix.to");
    let p = problems("strip_query = true");
    assert!(p[0].1.contains("at least one of"), "{p:?}");
    let bad: Result<FilterFile, _> = toml::from_str("type = \"redirect\"\nlocation = \"x\"");
    assert!(bad.is_err());
}
