//! Exact request counts, status counts, and the JSON report agreeing with
//! the text one, against `ringload serve` on loopback.

mod common;

use std::time::Duration;

use common::{error_count, ringload, run_json, Serve, TempDir};

#[test]
fn ten_thousand_requests_exactly() {
    let serve = Serve::start(&["--status", "201"]);
    let r = run_json(&[&serve.url("/"), "-n", "10000", "-c", "8", "-t", "2"], 0);
    assert_eq!(r["requests"], 10000);
    assert_eq!(r["status_counts"]["201"], 10000);
    assert_eq!(r["status_counts"].as_object().unwrap().len(), 1);
    assert_eq!(r["errors_total"], 0);
    assert_eq!(r["connects"], 8);
    assert!(r["rps"].as_f64().unwrap() > 0.0);
    assert!(r["bytes"].as_u64().unwrap() > 10000 * 40);
    let l = &r["latency_us"];
    let keys = ["min", "p50", "p75", "p90", "p99", "p999", "p9999", "max"];
    for pair in keys.windows(2) {
        assert!(
            l[pair[0]].as_u64().unwrap() <= l[pair[1]].as_u64().unwrap(),
            "{pair:?} out of order: {l}"
        );
    }
    assert!(l["mean"].as_f64().unwrap() > 0.0);
}

/// Parse the text report's totals: (requests, [(code, n)], error total).
fn text_totals(text: &str) -> (u64, Vec<(String, u64)>, u64) {
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .map(|(n, _)| n.parse().unwrap())
        .expect("requests line");
    let codes = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Status codes: "))
        .expect("status line")
        .split(", ")
        .filter(|s| *s != "none")
        .map(|s| {
            let (code, n) = s.split_once(": ").unwrap();
            (code.to_string(), n.parse().unwrap())
        })
        .collect();
    let errors = text
        .lines()
        .find_map(|l| l.split_once("(total "))
        .map(|(_, rest)| rest.trim_end_matches(')').parse().unwrap())
        .expect("errors line");
    (requests, codes, errors)
}

