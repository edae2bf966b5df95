//! Unit tests for the HTTP/1.1 codec.

mod chunked;
mod request;
mod response;
mod rewrite;

use std::mem::discriminant;

use super::head::{parse_request_head, HeadError, HeadLimits, RequestHead};
use super::response::{parse_response_head, ResponseHead};

/// Parse a request head with default limits into a fresh `RequestHead`.
pub(super) fn req(buf: &[u8]) -> Result<RequestHead, HeadError> {
    req_with(buf, &HeadLimits::default())
}

pub(super) fn req_with(buf: &[u8], limits: &HeadLimits) -> Result<RequestHead, HeadError> {
    let mut head = RequestHead::default();
    match parse_request_head(buf, limits, &mut head)? {
        true => Ok(head),
        false => panic!("incomplete head: {:?}", String::from_utf8_lossy(buf)),
    }
}

/// Feed every prefix of `buf` (every split point of a two-fragment read) and
/// check the parser asks for more until the head is complete, then returns
/// the same head as for the whole input. Reuses one `RequestHead` throughout
/// to exercise the clear-and-refill path.
pub(super) fn req_every_split(buf: &[u8]) -> RequestHead {
    let limits = HeadLimits::default();
    let mut whole = RequestHead::default();
    assert_eq!(parse_request_head(buf, &limits, &mut whole), Ok(true));
    let want = format!("{whole:?}");
    let mut head = RequestHead::default();
    for k in 0..=buf.len() {
        let r = parse_request_head(&buf[..k], &limits, &mut head);
        if k < whole.head_len {
            assert_eq!(
                r,
                Ok(false),
                "prefix {k} of {:?}",
                String::from_utf8_lossy(buf)
            );
        } else {
            assert_eq!(r, Ok(true), "prefix {k}");
            assert_eq!(format!("{head:?}"), want, "prefix {k}");
        }
    }
    whole
}

/// Whole input gives `want` (same variant; reason not compared), and every
/// prefix either asks for more or fails with the same variant.
pub(super) fn req_err_every_split(buf: &[u8], want: HeadError) {
    let limits = HeadLimits::default();
    let mut head = RequestHead::default();
    let got = parse_request_head(buf, &limits, &mut head);
    match got {
        Err(e) if discriminant(&e) == discriminant(&want) => {}
        other => panic!(
            "{:?}: expected {want:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
    for k in 0..buf.len() {
        match parse_request_head(&buf[..k], &limits, &mut head) {
            Ok(false) => {}
            Err(e) if discriminant(&e) == discriminant(&want) => {}
            other => panic!(
                "prefix {k} of {:?}: expected Ok(false) or {want:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }
}

pub(super) fn resp(buf: &[u8], head_req: bool) -> Result<ResponseHead, HeadError> {
    let mut head = ResponseHead::default();
    match parse_response_head(buf, &HeadLimits::default(), head_req, &mut head)? {
        true => Ok(head),
        false => panic!("incomplete head: {:?}", String::from_utf8_lossy(buf)),
    }
}

pub(super) fn resp_every_split(buf: &[u8], head_req: bool) -> ResponseHead {
    let limits = HeadLimits::default();
    let mut whole = ResponseHead::default();
    assert_eq!(
        parse_response_head(buf, &limits, head_req, &mut whole),
        Ok(true)
    );
    let want = format!("{whole:?}");
    let mut head = ResponseHead::default();
    for k in 0..=buf.len() {
        let r = parse_response_head(&buf[..k], &limits, head_req, &mut head);
        if k < whole.head_len {
            assert_eq!(r, Ok(false), "prefix {k}");
        } else {
            assert_eq!(r, Ok(true), "prefix {k}");
            assert_eq!(format!("{head:?}"), want, "prefix {k}");
        }
    }
    whole
}

pub(super) fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}
