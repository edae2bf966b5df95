use std::time::Duration;

use super::run::Answer;
use super::template::{json_field, query_value, Names, Source, Template, Value};
use super::*;
use crate::http::HeaderEdits;

#[derive(serde::Deserialize)]
struct RouteKeys {
    path_regex: Option<String>,
    aggregate: AggregateFile,
}

fn build_from(text: &str) -> Result<Aggregation, Vec<(String, String)>> {
    let k: RouteKeys = toml::from_str(text).expect("toml");
    let mut p = Vec::new();
    let mut cluster = |_: usize, name: &str| match name {
        "users" => Some(0),
        "orders" => Some(1),
        _ => None,
    };
    let built = build(
        &k.aggregate,
        k.path_regex.as_deref(),
        Duration::from_secs(30),
        &mut cluster,
        &mut p,
    );
    match built {
        Some(a) if p.is_empty() => Ok(a),
        _ => Err(p),
    }
}

fn errors(text: &str) -> Vec<(String, String)> {
    match build_from(text) {
        Ok(_) => panic!("expected errors for {text}"),
        Err(p) => p,
    }
}

fn has_error(p: &[(String, String)], key: &str, needle: &str) -> bool {
    p.iter().any(|(k, m)| k == key && m.contains(needle))
}

const DASH: &str = r#"
path_regex = "^/dash/(?P<id>[0-9]+)/([a-z]+)$"
aggregate = { policy = "partial", deadline = "2s", max_leg_bytes = "4KiB", legs = [
  { name = "user", cluster = "users", path = "/users/{id}", timeout = "1s", headers = ["Authorization"] },
  { name = "orders", cluster = "orders", path = "/orders?user={user.id}&limit={query.limit}&k={2}" },
] }
"#;