#[test]
fn json_totals_agree_with_text() {
    let serve = Serve::start(&["--status", "404", "--body-size", "100"]);
    let url = serve.url("/missing");
    let args = [
        "run",
        url.as_str(),
        "-n",
        "3000",
        "-c",
        "4",
        "-t",
        "2",
        "--pipeline",
        "3",
    ];
    let out = ringload(&args, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let (requests, codes, errors) = text_totals(&text);

    let json = run_json(&args[1..], 0);
    assert_eq!(json["requests"].as_u64().unwrap(), requests, "{text}");
    assert_eq!(requests, 3000);
    assert_eq!(codes, vec![("404".to_string(), 3000)]);
    assert_eq!(json["status_counts"]["404"], 3000);
    assert_eq!(json["errors_total"].as_u64().unwrap(), errors);
    assert_eq!(errors, 0);
    assert_eq!(json["pipeline"], 3);
    // 100-byte bodies: at least that much per response was read.
    assert!(json["bytes"].as_u64().unwrap() >= 3000 * 100);
}

#[test]
fn keepalive_off_opens_a_connection_per_request() {
    let serve = Serve::start(&[]);
    let r = run_json(
        &[
            &serve.url("/"),
            "-n",
            "300",
            "-c",
            "3",
            "-t",
            "1",
            "--no-keepalive",
        ],
        0,
    );
    assert_eq!(r["requests"], 300);
    assert_eq!(r["connects"], 300);
    assert_eq!(r["errors_total"], 0);
}

#[test]
fn server_closing_after_n_requests_is_not_an_error() {
    let serve = Serve::start(&["--close-after", "3"]);
    let r = run_json(&[&serve.url("/"), "-n", "300", "-c", "1", "-t", "1"], 0);
    assert_eq!(r["requests"], 300);
    assert_eq!(r["connects"], 100);
    assert_eq!(r["errors_total"], 0);
}

#[test]
fn chunked_head_and_bodyless_responses_frame() {
    let serve = Serve::start(&["--chunked", "--body-size", "5000"]);
    let r = run_json(
        &[
            &serve.url("/"),
            "-n",
            "500",
            "-c",
            "2",
            "-t",
            "1",
            "--pipeline",
            "4",
        ],
        0,
    );
    assert_eq!(r["status_counts"]["200"], 500);
    assert_eq!(r["errors_total"], 0);
    // HEAD: the Content-Length of the GET is sent but no body follows.
    let serve = Serve::start(&["--body-size", "5000"]);
    let r = run_json(
        &[
            &serve.url("/"),
            "-n",
            "500",
            "-c",
            "2",
            "-t",
            "1",
            "-m",
            "HEAD",
        ],
        0,
    );
    assert_eq!(r["status_counts"]["200"], 500);
    assert_eq!(r["errors_total"], 0);
    assert!(r["bytes"].as_u64().unwrap() < 500 * 1000);
    let serve = Serve::start(&["--status", "204"]);
    let r = run_json(&[&serve.url("/"), "-n", "200", "-c", "2", "-t", "1"], 0);
    assert_eq!(r["status_counts"]["204"], 200);
    assert_eq!(r["errors_total"], 0);
}

#[test]
fn post_bodies_and_headers_are_sent() {
    let serve = Serve::start(&["--echo", "--echo-header", "x-test"]);
    let r = run_json(
        &[
            &serve.url("/echo"),
            "-n",
            "200",
            "-c",
            "2",
            "-t",
            "1",
            "-m",
            "POST",
            "--body",
            "0123456789",
            "-H",
            "X-Test: yes",
        ],
        0,
    );
    assert_eq!(r["status_counts"]["200"], 200);
    // Each echoed response carries the 10-byte body and the header.
    assert!(r["bytes"].as_u64().unwrap() >= 200 * (10 + 13));
}

#[test]
fn legacy_driver_and_timed_runs() {
    let serve = Serve::start(&["--driver", "legacy"]);
    let r = run_json(
        &[
            &serve.url("/"),
            "-d",
            "500ms",
            "-c",
            "4",
            "-t",
            "2",
            "--driver",
            "legacy",
        ],
        0,
    );
    assert!(r["driver"].as_str().unwrap().contains("legacy"));
    assert!(r["requests"].as_u64().unwrap() > 100);
    assert_eq!(r["errors_total"], 0);
    let d = r["duration_s"].as_f64().unwrap();
    assert!((0.45..1.5).contains(&d), "duration {d}");
    let rps = r["rps"].as_f64().unwrap();
    let expect = r["requests"].as_f64().unwrap() / d;
    assert!((rps - expect).abs() / expect < 0.01);
}

#[test]
fn warmup_is_not_measured_and_hdr_log_is_written() {
    let serve = Serve::start(&[]);
    let dir = TempDir::new("hdr");
    let log = dir.0.join("latency.hlog");
    let r = run_json(
        &[
            &serve.url("/"),
            "-d",
            "1500ms",
            "--warmup",
            "300ms",
            "-c",
            "2",
            "-t",
            "1",
            "--hdr-log",
            log.to_str().unwrap(),
        ],
        0,
    );
    let d = r["duration_s"].as_f64().unwrap();
    assert!(
        (1.4..2.2).contains(&d),
        "duration {d} should exclude the warm-up"
    );
    let text = std::fs::read(&log).unwrap();
    let mut intervals = 0;
    let mut counted = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&text) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(h) = entry.unwrap() {
            intervals += 1;
            let bytes = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> =
                hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .unwrap();
            counted += hist.len();
        }
    }
    assert_eq!(intervals, 2, "1.5 s in 1 s intervals");
    assert_eq!(counted, r["requests"].as_u64().unwrap());
    assert_eq!(error_count(&r, "connect"), 0);
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn open_loop_keeps_its_schedule() {
    let serve = Serve::start(&[]);
    let r = run_json(
        &[
            &serve.url("/"),
            "--rate",
            "2000",
            "-d",
            "1s",
            "-c",
            "4",
            "-t",
            "2",
            "--pipeline",
            "2",
        ],
        0,
    );
    let n = r["requests"].as_u64().unwrap();
    assert!((1800..=2010).contains(&n), "{r}");
    assert_eq!(r["mode"], "open");
    assert_eq!(r["errors_total"], 0);
    let r = run_json(
        &[
            &serve.url("/"),
            "--rate",
            "200",
            "-d",
            "1s",
            "-c",
            "2",
            "-t",
            "1",
            "--no-keepalive",
        ],
        0,
    );
    let n = r["requests"].as_u64().unwrap();
    assert!((180..=201).contains(&n), "{r}");
    assert!(r["connects"].as_u64().unwrap() >= n);
    assert_eq!(r["errors_total"], 0);
}
