//! CORS: config checks, origin rules, preflight and actual requests.

use std::net::SocketAddr;

use super::filter::OriginRule;
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{Filter, FilterFile, FilterState, Flow, RequestCx};

fn build(toml_filter: &str) -> Result<Filter, Vec<(String, String)>> {
    #[derive(serde::Deserialize)]
    struct F {
        filters: Vec<FilterFile>,
    }
    let f: F = toml::from_str(&format!("[[filters]]\ntype = \"cors\"\n{toml_filter}"))
        .map_err(|e| vec![(String::from("toml"), e.to_string())])?;
    let mut p = Vec::new();
    let built = f.filters[0].build(&mut p);
    match built {
        Some(b) if p.is_empty() => Ok(b),
        _ => Err(p),
    }
}

/// Run the request phase of `filter` on `raw`: the flow and the response
/// fields recorded, as `name: value` lines.
fn run(filter: &Filter, raw: &str) -> (Flow, Vec<String>) {
    let raw = raw.replace('\n', "\r\n") + "\r\n";
    let mut h = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw.as_bytes(), &limits, &mut h).unwrap());
    let mut state = FilterState::default();
    let client: SocketAddr = "192.0.2.7:5555".parse().unwrap();
    let mut cx = RequestCx {
        buf: raw.as_bytes(),
        head: &h,
        client,
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"rid",
        state: &mut state,
    };
    let flow = filter.on_request(&mut cx);
    let fields = state
        .response
        .fields()
        .map(|(n, v)| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    (flow, fields)
}

fn status(flow: &Flow) -> Option<u16> {
    match flow {
        Flow::Respond(r) => Some(r.status),
        _ => None,
    }
}

const PREFLIGHT: &str = "OPTIONS /api HTTP/1.1\nHost: api.test\nOrigin: https://app.example.com\nAccess-Control-Request-Method: PUT\nAccess-Control-Request-Headers: Content-Type, X-Api-Key\n";

#[test]
fn preflight_allowed_is_answered_with_every_field() {
    let f = build(
        r#"allow_origins = ["https://app.example.com"]
allow_methods = ["GET", "PUT"]
allow_headers = ["content-type", "x-api-key"]
allow_credentials = true
max_age = "10m""#,
    )
    .unwrap();
    let (flow, fields) = run(&f, PREFLIGHT);
    assert_eq!(status(&flow), Some(204));
    assert_eq!(
        fields,
        [
            "Access-Control-Allow-Origin: https://app.example.com",
            "Access-Control-Allow-Methods: GET, PUT",
            "Access-Control-Allow-Headers: content-type, x-api-key",
            "Access-Control-Max-Age: 600",
            "Access-Control-Allow-Credentials: true",
            "Vary: Origin",
        ]
    );
}

#[test]
fn preflight_refused_for_origin_method_or_header() {
    let f = build(
        r#"allow_origins = ["https://app.example.com"]
allow_methods = ["PUT"]
allow_headers = ["content-type"]"#,
    )
    .unwrap();
    // x-api-key is not allowed.
    let (flow, fields) = run(&f, PREFLIGHT);
    assert_eq!(status(&flow), Some(403));
    assert!(fields.is_empty(), "{fields:?}");
    let other = PREFLIGHT.replace("app.example.com", "evil.test");
    let f = build(
        r#"allow_origins = ["https://app.example.com"]
allow_methods = ["PUT"]
allow_headers = ["content-type", "X-API-KEY"]"#,
    )
    .unwrap();
    assert_eq!(status(&run(&f, PREFLIGHT).0), Some(204));
    let (flow, fields) = run(&f, &other);
    assert_eq!(status(&flow), Some(403));
    assert!(fields.is_empty());
    let delete = PREFLIGHT.replace("Method: PUT", "Method: DELETE");
    assert_eq!(status(&run(&f, &delete).0), Some(403));
    // Methods compare case-sensitively (as browsers do).
    let lower = PREFLIGHT.replace("Method: PUT", "Method: put");
    assert_eq!(status(&run(&f, &lower).0), Some(403));
}

#[test]
fn default_methods_and_any_header() {
    let f = build(
        r#"allow_origins = ["*"]
allow_headers = ["*"]"#,
    )
    .unwrap();
    let get = PREFLIGHT.replace("Method: PUT", "Method: GET");
    let (flow, fields) = run(&f, &get);
    assert_eq!(status(&flow), Some(204));
    assert_eq!(
        fields,
        [
            "Access-Control-Allow-Origin: *",
            "Access-Control-Allow-Methods: GET, HEAD, POST",
            "Access-Control-Allow-Headers: Content-Type, X-Api-Key",
        ]
    );
    assert_eq!(status(&run(&f, PREFLIGHT).0), Some(403), "PUT not allowed");
}

