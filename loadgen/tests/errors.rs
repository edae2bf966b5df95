//! Every kind of failure is counted, by kind, and never as a success.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{closed_port, error_count, raw_origin, read_request_head, run_json, Serve};

#[test]
fn refused_port_counts_connect_errors() {
    let addr = closed_port();
    let url = format!("http://{addr}/");
    let r = run_json(&[&url, "-n", "20", "-c", "2", "-t", "1"], 1);
    assert_eq!(r["requests"], 0);
    assert_eq!(error_count(&r, "connect"), 20);
    assert_eq!(r["errors_total"], 20);
    // A timed run against a dead port ends on time with connect errors.
    let r = run_json(&[&url, "-d", "300ms", "-c", "2", "-t", "1"], 1);
    assert!(error_count(&r, "connect") > 0);
}

#[test]
fn resets_by_serve_are_counted() {
    let serve = Serve::start(&["--reset-fraction", "1"]);
    let r = run_json(&[&serve.url("/"), "-n", "50", "-c", "2", "-t", "1"], 1);
    assert_eq!(error_count(&r, "reset"), 50, "{r}");
    assert_eq!(r["requests"], 0);

    // Half of the connections: every request is either answered or reset.
    let serve = Serve::start(&["--reset-fraction", "0.5"]);
    let r = run_json(
        &[
            &serve.url("/"),
            "-n",
            "400",
            "-c",
            "4",
            "-t",
            "1",
            "--no-keepalive",
        ],
        0,
    );
    let ok = r["requests"].as_u64().unwrap();
    let resets = error_count(&r, "reset");
    assert_eq!(ok + resets, 400, "{r}");
    assert_eq!(r["errors_total"].as_u64().unwrap(), resets);
    assert!(ok > 50 && resets > 50, "{r}");
}

#[test]
fn a_stalled_serve_causes_timeouts() {
    let serve = Serve::start(&["--stall", "5s", "--stall-after", "0"]);
    let r = run_json(
        &[
            &serve.url("/"),
            "-n",
            "4",
            "-c",
            "2",
            "-t",
            "1",
            "--timeout",
            "200ms",
        ],
        1,
    );
    assert_eq!(error_count(&r, "timeout"), 4, "{r}");
    assert_eq!(r["requests"], 0);
}

#[test]
fn slow_responses_within_the_timeout_are_fine() {
    // 64 bytes in 16-byte pieces, 20 ms apart: at least 80 ms each.
    let serve = Serve::start(&[
        "--body-size",
        "64",
        "--slow-body",
        "20ms",
        "--slow-chunk",
        "16",
    ]);
    let r = run_json(&[&serve.url("/"), "-n", "4", "-c", "2", "-t", "1"], 0);
    assert_eq!(r["requests"], 4);
    assert!(r["latency_us"]["min"].as_u64().unwrap() >= 75_000, "{r}");
    // Chunked and slow: still framed correctly.
    let serve = Serve::start(&["--body-size", "40", "--slow-body", "5ms", "--chunked"]);
    let r = run_json(&[&serve.url("/"), "-n", "6", "-c", "2", "-t", "1"], 0);
    assert_eq!(r["requests"], 6);
    assert_eq!(r["errors_total"], 0);
    // Slower than the timeout: timeouts.
    let serve = Serve::start(&["--body-size", "64", "--slow-body", "100ms"]);
    let r = run_json(
        &[
            &serve.url("/"),
            "-n",
            "2",
            "-c",
            "1",
            "-t",
            "1",
            "--timeout",
            "150ms",
        ],
        1,
    );
    assert_eq!(error_count(&r, "timeout"), 2);
}

#[test]
fn delays_show_in_latency() {
    let serve = Serve::start(&["--delay", "30ms"]);
    let r = run_json(&[&serve.url("/"), "-n", "10", "-c", "2", "-t", "1"], 0);
    assert!(r["latency_us"]["min"].as_u64().unwrap() >= 29_000, "{r}");
    let serve = Serve::start(&["--delay", "2ms", "--delay-dist", "exponential"]);
    let r = run_json(&[&serve.url("/"), "-n", "50", "-c", "5", "-t", "1"], 0);
    assert_eq!(r["requests"], 50);
}

fn truncated(mut s: TcpStream) {
    if read_request_head(&mut s) {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    }
}

fn garbage(mut s: TcpStream) {
    if read_request_head(&mut s) {
        let _ = s.write_all(b"SPDY/9 nonsense\r\n\r\n");
    }
}

fn conflicting(mut s: TcpStream) {
    if read_request_head(&mut s) {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
    }
}

fn bad_chunks(mut s: TcpStream) {
    if read_request_head(&mut s) {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n");
    }
}

fn silent_close(mut s: TcpStream) {
    read_request_head(&mut s);
}

fn until_close(mut s: TcpStream) {
    if read_request_head(&mut s) {
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nbody until close");
    }
}

#[test]
fn malformed_responses_are_errors_not_successes() {
    for answer in [truncated, garbage, conflicting, bad_chunks] {
        let addr = raw_origin(answer);
        let r = run_json(
            &[&format!("http://{addr}/"), "-n", "5", "-c", "1", "-t", "1"],
            1,
        );
        assert_eq!(error_count(&r, "malformed"), 5, "{r}");
        assert_eq!(r["requests"], 0, "{r}");
    }
}

#[test]
fn closed_without_response_and_until_close_framing() {
    let addr = raw_origin(silent_close);
    let r = run_json(
        &[&format!("http://{addr}/"), "-n", "5", "-c", "1", "-t", "1"],
        1,
    );
    assert_eq!(error_count(&r, "closed"), 5, "{r}");

    // A body delimited by the close is a complete (if old-fashioned) response.
    let addr = raw_origin(until_close);
    let r = run_json(
        &[&format!("http://{addr}/"), "-n", "5", "-c", "1", "-t", "1"],
        0,
    );
    assert_eq!(r["status_counts"]["200"], 5, "{r}");
    assert_eq!(r["errors_total"], 0);
    assert_eq!(r["connects"], 5);
}
