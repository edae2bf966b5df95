use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::filter::BasicAuthFilter;
use super::htpasswd::{self, PasswordHash};
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{Filter, FilterFile, FilterState, Flow, RequestCx};

/// `openssl passwd -6 -salt saltstring 'Hello world!'` (the glibc test vector).
const SHA512_HELLO: &str = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
/// `openssl passwd -5 -salt saltstring 'Hello world!'`
const SHA256_HELLO: &str = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";

struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("ringway-basic-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, text: &str) -> &Path {
        std::fs::write(self.0.join(name), text).unwrap();
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn build(dir: &Path, extra: &str) -> Result<BasicAuthFilter, Vec<(String, String)>> {
    let f: FilterFile = toml::from_str(&format!(
        "type = \"basic_auth\"\nhtpasswd_file = \"users.htpasswd\"\n{extra}"
    ))
    .expect("filter parses");
    let mut p = Vec::new();
    match f.build_in(dir, &mut p) {
        Some(Filter::BasicAuth(b)) if p.is_empty() => Ok(b),
        Some(other) => panic!("not basic_auth: {other:?}"),
        None => Err(p),
    }
}

fn run(authorization: &[&str], f: &BasicAuthFilter, state: &mut FilterState) -> Flow {
    state.clear();
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for a in authorization {
        raw.extend_from_slice(b"Authorization: ");
        raw.extend_from_slice(a.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(&raw, &limits, &mut head).unwrap());
    let mut cx = RequestCx {
        buf: &raw,
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

fn basic(user_pass: &[u8]) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

fn htpasswd_text() -> String {
    // Cost 4: the lowest, so debug-build tests stay fast.
    let bcrypt = bcrypt::hash("s3cret:with:colons", 4).unwrap();
    assert!(bcrypt.starts_with("$2b$04$"));
    let bcrypt_2y = bcrypt.replacen("$2b$", "$2y$", 1);
    format!(
        "# staff\n\nalice:{bcrypt}\nbob:{SHA512_HELLO}\r\ncarol:{SHA256_HELLO}\nzoë:{bcrypt_2y}\n"
    )
}

#[test]
fn accepted_schemes_verify() {
    let d = Dir::new("schemes");
    let f = build(d.write("users.htpasswd", &htpasswd_text()), "").unwrap();
    assert_eq!(f.user_count(), 4);
    let mut s = FilterState::default();
    for (creds, user) in [
        (&b"alice:s3cret:with:colons"[..], "alice"),
        (b"bob:Hello world!", "bob"),
        (b"carol:Hello world!", "carol"),
        ("zoë:s3cret:with:colons".as_bytes(), "zoë"),
    ] {
        let flow = run(&[&basic(creds)], &f, &mut s);
        assert!(matches!(flow, Flow::Continue), "{user}: {flow:?}");
        assert_eq!(s.vars.get("user"), Some(user.as_bytes()));
        assert!(s.request.drops(b"authorization"));
    }
    // Scheme in any case, padding optional.
    let unpadded = basic(b"bob:Hello world!")
        .trim_end_matches('=')
        .replace("Basic", "bASIC");
    assert!(matches!(run(&[&unpadded], &f, &mut s), Flow::Continue));
}

#[test]
fn attacks_get_401() {
    let d = Dir::new("attacks");
    let f = build(
        d.write("users.htpasswd", &htpasswd_text()),
        "cache_ttl = \"0s\"",
    )
    .unwrap();
    let mut s = FilterState::default();
    let good = basic(b"bob:Hello world!");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("none", vec![]),
        ("wrong password", vec![basic(b"bob:hello world!")]),
        ("unknown user", vec![basic(b"mallory:Hello world!")]),
        ("empty password", vec![basic(b"bob:")]),
        ("no colon", vec![basic(b"bobHello world!")]),
        ("bad base64", vec!["Basic Ym9iOkhlbGxvIHdvcmxkIQ=!".into()]),
        ("non-UTF-8", vec![basic(b"bob:\xff\xfe")]),
        ("bearer", vec![good.replace("Basic", "Bearer")]),
        ("no token", vec!["Basic".into()]),
        ("no space", vec![good.replace("Basic ", "Basic")]),
        ("twice", vec![good.clone(), good.clone()]),
        ("user differs in case", vec![basic(b"Bob:Hello world!")]),
    ];
    for (what, auth) in cases {
        let auth: Vec<&str> = auth.iter().map(String::as_str).collect();
        let flow = run(&auth, &f, &mut s);
        let Flow::Respond(reply) = flow else {
            panic!("{what}: expected 401, got {flow:?}")
        };
        assert_eq!(reply.status, 401, "{what}");
        assert_eq!(
            s.response.get(b"www-authenticate"),
            Some(&br#"Basic realm="ringway", charset="UTF-8""#[..]),
            "{what}"
        );
        assert_eq!(s.vars.get("user"), None, "{what}");
    }
}

#[test]
fn successes_are_cached_per_worker_and_failures_are_not() {
    let d = Dir::new("cache");
    let dir = d.write("users.htpasswd", &htpasswd_text());
    let f = build(dir, "realm = \"staff\"\nstrip = false").unwrap();
    // Each test runs on its own thread: this cache is ours alone.
    assert_eq!(super::cache::len(), 0);
    let mut s = FilterState::default();
    assert!(matches!(
        run(&[&basic(b"bob:wrong")], &f, &mut s),
        Flow::Respond(_)
    ));
    assert_eq!(super::cache::len(), 0, "a failure was cached");
    assert_eq!(
        s.response.get(b"www-authenticate"),
        Some(&br#"Basic realm="staff", charset="UTF-8""#[..])
    );
    let good = basic(b"carol:Hello world!");
    assert!(matches!(run(&[&good], &f, &mut s), Flow::Continue));
    assert!(!s.request.drops(b"authorization"), "strip = false");
    assert_eq!(super::cache::len(), 1);
    assert!(matches!(run(&[&good], &f, &mut s), Flow::Continue));
    assert_eq!(s.vars.get("user"), Some(&b"carol"[..]));
    assert_eq!(super::cache::len(), 1);

    // A rebuilt filter (a reload) does not trust the old entries: carol
    // was removed from the file.
    let g = build(
        d.write("users.htpasswd", &format!("bob:{SHA512_HELLO}\n")),
        "",
    )
    .unwrap();
    assert!(matches!(run(&[&good], &g, &mut s), Flow::Respond(_)));

    // The cache stays bounded.
    let now = std::time::Instant::now();
    for i in 0..(super::cache::CAPACITY as u64 + 10) {
        super::cache::put(
            super::cache::key(u64::MAX, &i.to_le_bytes()),
            0,
            now,
            std::time::Duration::from_secs(60),
        );
    }
    assert_eq!(super::cache::len(), super::cache::CAPACITY);
}

#[test]
fn refused_schemes_name_the_line() {
    let d = Dir::new("refused");
    let real = bcrypt::hash("pw", 4).unwrap();
    let old = real.replacen("$2b$04$", "$2x$04$", 1);
    let costly = real.replacen("$2b$04$", "$2b$15$", 1);
    let text = format!(
        "ok:{SHA512_HELLO}\n\
         md5:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1\n\
         plain:hunter2\n\
         des:abJnggxhB/yWI\n\
         sha1:{{SHA}}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n\
         md5crypt:$1$abc$def\n\
         old:{old}\n\
         costly:{costly}\n\
         short:$6$salt$tooshort\n\
         ok:{SHA256_HELLO}\n\
         nocolon\n\
         argon:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\n"
    );
    let p = build(d.write("users.htpasswd", &text), "").unwrap_err();
    let lines: Vec<&str> = p.iter().map(|(_, m)| m.as_str()).collect();
    assert!(p.iter().all(|(k, _)| k == "htpasswd_file"), "{p:?}");
    let expect = [
        "\"users.htpasswd\" line 2: user \"md5\": Apache MD5",
        "\"users.htpasswd\" line 3: user \"plain\": not a password hash",
        "\"users.htpasswd\" line 4: user \"des\": traditional DES crypt",
        "\"users.htpasswd\" line 5: user \"sha1\": \"{SHA}\" is refused",
        "\"users.htpasswd\" line 6: user \"md5crypt\": MD5-crypt",
        "\"users.htpasswd\" line 7: user \"old\": bcrypt \"$2x$\"",
        "\"users.htpasswd\" line 8: user \"costly\": bcrypt cost 15",
        "\"users.htpasswd\" line 9: user \"short\": malformed SHA-crypt",
        "\"users.htpasswd\" line 10: user \"ok\" is listed twice",
        "\"users.htpasswd\" line 11: expected `user:hash`",
        "\"users.htpasswd\" line 12: user \"argon\": unsupported hash scheme",
    ];
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
    for (got, want) in lines.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "{got:?} does not start with {want:?}"
        );
        assert!(
            !got.contains("hunter2") && !got.contains("5VEb"),
            "a secret in {got:?}"
        );
    }
}

#[test]
fn bad_config_is_reported_by_key() {
    let d = Dir::new("config");
    let dir = d.write("users.htpasswd", "# nobody\n");
    let p = build(dir, "realm = \"\"\ncache_ttl = \"2h\"").unwrap_err();
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["realm", "cache_ttl", "htpasswd_file"], "{p:?}");
    assert!(p[2].1.contains("no users"), "{p:?}");
    let f: FilterFile =
        toml::from_str("type = \"basic_auth\"\nhtpasswd_file = \"nope.htpasswd\"").unwrap();
    let mut p = Vec::new();
    assert!(f.build_in(dir, &mut p).is_none());
    assert!(
        p[0].1.starts_with("\"nope.htpasswd\": cannot read"),
        "{p:?}"
    );
}

#[test]
fn hashes_never_show_in_debug_output() {
    let h = PasswordHash::parse(SHA512_HELLO).unwrap();
    assert_eq!(format!("{h:?}"), "ShaCrypt(..)");
    assert!(h.verify(b"Hello world!"));
    assert!(!h.verify(b"Hello world"));
    let parsed = htpasswd::parse(&format!("u:{SHA256_HELLO}\n")).unwrap();
    assert!(!format!("{parsed:?}").contains("saltstring"));
}
