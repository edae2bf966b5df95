//! `type = "cors"`: preflights answered by ringway (never forwarded),
//! CORS fields on actual responses for allowed origins only.

use ringway_tests::client::Request;
use ringway_tests::setup::Setup;

const APP: &str = "https://app.test";

fn setup(label: &str, cors: &str) -> Setup {
    let filters = format!("[{{ type = \"cors\", {cors} }}]");
    Setup::new(label, |c| c.all_routes("filters", &filters))
}

fn preflight(origin: &str, method: &str) -> Request {
    Request::new("OPTIONS", "/api/items")
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
}

#[test]
fn preflight_is_answered_locally() {
    let s = setup(
        "cors-preflight",
        r#"allow_origins = ["https://app.test"], allow_methods = ["GET", "PUT"], allow_headers = ["content-type", "x-api-key"], max_age = "10m""#,
    );
    let mut c = s.client();
    let r = c.request(
        &preflight(APP, "PUT").header("Access-Control-Request-Headers", "Content-Type, X-Api-Key"),
    );
    assert_eq!(r.status(), 204, "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{r}");
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, PUT"),
        "{r}"
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-api-key"),
        "{r}"
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"), "{r}");
    assert_eq!(r.header("access-control-allow-credentials"), None, "{r}");
    assert!(r.has_token("vary", "origin"), "{r}");
    assert_eq!(
        s.origin.request_count(),
        0,
        "a preflight reached the origin"
    );

    // The connection stays open: an actual request on the same socket.
    let r = c.request(&Request::get("/api/items").header("Origin", APP));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{r}");
    assert!(r.has_token("vary", "origin"), "{r}");
    assert_eq!(s.origin.request_count(), 1);
}

#[test]
fn refused_preflights_get_403_and_keep_the_connection() {
    let s = setup(
        "cors-refused",
        r#"allow_origins = ["https://app.test"], allow_headers = ["content-type"]"#,
    );
    let mut c = s.client();
    for (req, what) in [
        (preflight("https://evil.test", "GET"), "origin"),
        (preflight(APP, "DELETE"), "method"),
        (
            preflight(APP, "POST").header("Access-Control-Request-Headers", "x-secret"),
            "header",
        ),
    ] {
        let r = c.request(&req);
        assert_eq!(r.status(), 403, "{what}: {r}");
        assert!(
            r.header("access-control-allow-origin").is_none()
                && r.header("access-control-allow-methods").is_none(),
            "{what}: CORS fields on a refusal: {r}"
        );
        assert!(!r.has_token("connection", "close"), "{what}: {r}");
    }
    assert_eq!(
        s.origin.request_count(),
        0,
        "a refused preflight reached the origin"
    );
    // Same socket, allowed preflight.
    let r =
        c.request(&preflight(APP, "POST").header("Access-Control-Request-Headers", "Content-Type"));
    assert_eq!(r.status(), 204, "{r}");
    assert_eq!(s.origin.request_count(), 0);
}

#[test]
fn actual_requests_get_fields_only_for_allowed_origins() {
    let s = setup(
        "cors-actual",
        r#"allow_origins = ["https://app.test", "*.partner.test"], allow_credentials = true, expose_headers = ["x-origin"]"#,
    );
    let mut c = s.client();
    let r = c.request(&Request::get("/a").header("Origin", "https://shop.partner.test"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.partner.test"),
        "credentials echo the origin: {r}"
    );
    assert_eq!(
        r.header("access-control-allow-credentials"),
        Some("true"),
        "{r}"
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-origin"),
        "{r}"
    );
    assert!(r.has_token("vary", "origin"), "{r}");
    assert!(r.header("x-origin").is_some(), "the upstream answered: {r}");

    // A disallowed origin is forwarded, without CORS fields.
    let r = c.request(&Request::get("/b").header("Origin", "https://evil.test"));
    assert_eq!(r.status(), 200, "{r}");
    assert!(r.header("access-control-allow-origin").is_none(), "{r}");
    assert!(
        r.header("access-control-allow-credentials").is_none(),
        "{r}"
    );
    // No Origin: untouched.
    let r = c.request(&Request::get("/c"));
    assert_eq!(r.status(), 200, "{r}");
    assert!(r.header("access-control-allow-origin").is_none(), "{r}");
    assert_eq!(s.origin.request_count(), 3);
}

#[test]
fn any_origin_answers_star() {
    let s = setup("cors-star", r#"allow_origins = ["*"]"#);
    let mut c = s.client();
    let r = c.request(&Request::get("/").header("Origin", "https://whoever.test"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{r}");
    let r = c.request(&preflight("https://whoever.test", "POST"));
    assert_eq!(r.status(), 204, "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{r}");
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, HEAD, POST"),
        "{r}"
    );
    assert_eq!(s.origin.request_count(), 1);
}
