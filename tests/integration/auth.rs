//! `type = "api_key"` and `type = "basic_auth"`: attacks first (each gets
//! 401, the origin never sees it, the connection stays usable), then what a
//! good credential does upstream and in the access log, and the
//! `ringway apikey` / `ringway check` commands.

use std::time::{Duration, Instant};

use ringway_tests::client::Request;
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{run_ringway, Proxy};
use ringway_tests::setup::Setup;

const KEY_A: &str = "rwk_team-a-0123456789abcdefghijklmnop";
const KEY_B: &str = "rwk_team-b-0123456789abcdefghijklmnop";

/// `ringway apikey hash KEY`.
fn sha256_hex(key: &str) -> String {
    let out = run_ringway(&["apikey", "hash", key], None, Duration::from_secs(10));
    assert_eq!(out.code(), Some(0), "{out}");
    let hex = out.stdout.trim().to_string();
    assert_eq!(hex.len(), 64, "{out}");
    hex
}

/// A proxy in front of a fresh origin, with `files` written next to its
/// config, `filters` on every route and a JSON access log `access.log`.
fn start(label: &str, files: &[(&str, String)], filters: &str) -> Setup {
    let dir = TestDir::new(label);
    for (name, text) in files {
        dir.write(name, text);
    }
    let origin = Origin::start();
    let config = Config::simple(origin.addr())
        .all_routes("filters", filters)
        .section("access_log", "path", &q("access.log"))
        .section("access_log", "flush_interval", &q("50ms"));
    let proxy = Proxy::start(&dir, &config);
    Setup { proxy, origin, dir }
}

