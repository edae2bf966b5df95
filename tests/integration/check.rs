//! `ringway check -c FILE`: exit 0 when valid; else exit 1 and one
//! `error: <key path> (line N): <message>` per problem.

use std::time::Duration;

use ringway_tests::certs::Ca;
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::{check_config as check, run_ringway, CmdOutput};

/// Asserts exit 1 and an `error: {path} (line {line}): ` line.
fn assert_error(out: &CmdOutput, path: &str, line: usize, toml: &str) {
    assert_eq!(
        out.code(),
        Some(1),
        "exit code for an invalid config\n{out}\n--- config ---\n{toml}"
    );
    let want = format!("error: {path} (line {line}): ");
    assert!(
        out.all()
            .lines()
            .any(|l| l.starts_with(&want) && l.len() > want.len()),
        "no line starting with `{want}<message>`\n{out}\n--- config ---\n{toml}"
    );
    assert!(!out.all().contains("panicked"), "{out}");
}

const GOOD: &str = r#"[runtime]
workers = 2
driver = "auto"
drain_timeout = "5s"

[limits]
max_head_bytes = "64KiB"
max_headers = 100
header_read_timeout = "1s"
body_read_timeout = "30s"
idle_timeout = "60s"

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[listener]]
name = "secure"
address = "127.0.0.1:0"
tls = { cert = "srv.pem", key = "srv.key", sni = [{ names = ["a.test"], cert = "a.pem", key = "a.key" }] }

[[route]]
listener = "public"
host = "api.test"
path_prefix = "/"
cluster = "app"
max_body_bytes = "1MiB"
timeout = "2s"

[[route]]
listener = "secure"
host = "*.test"
path_prefix = "/"
cluster = "secure-app"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:9", "127.0.0.1:10"]
connect_timeout = "1s"
idle_timeout = "60s"
max_idle_per_endpoint = 4

[[cluster]]
name = "secure-app"
endpoints = ["127.0.0.1:11"]
tls = { ca = "ca.pem", server_name = "origin.test", cert = "client.pem", key = "client.key" }
"#;

fn write_pems(dir: &TestDir) {
    let ca = Ca::new("check CA");
    ca.write_pem(dir.path(), "ca.pem");
    ca.issue(&["srv.test"]).write(dir.path(), "srv");
    ca.issue(&["a.test"]).write(dir.path(), "a");
    ca.issue(&["client.test"]).write(dir.path(), "client");
}

#[test]
fn check_accepts_a_good_config() {
    let dir = TestDir::new("check-good");
    write_pems(&dir);
    let out = check(&dir, "good.toml", GOOD);
    assert_eq!(out.code(), Some(0), "a valid config was rejected\n{out}");
    assert!(!out.all().contains("error:"), "{out}");
}

#[test]
fn check_reports_a_misspelled_key_with_path_and_line() {
    let dir = TestDir::new("check-typo");
    let toml = r#"[runtime]
workers = 2

[[listener]]
name = "public"
adress = "127.0.0.1:0"

[[route]]
listener = "public"
path_prefix = "/"
cluster = "app"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:9"]
"#;
    let out = check(&dir, "typo.toml", toml);
    assert_error(&out, "listener[0].adress", 6, toml);
}

#[test]
fn check_reports_every_problem() {
    let dir = TestDir::new("check-many");
    let toml = r#"[runtime]
wrokers = 2

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
listener = "public"
path_prefix = "/"
cluster = "app"

[[cluster]]
name = "app"
endpoint = ["127.0.0.1:9"]
"#;
    let out = check(&dir, "many.toml", toml);
    assert_error(&out, "runtime.wrokers", 2, toml);
    assert_error(&out, "cluster[0].endpoint", 15, toml);
}

#[test]
fn check_reports_bad_values() {
    let dir = TestDir::new("check-values");
    let cases: &[(&str, &str, usize)] = &[
        ("[runtime]\nworkers = \"many\"\n", "runtime.workers", 2),
        (
            "[runtime]\nworkers = 1\ndrain_timeout = \"5 parsecs\"\n",
            "runtime.drain_timeout",
            3,
        ),
        ("[runtime]\ndriver = \"epoll\"\n", "runtime.driver", 2),
        (
            "[limits]\nmax_head_bytes = \"lots\"\n",
            "limits.max_head_bytes",
            2,
        ),
    ];
    for (i, (toml, path, line)) in cases.iter().enumerate() {
        let out = check(&dir, &format!("value-{i}.toml"), toml);
        assert_error(&out, path, *line, toml);
    }
}

#[test]
fn check_reports_dangling_references() {
    let dir = TestDir::new("check-refs");
    let toml = r#"[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
listener = "nope"
path_prefix = "/"
cluster = "missing"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:9"]
"#;
    let out = check(&dir, "refs.toml", toml);
    assert_error(&out, "route[0].listener", 6, toml);
    assert_error(&out, "route[0].cluster", 8, toml);
}

#[test]
fn check_missing_file_fails_cleanly() {
    let dir = TestDir::new("check-missing");
    let path = dir.join("does-not-exist.toml");
    let out = run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(!out.all().contains("panicked"), "{out}");
}