#[test]
fn builds_the_documented_shape() {
    let a = build_from(DASH).expect("builds");
    assert_eq!(a.policy, Policy::Partial);
    assert_eq!(a.deadline, Duration::from_secs(2));
    assert_eq!(a.max_leg_bytes, 4096);
    assert_eq!(a.legs.len(), 2);
    let (user, orders) = (&a.legs[0], &a.legs[1]);
    assert_eq!(user.timeout, Duration::from_secs(1));
    // A leg without `timeout` gets the deadline.
    assert_eq!(orders.timeout, Duration::from_secs(2));
    assert_eq!(&*user.method, b"GET");
    assert_eq!(user.headers, vec![Box::<[u8]>::from(&b"authorization"[..])]);
    assert!(user.deps.is_empty() && user.referenced);
    assert_eq!(orders.deps, vec![0]);
    assert!(!orders.referenced);
    assert_eq!(&*user.key_json, br#""user":"#);
    assert_eq!(a.clusters(), vec![0, 1]);
    assert!(a.captures.is_some());
}

#[test]
fn defaults() {
    let a =
        build_from(r#"aggregate = { legs = [ { name = "a", cluster = "users", path = "/a" } ] }"#)
            .unwrap();
    assert_eq!(a.policy, Policy::All);
    // The deadline defaults to the route's timeout.
    assert_eq!(a.deadline, Duration::from_secs(30));
    assert_eq!(a.max_leg_bytes, 1024 * 1024);
    // No capture is used: the regex is not kept.
    assert!(a.captures.is_none());
}

#[test]
fn config_errors_name_the_key() {
    let p = errors(
        r#"
path_regex = "^/dash/(?P<id>[0-9]+)$"
aggregate = { policy = "most", deadline = "0s", max_leg_bytes = "0", legs = [
  { name = "user", cluster = "users", path = "/users/{usr}", method = "G T" },
  { name = "user", cluster = "nope", path = "/x/{usr.id}", headers = ["host", "x-a", "X-A", "bad name"] },
  { name = "query", cluster = "users", path = "no-slash" },
  { name = "a b", cluster = "users", path = "/a b" },
] }
"#,
    );
    assert!(has_error(&p, "policy", "\"all\" or \"partial\""), "{p:?}");
    assert!(has_error(&p, "deadline", "greater than zero"), "{p:?}");
    assert!(has_error(&p, "max_leg_bytes", "1..=64MiB"), "{p:?}");
    assert!(
        has_error(
            &p,
            "legs[0].path",
            "unknown placeholder {usr}: named captures are id"
        ),
        "{p:?}"
    );
    assert!(
        has_error(&p, "legs[0].method", "not a valid method"),
        "{p:?}"
    );
    assert!(has_error(&p, "legs[1].name", "duplicate leg name"), "{p:?}");
    assert!(
        has_error(
            &p,
            "legs[1].path",
            "unknown placeholder {usr.id}: no leg named \"usr\""
        ),
        "{p:?}"
    );
    assert!(
        has_error(&p, "legs[1].headers[0]", "written by ringway"),
        "{p:?}"
    );
    assert!(
        has_error(&p, "legs[1].headers[2]", "duplicate header"),
        "{p:?}"
    );
    assert!(
        has_error(&p, "legs[1].headers[3]", "not a valid header name"),
        "{p:?}"
    );
    assert!(has_error(&p, "legs[2].name", "reserved"), "{p:?}");
    assert!(
        has_error(&p, "legs[2].path", "must start with `/`"),
        "{p:?}"
    );
    assert!(has_error(&p, "legs[3].name", "letters, digits"), "{p:?}");
    assert!(
        has_error(&p, "legs[3].path", "not allowed in a path"),
        "{p:?}"
    );
}

#[test]
fn empty_legs_and_captures_without_regex() {
    let p = errors("aggregate = { }");
    assert!(has_error(&p, "legs", "at least one"), "{p:?}");
    let p =
        errors(r#"aggregate = { legs = [ { name = "a", cluster = "users", path = "/a/{id}" } ] }"#);
    assert!(
        has_error(&p, "legs[0].path", "need a `path_regex`"),
        "{p:?}"
    );
    let p = errors(
        r#"
path_regex = "^/d/([0-9]+)$"
aggregate = { legs = [ { name = "a", cluster = "users", path = "/a/{2}" } ] }"#,
    );
    assert!(
        has_error(&p, "legs[0].path", "has 1 capture group(s)"),
        "{p:?}"
    );
}

#[test]
fn one_level_of_dependency_only() {
    let p = errors(
        r#"aggregate = { legs = [
  { name = "a", cluster = "users", path = "/a" },
  { name = "b", cluster = "users", path = "/b/{a.id}" },
  { name = "c", cluster = "users", path = "/c/{b.id}" },
  { name = "d", cluster = "users", path = "/d/{d.id}" },
] }"#,
    );
    assert!(
        has_error(&p, "legs[2].path", "only one level of dependency"),
        "{p:?}"
    );
    assert!(has_error(&p, "legs[3].path", "its own answer"), "{p:?}");
    // A cycle is two levels at least.
    let p = errors(
        r#"aggregate = { legs = [
  { name = "a", cluster = "users", path = "/a/{b.id}" },
  { name = "b", cluster = "users", path = "/b/{a.id}" },
] }"#,
    );
    assert!(has_error(&p, "legs[0].path", "only one level"), "{p:?}");
    assert!(has_error(&p, "legs[1].path", "only one level"), "{p:?}");
}

#[test]
fn unknown_keys_are_refused() {
    let r: Result<RouteKeys, _> = toml::from_str(
        r#"aggregate = { legs = [ { name = "a", cluster = "users", path = "/a", retries = 2 } ] }"#,
    );
    assert!(r
        .err()
        .unwrap()
        .to_string()
        .contains("unknown field `retries`"));
    let r: Result<RouteKeys, _> = toml::from_str(r#"aggregate = { legz = [] }"#);
    assert!(r
        .err()
        .unwrap()
        .to_string()
        .contains("unknown field `legz`"));
}

fn names<'a>(caps: Option<Vec<Option<&'a str>>>, legs: &'a [&'a str]) -> Names<'a> {
    Names {
        captures: caps,
        legs,
    }
}

#[test]
fn template_syntax() {
    let n = names(Some(vec![None, Some("id")]), &["user"]);
    assert!(Template::parse("/a/{id}/b", &n).is_ok());
    assert!(Template::parse("/a/{1}", &n).is_ok());
    let err = |t: &str| Template::parse(t, &n).unwrap_err();
    assert!(err("/a/{id").contains("unclosed"));
    assert!(err("/a/id}").contains("unbalanced"));
    assert!(err("/a/{{id}}").contains("unclosed"));
    assert!(err("/a/{}").contains("empty placeholder"));
    assert!(err("/a/{0}").contains("numbered from 1"));
    assert!(err("/a/{user.}").contains("empty field name"));
    assert!(err("/a/{query.}").contains("not a valid query parameter name"));
    assert!(err("/a#frag").contains("not allowed"));
    assert!(err("/a\u{e9}").contains("not allowed"));
    let t = Template::parse("/x/{user.profile.0.id}?q={query.q}", &n).unwrap();
    let sources: Vec<&Source> = t.sources().collect();
    assert_eq!(
        sources,
        vec![
            &Source::Field {
                leg: 0,
                path: vec!["profile".into(), "0".into(), "id".into()]
            },
            &Source::Query(b"q"[..].into()),
        ]
    );
}