#[test]
fn actual_request_gets_fields_only_for_allowed_origins() {
    let f = build(
        r#"allow_origins = ["https://app.example.com", "*.partner.test"]
expose_headers = ["x-request-id", "x-total"]
allow_credentials = true"#,
    )
    .unwrap();
    let get = "GET /x HTTP/1.1\nHost: api.test\nOrigin: https://app.example.com\n";
    let (flow, fields) = run(&f, get);
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(
        fields,
        [
            "Access-Control-Allow-Origin: https://app.example.com",
            "Access-Control-Allow-Credentials: true",
            "Access-Control-Expose-Headers: x-request-id, x-total",
            "Vary: Origin",
        ]
    );
    let sub = get.replace("https://app.example.com", "http://a.b.partner.test:8080");
    let (_, fields) = run(&f, &sub);
    assert_eq!(
        fields[0],
        "Access-Control-Allow-Origin: http://a.b.partner.test:8080"
    );
    for bad in [
        "https://evil.test",
        "https://partner.test",
        "https://evilpartner.test",
        "https://app.example.com.evil.test",
        "https://x.partner.test/path",
        "null",
    ] {
        let (flow, fields) = run(&f, &get.replace("https://app.example.com", bad));
        assert!(matches!(flow, Flow::Continue), "{bad}");
        assert!(fields.is_empty(), "{bad}: {fields:?}");
    }
    // No Origin: untouched. OPTIONS without Access-Control-Request-Method
    // is an actual request.
    let (flow, fields) = run(&f, "GET / HTTP/1.1\nHost: a\n");
    assert!(matches!(flow, Flow::Continue) && fields.is_empty());
    let opts = "OPTIONS / HTTP/1.1\nHost: a\nOrigin: https://app.example.com\n";
    let (flow, fields) = run(&f, opts);
    assert!(matches!(flow, Flow::Continue) && fields.len() == 4);
    // Two Origin fields: neither is trusted.
    let two = format!("{get}Origin: https://evil.test\n");
    assert!(run(&f, &two).1.is_empty());
}

#[test]
fn origin_rules() {
    use super::config::parse_origin_rule as p;
    assert_eq!(p("*"), Ok(None));
    assert_eq!(
        p("HTTPS://App.Example.com:8443"),
        Ok(Some(OriginRule::Exact(
            "https://app.example.com:8443".into()
        )))
    );
    let https_only = p("https://*.example.com").unwrap().unwrap();
    assert!(https_only.matches("https://a.example.com"));
    assert!(!https_only.matches("http://a.example.com"));
    assert!(!https_only.matches("https://example.com"));
    let any = p("*.example.com").unwrap().unwrap();
    assert!(any.matches("http://A.EXAMPLE.com:81"));
    assert!(!any.matches("a.example.com"));
    assert!(!any.matches("https://a.example.com:x"));
    assert!(!any.matches("https://user@a.example.com"));
    for bad in [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/x",
        "https://",
        "null",
        "*.",
        "1http://a",
        "https://a.test:99999999",
    ] {
        assert!(p(bad).is_err(), "{bad}");
    }
}

#[test]
fn config_errors_name_their_keys() {
    let e = build(
        r#"allow_origins = ["*"]
allow_credentials = true"#,
    )
    .unwrap_err();
    assert_eq!(e[0].0, "allow_origins");
    assert!(e[0].1.contains("allow_credentials"), "{e:?}");
    let e = build(r#"allow_origins = ["https://a.test", "a.test"]"#).unwrap_err();
    assert_eq!(e[0].0, "allow_origins[1]");
    let e = build(r#"allow_origins = []"#).unwrap_err();
    assert_eq!(e[0].0, "allow_origins");
    let e = build(
        r#"allow_origins = ["*"]
allow_headers = ["x ok"]"#,
    )
    .unwrap_err();
    assert_eq!(e[0].0, "allow_headers[0]");
    let e = build(
        r#"allow_origins = ["*"]
max_age = "1500ms""#,
    )
    .unwrap_err();
    assert_eq!(e[0].0, "max_age");
    let e = build(
        r#"allow_origins = ["*"]
max_age = -1"#,
    )
    .unwrap_err();
    assert_eq!(e[0].0, "max_age");
    let e = build(
        r#"allow_origins = ["*"]
allow_methods = []"#,
    )
    .unwrap_err();
    assert_eq!(e[0].0, "allow_methods");
    let e = build(
        r#"allow_origins = ["*"]
allow_origin = ["*"]"#,
    )
    .unwrap_err();
    assert!(e[0].1.contains("unknown field"), "{e:?}");
    // Integer seconds are accepted for max_age.
    let f = build(
        r#"allow_origins = ["https://a.test"]
max_age = 600"#,
    )
    .unwrap();
    let pre = PREFLIGHT
        .replace("https://app.example.com", "https://a.test")
        .replace("Method: PUT", "Method: POST")
        .replace(
            "Access-Control-Request-Headers: Content-Type, X-Api-Key\n",
            "",
        );
    let (flow, fields) = run(&f, &pre);
    assert_eq!(status(&flow), Some(204));
    assert!(
        fields.contains(&"Access-Control-Max-Age: 600".to_string()),
        "{fields:?}"
    );
    assert!(!fields
        .iter()
        .any(|f| f.starts_with("Access-Control-Allow-Headers")));
}
