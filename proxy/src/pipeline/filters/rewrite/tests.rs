//! `type = "rewrite"`: config checks and the targets it produces.

use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{Filter, FilterFile, FilterState, Flow, RequestCx};

fn filter(toml_text: &str) -> Result<Filter, Vec<(String, String)>> {
    let f: FilterFile = toml::from_str(toml_text).expect("filter parses");
    let mut p = Vec::new();
    match f.build(&mut p) {
        Some(f) if p.is_empty() => Ok(f),
        _ => Err(p),
    }
}

fn problems(toml_text: &str) -> Vec<(String, String)> {
    filter(toml_text).expect_err("expected config problems")
}

/// Run `chain` on `GET <target>` and return the flow and the target sent
/// upstream (`None`: the client's).
fn run(chain: &[Filter], target: &str) -> (Flow, Option<String>) {
    let raw = format!("GET {target} HTTP/1.1\r\nHost: h.test\r\n\r\n");
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw.as_bytes(), &limits, &mut head).unwrap());
    let mut state = FilterState::default();
    let mut cx = RequestCx {
        buf: raw.as_bytes(),
        head: &head,
        client: "192.0.2.1:1000".parse().unwrap(),
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"",
        state: &mut state,
    };
    let (flow, _) = crate::pipeline::filters::run_request(chain, &mut cx);
    let target = state
        .target()
        .map(|t| String::from_utf8(t.to_vec()).unwrap());
    (flow, target)
}

fn rewritten(rule: &str, target: &str) -> Option<String> {
    let f = filter(&format!("type = \"rewrite\"\n{rule}")).unwrap();
    let (flow, t) = run(&[f], target);
    assert!(matches!(flow, Flow::Continue), "{flow:?}");
    t
}

const PREFIX: &str = r#"prefix = { from = "/api/v1/", to = "/v1/" }"#;
const PROFILE: &str =
    r#"regex = { pattern = "^/users/([0-9]+)/profile$", replace = "/profile?id=$1" }"#;

#[test]
fn prefix_replaces_the_prefix_and_keeps_the_query() {
    assert_eq!(
        rewritten(PREFIX, "/api/v1/users").as_deref(),
        Some("/v1/users")
    );
    assert_eq!(
        rewritten(PREFIX, "/api/v1/users?page=2&x=y").as_deref(),
        Some("/v1/users?page=2&x=y")
    );
    assert_eq!(rewritten(PREFIX, "/api/v1/").as_deref(), Some("/v1/"));
    // No match: the client's target goes upstream untouched.
    assert_eq!(rewritten(PREFIX, "/api/v2/users?x=1"), None);
    assert_eq!(rewritten(PREFIX, "/api/v1"), None);
    // An empty query is dropped with its `?`; a fragment never goes upstream.
    assert_eq!(rewritten(PREFIX, "/api/v1/a?").as_deref(), Some("/v1/a"));
    assert_eq!(
        rewritten(PREFIX, "/api/v1/a?q=1#frag").as_deref(),
        Some("/v1/a?q=1")
    );
}

#[test]
fn prefix_to_root() {
    let rule = r#"prefix = { from = "/api/", to = "/" }"#;
    assert_eq!(rewritten(rule, "/api/x/y?z").as_deref(), Some("/x/y?z"));
}

#[test]
fn regex_expands_groups_and_joins_the_query() {
    assert_eq!(
        rewritten(PROFILE, "/users/42/profile").as_deref(),
        Some("/profile?id=42")
    );
    assert_eq!(
        rewritten(PROFILE, "/users/42/profile?fields=name").as_deref(),
        Some("/profile?id=42&fields=name")
    );
    assert_eq!(rewritten(PROFILE, "/users/abc/profile"), None);
    assert_eq!(rewritten(PROFILE, "/users/42/profile/x"), None);
}

#[test]
fn regex_named_groups_and_unanchored_matches() {
    let named = r#"regex = { pattern = "^/(?P<lang>[a-z]{2})/docs/(?P<rest>.*)$", replace = "/docs/${rest}?lang=${lang}" }"#;
    assert_eq!(
        rewritten(named, "/en/docs/a/b?v=1").as_deref(),
        Some("/docs/a/b?lang=en&v=1")
    );
    // Unanchored: the first match is replaced, the rest of the path kept.
    let part = r#"regex = { pattern = "/v[0-9]+/", replace = "/" }"#;
    assert_eq!(
        rewritten(part, "/api/v2/items/v3/x").as_deref(),
        Some("/api/items/v3/x")
    );
    // `$$` is a literal dollar.
    let dollar = r#"regex = { pattern = "^/price/([0-9]+)$", replace = "/p/$$$1" }"#;
    assert_eq!(rewritten(dollar, "/price/5").as_deref(), Some("/p/$5"));
    let only = r#"regex = { pattern = "^/cost$", replace = "/c/$$" }"#;
    assert_eq!(rewritten(only, "/cost").as_deref(), Some("/c/$"));
}

#[test]
fn absolute_form_targets_are_rewritten_to_origin_form() {
    assert_eq!(
        rewritten(PREFIX, "http://h.test/api/v1/a?q=1").as_deref(),
        Some("/v1/a?q=1")
    );
    assert_eq!(
        rewritten(PROFILE, "http://h.test/users/7/profile").as_deref(),
        Some("/profile?id=7")
    );
    // `OPTIONS *`-style targets have no path to rewrite.
    let any = r#"regex = { pattern = ".*", replace = "/x" }"#;
    assert_eq!(rewritten(any, "*"), None);
}