fn render(t: &Template, v: impl Fn(&Source) -> Option<Value<'static>>) -> Result<String, String> {
    let mut out = Vec::new();
    t.render(&mut out, v)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn values_are_percent_encoded() {
    let n = names(Some(vec![None, Some("id")]), &["user"]);
    let t = Template::parse("/u/{id}?x={query.x}&f={user.name}", &n).unwrap();
    let got = render(&t, |s| match s {
        Source::Named(_) => Some(Value::Request {
            raw: b"a%2Fb c/d%0d%0a%zz",
            keep_plus: false,
        }),
        Source::Query(_) => Some(Value::Request {
            raw: b"1+2%26x=y",
            keep_plus: true,
        }),
        Source::Field { .. } => Some(Value::Plain(b"../x?y#z\r\n%41"[..].into())),
        Source::Index(_) => None,
    })
    .unwrap();
    assert_eq!(
        got,
        "/u/a%2Fb%20c%2Fd%0D%0A%25zz?x=1+2%26x%3Dy&f=..%2Fx%3Fy%23z%0D%0A%2541"
    );
}

#[test]
fn dot_segments_and_empty_values_never_reach_a_leg_path() {
    let n = names(Some(vec![None, Some("id")]), &["user"]);
    let t = Template::parse("/users/{id}/profile?q={query.q}", &n).unwrap();
    let value = |id: &'static [u8], q: &'static [u8]| {
        move |s: &Source| match s {
            Source::Named(_) => Some(Value::Request {
                raw: id,
                keep_plus: false,
            }),
            Source::Query(_) => Some(Value::Request {
                raw: q,
                keep_plus: true,
            }),
            _ => None,
        }
    };
    for id in [&b".."[..], b".", b"", b"%2E%2E", b"%2e", b".%2E"] {
        let e = render(&t, value(id, b"x")).unwrap_err();
        assert!(
            e.starts_with("unsafe value for {id} in the path"),
            "{id:?}: {e}"
        );
    }
    // From a JSON answer too.
    let t = Template::parse("/users/{user.id}", &n).unwrap();
    for bad in [&b".."[..], b"", b"."] {
        let e = render(&t, |_| Some(Value::Plain(bad.into()))).unwrap_err();
        assert!(e.contains("unsafe value"), "{bad:?}");
    }
    // Dots inside a value, and any value in the query, are fine.
    assert_eq!(
        render(
            &Template::parse("/users/{id}/profile?q={query.q}", &n).unwrap(),
            value(b"...", b"..")
        )
        .unwrap(),
        "/users/.../profile?q=.."
    );
    assert_eq!(
        render(
            &Template::parse("/users/{id}/profile?q={query.q}", &n).unwrap(),
            value(b"a.b", b"")
        )
        .unwrap(),
        "/users/a.b/profile?q="
    );
}

#[test]
fn missing_values_name_the_placeholder() {
    let n = names(None, &["user"]);
    let t = Template::parse("/o?u={user.id}&l={query.limit}", &n).unwrap();
    let e = render(&t, |s| match s {
        Source::Field { .. } => Some(Value::Plain(b"7"[..].into())),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(e, "missing value for {query.limit}");
}

#[test]
fn json_fields_and_query_values() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{"id":42,"name":"Ann","ok":true,"n":null,"tags":[{"t":"x"}],"o":{}}"#,
    )
    .unwrap();
    let f = |p: &str| {
        let path: Vec<String> = p.split('.').map(str::to_owned).collect();
        json_field(&v, &path).map(|c| String::from_utf8(c.into_owned()).unwrap())
    };
    assert_eq!(f("id").as_deref(), Some("42"));
    assert_eq!(f("name").as_deref(), Some("Ann"));
    assert_eq!(f("ok").as_deref(), Some("true"));
    assert_eq!(f("tags.0.t").as_deref(), Some("x"));
    assert_eq!(f("n"), None);
    assert_eq!(f("o"), None);
    assert_eq!(f("tags"), None);
    assert_eq!(f("tags.1.t"), None);
    assert_eq!(f("nope"), None);
    assert_eq!(query_value(b"/d?limit=5&x", b"limit"), Some(&b"5"[..]));
    assert_eq!(query_value(b"/d?limit=5&x", b"x"), Some(&b""[..]));
    assert_eq!(query_value(b"/d?limit=5", b"lim"), None);
    assert_eq!(query_value(b"/d", b"limit"), None);
}

fn three_legs(policy: &str) -> Aggregation {
    build_from(&format!(
        r#"aggregate = {{ policy = "{policy}", legs = [
  {{ name = "json", cluster = "users", path = "/a" }},
  {{ name = "text", cluster = "users", path = "/b" }},
  {{ name = "gone", cluster = "users", path = "/c" }},
] }}"#
    ))
    .unwrap()
}