/// The access log's JSON line for `path`, waiting for the flush.
fn log_line(s: &Setup, path: &str) -> serde_json::Value {
    let needle = format!("\"path\":\"{path}\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(s.dir.join("access.log")).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(&needle)) {
            return serde_json::from_str(line).expect("valid JSON");
        }
        assert!(
            Instant::now() < deadline,
            "no access log line for {path}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn api_key_filters(extra: &str) -> String {
    format!(
        r#"[{{ type = "api_key", realm = "api", {extra} keys = [{{ id = "team-a", sha256 = "{}", plan = "gold" }}, {{ id = "team-b", sha256 = "{}" }}] }}, {{ type = "headers", request_set = {{ "x-api-key-id" = "$var.api_key_id" }} }}]"#,
        sha256_hex(KEY_A),
        sha256_hex(KEY_B),
    )
}

#[test]
fn api_key_attacks_get_401_and_never_reach_the_origin() {
    let s = start("apikey-attacks", &[], &api_key_filters(""));
    let mut c = s.client();
    let mut one_off = KEY_A.to_string();
    one_off.pop();
    one_off.push('Q');
    let attacks = [
        ("missing key", Request::get("/a")),
        (
            "unknown key",
            Request::get("/a").header("X-Api-Key", "rwk_guess"),
        ),
        (
            "one byte off",
            Request::get("/a").header("X-Api-Key", &one_off),
        ),
        (
            "a prefix of the key",
            Request::get("/a").header("X-Api-Key", &KEY_A[..KEY_A.len() - 1]),
        ),
        (
            "wrong header",
            Request::get("/a").header("X-Api-Token", KEY_A),
        ),
        ("empty key", Request::get("/a").header("X-Api-Key", "")),
        (
            "key in the query of a header route",
            Request::get(&format!("/a?x-api-key={KEY_A}&api_key={KEY_A}")),
        ),
        (
            "the key twice (one good)",
            Request::get("/a")
                .header("X-Api-Key", "rwk_guess")
                .header("X-Api-Key", KEY_A),
        ),
        (
            "the stored hash as the key",
            Request::get("/a").header("X-Api-Key", &sha256_hex(KEY_A)),
        ),
        (
            "key in Authorization",
            Request::get("/a").header("Authorization", &format!("Bearer {KEY_A}")),
        ),
    ];
    for (what, req) in &attacks {
        let r = c.request(req);
        assert_eq!(r.status(), 401, "{what}: {r}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"ApiKey realm="api""#),
            "{what}: {r}"
        );
        assert_eq!(r.body_str(), "401 Unauthorized\n", "{what}");
        assert_eq!(s.origin.request_count(), 0, "{what}: reached the origin");
    }
    // Keep-alive after every 401: the same connection now passes.
    let r = c.request(&Request::get("/a").header("X-Api-Key", KEY_A));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(s.origin.request_count(), 1);
    let rec = s.origin.last_request().unwrap();
    assert_eq!((rec.conn_id, rec.index_on_conn), (1, 1));
}

#[test]
fn api_key_of_64_kib_is_refused_before_the_filter() {
    let s = start("apikey-long", &[], &api_key_filters(""));
    let mut c = s.client();
    let long = "k".repeat(64 * 1024);
    let r = c.request(&Request::get("/a").header("X-Api-Key", &long));
    assert!(matches!(r.status(), 431 | 401), "{r}");
    assert_eq!(s.origin.request_count(), 0);
}

#[test]
fn good_key_is_stripped_and_its_id_cannot_be_spoofed() {
    let s = start("apikey-good", &[], &api_key_filters(""));
    let mut c = s.client();
    let r = c.request(
        &Request::get("/items")
            .header("X-Api-Key", KEY_A)
            .header("X-Api-Key-Id", "admin"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let rec = s.origin.last_request().unwrap();
    assert!(
        !rec.has_header("x-api-key"),
        "key forwarded: {}",
        rec.raw_str()
    );
    assert_eq!(
        rec.headers_all("x-api-key-id"),
        ["team-a"],
        "{}",
        rec.raw_str()
    );
    // A spoofed id without a key does not get through at all.
    let r = c.request(&Request::get("/spoof").header("X-Api-Key-Id", "team-b"));
    assert_eq!(r.status(), 401, "{r}");
    let r = c.request(&Request::get("/other").header("x-api-key", KEY_B));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(
        s.origin.last_request().unwrap().header("x-api-key-id"),
        Some("team-b")
    );

    let v = log_line(&s, "/items");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["vars"]["api_key_id"], "team-a", "{v}");
    assert_eq!(v["vars"]["api_key_plan"], "gold", "{v}");
    let v = log_line(&s, "/spoof");
    assert_eq!(v["status"], 401, "{v}");
    assert!(v["vars"].is_null(), "{v}");
    let v = log_line(&s, "/other");
    assert_eq!(v["vars"]["api_key_id"], "team-b", "{v}");
    assert!(v["vars"]["api_key_plan"].is_null(), "{v}");
}

#[test]
fn query_key_from_a_keys_file_is_removed_from_the_target() {
    let keys = format!(
        "# rotated weekly\n[[key]]\nid = \"mobile\"\nsha256 = \"{}\"\nplan = \"bronze\"\n",
        sha256_hex(KEY_B)
    );
    let s = start(
        "apikey-query",
        &[("apikeys.toml", keys)],
        r#"[{ type = "api_key", query = "api_key", keys_file = "apikeys.toml" }]"#,
    );
    let mut c = s.client();
    for (what, req) in [
        (
            "key in the header of a query route",
            Request::get("/q?a=1").header("X-Api-Key", KEY_B),
        ),
        ("unknown key", Request::get("/q?api_key=rwk_nope")),
        (
            "key twice",
            Request::get(&format!("/q?api_key={KEY_B}&api_key={KEY_B}")),
        ),
    ] {
        let r = c.request(&req);
        assert_eq!(r.status(), 401, "{what}: {r}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"ApiKey realm="ringway""#),
            "{what}: {r}"
        );
    }
    assert_eq!(s.origin.request_count(), 0);
    let r = c.request(&Request::get(&format!("/q?a=1&api_key={KEY_B}&b=2")));
    assert_eq!(r.status(), 200, "{r}");
    let rec = s.origin.last_request().unwrap();
    assert_eq!(rec.target, "/q?a=1&b=2");
    let r = c.request(&Request::get(&format!("/q?api_key={KEY_B}")));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(s.origin.last_request().unwrap().target, "/q");
    // The access log's `path` is the target as the client sent it, with
    // the key's value redacted (refused keys too): no key ever reaches the
    // log.
    let v = log_line(&s, "/q?a=1&api_key=REDACTED&b=2");
    assert_eq!(v["vars"]["api_key_id"], "mobile", "{v}");
    assert_eq!(v["vars"]["api_key_plan"], "bronze", "{v}");
    log_line(&s, "/q?api_key=REDACTED&api_key=REDACTED");
    let text = std::fs::read_to_string(s.dir.join("access.log")).unwrap();
    assert!(!text.contains(KEY_B), "a key in the access log:\n{text}");
    assert!(
        !text.contains("rwk_nope"),
        "a key in the access log:\n{text}"
    );
}

#[test]
fn apikey_commands() {
    assert_eq!(
        sha256_hex("test"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    let out = run_ringway(&["apikey", "new"], None, Duration::from_secs(10));
    assert_eq!(out.code(), Some(0), "{out}");
    let field = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} line: {out}"))
            .to_string()
    };
    let (key, hash) = (field("key:"), field("sha256:"));
    assert!(key.starts_with("rwk_") && key.len() > 40, "{out}");
    assert_eq!(sha256_hex(&key), hash);
    // No key on the command line and nothing on stdin: an error.
    let out = run_ringway(&["apikey", "hash"], None, Duration::from_secs(10));
    assert_eq!(out.code(), Some(1), "{out}");
}

// ---- basic_auth ----

/// `openssl passwd -6` of `password`, or the glibc test vector for
/// "Hello world!" when openssl is missing.
fn sha512_crypt(password: &str) -> (String, String) {
    let out = std::process::Command::new("openssl")
        .args(["passwd", "-6", password])
        .output();
    match out {
        Ok(o) if o.status.success() => (
            password.to_string(),
            String::from_utf8(o.stdout).unwrap().trim().to_string(),
        ),
        other => {
            println!(
                "openssl passwd -6 unavailable ({:?}): using the glibc test vector",
                other.map(|o| o.status)
            );
            (
                "Hello world!".into(),
                "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1".into(),
            )
        }
    }
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64(user_pass.as_bytes()))
}

/// Standard base64 with padding (the test crate has no base64 dependency).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn basic_auth_attacks_get_401_and_good_users_pass() {
    // Cost 5: the debug build's bcrypt is slow.
    let bcrypt = bcrypt::hash("correct horse", 5).unwrap();
    let (sha_password, sha_hash) = sha512_crypt("battery staple");
    let htpasswd = format!("# staff\nalice:{bcrypt}\nbob:{sha_hash}\n");
    let s = start(
        "basic-auth",
        &[("users.htpasswd", htpasswd)],
        r#"[{ type = "basic_auth", htpasswd_file = "users.htpasswd", realm = "staff" }, { type = "headers", request_set = { "x-user" = "$var.user" } }]"#,
    );
    let mut c = s.client();
    let attacks = [
        ("no Authorization", None),
        ("wrong password", Some(basic("alice:correct horse!"))),
        ("unknown user", Some(basic("mallory:correct horse"))),
        (
            "bad base64",
            Some("Basic YWxpY2U6Y29ycmVjdCBob3JzZQ=!".into()),
        ),
        ("missing colon", Some(basic("alicecorrect horse"))),
        (
            "another scheme",
            Some(basic("alice:correct horse").replace("Basic", "Bearer")),
        ),
        ("non-UTF-8", Some("Basic YWxpY2U6/w==".into())),
        ("empty", Some("Basic ".into())),
    ];
    for (what, auth) in &attacks {
        let mut req = Request::get("/staff").header("X-User", "alice");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = c.request(&req);
        assert_eq!(r.status(), 401, "{what}: {r}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Basic realm="staff", charset="UTF-8""#),
            "{what}: {r}"
        );
        assert_eq!(s.origin.request_count(), 0, "{what}: reached the origin");
    }
    // Same connection: bcrypt and SHA-512-crypt users get in, twice each
    // (the second from the cache); the credentials are not forwarded and
    // the spoofed X-User is replaced.
    for (user, creds) in [
        ("alice", basic("alice:correct horse")),
        ("bob", basic(&format!("bob:{sha_password}"))),
    ] {
        for _ in 0..2 {
            let r = c.request(
                &Request::get(&format!("/staff/{user}"))
                    .header("Authorization", &creds)
                    .header("X-User", "root"),
            );
            assert_eq!(r.status(), 200, "{user}: {r}");
            let rec = s.origin.last_request().unwrap();
            assert!(!rec.has_header("authorization"), "{}", rec.raw_str());
            assert_eq!(rec.headers_all("x-user"), [user], "{}", rec.raw_str());
        }
        let v = log_line(&s, &format!("/staff/{user}"));
        assert_eq!(v["vars"]["user"], user, "{v}");
    }
    assert_eq!(s.origin.connections(), 1);
    let rec = s.origin.last_request().unwrap();
    assert_eq!(rec.index_on_conn, 4, "one upstream connection, kept alive");
}

