//! Targets that would let a request reach a protected route's path through
//! an open route (dot segments, encoded unreserved characters, an
//! absolute-form target naming another host) are refused with 400 and never
//! reach the origin.

use ringway_tests::client::Request;
use ringway_tests::setup::Setup;

#[test]
fn route_aliases_are_refused_before_routing() {
    let s = Setup::new("aliases", |c| {
        // /admin denies everyone; / is open; both on the same cluster.
        let mut c = c.route(
            "public",
            "/admin",
            "app",
            &[(
                "filters",
                r#"[{ type = "ip_acl", deny = ["0.0.0.0/0", "::/0"] }]"#,
            )],
        );
        c.routes.rotate_right(1);
        c
    });
    assert_eq!(s.client().get("/admin/x").status(), 403);
    for target in [
        "/x/../admin/secret",
        "/x/%2e%2e/admin/secret",
        "/x%2F..%2Fadmin/secret",
        "/%61dmin/secret",
        "/./admin/secret",
    ] {
        let r = s.client().request(&Request::get(target).host("a.test"));
        assert_eq!(r.status(), 400, "{target}: {r}");
    }
    let r = s
        .client()
        .request(&Request::get("http://internal.test/admin/secret").host("a.test"));
    assert_eq!(r.status(), 400, "{r}");
    assert_eq!(s.origin.request_count(), 0, "an alias reached the origin");
    // Ordinary targets, an encoded slash and a matching absolute form pass.
    for target in ["/ok/a%2Fb", "/ok/file.tar.gz", "/ok?next=/../x"] {
        let r = s.client().request(&Request::get(target).host("a.test"));
        assert_eq!(r.status(), 200, "{target}: {r}");
    }
    let r = s
        .client()
        .request(&Request::get("http://a.test/ok").host("a.test"));
    assert_eq!(r.status(), 200, "{r}");
}
