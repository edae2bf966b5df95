use super::Endpoint;

#[test]
fn collector_urls() {
    let e = Endpoint::parse("http://127.0.0.1:4318/v1/traces").unwrap();
    assert_eq!(e.authority, "127.0.0.1:4318");
    assert_eq!(e.host, "127.0.0.1:4318");
    assert_eq!(e.path, "/v1/traces");
    let e = Endpoint::parse("http://collector.local").unwrap();
    assert_eq!(e.authority, "collector.local:4318");
    assert_eq!(e.path, "/v1/traces");
    let e = Endpoint::parse("http://[::1]/x").unwrap();
    assert_eq!(e.authority, "[::1]:4318");
    assert_eq!(e.host, "[::1]");
    for bad in [
        "https://c:4318/v1/traces",
        "c:4318",
        "http://",
        "http://u@c/",
        "http://c:0/",
        "http://c:99999/",
        "http://c/a b",
    ] {
        assert!(Endpoint::parse(bad).is_err(), "{bad}");
    }
    assert!(Endpoint::parse("https://c/")
        .unwrap_err()
        .contains("https is not supported"));
}