#[test]
fn check_refuses_an_apr1_htpasswd_line_naming_file_and_line() {
    let dir = TestDir::new("basic-check");
    dir.write(
        "users.htpasswd",
        format!(
            "alice:{}\nbob:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1\ncarol:hunter2\n",
            bcrypt::hash("pw", 4).unwrap()
        ),
    );
    let config = Config::simple("127.0.0.1:9".parse().unwrap()).all_routes(
        "filters",
        r#"[{ type = "basic_auth", htpasswd_file = "users.htpasswd" }]"#,
    );
    let path = dir.write("ringway.toml", config.to_toml());
    let out = run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        None,
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let all = out.all();
    let apr1 = all
        .lines()
        .find(|l| l.contains("\"users.htpasswd\" line 2"))
        .unwrap_or_else(|| panic!("no line for the $apr1$ entry: {out}"));
    assert!(
        apr1.starts_with("error: route[0].filters[0].htpasswd_file") && apr1.contains("$apr1$"),
        "{apr1}"
    );
    let plain = all
        .lines()
        .find(|l| l.contains("\"users.htpasswd\" line 3"))
        .unwrap_or_else(|| panic!("no line for the plain-text entry: {out}"));
    assert!(plain.contains("plain-text"), "{plain}");
    assert!(
        !all.contains("hunter2") && !all.contains("5VEb"),
        "a secret printed: {out}"
    );
}

