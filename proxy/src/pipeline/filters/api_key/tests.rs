use super::filter::{hash_key, new_key, ApiKeyFilter, KeyCount};
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{Filter, FilterFile, FilterState, Flow, RequestCx};

const KEY_A: &str = "rwk_alpha-secret-key-0001";
const KEY_B: &str = "rwk_bravo-secret-key-0002";

fn build(toml_text: &str) -> Result<ApiKeyFilter, Vec<(String, String)>> {
    let f: FilterFile = toml::from_str(toml_text).expect("filter parses");
    let mut p = Vec::new();
    match f.build(&mut p) {
        Some(Filter::ApiKey(k)) if p.is_empty() => Ok(k),
        Some(other) => panic!("not an api_key filter: {other:?}"),
        None => Err(p),
    }
}

fn filter(extra: &str) -> ApiKeyFilter {
    let text = format!(
        r#"type = "api_key"
keys = [
  {{ id = "team-a", sha256 = "{}", plan = "gold" }},
  {{ id = "team-b", sha256 = "{}" }},
]
{extra}"#,
        hash_key(KEY_A.as_bytes()),
        hash_key(KEY_B.as_bytes()).to_uppercase(),
    );
    build(&text).unwrap_or_else(|p| panic!("{p:?}"))
}

fn run(raw: &[u8], f: &ApiKeyFilter, state: &mut FilterState) -> Flow {
    state.clear();
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut head).unwrap());
    let mut cx = RequestCx {
        buf: raw,
        head: &head,
        client: "192.0.2.7:5555".parse().unwrap(),
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"rid",
        state,
    };
    f.on_request(&mut cx)
}

fn get(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: a\r\n{headers}\r\n").into_bytes()
}

