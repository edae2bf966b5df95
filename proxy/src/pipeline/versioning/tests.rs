use std::net::SocketAddr;

use super::dates::{http_date, parse_rfc3339};
use super::select::{accept_version, parse_q, path_version, query_param};
use super::*;
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::context::FilterState;

#[derive(serde::Deserialize)]
struct RouteKeys {
    version_from: Option<VersionFromFile>,
    default_version: Option<String>,
    versions: Vec<VersionFile>,
}

fn build_from(text: &str) -> Result<Versioning, Vec<(String, String)>> {
    let k: RouteKeys = toml::from_str(text).expect("toml");
    let mut p = Vec::new();
    let mut cluster = |_: usize, name: &str| match name {
        "a" => Some(0),
        "b" => Some(1),
        _ => None,
    };
    let built = build(
        k.version_from.as_ref(),
        k.default_version.as_deref(),
        &k.versions,
        &mut cluster,
        &mut p,
    );
    match built {
        Some(v) if p.is_empty() => Ok(v),
        _ => Err(p),
    }
}

fn versioning(from: &str, extra: &str) -> Versioning {
    let text = format!(
        r#"
version_from = {from}
{extra}
versions = [
  {{ version = "1", cluster = "a", deprecated = {{ date = "2026-01-01T00:00:00Z", sunset = "2027-06-30T00:00:00Z", link = "https://docs.test/v1" }} }},
  {{ version = "2", cluster = "b", rewrite_prefix = {{ from = "/orders", to = "/api/orders" }} }},
]
"#
    );
    build_from(&text).expect("builds")
}

fn head(raw: &[u8]) -> RequestHead {
    let mut h = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut h).unwrap());
    h
}

/// Resolve `raw` against `v`: the cluster or the reply, and the state.
fn resolve(v: &Versioning, raw: &[u8]) -> (Result<usize, LocalReply>, FilterState) {
    // Every request gets a Host field after its request line.
    let line = raw.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let raw = [&raw[..line], b"Host: h.test\r\n", &raw[line..]].concat();
    let raw = &raw[..];
    let h = head(raw);
    let mut state = FilterState::default();
    let client: SocketAddr = "192.0.2.7:5555".parse().unwrap();
    let mut cx = RequestCx {
        buf: raw,
        head: &h,
        client,
        listener: "l",
        tls: None,
        route: "orders",
        request_id: b"rid",
        state: &mut state,
    };
    let r = v.resolve(&mut cx);
    (r, state)
}

fn problem(r: Result<usize, LocalReply>) -> (u16, serde_json::Value) {
    let reply = r.expect_err("expected a reply");
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/problem+json")
    );
    let body = serde_json::from_slice(reply.body.as_bytes()).unwrap();
    (reply.status, body)
}

#[test]
fn header_source_default_and_unknown() {
    let v = versioning(r#"{ header = "API-Version" }"#, r#"default_version = "2""#);
    let (r, s) = resolve(&v, b"GET /orders/7 HTTP/1.1\r\napi-version: 1\r\n\r\n");
    assert_eq!(r.unwrap(), 0);
    assert_eq!(s.target(), None);
    let (r, s) = resolve(&v, b"GET /orders/7?x=1 HTTP/1.1\r\n\r\n");
    assert_eq!(r.unwrap(), 1);
    assert_eq!(s.target(), Some(&b"/api/orders/7?x=1"[..]));
    let (r, _) = resolve(&v, b"GET /orders HTTP/1.1\r\nApi-Version: 9\r\n\r\n");
    let (status, body) = problem(r);
    assert_eq!(status, 400);
    assert_eq!(body["status"], 400);
    assert_eq!(body["title"], "Bad Request");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"9\"") && detail.contains("1, 2"),
        "{detail}"
    );
    assert_eq!(v.counts(), [("1", 1), ("2", 1)]);
}

