//! `serve --echo` returns request bodies byte-for-byte, for Content-Length
//! and chunked uploads, plus the selected request headers.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{exchange, read_response, Serve};

/// Bytes that would break naive framing: CRLFs, NULs, all byte values.
fn awkward_body(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|i| match i % 97 {
            0 => b'\r',
            1 => b'\n',
            2 => 0,
            _ => {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            }
        })
        .collect()
}

fn content_length_upload(body: &[u8], extra: &str) -> Vec<u8> {
    let mut req = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-test\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn chunked_upload(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut req = b"PUT /upload HTTP/1.1\r\nHost: t\r\nX-Trace: abc-123\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut at = 0;
    let mut i = 0;
    while at < body.len() {
        let n = sizes[i % sizes.len()].min(body.len() - at);
        req.extend_from_slice(format!("{n:x};ext=1\r\n").as_bytes());
        req.extend_from_slice(&body[at..at + n]);
        req.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    req.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    req
}

#[test]
fn echo_content_length_and_chunked_uploads() {
    let serve = Serve::start(&[
        "--echo",
        "--echo-header",
        "content-type",
        "--echo-header",
        "x-trace",
    ]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    for len in [0usize, 1, 100, 70_000, 300_000] {
        let body = awkward_body(len);
        let (status, head, echoed) = exchange(&mut s, &content_length_upload(&body, ""));
        assert_eq!(status, 200);
        assert!(
            echoed == body,
            "content-length upload of {len} bytes differs"
        );
        assert!(
            head.contains("Content-Type: application/x-test\r\n"),
            "{head}"
        );

        let (status, head, echoed) = exchange(&mut s, &chunked_upload(&body, &[1, 7, 4096, 65536]));
        assert_eq!(status, 200);
        assert!(echoed == body, "chunked upload of {len} bytes differs");
        assert!(head.contains("X-Trace: abc-123\r\n"), "{head}");
        assert!(!head.contains("X-Trailer"), "{head}");
    }
}

#[test]
fn echo_with_chunked_responses_and_pipelining() {
    let serve = Serve::start(&["--echo", "--chunked"]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    let a = awkward_body(5000);
    let b = awkward_body(123);
    let mut both = content_length_upload(&a, "");
    both.extend_from_slice(&chunked_upload(&b, &[10]));
    s.write_all(&both).unwrap();
    let (_, head, echoed) = read_response(&mut s);
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    assert!(echoed == a);
    let (_, _, echoed) = read_response(&mut s);
    assert!(echoed == b);
}

#[test]
fn expect_continue_gets_100_then_the_echo() {
    let serve = Serve::start(&["--echo"]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let (status, _, _) = read_response(&mut s);
    assert_eq!(status, 100);
    let (status, _, body) = exchange(&mut s, b"hello");
    assert_eq!(status, 200);
    assert_eq!(body, b"hello");
}

#[test]
fn bad_requests_get_4xx_and_close() {
    let serve = Serve::start(&[]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    let (status, head, _) = exchange(&mut s, b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n");
    assert_eq!(status, 400);
    assert!(head.contains("Connection: close"));
    let mut s = TcpStream::connect(serve.addr).unwrap();
    let (status, head, body) = exchange(&mut s, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: 13"), "{head}");
    assert_eq!(body, b"abcdefghijklm");
}

#[test]
fn close_after_n_sends_connection_close() {
    let serve = Serve::start(&["--close-after", "2"]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (_, head, _) = exchange(&mut s, req);
    assert!(!head.contains("Connection: close"));
    let (_, head, _) = exchange(&mut s, req);
    assert!(head.contains("Connection: close"), "{head}");
    let mut rest = Vec::new();
    use std::io::Read;
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "closed after the second"
    );
}
