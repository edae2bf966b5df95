//! Wire formats: range ends, base64 JSON answers, chunked watch streams fed
//! in fragments, endpoint values.

use serde_json::json;

use super::client::*;
use super::*;

#[test]
fn range_end_of_a_prefix() {
    assert_eq!(
        range_end(b"/services/orders/"),
        b"/services/orders0".to_vec()
    );
    assert_eq!(range_end(b"a"), b"b".to_vec());
    assert_eq!(range_end(b"a\xff"), b"b".to_vec());
    assert_eq!(range_end(b"a\xff\xff"), b"b".to_vec());
    assert_eq!(range_end(b"\xff\xff"), vec![0]);
    assert_eq!(range_end(b""), vec![0]);
}

#[test]
fn range_answers_decode_base64_and_string_integers() {
    let v = json!({
        "header": {"revision": "12", "raft_term": "2"},
        "kvs": [
            {"key": "L3N2Yy9hLzE=", "create_revision": "2", "mod_revision": "2", "version": "1",
             "value": "eyJhZGRyZXNzIjoiMTI3LjAuMC4xOjEifQ=="}
        ],
        "count": "1"
    });
    let r = parse_range(&v).unwrap();
    assert_eq!(r.revision, 12);
    assert_eq!(r.kvs.len(), 1);
    assert_eq!(r.kvs[0].key, "/svc/a/1");
    assert_eq!(r.kvs[0].value, br#"{"address":"127.0.0.1:1"}"#.to_vec());
    // No keys: no "kvs" at all.
    let r = parse_range(&json!({"header": {"revision": "3"}})).unwrap();
    assert!(r.kvs.is_empty());
    assert!(parse_range(&json!({"kvs": []})).is_err());
    assert!(parse_range(&json!({"header": {"revision": "3"}, "kvs": [{"key": "!!"}]})).is_err());
}

#[test]
fn watch_messages() {
    let v = json!({"result": {"header": {"revision": "4"}, "events": [
        {"kv": {"key": "L3N2Yy9hLzI=", "mod_revision": "3", "value": "eA=="}},
        {"type": "DELETE", "kv": {"key": "L3N2Yy9hLzI=", "mod_revision": "4"}}
    ]}});
    let m = parse_watch_message(&v).unwrap();
    assert_eq!(m.revision, 4);
    assert_eq!(m.last_event_revision, 4);
    assert_eq!(
        m.events,
        vec![
            Event::Put(KeyValue {
                key: "/svc/a/2".into(),
                value: b"x".to_vec()
            }),
            Event::Delete("/svc/a/2".into()),
        ]
    );
    let c = parse_watch_message(&json!({"result": {"header": {"raft_term": "2"},
        "canceled": true, "compact_revision": "4"}}))
    .unwrap();
    assert!(c.canceled);
    assert_eq!(c.compact_revision, 4);
    let created =
        parse_watch_message(&json!({"result": {"header": {"revision": "9"}, "created": true}}))
            .unwrap();
    assert!(created.created && created.events.is_empty());
    let e = parse_watch_message(&json!({"error": {"grpc_code": 14, "message": "unavailable"}}))
        .unwrap_err();
    assert_eq!(e, "unavailable");
}

/// A chunked stream of two JSON objects, fed one fragment size at a time:
/// the same objects come out whatever the cut.
#[test]
fn chunked_json_stream_in_fragments() {
    let a = r#"{"result":{"header":{"revision":"4"},"created":true}}"#;
    let b = r#"{"result":{"header":{"revision":"5"},"events":[{"kv":{"key":"eA==","mod_revision":"5","value":"eQ=="}}]}}"#;
    // The second object split over two chunks, with a chunk extension.
    let (b1, b2) = b.split_at(30);
    let stream = format!(
        "{:x}\r\n{a}\n\r\n{:x};ext=1\r\n{b1}\r\n{:x}\r\n{b2}\n\r\n0\r\nGrpc-Trailer: x\r\n\r\n",
        a.len() + 1,
        b1.len(),
        b2.len() + 1
    );
    for size in [1, 2, 3, 7, 16, 64, stream.len()] {
        let mut dec = ChunkDecoder::default();
        let (mut raw, mut body, mut got) = (Vec::new(), Vec::new(), Vec::new());
        for piece in stream.as_bytes().chunks(size) {
            raw.extend_from_slice(piece);
            dec.decode(&mut raw, &mut body).unwrap();
            while let Some(v) = next_json(&mut body).unwrap() {
                got.push(parse_watch_message(&v).unwrap());
            }
        }
        assert!(dec.done, "fragment size {size}");
        assert!(raw.is_empty() && body.is_empty(), "fragment size {size}");
        assert_eq!(got.len(), 2, "fragment size {size}");
        assert!(got[0].created);
        assert_eq!(got[1].last_event_revision, 5);
        assert_eq!(
            got[1].events,
            vec![Event::Put(KeyValue {
                key: "x".into(),
                value: b"y".to_vec()
            })]
        );
    }
}

#[test]
fn broken_chunks_are_errors() {
    for bad in ["zz\r\n", "3\r\nabcX\r\n"] {
        let mut raw = bad.as_bytes().to_vec();
        let r = ChunkDecoder::default().decode(&mut raw, &mut Vec::new());
        assert!(r.is_err(), "{bad:?}");
    }
    let mut body = b"{\"a\": ]".to_vec();
    assert!(next_json(&mut body).is_err());
}

#[test]
fn endpoint_values() {
    let e = parse_endpoint(
        br#"{"address": "127.0.0.1:8080", "weight": 2, "zone": "a", "metadata": {"version": "v2"}}"#,
    )
    .unwrap();
    assert_eq!(e.address, "127.0.0.1:8080");
    assert_eq!(e.weight, 2);
    assert_eq!(e.zone.as_deref(), Some("a"));
    assert_eq!(e.metadata.unwrap()["version"], "v2");
    let e = parse_endpoint(br#"{"address": "app.internal:80"}"#).unwrap();
    assert_eq!((e.weight, e.zone, e.metadata), (1, None, None));
    for (bad, want) in [
        (&b"not json"[..], "not JSON"),
        (b"[1]", "JSON object"),
        (b"{}", "address"),
        (br#"{"address": 5}"#, "address"),
        (br#"{"address": "a:1", "weight": 0}"#, "weight"),
        (br#"{"address": "a:1", "weight": "2"}"#, "weight"),
        (br#"{"address": "a:1", "zone": 1}"#, "zone"),
        (br#"{"address": "a:1", "metadata": "v"}"#, "metadata"),
        (br#"{"address": "a:1", "port": 1}"#, "unknown key"),
    ] {
        let e = parse_endpoint(bad).unwrap_err();
        assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn etcd_urls() {
    let u = EtcdUrl::parse("http://127.0.0.1:2379").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 2379));
    assert_eq!(u.to_string(), "http://127.0.0.1:2379");
    let u = EtcdUrl::parse("http://[::1]:23790/").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("::1", 23790));
    assert_eq!(EtcdUrl::parse("http://etcd").unwrap().port, 2379);
    assert!(EtcdUrl::parse("https://etcd:2379")
        .unwrap_err()
        .contains("http:// only"));
    for bad in [
        "etcd:2379",
        "http://",
        "http://a:0",
        "http://a:x",
        "http://a:1/v3",
    ] {
        assert!(EtcdUrl::parse(bad).is_err(), "{bad}");
    }
}

fn fake_client(port: u16) -> EtcdClient {
    EtcdClient {
        endpoints: vec![EtcdUrl {
            host: "127.0.0.1".into(),
            port,
        }],
        dial_timeout: std::time::Duration::from_millis(100),
        timeout: std::time::Duration::from_millis(100),
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

/// The store: a range replaces the set, events change it, events seen
/// again change nothing, a malformed value is left out.
#[test]
fn store_follows_ranges_and_events() {
    let c = fake_client(1);
    let p = "/store-test/";
    let range = Range {
        revision: 7,
        kvs: vec![
            kv("/store-test/a", r#"{"address": "127.0.0.1:1"}"#),
            kv("/store-test/bad", "{"),
        ],
    };
    assert!(store::replace(&c, p, &range));
    assert!(!store::replace(&c, p, &range), "same set: no change");
    assert_eq!(store::revision(&c, p), Some(7));
    let m = WatchMessage {
        revision: 9,
        last_event_revision: 9,
        events: vec![
            Event::Put(kv(
                "/store-test/b",
                r#"{"address": "127.0.0.1:2", "weight": 3}"#,
            )),
            Event::Delete("/store-test/a".into()),
        ],
        ..WatchMessage::default()
    };
    assert!(store::apply(&c, p, &m));
    assert!(!store::apply(&c, p, &m), "replayed events: no change");
    assert_eq!(store::revision(&c, p), Some(9));
    let list = store::endpoints(&c, p).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].0, "/store-test/b");
    assert_eq!(list[0].1.weight, 3);
    // A value that stops parsing takes its endpoint out.
    let broken = WatchMessage {
        last_event_revision: 10,
        events: vec![Event::Put(kv("/store-test/b", "nope"))],
        ..WatchMessage::default()
    };
    assert!(store::apply(&c, p, &broken));
    assert!(store::endpoints(&c, p).unwrap().is_empty());
    // Another etcd cluster, same prefix: its own entry (and here, no etcd).
    assert_eq!(store::revision(&fake_client(2), p), None);
    assert!(store::endpoints(&fake_client(2), p)
        .unwrap_err()
        .contains("unreachable"));
    store::forget(&c, p);
    assert_eq!(store::revision(&c, p), None);
}

#[test]
fn etcd_section_and_registration_are_checked() {
    let base = "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[route]]\ncluster = \"c\"\n[[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\"]\n";
    let ok = format!(
        "{base}[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\ntimeout = \"1s\"\n[etcd.register]\nkey = \"/svc/gw/1\"\naddress = \"127.0.0.1:8080\"\nweight = 2\nmetadata = {{ version = \"v2\" }}\nlease_ttl = \"5s\"\n"
    );
    let c = crate::config::Config::parse(&ok, None).unwrap();
    let e = c.etcd.unwrap();
    assert_eq!(e.client.timeout, std::time::Duration::from_secs(1));
    let r = e.register.unwrap();
    assert_eq!(r.lease_ttl, std::time::Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
    assert_eq!(
        v,
        json!({"address": "127.0.0.1:8080", "weight": 2, "metadata": {"version": "v2"}})
    );
    for (bad, path) in [
        ("[etcd]\nendpoints = []\n", "etcd.endpoints"),
        ("[etcd]\nendpoints = [\"https://x:1\"]\n", "etcd.endpoints[0]"),
        (
            "[etcd]\nendpoints = [\"http://x:1\"]\n[etcd.register]\nkey = \"k\"\naddress = \"nope\"\n",
            "etcd.register.address",
        ),
        (
            "[etcd]\nendpoints = [\"http://x:1\"]\n[etcd.register]\nkey = \"k\"\naddress = \"127.0.0.1:1\"\nlease_ttl = \"1s\"\n",
            "etcd.register.lease_ttl",
        ),
        ("[etcd]\nendpoints = [\"http://x:1\"]\nwatch = true\n", "etcd.watch"),
    ] {
        let errors = crate::config::Config::parse(&format!("{base}{bad}"), None).unwrap_err();
        assert!(
            errors.0.iter().any(|e| e.path == path && e.line.is_some()),
            "{bad}: {errors}"
        );
        assert_eq!(errors.0.len(), 1, "{bad}: {errors}");
    }
    // A cluster reading a prefix: no [etcd] is an error at its key; a
    // broken [etcd] is reported once, not again for the cluster.
    let discovered = base.replace(
        "endpoints = [\"127.0.0.1:1\"]\n",
        "etcd = { prefix = \"/svc/c/\" }\n",
    );
    let errors = crate::config::Config::parse(&discovered, None).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].path, "cluster[0].etcd", "{errors}");
    assert!(errors.0[0].message.contains("[etcd]"), "{errors}");
    let errors =
        crate::config::Config::parse(&format!("{discovered}[etcd]\nendpoints = 5\n"), None)
            .unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].path, "etcd.endpoints", "{errors}");
}