#[test]
fn no_version_without_default_is_unknown() {
    let v = versioning(r#"{ query = "v" }"#, "");
    let (r, _) = resolve(&v, b"GET /orders?v= HTTP/1.1\r\n\r\n");
    let (status, body) = problem(r);
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("no API version"));
    let (r, _) = resolve(&v, b"GET /orders?a=1&v=2 HTTP/1.1\r\n\r\n");
    assert_eq!(r.unwrap(), 1);
}

#[test]
fn path_source_strips_and_rewrites() {
    let v = versioning(r#"{ path_prefix = true, strip = true }"#, "");
    let (r, s) = resolve(&v, b"GET /v1/orders/7?q=1 HTTP/1.1\r\n\r\n");
    assert_eq!(r.unwrap(), 0);
    assert_eq!(s.target(), Some(&b"/orders/7?q=1"[..]));
    // Strip, then the version's rewrite.
    let (r, s) = resolve(&v, b"GET /v2/orders HTTP/1.1\r\n\r\n");
    assert_eq!(r.unwrap(), 1);
    assert_eq!(s.target(), Some(&b"/api/orders"[..]));
    let (_, s) = resolve(&v, b"GET /v1 HTTP/1.1\r\n\r\n");
    assert_eq!(s.target(), Some(&b"/"[..]));
    let (r, _) = resolve(&v, b"GET /v3/orders HTTP/1.1\r\n\r\n");
    let (status, body) = problem(r);
    assert_eq!((status, body["title"].as_str()), (404, Some("Not Found")));
    // Without strip the segment is kept.
    let v = versioning(r#"{ path_prefix = true }"#, "");
    let (_, s) = resolve(&v, b"GET /v1/orders HTTP/1.1\r\n\r\n");
    assert_eq!(s.target(), None);
    assert_eq!(path_version(b"/v12/x"), Some((&b"12"[..], &b"/x"[..])));
    assert_eq!(path_version(b"/v"), None);
    assert_eq!(path_version(b"/orders"), None);
}

#[test]
fn accept_parsing() {
    let acc = |vals: &[&'static str]| {
        accept_version(vals.iter().map(|v| v.as_bytes()), b"application/vnd.acme")
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    };
    assert_eq!(acc(&["application/json; version=2"]).as_deref(), Some("2"));
    assert_eq!(
        acc(&["application/json;version=\"3\""]).as_deref(),
        Some("3")
    );
    assert_eq!(acc(&["application/vnd.acme.v2+json"]).as_deref(), Some("2"));
    assert_eq!(acc(&["Application/VND.Acme.v7"]).as_deref(), Some("7"));
    assert_eq!(acc(&["application/json", "text/html"]), None);
    // Highest quality wins; q=0 is refused; ties go to the first.
    assert_eq!(
        acc(&["application/vnd.acme.v1+json;q=0.5, application/vnd.acme.v2+json;q=0.9"]).as_deref(),
        Some("2")
    );
    assert_eq!(
        acc(&[
            "application/vnd.acme.v1+json;q=0",
            "application/json;version=2;q=0.1"
        ])
        .as_deref(),
        Some("2")
    );
    assert_eq!(
        acc(&["text/html, application/vnd.acme.v1+json, application/vnd.acme.v2+json"]).as_deref(),
        Some("1")
    );
    assert_eq!(acc(&["application/vnd.other.v1+json"]), None);
    assert_eq!(parse_q(b"0.5"), 500);
    assert_eq!(parse_q(b"1"), 1000);
    assert_eq!(parse_q(b"0"), 0);
    assert_eq!(parse_q(b"0.125"), 125);
    assert_eq!(parse_q(b"junk"), 1000);

    let v = versioning(r#"{ accept = "application/vnd.acme" }"#, "");
    let (r, _) = resolve(
        &v,
        b"GET /orders HTTP/1.1\r\nAccept: text/html\r\nAccept: application/vnd.acme.v2+json\r\n\r\n",
    );
    assert_eq!(r.unwrap(), 1);
    let (r, _) = resolve(
        &v,
        b"GET /orders HTTP/1.1\r\nAccept: application/json; version=5\r\n\r\n",
    );
    assert_eq!(problem(r).0, 400);
}

#[test]
fn query_param_parsing() {
    assert_eq!(query_param(b"v=2", b"v"), Some(&b"2"[..]));
    assert_eq!(query_param(b"vv=1&v=3", b"v"), Some(&b"3"[..]));
    assert_eq!(query_param(b"v&x=1", b"v"), None);
}

#[test]
fn deprecation_fields_on_the_response() {
    let v = versioning(r#"{ header = "api-version" }"#, "");
    let (r, s) = resolve(&v, b"GET /orders HTTP/1.1\r\napi-version: 1\r\n\r\n");
    assert_eq!(r.unwrap(), 0);
    assert_eq!(s.response.get(b"deprecation"), Some(&b"@1767225600"[..]));
    assert_eq!(
        s.response.get(b"sunset"),
        Some(&b"Wed, 30 Jun 2027 00:00:00 GMT"[..])
    );
    assert_eq!(
        s.response.get(b"link"),
        Some(&b"<https://docs.test/v1>; rel=\"deprecation\""[..])
    );
    let (_, s) = resolve(&v, b"GET /orders HTTP/1.1\r\napi-version: 2\r\n\r\n");
    assert!(s.response.is_empty());
    // No date: deprecated since ever (`@0`).
    let v = build_from(
        r#"
version_from = { header = "v" }
versions = [{ version = "1", cluster = "a", deprecated = { sunset_link = "https://d.test/s" } }]
"#,
    )
    .unwrap();
    assert_eq!(
        v.versions[0].deprecation,
        [
            (&b"Deprecation"[..], b"@0"[..].into()),
            (
                &b"Link"[..],
                b"<https://d.test/s>; rel=\"sunset\""[..].into()
            ),
        ]
    );
}

#[test]
fn dates() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(parse_rfc3339("2023-06-30T23:59:59Z"), Ok(1_688_169_599));
    assert_eq!(
        parse_rfc3339("2023-07-01T01:59:59+02:00"),
        Ok(1_688_169_599)
    );
    assert_eq!(parse_rfc3339("2023-06-30T23:59:59.250Z"), Ok(1_688_169_599));
    assert_eq!(parse_rfc3339("2024-02-29"), Ok(1_709_164_800));
    for bad in [
        "2023-02-29",
        "2023-13-01T00:00:00Z",
        "tomorrow",
        "1969-12-31",
        "2023-06-30T24:00:00Z",
        "2023-06-30 00:00",
    ] {
        assert!(parse_rfc3339(bad).is_err(), "{bad}");
    }
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

#[test]
fn config_problems() {
    let err = |text: &str| build_from(text).expect_err("expected problems");
    let keys = |p: Vec<(String, String)>| p.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    let p = err(r#"
version_from = { header = "v", query = "v" }
versions = [{ version = "1", cluster = "a" }]
"#);
    assert_eq!(p[0].0, "version_from");
    assert!(p[0].1.contains("header and query"), "{p:?}");
    let p = err(r#"
versions = [{ version = "1", cluster = "a" }]
"#);
    assert_eq!(keys(p), ["version_from"]);
    let p = err(r#"
version_from = { header = "v", strip = true }
versions = [{ version = "1", cluster = "a" }]
"#);
    assert_eq!(keys(p), ["version_from.strip"]);
    let p = err(r#"
version_from = { header = "v" }
default_version = "3"
versions = [
  { version = "1", cluster = "a", rewrite_prefix = { from = "x", to = "/y" } },
  { version = "1", cluster = "b", deprecated = { sunset = "soon", link = "<x>" } },
]
"#);
    assert_eq!(
        keys(p),
        [
            "versions[0].rewrite_prefix",
            "versions[1].version",
            "versions[1].deprecated.sunset",
            "versions[1].deprecated.link",
            "default_version"
        ]
    );
    // An unknown cluster is reported by the resolver; the build fails.
    assert!(build_from(
        r#"
version_from = { header = "v" }
versions = [{ version = "1", cluster = "nope" }]
"#
    )
    .is_err());
    let p = err(r#"
version_from = { accept = "json" }
versions = []
"#);
    assert_eq!(keys(p), ["version_from.accept", "versions"]);
}