#[track_caller]
fn assert_401(flow: Flow, state: &FilterState) {
    let Flow::Respond(reply) = flow else {
        panic!("expected 401, got {flow:?}")
    };
    assert_eq!(reply.status, 401);
    assert_eq!(
        state.response.get(b"www-authenticate"),
        Some(&br#"ApiKey realm="ringway""#[..])
    );
    assert!(state.vars.get("api_key_id").is_none());
}

#[test]
fn hash_matches_a_known_sha256() {
    assert_eq!(
        hash_key(b"test"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    let k = new_key().unwrap();
    assert!(k.starts_with("rwk_") && k.len() == 4 + 43, "{k}");
    assert_ne!(k, new_key().unwrap());
}

#[test]
fn attacks_get_401() {
    let f = filter("");
    let mut s = FilterState::default();
    let mut one_off = KEY_A.as_bytes().to_vec();
    *one_off.last_mut().unwrap() ^= 1;
    let one_off = String::from_utf8(one_off).unwrap();
    let cases = [
        ("missing", get("/", "")),
        ("unknown", get("/", "x-api-key: nope\r\n")),
        (
            "one byte off",
            get("/", &format!("x-api-key: {one_off}\r\n")),
        ),
        (
            "prefix",
            get("/", &format!("x-api-key: {}\r\n", &KEY_A[..10])),
        ),
        (
            "wrong header",
            get("/", &format!("x-api-token: {KEY_A}\r\n")),
        ),
        ("empty", get("/", "x-api-key: \r\n")),
        ("in the query", get(&format!("/?x-api-key={KEY_A}"), "")),
        (
            "twice",
            get(
                "/",
                &format!("x-api-key: {KEY_A}\r\nX-Api-Key: {KEY_B}\r\n"),
            ),
        ),
        (
            "the hash itself",
            get(
                "/",
                &format!("x-api-key: {}\r\n", hash_key(KEY_A.as_bytes())),
            ),
        ),
    ];
    for (what, raw) in cases {
        let flow = run(&raw, &f, &mut s);
        assert!(matches!(flow, Flow::Respond(_)), "{what}: {flow:?}");
        assert_401(flow, &s);
    }
    assert_eq!(f.unmatched(), (4, 4));
    // The duplicate field counted as a refusal of the first key.
    assert_eq!(
        f.counts(),
        [
            KeyCount {
                id: "team-a".into(),
                ok: 0,
                rejected: 1
            },
            KeyCount {
                id: "team-b".into(),
                ok: 0,
                rejected: 0
            },
        ]
    );
}

#[test]
fn a_known_key_sets_variables_and_is_stripped() {
    let f = filter("");
    let mut s = FilterState::default();
    let flow = run(&get("/x", &format!("X-API-Key: {KEY_A}\r\n")), &f, &mut s);
    assert!(matches!(flow, Flow::Continue), "{flow:?}");
    assert_eq!(s.vars.get("api_key_id"), Some(&b"team-a"[..]));
    assert_eq!(s.vars.get("api_key_plan"), Some(&b"gold"[..]));
    assert!(s.request.drops(b"x-api-key"));

    // An upper-case hash in the config works as well; no plan → no variable.
    let flow = run(&get("/x", &format!("x-api-key: {KEY_B}\r\n")), &f, &mut s);
    assert!(matches!(flow, Flow::Continue), "{flow:?}");
    assert_eq!(s.vars.get("api_key_id"), Some(&b"team-b"[..]));
    assert_eq!(s.vars.get("api_key_plan"), None);
    assert_eq!(f.counts()[0].ok, 1);
    assert_eq!(f.counts()[1].ok, 1);

    let f = filter("strip = false");
    let flow = run(&get("/x", &format!("x-api-key: {KEY_A}\r\n")), &f, &mut s);
    assert!(matches!(flow, Flow::Continue));
    assert!(!s.request.drops(b"x-api-key"));
}

#[test]
fn query_parameter_key_is_removed_from_the_target() {
    let f = filter(r#"query = "api_key""#);
    let mut s = FilterState::default();
    for (target, want) in [
        (format!("/p?api_key={KEY_A}"), "/p"),
        (format!("/p?a=1&api_key={KEY_A}&b=2"), "/p?a=1&b=2"),
        (format!("/p?api_key={KEY_A}&b=2#frag"), "/p?b=2"),
        (format!("http://h.test/p?x&api_key={KEY_A}"), "/p?x"),
        // %XX escapes are decoded before hashing.
        (format!("/p?api_key={}", KEY_A.replace('_', "%5F")), "/p"),
    ] {
        let flow = run(&get(&target, ""), &f, &mut s);
        assert!(matches!(flow, Flow::Continue), "{target}: {flow:?}");
        assert_eq!(s.target(), Some(want.as_bytes()), "{target}");
        assert_eq!(s.vars.get("api_key_id"), Some(&b"team-a"[..]));
    }
    let mut s = FilterState::default();
    for target in [
        "/p".to_string(),
        "/p?api_key=".to_string(),
        format!("/p?api_key={KEY_A}&api_key={KEY_A}"),
        format!("/p?apikey={KEY_A}"),
        "/p?api_key=%zz".to_string(),
    ] {
        let flow = run(&get(&target, ""), &f, &mut s);
        assert!(matches!(flow, Flow::Respond(_)), "{target}: {flow:?}");
    }
    // The header is not looked at when the route expects the query.
    let flow = run(&get("/p", &format!("x-api-key: {KEY_A}\r\n")), &f, &mut s);
    assert!(matches!(flow, Flow::Respond(_)), "{flow:?}");
}

#[test]
fn query_key_after_a_rewrite_strips_from_the_rewritten_target() {
    let f = filter(r#"query = "k""#);
    let mut s = FilterState::default();
    let raw = get(&format!("/old?k={KEY_B}&z=1"), "");
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(&raw, &limits, &mut head).unwrap());
    s.set_target(format!("/new?k={KEY_B}&z=1").as_bytes());
    let mut cx = RequestCx {
        buf: &raw,
        head: &head,
        client: "192.0.2.7:5555".parse().unwrap(),
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"rid",
        state: &mut s,
    };
    assert!(matches!(f.on_request(&mut cx), Flow::Continue));
    assert_eq!(s.target(), Some(&b"/new?z=1"[..]));
}

#[test]
fn bad_config_is_reported_by_key() {
    let p = build(
        r#"type = "api_key"
header = "bad header"
realm = "a\"b"
keys = [
  { id = "a", sha256 = "00" },
  { id = "has space", sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" },
  { id = "b", sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", plan = "" },
  { id = "b", sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08" },
]"#,
    )
    .unwrap_err();
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "header",
            "realm",
            "keys[0].sha256",
            "keys[1].id",
            "keys[2].sha256",
            "keys[2].plan",
            "keys[3].id",
            "keys[3].sha256"
        ],
        "{p:?}"
    );
    let p = build("type = \"api_key\"\nheader = \"a\"\nquery = \"b\"\nkeys = []").unwrap_err();
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["query"], "{p:?}");
    let p = build("type = \"api_key\"").unwrap_err();
    assert_eq!(p.len(), 1);
    assert!(p[0].1.contains("no keys"), "{p:?}");
    let f: Result<FilterFile, _> = toml::from_str("type = \"api_key\"\nkey = []");
    assert!(f.is_err(), "unknown keys are refused");
}

#[test]
fn keys_file_is_read_relative_to_the_base_dir() {
    let dir = std::env::temp_dir().join(format!("ringway-apikeys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("keys.toml"),
        format!(
            "[[key]]\nid = \"file-key\"\nsha256 = \"{}\"\nplan = \"silver\"\n",
            hash_key(KEY_B.as_bytes())
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.toml"),
        "[[key]]\nid = \"x\"\nsha256 = \"zz\"\n",
    )
    .unwrap();
    let file: FilterFile = toml::from_str(&format!(
        "type = \"api_key\"\nkeys_file = \"keys.toml\"\nkeys = [{{ id = \"inline\", sha256 = \"{}\" }}]",
        hash_key(KEY_A.as_bytes())
    ))
    .unwrap();
    let mut p = Vec::new();
    let Some(Filter::ApiKey(f)) = file.build_in(&dir, &mut p) else {
        panic!("{p:?}")
    };
    let ids: Vec<_> = f.counts().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["inline".into(), "file-key".into()] as [Box<str>; 2]);
    let mut s = FilterState::default();
    let flow = run(&get("/", &format!("x-api-key: {KEY_B}\r\n")), &f, &mut s);
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(s.vars.get("api_key_plan"), Some(&b"silver"[..]));

    for (name, want) in [
        (
            "bad.toml",
            "\"bad.toml\": key[0].sha256: expected 64 hex digits",
        ),
        ("missing.toml", "\"missing.toml\": cannot read"),
    ] {
        let file: FilterFile =
            toml::from_str(&format!("type = \"api_key\"\nkeys_file = \"{name}\"")).unwrap();
        let mut p = Vec::new();
        assert!(file.build_in(&dir, &mut p).is_none());
        assert_eq!(p[0].0, "keys_file", "{p:?}");
        assert!(p[0].1.starts_with(want), "{p:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn counters_are_summed_over_threads() {
    let c = std::sync::Arc::new(super::counters::KeyCounters::with_slots(3, 2));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    c.bump(super::counters::Count::Ok(2));
                    c.bump(super::counters::Count::Unknown);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.get(super::counters::Count::Ok(2)), 4000);
    assert_eq!(c.get(super::counters::Count::Unknown), 4000);
    assert_eq!(c.get(super::counters::Count::Ok(0)), 0);
    assert_eq!(c.get(super::counters::Count::Missing), 0);
}
