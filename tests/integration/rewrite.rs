//! `type = "rewrite"`: the target the origin receives.

use ringway_tests::client::{Client, Request};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;
use ringway_tests::setup::Setup;

/// The simple setup (route `/` → origin) with this `filters` array.
fn with_filters(label: &str, filters: &str) -> Setup {
    Setup::new(label, |c| c.all_routes("filters", filters))
}

fn origin_target(s: &Setup) -> String {
    s.origin
        .last_request()
        .expect("origin got a request")
        .target
}

#[test]
fn prefix_rewrite_keeps_the_query_and_leaves_other_paths() {
    let s = with_filters(
        "rewrite-prefix",
        r#"[{ type = "rewrite", prefix = { from = "/api/v1/", to = "/v1/" } }]"#,
    );
    let mut c = s.client();
    let r = c.get("/api/v1/users?page=2&sort=name");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(origin_target(&s), "/v1/users?page=2&sort=name");
    // Not under the prefix: forwarded as sent. Same connection.
    let r = c.get("/api/v2/users?x=1");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(origin_target(&s), "/api/v2/users?x=1");
    let r = c.request(&Request::post("/api/v1/items").body("payload"));
    assert_eq!(r.status(), 200, "{r}");
    let rec = s.origin.last_request().unwrap();
    assert_eq!(rec.target, "/v1/items");
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.body_len, Some(7));
    // The Host the client sent is kept.
    assert_eq!(rec.header("host"), Some("test.local"));
}

#[test]
fn regex_rewrite_expands_groups_and_merges_the_query() {
    let s = with_filters(
        "rewrite-regex",
        r#"[{ type = "rewrite", regex = { pattern = "^/users/([0-9]+)/profile$", replace = "/profile?id=$1" } }]"#,
    );
    let mut c = s.client();
    assert_eq!(c.get("/users/42/profile").status(), 200);
    assert_eq!(origin_target(&s), "/profile?id=42");
    assert_eq!(c.get("/users/42/profile?fields=name").status(), 200);
    assert_eq!(origin_target(&s), "/profile?id=42&fields=name");
    assert_eq!(c.get("/users/bob/profile").status(), 200);
    assert_eq!(origin_target(&s), "/users/bob/profile");
}

#[test]
fn absolute_form_targets_are_rewritten_to_origin_form() {
    let s = with_filters(
        "rewrite-absolute",
        r#"[{ type = "rewrite", prefix = { from = "/api/", to = "/" } }]"#,
    );
    let mut c = s.client();
    let r = c.request(&Request::get("http://test.local/api/a/b?q=1"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(origin_target(&s), "/a/b?q=1");
}

#[test]
fn a_rewrite_to_an_invalid_target_answers_500() {
    let s = with_filters(
        "rewrite-invalid",
        r#"[{ type = "rewrite", regex = { pattern = "^/(.*)$", replace = "$1" } }]"#,
    );
    let mut c = s.client();
    let r = c.get("/secret");
    assert_eq!(r.status(), 500, "{r}");
    assert_eq!(
        s.origin.request_count(),
        0,
        "the unrewritten target was forwarded"
    );
    // A path whose rewrite stays valid goes through.
    let r = Client::connect(s.addr()).get("//ok");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(origin_target(&s), "/ok");
}

#[test]
fn rewrite_config_errors_name_the_key() {
    let dir = TestDir::new("rewrite-config");
    let origin = Origin::start();
    let config = Config::simple(origin.addr()).all_routes(
        "filters",
        r#"[{ type = "rewrite", regex = { pattern = "^/(unclosed", replace = "/x" } }]"#,
    );
    let err = match Proxy::try_start(&dir, &config.to_toml(), &[]) {
        Ok(_) => panic!("a bad regex was accepted"),
        Err(e) => e,
    };
    assert!(err.contains("filters[0].regex.pattern"), "{err}");
    assert!(err.contains("invalid regex"), "{err}");
}