#[test]
fn rewrites_compose_in_order() {
    let a = filter(&format!("type = \"rewrite\"\n{PREFIX}")).unwrap();
    let b = filter(
        "type = \"rewrite\"\nregex = { pattern = \"^/v1/(.*)$\", replace = \"/internal/$1?via=rw\" }",
    )
    .unwrap();
    let (flow, t) = run(&[a, b], "/api/v1/things?x=1");
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(t.as_deref(), Some("/internal/things?via=rw&x=1"));
}

#[test]
fn an_invalid_result_is_a_500_not_a_forward() {
    let f =
        filter("type = \"rewrite\"\nregex = { pattern = \"^/(.*)$\", replace = \"$1\" }").unwrap();
    let (flow, _) = run(&[f], "/secret/x");
    let Flow::Reject(e) = flow else {
        panic!("expected a rejection, got {flow:?}")
    };
    assert_eq!(e.status(), Some(500));
    // A match that leaves a valid target is fine.
    let f =
        filter("type = \"rewrite\"\nregex = { pattern = \"^/(.*)$\", replace = \"$1\" }").unwrap();
    let (flow, t) = run(&[f], "//double");
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(t.as_deref(), Some("/double"));
}

#[test]
fn one_rule_is_required() {
    let p = problems("type = \"rewrite\"");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "");
    assert!(p[0].1.contains("needs `prefix"), "{p:?}");
    let p = problems(&format!("type = \"rewrite\"\n{PREFIX}\n{PROFILE}"));
    assert!(p[0].1.contains("not both"), "{p:?}");
    // Unknown keys are refused by serde.
    let bad: Result<FilterFile, _> =
        toml::from_str("type = \"rewrite\"\nprefix = { from = \"/a\", to = \"/b\", x = 1 }");
    assert!(bad.is_err());
}

#[test]
fn bad_prefix_paths_name_their_keys() {
    let p = problems(
        r#"type = "rewrite"
prefix = { from = "api/", to = "/a b/" }"#,
    );
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["prefix.from", "prefix.to"], "{p:?}");
    assert!(p[0].1.contains("start with `/`"), "{p:?}");
    assert!(p[1].1.contains("spaces or control"), "{p:?}");
    let p = problems(
        r#"type = "rewrite"
prefix = { from = "/a", to = "/b?x=1" }"#,
    );
    assert_eq!(p[0].0, "prefix.to");
    let p = problems("type = \"rewrite\"\nprefix = { from = \"/a\", to = \"/b\\r\\n\" }");
    assert_eq!(p[0].0, "prefix.to");
}

#[test]
fn bad_regexes_name_their_keys() {
    let p = problems(
        r#"type = "rewrite"
regex = { pattern = "^/(unclosed", replace = "/x" }"#,
    );
    assert_eq!(p[0].0, "regex.pattern", "{p:?}");
    assert!(p[0].1.starts_with("invalid regex:"), "{p:?}");
    assert!(!p[0].1.contains('\n'), "{p:?}");

    let p = problems(
        r#"type = "rewrite"
regex = { pattern = "\\pL{5000}\\pL{5000}", replace = "/x" }"#,
    );
    assert_eq!(p[0].0, "regex.pattern", "{p:?}");
    assert!(p[0].1.contains("size limit"), "{p:?}");

    let p = problems(
        r#"type = "rewrite"
regex = { pattern = "^/u/([0-9]+)$", replace = "/user/$2" }"#,
    );
    assert_eq!(p[0].0, "regex.replace", "{p:?}");
    assert!(p[0].1.contains("`2` is not a capture group"), "{p:?}");

    let p = problems(
        r#"type = "rewrite"
regex = { pattern = "^/u/([0-9]+)$", replace = "/user/$1a" }"#,
    );
    assert!(p[0].1.contains("write `${1}a`"), "{p:?}");

    let p = problems(
        r#"type = "rewrite"
regex = { pattern = "^/u/(?P<id>[0-9]+)$", replace = "/user/${name}" }"#,
    );
    assert!(p[0].1.contains("`name` is not a capture group"), "{p:?}");

    let p = problems(
        r#"type = "rewrite"
regex = { pattern = "^/u$", replace = "/a b" }"#,
    );
    assert_eq!(p[0].0, "regex.replace", "{p:?}");

    let long = "a".repeat(super::config::MAX_PATTERN + 1);
    let p = problems(&format!(
        "type = \"rewrite\"\nregex = {{ pattern = \"{long}\", replace = \"/x\" }}"
    ));
    assert!(p[0].1.contains("at most"), "{p:?}");
}

#[test]
fn group_references_are_read_as_the_regex_crate_reads_them() {
    use super::config::group_refs as refs;
    assert_eq!(refs("/a/$1/${name}/$x_y-z"), ["1", "name", "x_y"]);
    assert_eq!(refs("$$1 $ ${open"), Vec::<&str>::new());
    assert_eq!(refs("$1a"), ["1a"]);
    assert_eq!(refs("${1}a"), ["1"]);
}
