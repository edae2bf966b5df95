//! Malformed and ambiguous requests: each must get its 4xx with
//! `Connection: close`, the connection must close, and not one byte of it
//! may reach the origin. A well-formed request on another (keep-alive)
//! connection keeps working after every case.

use std::time::Duration;

use ringway_tests::client::{Client, Eof, Request};
use ringway_tests::setup::{show, Setup};

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    status: u16,
}

const LINE: &str = "POST /strict HTTP/1.1\r\nHost: strict.test\r\n";

/// `POST /strict` with the given extra header lines, then the blank line and `body`.
fn post(fields: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("{LINE}{fields}\r\n").into_bytes();
    v.extend_from_slice(body);
    v
}

/// A chunked POST whose body is `body` verbatim.
fn chunked(body: &[u8]) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

fn raw(s: &[u8]) -> Vec<u8> {
    s.to_vec()
}

fn case(name: &'static str, bytes: Vec<u8>, status: u16) -> Case {
    Case {
        name,
        bytes,
        status,
    }
}

fn cases() -> Vec<Case> {
    let big_value = "v".repeat(70 * 1024);
    let many: String = (0..101).map(|i| format!("X-H-{i}: {i}\r\n")).collect();
    let long_ext = format!("5;{}=b\r\nhello\r\n0\r\n\r\n", "a".repeat(100 * 1024));
    vec![
        // Framing: Content-Length / Transfer-Encoding.
        case(
            "cl_and_te",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        case(
            "te_and_cl",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        case(
            "cl_and_te_identity",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: identity\r\n",
                b"hello",
            ),
            400,
        ),
        case(
            "cl_differing_fields",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
            400,
        ),
        case(
            "cl_differing_list",
            post("Content-Length: 5, 6\r\n", b"hello!"),
            400,
        ),
        case("cl_not_a_number", post("Content-Length: abc\r\n", b""), 400),
        case("cl_negative", post("Content-Length: -1\r\n", b""), 400),
        case(
            "cl_plus_sign",
            post("Content-Length: +5\r\n", b"hello"),
            400,
        ),
        case("cl_hex", post("Content-Length: 0x5\r\n", b"hello"), 400),
        case(
            "cl_overflow",
            post("Content-Length: 184467440737095516160\r\n", b""),
            400,
        ),
        case("cl_empty", post("Content-Length: \r\n", b""), 400),
        case("cl_inner_space", post("Content-Length: 1 2\r\n", b""), 400),
        case(
            "te_gzip_only",
            post("Transfer-Encoding: gzip\r\n", b"hello"),
            400,
        ),
        case(
            "te_chunked_not_final",
            post("Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"),
            400,
        ),
        case(
            "te_two_fields_gzip_last",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        case(
            "te_unknown_coding",
            post("Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
            400,
        ),
        case(
            "te_identity",
            post("Transfer-Encoding: identity\r\n", b"hello"),
            400,
        ),
        // Line endings, folding, field syntax.
        case(
            "bare_lf_everywhere",
            raw(b"GET /strict HTTP/1.1\nHost: strict.test\n\n"),
            400,
        ),
        case(
            "bare_lf_in_one_field",
            raw(b"GET /strict HTTP/1.1\r\nHost: strict.test\nX-A: b\r\n\r\n"),
            400,
        ),
        case(
            "bare_cr_line_end",
            raw(b"GET /strict HTTP/1.1\rHost: strict.test\r\n\r\n"),
            400,
        ),
        case("bare_cr_in_value", post("X-A: b\rc\r\n", b""), 400),
        case("obs_fold_space", post("X-A: b\r\n folded\r\n", b""), 400),
        case("obs_fold_tab", post("X-A: b\r\n\tfolded\r\n", b""), 400),
        case(
            "whitespace_before_first_field",
            raw(b"GET /strict HTTP/1.1\r\n Host: strict.test\r\n\r\n"),
            400,
        ),
        case("space_before_colon", post("X-A : b\r\n", b""), 400),
        case(
            "space_before_colon_cl",
            post("Content-Length : 5\r\n", b"hello"),
            400,
        ),
        case("tab_before_colon", post("X-A\t: b\r\n", b""), 400),
        case("bad_token_char_in_name", post("X(A): b\r\n", b""), 400),
        case("non_ascii_in_name", post("X\u{e9}A: b\r\n", b""), 400),
        case("empty_field_name", post(": b\r\n", b""), 400),
        case("nul_in_value", post("X-A: b\0c\r\n", b""), 400),
        case("no_colon", post("X-A b\r\n", b""), 400),
        // Host (RFC 9112 §3.2: missing, repeated or invalid → 400).
        case(
            "missing_host",
            raw(b"GET /strict HTTP/1.1\r\nX-A: b\r\n\r\n"),
            400,
        ),
        case(
            "duplicate_host",
            raw(b"GET /strict HTTP/1.1\r\nHost: strict.test\r\nHost: other.test\r\n\r\n"),
            400,
        ),
        case(
            "host_with_space",
            raw(b"GET /strict HTTP/1.1\r\nHost: strict test\r\n\r\n"),
            400,
        ),
        // Request line.
        case(
            "bad_method_token",
            raw(b"GE(T /strict HTTP/1.1\r\nHost: strict.test\r\n\r\n"),
            400,
        ),
        case(
            "bad_version",
            raw(b"GET /strict HTTP/x.1\r\nHost: strict.test\r\n\r\n"),
            400,
        ),
        case(
            "missing_version",
            raw(b"GET /strict\r\nHost: strict.test\r\n\r\n"),
            400,
        ),
        case(
            "double_space_request_line",
            raw(b"GET  /strict HTTP/1.1\r\nHost: strict.test\r\n\r\n"),
            400,
        ),
        case(
            "space_in_target",
            raw(b"GET /a b HTTP/1.1\r\nHost: strict.test\r\n\r\n"),
            400,
        ),
        // Chunked body syntax (all in the first chunk-size line).
        case(
            "chunk_size_not_hex",
            chunked(b"zz\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "chunk_size_negative",
            chunked(b"-5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "chunk_size_0x_prefix",
            chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "chunk_size_overflow",
            chunked(b"1ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        case("chunk_size_empty", chunked(b"\r\nhello\r\n0\r\n\r\n"), 400),
        case("chunk_size_bare_lf", chunked(b"5\nhello\r\n0\r\n\r\n"), 400),
        case(
            "chunk_ext_empty_name",
            chunked(b"5;\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "chunk_ext_bad_char",
            chunked(b"5;a\"b\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "chunk_ext_unterminated_quote",
            chunked(b"5;a=\"x\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "chunk_size_line_oversized",
            chunked(long_ext.as_bytes()),
            400,
        ),
        // Limits.
        case(
            "head_over_max_head_bytes",
            post(&format!("X-Big: {big_value}\r\n"), b""),
            431,
        ),
        case("over_max_headers", post(&many, b""), 431),
        case(
            "content_length_over_max_body_bytes",
            post("Content-Length: 2097152\r\n", b""),
            413,
        ),
    ]
}

#[test]
fn malformed_requests_are_rejected_and_never_forwarded() {
    let s = Setup::new("strict", |c| {
        c.limit("max_head_bytes", "\"64KiB\"")
            .limit("max_headers", "100")
            .limit("header_read_timeout", "\"5s\"")
            .all_routes("max_body_bytes", "\"1MiB\"")
    });
    let addr = s.addr();
    let cases = cases();
    assert!(cases.len() >= 30);

    let mut good = s.client();
    let mut good_n = 0;
    let mut good_request = |good: &mut Client, failures: &mut Vec<String>, after: &str| {
        good_n += 1;
        let target = format!("/good/{good_n}");
        let result = good
            .try_send(&Request::get(&target).to_bytes())
            .and_then(|_| good.try_read_response());
        match result {
            Ok(r) if r.status() == 200 && r.header("x-echo-target") == Some(target.as_str()) => {}
            Ok(r) => failures.push(format!(
                "after {after}: the good keep-alive connection got: {r}"
            )),
            Err(e) => {
                failures.push(format!(
                    "after {after}: the good keep-alive connection failed: {e}"
                ));
                *good = Client::connect(addr);
            }
        }
    };
    let mut failures = Vec::new();
    good_request(&mut good, &mut failures, "start");
    assert!(
        failures.is_empty(),
        "a well-formed request failed before any bad one: {failures:?}"
    );

    for case in &cases {
        let sent = show(&case.bytes, 160);
        let reqs_before = s.origin.request_count();
        let bytes_before = s.origin.bytes_received();
        let mut c = Client::connect(addr);
        // The proxy may answer and close before reading everything.
        let write_err = c.try_send(&case.bytes).err();
        match c.try_read_response() {
            Ok(r) => {
                if r.status() != case.status {
                    failures.push(format!(
                        "{}: expected {}, got {} — sent {sent}\n  response: {}",
                        case.name,
                        case.status,
                        r.status(),
                        show(&r.head.raw, 300)
                    ));
                } else if !r.has_token("connection", "close") {
                    failures.push(format!(
                        "{}: {} without `Connection: close` — sent {sent}",
                        case.name,
                        r.status()
                    ));
                } else {
                    match c.read_eof(Duration::from_secs(3)) {
                        Eof::Closed | Eof::Reset(_) => {}
                        other => failures.push(format!(
                            "{}: connection not closed after the {} ({other:?}) — sent {sent}",
                            case.name,
                            r.status()
                        )),
                    }
                }
            }
            Err(e) => failures.push(format!(
                "{}: expected {}, got no response ({e}; write error: {write_err:?}) — sent {sent}",
                case.name, case.status
            )),
        }
        let reqs_after = s.origin.request_count();
        let bytes_after = s.origin.bytes_received();
        if reqs_after != reqs_before || bytes_after != bytes_before {
            let new: Vec<String> = s.origin.requests()[reqs_before..]
                .iter()
                .map(|r| show(&r.raw_head, 200))
                .collect();
            failures.push(format!(
                "{}: FORWARDED — the origin received {} bytes / {} heads: {new:?} — sent {sent}",
                case.name,
                bytes_after - bytes_before,
                reqs_after - reqs_before
            ));
        }
        good_request(&mut good, &mut failures, case.name);
    }

    // Late forwarding: every head the origin ever saw must be a good one.
    std::thread::sleep(Duration::from_millis(300));
    for r in s.origin.requests() {
        if !r.target.starts_with("/good/") {
            failures.push(format!(
                "the origin received a non-good request: {}",
                show(&r.raw_head, 200)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) over {} malformed requests:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn strict_table_is_big_enough_and_the_baseline_is_well_formed() {
    // Guards the table itself: ≥ 30 cases, unique names, and the shared
    // request line plus a valid body is accepted by a plain parser.
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    let ok = post("Content-Length: 5\r\n", b"hello");
    let mut h = [httparse::EMPTY_HEADER; 8];
    let mut r = httparse::Request::new(&mut h);
    assert!(r.parse(&ok).unwrap().is_complete());
}

#[test]
fn heads_at_the_limits_are_accepted() {
    let s = Setup::new("strict-limits", |c| {
        c.limit("max_head_bytes", "\"64KiB\"")
            .limit("max_headers", "100")
    });
    // 99 fields + Host = 100 fields.
    let mut req = Request::get("/many");
    for i in 0..99 {
        req = req.header(&format!("X-H-{i}"), &i.to_string());
    }
    let r = s.client().request(&req);
    assert_eq!(r.status(), 200, "100 header fields (the limit): {r}");
    let rec = s.origin.last_request().unwrap();
    assert_eq!(rec.header("x-h-98"), Some("98"));

    // A head of about 60 KiB (under 64 KiB).
    let big = "v".repeat(60 * 1024);
    let r = s
        .client()
        .request(&Request::get("/big").header("X-Big", &big));
    assert_eq!(r.status(), 200, "a 60 KiB head: {r}");
    assert_eq!(
        s.origin
            .last_request()
            .unwrap()
            .header("x-big")
            .map(str::len),
        Some(big.len())
    );
}