#[test]
fn reload_re_reads_the_keys_file() {
    let entry =
        |id: &str, key: &str| format!("[[key]]\nid = \"{id}\"\nsha256 = \"{}\"\n", sha256_hex(key));
    let s = start(
        "apikey-reload",
        &[("apikeys.toml", entry("old", KEY_A))],
        r#"[{ type = "api_key", keys_file = "apikeys.toml" }]"#,
    );
    let status = |key: &str| {
        s.client()
            .request(&Request::get("/r").header("X-Api-Key", key))
            .status()
    };
    assert_eq!(status(KEY_A), 200);
    assert_eq!(status(KEY_B), 401);

    // Rotate: the new key in, the old one out.
    s.dir.write("apikeys.toml", entry("new", KEY_B));
    s.proxy.sighup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(KEY_B) != 200 {
        assert!(Instant::now() < deadline, "the new key was not picked up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(KEY_A), 401, "the removed key still works");

    // A broken keys file: the reload is refused, the keys in force stay.
    s.dir.write(
        "apikeys.toml",
        "[[key]]\nid = \"x\"\nsha256 = \"not hex\"\n",
    );
    s.proxy.sighup();
    assert!(
        s.proxy
            .wait_stderr_contains("key[0].sha256", Duration::from_secs(10)),
        "{}",
        s.proxy.stderr()
    );
    assert_eq!(status(KEY_B), 200);
}
