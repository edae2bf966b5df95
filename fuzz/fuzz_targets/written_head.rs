//! complete_written_head (an HTTP/2 stream's head completed from the spans
//! its writer recorded) never accepts what the parser refuses, and what it
//! completes is exactly the parser's head of the same bytes. The input is
//! cut into length-prefixed parts: method, target, then name/value pairs,
//! laid out as the bridge lays a head out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway_http::head::{complete_written_head, parse_request_head};
use ringway_http::{HeadLimits, HeaderSpan, RequestHead, Span};

/// The next part: a length byte, then that many bytes (fewer at the end).
fn part<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&n, rest) = data.split_first()?;
    let n = (n as usize).min(rest.len());
    let (p, rest) = rest.split_at(n);
    *data = rest;
    Some(p)
}

fn span(from: usize, to: usize) -> Span {
    Span {
        start: from as u32,
        end: to as u32,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let (Some(method), Some(target)) = (part(&mut data), part(&mut data)) else {
        return;
    };
    let mut buf = Vec::new();
    let mut head = RequestHead::default();
    buf.extend_from_slice(method);
    head.method = span(0, buf.len());
    buf.push(b' ');
    let at = buf.len();
    buf.extend_from_slice(target);
    head.target = span(at, buf.len());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    while let (Some(name), Some(value)) = (part(&mut data), part(&mut data)) {
        let at = buf.len();
        buf.extend_from_slice(name);
        let name = span(at, buf.len());
        buf.extend_from_slice(b": ");
        let at = buf.len();
        buf.extend_from_slice(value);
        let value = span(at, buf.len());
        buf.extend_from_slice(b"\r\n");
        head.headers.push(HeaderSpan { name, value });
    }
    buf.extend_from_slice(b"\r\n");
    head.head_len = buf.len();
    let limits = HeadLimits {
        max_head_bytes: 2048,
        max_headers: 16,
    };
    if complete_written_head(&buf, &limits, &mut head) {
        let mut parsed = RequestHead::default();
        assert_eq!(parse_request_head(&buf, &limits, &mut parsed), Ok(true));
        assert_eq!(head, parsed);
    }
});
