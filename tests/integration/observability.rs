//! Access log lines and W3C trace context, end to end.

use std::time::Duration;

use ringway_tests::client::{Client, Request};
use ringway_tests::config::q;
use ringway_tests::setup::Setup;

fn trace_parts(v: &str) -> (String, String, String) {
    let p: Vec<&str> = v.split('-').collect();
    assert_eq!(p.len(), 4, "traceparent {v:?}");
    assert_eq!(p[0], "00", "{v}");
    assert_eq!(p[1].len(), 32, "{v}");
    assert_eq!(p[2].len(), 16, "{v}");
    assert!(v
        .bytes()
        .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    (p[1].to_string(), p[2].to_string(), p[3].to_string())
}

#[test]
fn valid_traceparent_keeps_its_trace_and_gets_a_new_span() {
    let s = Setup::new("trace-valid", |c| c);
    let mut c = s.client();
    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = c.request(
        &Request::get("/t")
            .header("traceparent", incoming)
            .header("tracestate", "congo=t61rcWkgMzE"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let rec = s.origin.last_request().unwrap();
    let tp = rec.headers_all("traceparent");
    assert_eq!(tp.len(), 1, "{}", rec.raw_str());
    let (trace, span, flags) = trace_parts(tp[0]);
    assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
    assert_ne!(span, "b7ad6b7169203331", "a new span id per hop");
    assert_eq!(flags, "01");
    assert_eq!(rec.header("tracestate"), Some("congo=t61rcWkgMzE"));

    // Two requests with the same parent get different spans.
    c.request(&Request::get("/t2").header("traceparent", incoming));
    let rec2 = s.origin.last_request().unwrap();
    let (trace2, span2, _) = trace_parts(rec2.header("traceparent").unwrap());
    assert_eq!(trace2, trace);
    assert_ne!(span2, span);
}

#[test]
fn malformed_or_missing_traceparent_starts_a_new_trace() {
    let s = Setup::new("trace-bad", |c| c);
    let mut c = s.client();
    for bad in [
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "garbage",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ] {
        let r = c.request(
            &Request::get("/bad")
                .header("traceparent", bad)
                .header("tracestate", "k=v"),
        );
        assert_eq!(r.status(), 200, "{r}");
        let rec = s.origin.last_request().unwrap();
        let tp = rec.headers_all("traceparent");
        assert_eq!(tp.len(), 1, "{}", rec.raw_str());
        let (trace, _, _) = trace_parts(tp[0]);
        assert_ne!(trace.to_lowercase(), "0af7651916cd43dd8448eb211c80319c");
        assert_ne!(trace, "00000000000000000000000000000000");
        assert!(
            !rec.has_header("tracestate"),
            "tracestate of a replaced trace is dropped: {}",
            rec.raw_str()
        );
    }
    c.get("/none");
    let rec = s.origin.last_request().unwrap();
    trace_parts(rec.header("traceparent").expect("a trace is started"));
}

#[test]
fn access_log_has_one_matching_line_per_request() {
    let mut s = Setup::new("access-json", |c| {
        c.runtime("workers", "2")
            .section("access_log", "path", &q("access.log"))
            .section("access_log", "flush_interval", &q("100ms"))
    });
    let n = 24;
    let mut sent = Vec::new();
    for i in 0..n {
        // A new connection each time, so the kernel may spread them over
        // both workers (which worker is asserted elsewhere: lifecycle).
        let mut c = Client::connect(s.addr());
        let path = format!("/log/{i}?q={i}");
        let r = if i % 3 == 0 {
            c.request(&Request::post(&path).body(vec![b'x'; i * 10]))
        } else {
            c.request(&Request::get(&path))
        };
        assert_eq!(r.status(), 200, "{r}");
        let rec = s.origin.last_request().unwrap();
        sent.push((
            path,
            if i % 3 == 0 { "POST" } else { "GET" },
            rec.header("x-request-id").unwrap().to_string(),
            trace_parts(rec.header("traceparent").unwrap()).0,
        ));
    }
    // A malformed request never reaches an upstream: no proxy-added time.
    let mut bad = Client::connect(s.addr());
    bad.send(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(s.dir.join("access.log"))
        .unwrap_or_default()
        .contains("\"status\":400")
    {
        assert!(std::time::Instant::now() < deadline, "400 line not flushed");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.proxy.sigterm();
    let status = s.proxy.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success());

    let text = std::fs::read_to_string(s.dir.join("access.log")).expect("access log written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n + 1, "one line per request:\n{text}");
    let bad = lines
        .iter()
        .find(|l| l.contains("\"status\":400"))
        .unwrap_or_else(|| panic!("no line for the 400:\n{text}"));
    let v: serde_json::Value = serde_json::from_str(bad).expect("valid JSON");
    assert!(v["upstream_us"].is_null(), "{bad}");
    assert!(v["proxy_us"].is_null(), "{bad}");
    let mut workers = std::collections::BTreeSet::new();
    for (path, method, rid, trace) in &sent {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("\"path\":\"{path}\"")))
            .unwrap_or_else(|| panic!("no line for {path}:\n{text}"));
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        assert_eq!(v["method"], *method, "{line}");
        assert_eq!(v["status"], 200, "{line}");
        assert_eq!(v["request_id"], rid.as_str(), "{line}");
        assert_eq!(v["trace_id"], trace.as_str(), "{line}");
        assert_eq!(v["listener"], "public", "{line}");
        assert_eq!(v["route"], "route0", "{line}");
        assert_eq!(v["upstream"], s.origin.addr().to_string(), "{line}");
        assert!(v["bytes_in"].as_u64().unwrap() > 0, "{line}");
        assert!(v["bytes_out"].as_u64().unwrap() > 0, "{line}");
        assert!(v["duration_us"].as_u64().is_some(), "{line}");
        assert!(v["upstream_us"].as_u64().is_some(), "{line}");
        // The time ringway added: duration minus upstream time.
        assert_eq!(
            v["proxy_us"].as_u64(),
            Some(v["duration_us"].as_u64().unwrap() - v["upstream_us"].as_u64().unwrap()),
            "{line}"
        );
        assert!(v["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(v["client"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(v["error"].is_null(), "{line}");
        workers.insert(v["worker"].as_u64().unwrap());
    }
    assert!(
        workers.iter().all(|w| *w < 2),
        "worker indices of a 2-worker proxy: {workers:?}"
    );
}

#[test]
fn combined_format_errors_and_reopen_on_sigusr1() {
    let mut s = Setup::new("access-combined", |c| {
        c.section("access_log", "path", &q("access.log"))
            .section("access_log", "format", &q("combined"))
            .section("access_log", "flush_interval", &q("50ms"))
    });
    let mut c = s.client();
    let r = c.request(&Request::get("/one").header("User-Agent", "probe/1"));
    assert_eq!(r.status(), 200);
    // A malformed request is logged with its 400 and no request line.
    let mut bad = s.client();
    bad.send(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    let log = s.dir.join("access.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "lines not flushed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rotated = s.dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    s.proxy.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(800));
    let r = c.request(&Request::get("/two"));
    assert_eq!(r.status(), 200);
    s.proxy.sigterm();
    assert!(s
        .proxy
        .wait_exit(Duration::from_secs(10))
        .unwrap()
        .success());

    let old = std::fs::read_to_string(&rotated).unwrap();
    let lines: Vec<&str> = old.lines().collect();
    assert_eq!(lines.len(), 2, "{old}");
    let ok = lines
        .iter()
        .find(|l| l.contains("/one"))
        .expect("line for /one");
    assert!(ok.starts_with("127.0.0.1 - - ["), "{ok}");
    assert!(ok.contains("\"GET /one HTTP/1.1\" 200 "), "{ok}");
    assert!(ok.contains("\"probe/1\""), "{ok}");
    let err = lines
        .iter()
        .find(|l| l.contains(" 400 "))
        .expect("line for the 400");
    assert!(err.contains("\"-\" 400"), "{err}");
    let new = std::fs::read_to_string(&log).expect("reopened file");
    assert_eq!(new.lines().count(), 1, "{new}");
    assert!(new.contains("\"GET /two HTTP/1.1\" 200 "), "{new}");
}
