//! Response head parsing.

use super::{resp, resp_every_split, s};
use crate::head::{HeadError, HeadLimits, Version};
use crate::response::{
    parse_own_response_head, parse_response_head, ResponseFraming, ResponseHead,
};

#[test]
fn simple_ok() {
    let buf =
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world!";
    let head = resp_every_split(buf, false);
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.status, 200);
    assert_eq!(head.reason.get(buf), b"OK");
    assert_eq!(head.framing, ResponseFraming::Length(12));
    assert_eq!(head.head_len, buf.len() - 12);
    assert!(!head.conn_close);
    assert_eq!(head.headers.len(), 2);
    assert_eq!(head.headers[1].value.get(buf), b"text/plain");
}

#[test]
fn framing_matrix() {
    let cases: &[(&[u8], bool, ResponseFraming)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, ResponseFraming::Length(5)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, ResponseFraming::None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, ResponseFraming::None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", false, ResponseFraming::Length(5)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, ResponseFraming::Chunked),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, ResponseFraming::None),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
            false,
            ResponseFraming::Chunked,
        ),
        (b"HTTP/1.1 200 OK\r\n\r\n", false, ResponseFraming::UntilClose),
        (b"HTTP/1.1 200 OK\r\n\r\n", true, ResponseFraming::None),
        (b"HTTP/1.1 204 No Content\r\n\r\n", false, ResponseFraming::None),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", false, ResponseFraming::None),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", false, ResponseFraming::None),
        (b"HTTP/1.1 100 Continue\r\n\r\n", false, ResponseFraming::None),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            false,
            ResponseFraming::None,
        ),
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, ResponseFraming::None),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", false, ResponseFraming::UntilClose),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false, ResponseFraming::Length(3)),
        (b"HTTP/1.1 999 Whatever\r\nContent-Length: 1\r\n\r\n", false, ResponseFraming::Length(1)),
    ];
    for (buf, head_req, want) in cases {
        let head = resp_every_split(buf, *head_req);
        assert_eq!(head.framing, *want, "{}", s(buf));
    }
}

#[test]
fn connection_close_rules() {
    let h = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).unwrap();
    assert!(!h.conn_close);
    let h = resp(
        b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n",
        false,
    )
    .unwrap();
    assert!(h.conn_close);
    let h = resp(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).unwrap();
    assert!(h.conn_close);
    let h = resp(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        false,
    )
    .unwrap();
    assert!(!h.conn_close);
    // Read-until-close bodies can never leave the connection reusable.
    let h = resp(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap();
    assert!(h.conn_close);
    let buf =
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret,close\r\nContent-Length: 0\r\n\r\n";
    let h = resp_every_split(buf, false);
    assert!(h.conn_close);
    assert_eq!(h.conn_tokens.len(), 1);
    assert_eq!(h.conn_tokens[0].get(buf), b"X-Secret");
}

#[test]
fn reason_phrases() {
    let buf = b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    let h = resp_every_split(buf, false);
    assert!(h.reason.is_empty());
    let buf = b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n";
    assert!(resp(buf, false).unwrap().reason.is_empty());
    let buf = b"HTTP/1.1 418 I'm a teapot\r\n\r\n";
    assert_eq!(resp(buf, false).unwrap().reason.get(buf), b"I'm a teapot");
    // obs-text: httparse hides it, we keep the span.
    let buf = b"HTTP/1.1 200 Tr\xe8s bien\r\nContent-Length: 0\r\n\r\n";
    let h = resp_every_split(buf, false);
    assert_eq!(h.reason.get(buf), b"Tr\xe8s bien");
    // Leading empty lines before the status line.
    let buf = b"\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let h = resp_every_split(buf, false);
    assert_eq!(h.status, 201);
    assert_eq!(h.reason.get(buf), b"Created");
}

