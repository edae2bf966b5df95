//! Bad arguments get one clear line on stderr and exit code 2.

mod common;

use std::time::Duration;

use common::ringload;

fn rejected(args: &[&str], needle: &str) {
    let out = ringload(args, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: expected one line, got:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: {needle:?} not in {stderr:?}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: wrote to stdout");
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    rejected(&["run", "127.0.0.1:8080/"], "invalid URL");
    rejected(&["run", "ftp://127.0.0.1/"], "scheme");
    rejected(&["run", "http://127.0.0.1:99999/"], "port");
    rejected(&["run", "http://127.0.0.1:1/", "-c", "0"], "connections");
    rejected(
        &["run", "http://127.0.0.1:1/", "--rate", "100"],
        "--rate needs",
    );
    rejected(
        &["run", "http://127.0.0.1:1/", "--rate", "100", "-n", "10"],
        "--rate needs",
    );
    rejected(&["run", "http://127.0.0.1:1/", "-d", "10x"], "duration");
    rejected(
        &["run", "http://127.0.0.1:1/", "-n", "5", "-d", "1s"],
        "cannot be used",
    );
    rejected(
        &["run", "http://127.0.0.1:1/", "--pipeline", "0"],
        "pipeline",
    );
    rejected(&["run", "https://127.0.0.1:1/"], "--cacert");
    rejected(&["run", "http://127.0.0.1:1/", "--bogus"], "--bogus");
    rejected(&["run"], "URL");
    rejected(&["serve", "--status", "99"], "--status");
    rejected(&["serve", "--listen", "nowhere"], "nowhere");
    rejected(&["serve", "--stall-after", "3"], "--stall");
    rejected(&["frobnicate"], "frobnicate");
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["serve", "--help"],
        &["--version"],
    ] {
        let out = ringload(args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}
