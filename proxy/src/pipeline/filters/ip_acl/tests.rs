//! IP rules: parsing, matching, semantics, the filter.

use std::net::IpAddr;

use super::acl::{Cidr, IpAcl};
use super::config::IpAclFile;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn acl(allow: &[&str], deny: &[&str]) -> IpAcl {
    let f = IpAclFile {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
    };
    let mut p = Vec::new();
    let a = f.compile(&mut p);
    assert!(p.is_empty(), "{p:?}");
    a.unwrap()
}

#[test]
fn cidr_parse_and_contains() {
    let c = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(c.contains(ip("10.255.1.2")));
    assert!(!c.contains(ip("11.0.0.0")));
    assert!(!c.contains(ip("::a00:1")));
    let one = Cidr::parse("127.0.0.1").unwrap();
    assert_eq!(one.to_string(), "127.0.0.1/32");
    assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
    let all4 = Cidr::parse("0.0.0.0/0").unwrap();
    assert!(all4.contains(ip("1.2.3.4")) && !all4.contains(ip("::1")));
    let v6 = Cidr::parse("2001:db8::/32").unwrap();
    assert!(v6.contains(ip("2001:db8:1::5")));
    assert!(!v6.contains(ip("2001:db9::")));
    let all6 = Cidr::parse("::/0").unwrap();
    assert!(all6.contains(ip("::1")) && !all6.contains(ip("127.0.0.1")));
    // A mapped rule is an IPv4 rule.
    assert_eq!(
        Cidr::parse("::ffff:10.0.0.0/104").unwrap(),
        Cidr::parse("10.0.0.0/8").unwrap()
    );
    for bad in [
        "10.0.0.1/8",
        "10.0.0.0/33",
        "::1/129",
        "10.0.0/8",
        "x",
        "",
        "10.0.0.0/+8",
        "::1/",
    ] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
    assert!(Cidr::parse("10.0.0.1/8")
        .unwrap_err()
        .contains("10.0.0.0/8"));
}

#[test]
fn deny_wins_and_allow_limits() {
    let a = acl(&["10.0.0.0/8", "127.0.0.1", "::1/128"], &["10.1.0.0/16"]);
    assert!(a.allows(ip("10.2.3.4")));
    assert!(!a.allows(ip("10.1.3.4")), "deny wins");
    assert!(a.allows(ip("127.0.0.1")));
    assert!(a.allows(ip("::1")));
    assert!(!a.allows(ip("192.0.2.1")), "not in allow");
    assert!(!a.allows(ip("::2")));
    // IPv4-mapped clients match IPv4 rules.
    assert!(a.allows(ip("::ffff:10.2.3.4")));
    assert!(!a.allows(ip("::ffff:10.1.3.4")));
    assert!(!a.allows(ip("::ffff:192.0.2.1")));

    let deny_only = acl(&[], &["127.0.0.1"]);
    assert!(!deny_only.allows(ip("127.0.0.1")));
    assert!(!deny_only.allows(ip("::ffff:127.0.0.1")));
    assert!(deny_only.allows(ip("127.0.0.2")));
    assert!(deny_only.allows(ip("::1")));

    // IPv6 rules do not match IPv4 clients.
    let v6 = acl(&["::/0"], &[]);
    assert!(!v6.allows(ip("127.0.0.1")));
    assert!(v6.allows(ip("::1")));
}

#[test]
fn config_errors_name_the_entry() {
    let f = IpAclFile {
        allow: vec!["10.0.0.0/8".into(), "::1".into(), "300.0.0.1".into()],
        deny: vec!["1.2.3.4/40".into()],
    };
    let mut p = Vec::new();
    assert!(f.build(&mut p).is_none());
    let keys: Vec<_> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["allow[2]", "deny[0]"]);
    let mut p = Vec::new();
    assert!(IpAclFile::default().build(&mut p).is_none());
    assert_eq!(p[0].0, "");
}

#[test]
fn filter_answers_403() {
    use crate::http::head::parse_request_head;
    use crate::http::{HeadLimits, RequestHead};
    use crate::pipeline::filters::{Filter, FilterFile, FilterState, Flow, RequestCx};

    #[derive(serde::Deserialize)]
    struct F {
        filters: Vec<FilterFile>,
    }
    let f: F = toml::from_str(
        r#"filters = [{ type = "ip_acl", allow = ["192.0.2.0/24"], deny = ["192.0.2.7"] }]"#,
    )
    .unwrap();
    let mut p = Vec::new();
    let filter: Filter = f.filters[0].build(&mut p).unwrap();
    assert_eq!(filter.kind(), "ip_acl");
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut h = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 1024,
        max_headers: 10,
    };
    assert!(parse_request_head(raw, &limits, &mut h).unwrap());
    let mut state = FilterState::default();
    let mut check = |client: &str| {
        let mut cx = RequestCx {
            buf: raw,
            head: &h,
            client: client.parse().unwrap(),
            listener: "l",
            tls: None,
            route: "r",
            request_id: b"",
            state: &mut state,
        };
        match filter.on_request(&mut cx) {
            Flow::Continue => 0,
            Flow::Respond(r) => r.status,
            Flow::Reject(_) => 1,
        }
    };
    assert_eq!(check("192.0.2.8:1"), 0);
    assert_eq!(check("192.0.2.7:1"), 403);
    assert_eq!(check("[::ffff:192.0.2.7]:1"), 403);
    assert_eq!(check("198.51.100.1:1"), 403);
}