#[test]
fn malformed_responses() {
    let cases: &[(&str, &[u8])] = &[
        (
            "CL + TE",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "CL + TE on 204",
            b"HTTP/1.1 204 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "differing CL",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        ),
        (
            "CL list differing",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5,6\r\n\r\n",
        ),
        ("CL plus", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"),
        (
            "CL overflow",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ),
        (
            "TE not final chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        ),
        (
            "TE identity",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
        ),
        (
            "TE twice chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "TE on 1.0",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        ("lookalike", b"HTTP/1.1 200 OK\r\nContent_Length: 5\r\n\r\n"),
        ("bare LF", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
        (
            "bare LF final",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n",
        ),
        ("bare CR", b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"),
        ("status 099", b"HTTP/1.1 099 Low\r\n\r\n"),
        ("status 000", b"HTTP/1.1 000 Zero\r\n\r\n"),
        ("status 2 digits", b"HTTP/1.1 20 OK\r\n\r\n"),
        ("status 4 digits", b"HTTP/1.1 2000 OK\r\n\r\n"),
        ("status letters", b"HTTP/1.1 2x0 OK\r\n\r\n"),
        ("HTTP/2", b"HTTP/2.0 200 OK\r\n\r\n"),
        ("no version", b"200 OK\r\n\r\n"),
        ("obs-fold", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
        (
            "space before colon",
            b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
        ),
        ("NUL in value", b"HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n"),
        ("control in reason", b"HTTP/1.1 200 O\x01K\r\n\r\n"),
    ];
    for (what, buf) in cases {
        let r = resp(buf, false);
        assert!(matches!(r, Err(HeadError::Malformed(_))), "{what}: {r:?}");
        // Every prefix: incomplete or the same class of error.
        let mut head = ResponseHead::default();
        for k in 0..buf.len() {
            let r = parse_response_head(&buf[..k], &HeadLimits::default(), false, &mut head);
            assert!(
                matches!(r, Ok(false) | Err(HeadError::Malformed(_))),
                "{what} prefix {k}: {r:?}"
            );
        }
    }
}

#[test]
fn response_limits() {
    let buf = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    let mut head = ResponseHead::default();
    let l = HeadLimits {
        max_headers: 1,
        ..HeadLimits::default()
    };
    assert_eq!(
        parse_response_head(buf, &l, false, &mut head),
        Err(HeadError::TooManyHeaders)
    );
    let l = HeadLimits {
        max_head_bytes: buf.len() - 1,
        ..HeadLimits::default()
    };
    assert_eq!(
        parse_response_head(buf, &l, false, &mut head),
        Err(HeadError::TooLarge)
    );
    assert_eq!(
        parse_response_head(&buf[..20], &l, false, &mut head),
        Ok(false)
    );
    let l = HeadLimits {
        max_head_bytes: 20,
        ..HeadLimits::default()
    };
    assert_eq!(
        parse_response_head(&buf[..20], &l, false, &mut head),
        Err(HeadError::TooLarge)
    );
    let l = HeadLimits {
        max_head_bytes: buf.len(),
        ..HeadLimits::default()
    };
    assert_eq!(parse_response_head(buf, &l, false, &mut head), Ok(true));
}

#[test]
fn response_reuse() {
    let mut head = ResponseHead::default();
    let a = b"HTTP/1.0 500 Oops\r\nConnection: close, x\r\n\r\n";
    assert_eq!(
        parse_response_head(a, &HeadLimits::default(), false, &mut head),
        Ok(true)
    );
    let b = b"HTTP/1.1 204 No Content\r\n\r\n";
    assert_eq!(
        parse_response_head(b, &HeadLimits::default(), false, &mut head),
        Ok(true)
    );
    assert_eq!(
        format!("{head:?}"),
        format!("{:?}", resp(b, false).unwrap())
    );
}

// The own-head parser of the HTTP/2 bridge, against the strict one.

const LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 64 * 1024,
    max_headers: 512,
};

fn both(buf: &[u8], request_was_head: bool) -> (ResponseHead, ResponseHead) {
    let mut strict = ResponseHead::default();
    let mut own = ResponseHead::default();
    assert!(parse_response_head(buf, &LIMITS, request_was_head, &mut strict).unwrap());
    assert!(parse_own_response_head(buf, 64 * 1024, request_was_head, &mut own).unwrap());
    (strict, own)
}

#[test]
fn own_heads_parse_as_the_strict_parser_does() {
    let heads: [&[u8]; 8] = [
        b"HTTP/1.1 200 OK\r\nserver: ringload\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a:  spaced \t\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nconnection: keep-alive, x-hop\r\nx-hop: 1\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n",
        b"HTTP/1.1 500 \r\ncontent-length: 5\r\n\r\n",
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\netag: \"x\"\r\n\r\n",
    ];
    for h in heads {
        for was_head in [false, true] {
            let (s, o) = both(h, was_head);
            let text = String::from_utf8_lossy(h);
            assert_eq!(
                (s.version, s.status, s.head_len, s.framing, s.conn_close),
                (o.version, o.status, o.head_len, o.framing, o.conn_close),
                "{text}"
            );
            assert_eq!(s.reason.range(), o.reason.range(), "{text}");
            let fields = |r: &ResponseHead| -> Vec<(Vec<u8>, Vec<u8>)> {
                r.headers
                    .iter()
                    .map(|f| (h[f.name.range()].to_vec(), h[f.value.range()].to_vec()))
                    .collect()
            };
            assert_eq!(fields(&s), fields(&o), "{text}");
            let tokens = |r: &ResponseHead| -> Vec<Vec<u8>> {
                r.conn_tokens
                    .iter()
                    .map(|t| h[t.range()].to_vec())
                    .collect()
            };
            assert_eq!(tokens(&s), tokens(&o), "{text}");
        }
    }
}

#[test]
fn every_prefix_of_an_own_head_is_incomplete() {
    let mut head = ResponseHead::default();
    let full =
        b"HTTP/1.1 200 OK\r\nserver: x\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n";
    for i in 0..full.len() {
        assert!(
            !parse_own_response_head(&full[..i], 1024, false, &mut head).unwrap(),
            "{}",
            String::from_utf8_lossy(&full[..i])
        );
    }
    assert!(parse_own_response_head(full, 1024, false, &mut head).unwrap());
    assert_eq!(head.head_len, full.len());
    assert_eq!(head.headers.len(), 3);
}

#[test]
fn own_heads_incomplete_too_large_or_broken() {
    let mut head = ResponseHead::default();
    let partial = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n";
    assert!(!parse_own_response_head(partial, 1024, false, &mut head).unwrap());
    assert!(matches!(
        parse_own_response_head(partial, 10, false, &mut head),
        Err(HeadError::TooLarge)
    ));
    for bad in [
        &b"HTTP/2.0 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
    ] {
        assert!(
            parse_own_response_head(bad, 1024, false, &mut head).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