fn ok(body: &str) -> run::LegOutcome {
    Ok(Answer {
        status: 200,
        body: body.as_bytes().to_vec(),
    })
}

#[test]
fn merge_partial() {
    let a = three_legs("partial");
    let outcomes = vec![
        ok(" {\"id\": 1, \"s\": \"\u{e9}\"}\n"),
        ok("plain \"text\"\n"),
        Err(LegError::Status(503)),
    ];
    let mut edits = HeaderEdits::new();
    let (reply, failed) = reply(&a, &outcomes, &mut edits);
    assert!(!failed);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let body = std::str::from_utf8(reply.body.as_bytes()).unwrap();
    assert_eq!(
        body,
        "{\"json\":{\"id\": 1, \"s\": \"\u{e9}\"},\"text\":\"plain \\\"text\\\"\\n\",\"gone\":null}"
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["text"], "plain \"text\"\n");
    assert_eq!(edits.get(b"x-ringway-partial"), Some(&b"gone"[..]));
}

#[test]
fn merge_all_ok_and_non_json() {
    let a = three_legs("all");
    let outcomes = vec![ok("[1,2]"), ok(""), ok("{\"a\":1} trailing")];
    let mut edits = HeaderEdits::new();
    let (reply, failed) = reply(&a, &outcomes, &mut edits);
    assert!(!failed);
    assert!(edits.is_empty());
    let v: serde_json::Value = serde_json::from_slice(reply.body.as_bytes()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"json": [1, 2], "text": "", "gone": "{\"a\":1} trailing"})
    );
}

#[test]
fn merged_answers_are_always_valid_json_and_hide_upstream_causes() {
    let a = three_legs("partial");
    // Invalid UTF-8 inside a JSON string: not spliced verbatim.
    let bad = Answer {
        status: 200,
        body: b"{\"a\":\"\xff\"}".to_vec(),
    };
    let outcomes = vec![Ok(bad), ok("1"), ok("2")];
    let (r, _) = reply(&a, &outcomes, &mut HeaderEdits::new());
    let text = std::str::from_utf8(r.body.as_bytes()).expect("UTF-8");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    assert!(v["json"].is_string(), "{v}");
    // A 502 names the kind of an upstream failure, never its cause.
    let a = three_legs("all");
    let cause = std::io::Error::other("certificate for internal-db.corp.example is invalid");
    let e = crate::error::ProxyError::new(crate::error::ErrorKind::ConnectFailed).with_cause(cause);
    let outcomes = vec![Err(LegError::Upstream(e)), ok("1"), ok("2")];
    let (r, failed) = reply(&a, &outcomes, &mut HeaderEdits::new());
    assert!(failed);
    let text = String::from_utf8(r.body.as_bytes().to_vec()).unwrap();
    assert!(!text.contains("internal-db"), "{text}");
    assert!(text.contains("upstream error: "), "{text}");
}

#[test]
fn merge_all_failed_is_a_problem() {
    let a = three_legs("all");
    let outcomes = vec![
        ok("{}"),
        Err(LegError::Timeout(Duration::from_millis(1500))),
        Err(LegError::TooLarge(4096)),
    ];
    let mut edits = HeaderEdits::new();
    let (reply, failed) = reply(&a, &outcomes, &mut edits);
    assert!(failed);
    assert_eq!(reply.status, 502);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/problem+json")
    );
    let v: serde_json::Value = serde_json::from_slice(reply.body.as_bytes()).unwrap();
    assert_eq!(v["status"], 502);
    assert_eq!(v["detail"], "aggregate failed: leg(s) text, gone");
    assert_eq!(v["legs"]["json"], "ok");
    assert_eq!(v["legs"]["text"], "timeout after 1.5s");
    assert_eq!(v["legs"]["gone"], "body over max_leg_bytes (4096 bytes)");
    assert!(edits.is_empty());
}
