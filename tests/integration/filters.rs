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
use ringway_tests::proxy::{run_ringway, CmdOutput, Proxy};
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
    assert_eq!(rec.header("x-path"), Some("/p/q"), "$path has no query: {raw}");
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

