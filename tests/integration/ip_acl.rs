//! `type = "ip_acl"` on a route (deny wins, a non-empty allow limits, IPv6
//! rules do not match IPv4 clients) and the listener's `ip_acl` key in
//! `ringway check`.

use std::time::Duration;

use ringway_tests::client::Request;
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::run_ringway;
use ringway_tests::setup::Setup;

fn setup(label: &str, acl: &str) -> Setup {
    let filters = format!("[{{ type = \"ip_acl\", {acl} }}]");
    Setup::new(label, |c| c.all_routes("filters", &filters))
}

#[test]
fn denied_client_gets_403_and_never_reaches_the_origin() {
    let s = setup(
        "acl-deny",
        r#"allow = ["127.0.0.0/8"], deny = ["127.0.0.1"]"#,
    );
    let mut c = s.client();
    let r = c.get("/x");
    assert_eq!(r.status(), 403, "{r}");
    assert_eq!(r.body_str(), "403 Forbidden\n");
    assert!(!r.has_token("connection", "close"), "{r}");
    // The connection stays open.
    let r = c.request(&Request::get("/y"));
    assert_eq!(r.status(), 403, "{r}");
    assert_eq!(s.origin.request_count(), 0);
}

#[test]
fn allowed_client_is_forwarded() {
    let s = setup(
        "acl-allow",
        r#"allow = ["10.0.0.0/8", "127.0.0.1", "::1/128"]"#,
    );
    let r = s.client().get("/x");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(s.origin.request_count(), 1);
}

#[test]
fn ipv6_rules_do_not_match_an_ipv4_client() {
    let s = setup("acl-v6", r#"allow = ["::/0"]"#);
    let r = s.client().get("/x");
    assert_eq!(r.status(), 403, "{r}");
    let s = setup("acl-v6-deny", r#"deny = ["::/0"]"#);
    let r = s.client().get("/x");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(s.origin.request_count(), 1);
}

#[test]
fn bad_blocks_are_config_errors_naming_the_entry() {
    let dir = TestDir::new("acl-check");
    let config = Config::simple("127.0.0.1:9".parse().unwrap())
        .all_routes(
            "filters",
            r#"[{ type = "ip_acl", allow = ["10.0.0.0/8", "::1", "10.0.0.1/8"] }]"#,
        )
        .listener_with("inner", &[("ip_acl", r#"{ deny = ["300.1.1.1"] }"#)]);
    let path = dir.write("ringway.toml", config.to_toml());
    let out = run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    for key in [
        "error: route[0].filters[0].allow[2]",
        "error: listener[1].ip_acl.deny[0]",
    ] {
        assert!(
            out.all().lines().any(|l| l.starts_with(key)),
            "no `{key}`\n{out}"
        );
    }

    // A valid listener ACL is accepted.
    let config = Config::simple("127.0.0.1:9".parse().unwrap())
        .listener_with(
            "inner",
            &[(
                "ip_acl",
                r#"{ allow = ["10.0.0.0/8"], deny = ["10.1.0.0/16"] }"#,
            )],
        )
        .route("inner", "/", "app", &[]);
    let path = dir.write("ok.toml", config.to_toml());
    let out = run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(0), "{out}");
}

/// The listener's `ip_acl` is checked before routing: 403 (connection kept)
/// for a denied client, whatever the path, and the origin is never reached.
#[test]
fn listener_acl_answers_403_before_routing() {
    use ringway_tests::origin::Origin;
    use ringway_tests::proxy::Proxy;
    let dir = TestDir::new("acl-listener");
    let origin = Origin::start();
    let config = Config::new()
        .listener_with("denied", &[("ip_acl", r#"{ deny = ["127.0.0.0/8"] }"#)])
        .listener_with("allowed", &[("ip_acl", r#"{ allow = ["127.0.0.1/32"] }"#)])
        .route("denied", "/", "app", &[])
        .route("allowed", "/", "app", &[("name", "\"allowed\"")])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let mut c = ringway_tests::client::Client::connect(proxy.addr("denied"));
    for path in ["/", "/no/route/needed"] {
        let r = c.get(path);
        assert_eq!(r.status(), 403, "{r}");
        assert!(!r.has_token("connection", "close"), "{r}");
    }
    assert_eq!(origin.request_count(), 0);
    let mut c = ringway_tests::client::Client::connect(proxy.addr("allowed"));
    assert_eq!(c.get("/ok").status(), 200);
    assert_eq!(origin.request_count(), 1);
}
