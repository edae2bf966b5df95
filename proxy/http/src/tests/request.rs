//! Request head parsing.

use super::{req, req_err_every_split, req_every_split, req_with, s};
use crate::head::{
    parse_request_head, BodyFraming, HeadError, HeadLimits, RequestHead, Span, Version,
};

const MAL: HeadError = HeadError::Malformed("");

fn names(head: &RequestHead, buf: &[u8]) -> Vec<String> {
    head.headers
        .iter()
        .map(|h| format!("{}={}", s(h.name.get(buf)), s(h.value.get(buf))))
        .collect()
}

#[test]
fn simple_get() {
    let buf = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    let head = req_every_split(buf);
    assert_eq!(head.method(buf), b"GET");
    assert_eq!(head.target.get(buf), b"/a/b?x=1");
    assert_eq!(head.path(buf), b"/a/b");
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.head_len, buf.len());
    assert_eq!(head.host.unwrap().get(buf), b"example.com");
    assert_eq!(head.framing, BodyFraming::None);
    assert!(head.keep_alive());
    assert!(!head.is_head(buf));
    assert_eq!(names(&head, buf), ["Host=example.com", "Accept=*/*"]);
    assert!(head.upgrade.is_none() && !head.expect_continue && !head.expect_other);
}

#[test]
fn head_len_excludes_body_and_pipelined_bytes() {
    let buf = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n";
    let head = req(buf).unwrap();
    assert_eq!(&buf[head.head_len..head.head_len + 5], b"hello");
    assert_eq!(head.framing, BodyFraming::Length(5));
    // A body with bare LFs after the head does not matter.
    let buf = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na\nb";
    assert_eq!(req(buf).unwrap().framing, BodyFraming::Length(3));
}

#[test]
fn every_split_of_complex_head() {
    let buf = b"PUT /upload HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: keep-alive, X-Trace\r\n\
X-Trace: 1\r\nExpect: 100-continue\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\
Empty:\r\nTabbed:\t v \t\r\n\r\n0\r\n\r\n";
    let head = req_every_split(buf);
    assert_eq!(head.framing, BodyFraming::Chunked);
    assert!(head.expect_continue);
    assert!(head.conn_keep_alive);
    assert_eq!(head.conn_tokens.len(), 1);
    assert_eq!(head.conn_tokens[0].get(buf), b"X-Trace");
    let n = names(&head, buf);
    assert_eq!(n[6], "Empty=");
    assert_eq!(n[7], "Tabbed=v");
    assert_eq!(head.head_len, buf.len() - 5);
}

#[test]
fn leading_empty_lines_are_skipped() {
    let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = req_every_split(buf);
    assert_eq!(head.method(buf), b"GET");
    assert_eq!(head.method.start, 4);
    assert_eq!(head.head_len, buf.len());
}

#[test]
fn http10_without_host_and_keep_alive() {
    let buf = b"GET / HTTP/1.0\r\n\r\n";
    let head = req_every_split(buf);
    assert_eq!(head.version, Version::Http10);
    assert!(head.host.is_none());
    assert!(!head.keep_alive());
    let head = req(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
    assert!(head.conn_keep_alive && head.keep_alive());
    let head = req(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").unwrap();
    assert!(!head.keep_alive());
}

#[test]
fn connection_options() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE , ,x-a\r\nconnection: Upgrade,\tX-B\r\n\r\n";
    let head = req_every_split(buf);
    assert!(head.conn_close);
    assert!(!head.keep_alive());
    let toks: Vec<&str> = head.conn_tokens.iter().map(|t| s(t.get(buf))).collect();
    assert_eq!(toks, ["x-a", "X-B"]);
    // Connection lists upgrade but there is no Upgrade header.
    assert!(head.upgrade.is_none());
}

#[test]
fn upgrade_needs_both_headers() {
    let buf = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let head = req_every_split(buf);
    assert_eq!(head.upgrade.unwrap().get(buf), b"websocket");
    let buf = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    assert!(req(buf).unwrap().upgrade.is_none());
    let buf =
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n";
    assert!(req(buf).unwrap().upgrade.is_none());
}

#[test]
fn expect_values() {
    let h = req(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n").unwrap();
    assert!(h.expect_continue && !h.expect_other);
    let h = req(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").unwrap();
    assert!(!h.expect_continue && h.expect_other);
    let h = req(b"POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n").unwrap();
    assert!(h.expect_other);
}

#[test]
fn content_length_forms() {
    let cases: &[(&[u8], BodyFraming)] = &[
        (b"Content-Length: 0\r\n", BodyFraming::None),
        (b"Content-Length: 00\r\n", BodyFraming::None),
        (b"Content-Length: 42\r\n", BodyFraming::Length(42)),
        (b"content-length:7 \r\n", BodyFraming::Length(7)),
        (b"Content-Length: 5, 5\r\n", BodyFraming::Length(5)),
        (b"Content-Length: 5,5 ,\t5\r\n", BodyFraming::Length(5)),
        (
            b"Content-Length: 5\r\nContent-Length: 5\r\n",
            BodyFraming::Length(5),
        ),
        (
            b"Content-Length: 5\r\nContent-Length: 005\r\n",
            BodyFraming::Length(5),
        ),
        (
            b"Content-Length: 18446744073709551615\r\n",
            BodyFraming::Length(u64::MAX),
        ),
    ];
    for (field, want) in cases {
        let mut buf = b"POST / HTTP/1.1\r\nHost: a\r\n".to_vec();
        buf.extend_from_slice(field);
        buf.extend_from_slice(b"\r\n");
        assert_eq!(req(&buf).unwrap().framing, *want, "{}", s(field));
    }
}

#[test]
fn transfer_encoding_forms() {
    let cases: &[&[u8]] = &[
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: CHUNKED\r\n",
        b"transfer-encoding:\tChunked\t\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: gzip;level=1 , chunked\r\n",
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
    ];
    for field in cases {
        let mut buf = b"POST / HTTP/1.1\r\nHost: a\r\n".to_vec();
        buf.extend_from_slice(field);
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            req(&buf).unwrap().framing,
            BodyFraming::Chunked,
            "{}",
            s(field)
        );
    }
}

#[test]
fn host_forms() {
    for host in [
        &b"example.com"[..],
        b"example.com:8080",
        b"127.0.0.1:80",
        b"[::1]",
        b"[2001:db8::1]:443",
        b"xn--bcher-kva.example",
        b"a%20b",
        b"host:",
        b"",
    ] {
        let mut buf = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        buf.extend_from_slice(host);
        buf.extend_from_slice(b"\r\n\r\n");
        let head = req(&buf).unwrap_or_else(|e| panic!("{}: {e}", s(host)));
        assert_eq!(head.host.unwrap().get(&buf), host);
    }
}

/// The big table of rejected heads: smuggling classics and plain garbage.
#[test]
fn malformed_requests() {
    const TOO_MANY: HeadError = HeadError::TooManyHeaders;
    let cases: &[(&str, &[u8], HeadError)] = &[
        (
            "CL + TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            MAL,
        ),
        (
            "TE + CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            MAL,
        ),
        (
            "TE name with leading space (first field)",
            b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n",
            MAL,
        ),
        (
            "TE name with leading space (obs-fold)",
            b"POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n",
            MAL,
        ),
        (
            "TE with tab before name",
            b"POST / HTTP/1.1\r\nHost: a\r\n\tTransfer-Encoding: chunked\r\n\r\n",
            MAL,
        ),
        (
            "TE space before colon",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            MAL,
        ),
        (
            "xchunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            MAL,
        ),
        (
            "chunked, identity",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            MAL,
        ),
        (
            "chunked twice in one field",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            MAL,
        ),
        (
            "chunked twice over two fields",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            MAL,
        ),
        (
            "chunked not final over two fields",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            MAL,
        ),
        (
            "identity only",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            MAL,
        ),
        (
            "empty TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n",
            MAL,
        ),
        (
            "TE trailing empty element",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n",
            MAL,
        ),
        (
            "chunked with parameter",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=y\r\n\r\n",
            MAL,
        ),
        (
            "quoted chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
            MAL,
        ),
        (
            "TE with vertical tab",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n",
            MAL,
        ),
        (
            "TE in HTTP/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            MAL,
        ),
        (
            "Transfer_Encoding lookalike",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n",
            MAL,
        ),
        (
            "Content_Length lookalike",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\n",
            MAL,
        ),
        (
            "differing duplicate CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            MAL,
        ),
        (
            "CL list differing",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
            MAL,
        ),
        (
            "CL with plus",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            MAL,
        ),
        (
            "CL negative",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            MAL,
        ),
        (
            "CL hex",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
            MAL,
        ),
        (
            "CL empty",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            MAL,
        ),
        (
            "CL inner space",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
            MAL,
        ),
        (
            "CL empty list element",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n",
            MAL,
        ),
        (
            "CL overflow",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
            MAL,
        ),
        (
            "CL decimal point",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n",
            MAL,
        ),
        (
            "CL space before colon",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n",
            MAL,
        ),
        (
            "obs-fold continuation",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
            MAL,
        ),
        ("Host space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", MAL),
        ("missing Host", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", MAL),
        (
            "two Host",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            MAL,
        ),
        ("Host with space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", MAL),
        ("Host with slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", MAL),
        ("Host with userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", MAL),
        ("Host bad port", b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", MAL),
        ("Host two colons", b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", MAL),
        ("Host unclosed v6", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", MAL),
        ("Host bad pct", b"GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", MAL),
        ("Host only port", b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", MAL),
        (
            "NUL in value",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            MAL,
        ),
        ("NUL in name", b"GET / HTTP/1.1\r\nHost: a\r\nX\0: ab\r\n\r\n", MAL),
        ("NUL in target", b"GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("NUL in Host", b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n", MAL),
        ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", MAL),
        ("bare LF everywhere", b"GET / HTTP/1.1\nHost: a\n\n", MAL),
        ("bare LF request line only", b"GET / HTTP/1.1\nHost: a\r\n\r\n", MAL),
        ("bare LF in middle", b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", MAL),
        ("bare LF final line", b"GET / HTTP/1.1\r\nHost: a\r\n\n", MAL),
        ("leading bare LF", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("bare CR in value", b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", MAL),
        ("bare CR line end", b"GET / HTTP/1.1\rHost: a\r\n\r\n", MAL),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", MAL),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", MAL),
        ("HTTP/0.9", b"GET /\r\n\r\n", MAL),
        ("lowercase version", b"GET / http/1.1\r\nHost: a\r\n\r\n", MAL),
        ("version trailing space", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", MAL),
        ("double SP", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("tab delimiter", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("bad method char", b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("empty method", b" / HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("no target", b"GET HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("non-ASCII target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("DEL in target", b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", MAL),
        ("bad name char", b"GET / HTTP/1.1\r\nHost: a\r\nX@Y: z\r\n\r\n", MAL),
        ("empty name", b"GET / HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n", MAL),
        ("no colon", b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", MAL),
        (
            "bad Connection option",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n",
            MAL,
        ),
        (
            "too many headers",
            b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
            TOO_MANY,
        ),
    ];
    assert!(cases.len() >= 30);
    for (what, buf, want) in cases {
        if *want == TOO_MANY {
            let limits = HeadLimits {
                max_headers: 2,
                ..HeadLimits::default()
            };
            assert_eq!(req_with(buf, &limits).err(), Some(TOO_MANY), "{what}");
            continue;
        }
        eprintln!("case: {what}");
        req_err_every_split(buf, *want);
    }
}

#[test]
fn too_large_complete_and_partial() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let exact = HeadLimits {
        max_head_bytes: buf.len(),
        ..HeadLimits::default()
    };
    assert!(req_with(buf, &exact).is_ok());
    let smaller = HeadLimits {
        max_head_bytes: buf.len() - 1,
        ..HeadLimits::default()
    };
    assert_eq!(req_with(buf, &smaller).err(), Some(HeadError::TooLarge));

    // Partial head: more than max bytes without the end of the head.
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64,
        ..HeadLimits::default()
    };
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 100));
    for k in 0..=long.len() {
        let r = parse_request_head(&long[..k], &limits, &mut head);
        if k < 64 {
            assert_eq!(r, Ok(false), "{k}");
        } else {
            assert_eq!(r, Err(HeadError::TooLarge), "{k}");
        }
    }
    // Partial inside a header field.
    let mut long = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    long.extend(std::iter::repeat_n(b'v', 1000));
    assert_eq!(
        parse_request_head(&long, &limits, &mut head),
        Err(HeadError::TooLarge)
    );
    // Default limit: 64 KiB of headers.
    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..80 {
        big.extend_from_slice(format!("X-{i}: ").as_bytes());
        big.extend(std::iter::repeat_n(b'z', 1000));
        big.extend_from_slice(b"\r\n");
    }
    assert_eq!(
        parse_request_head(&big, &HeadLimits::default(), &mut head),
        Err(HeadError::TooLarge)
    );
}

#[test]
fn too_many_headers_boundary() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..9 {
        buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    let ten = HeadLimits {
        max_headers: 10,
        ..HeadLimits::default()
    };
    assert_eq!(req_with(&buf, &ten).unwrap().headers.len(), 10);
    let nine = HeadLimits {
        max_headers: 9,
        ..HeadLimits::default()
    };
    assert_eq!(req_with(&buf, &nine).err(), Some(HeadError::TooManyHeaders));
    // The default (100) and the heap path above the stack array (300).
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..280 {
        buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    assert_eq!(req(&buf).err(), Some(HeadError::TooManyHeaders));
    let many = HeadLimits {
        max_headers: 300,
        ..HeadLimits::default()
    };
    assert_eq!(req_with(&buf, &many).unwrap().headers.len(), 281);
    let few = HeadLimits {
        max_headers: 0,
        ..HeadLimits::default()
    };
    assert_eq!(
        req_with(b"GET / HTTP/1.0\r\n\r\n", &few)
            .unwrap()
            .headers
            .len(),
        0
    );
}

#[test]
fn reuse_clears_previous_state() {
    let mut head = RequestHead::default();
    let a = b"POST /x HTTP/1.1\r\nHost: a\r\nConnection: close, x-y\r\nUpgrade: h2c\r\n\
Connection: upgrade\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        parse_request_head(a, &HeadLimits::default(), &mut head),
        Ok(true)
    );
    assert!(head.conn_close && head.upgrade.is_some() && head.expect_continue);
    let cap = head.headers.capacity();
    let b = b"GET / HTTP/1.0\r\n\r\n";
    assert_eq!(
        parse_request_head(b, &HeadLimits::default(), &mut head),
        Ok(true)
    );
    assert_eq!(format!("{head:?}"), format!("{:?}", req(b).unwrap()));
    assert_eq!(head.headers.capacity(), cap);
}

#[test]
fn spans_point_into_buffer() {
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: h\r\nX-Empty: \r\nX-Pad:   v  \r\n\r\n";
    let head = req_every_split(buf);
    assert_eq!(head.target.get(buf), b"*");
    let x = head.headers[1];
    assert!(x.value.is_empty());
    assert_eq!(x.name.get(buf), b"X-Empty");
    assert_eq!(head.headers[2].value.get(buf), b"v");
    assert_eq!(head.headers[2].value, Span { start: 49, end: 50 });
}

#[test]
fn absolute_and_authority_forms() {
    let buf = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    assert_eq!(req(buf).unwrap().target.get(buf), b"example.com:443");
    let buf = b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let head = req(buf).unwrap();
    assert_eq!(head.path(buf), b"http://example.com/x");
}

#[test]
fn obs_text_in_values_is_allowed() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n";
    let head = req_every_split(buf);
    assert_eq!(head.headers[1].value.get(buf), b"caf\xc3\xa9 \xff");
}

#[test]
fn empty_line_flood_is_too_large() {
    let limits = HeadLimits {
        max_head_bytes: 1024,
        ..HeadLimits::default()
    };
    let flood = b"\r\n".repeat(600);
    let mut head = RequestHead::default();
    assert_eq!(
        parse_request_head(&flood[..1000], &limits, &mut head),
        Ok(false)
    );
    assert_eq!(
        parse_request_head(&flood, &limits, &mut head),
        Err(HeadError::TooLarge)
    );
}

#[test]
fn partial_head_with_bare_lf_fails_early() {
    let mut head = RequestHead::default();
    assert!(matches!(
        parse_request_head(b"GET / HTTP/1.1\nHost", &HeadLimits::default(), &mut head),
        Err(HeadError::Malformed(_))
    ));
    // A CR at the very end of a partial head may still get its LF.
    assert_eq!(
        parse_request_head(b"GET / HTTP/1.1\r", &HeadLimits::default(), &mut head),
        Ok(false)
    );
}

/// Lay `method target` and `fields` out as an HTTP/1.1 head the way a
/// trusted writer does (the HTTP/2 bridge), recording its spans.
fn written(method: &[u8], target: &[u8], fields: &[(&[u8], &[u8])]) -> (Vec<u8>, RequestHead) {
    let mut buf = Vec::new();
    let mut head = RequestHead::default();
    let span = |buf: &Vec<u8>, from: usize| Span {
        start: from as u32,
        end: buf.len() as u32,
    };
    buf.extend_from_slice(method);
    head.method = span(&buf, 0);
    buf.push(b' ');
    let at = buf.len();
    buf.extend_from_slice(target);
    head.target = span(&buf, at);
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        let at = buf.len();
        buf.extend_from_slice(name);
        let name = span(&buf, at);
        buf.extend_from_slice(b": ");
        let at = buf.len();
        buf.extend_from_slice(value);
        let value = span(&buf, at);
        buf.extend_from_slice(b"\r\n");
        head.headers.push(crate::head::HeaderSpan { name, value });
    }
    buf.extend_from_slice(b"\r\n");
    head.head_len = buf.len();
    (buf, head)
}

/// A head completed from its writer's spans is exactly the parser's head
/// of the same bytes; whatever the parser refuses (or would take
/// differently) is never completed, so it goes to the parser. Each case
/// is one way a field can be forged, duplicated, oversized or odd.
#[test]
fn written_heads_agree_with_the_parser() {
    let limits = HeadLimits {
        max_head_bytes: 512,
        max_headers: 6,
    };
    let long = vec![b'a'; 600];
    type Case<'a> = (&'a [u8], &'a [u8], Vec<(&'a [u8], &'a [u8])>, bool);
    let cases: Vec<Case> = vec![
        // (method, target, fields, completed without the parser)
        (
            b"GET",
            b"/a?x=1",
            vec![(b"host", b"h.example"), (b"accept", b"*/*")],
            true,
        ),
        (
            b"POST",
            b"/p",
            vec![(b"host", b"h"), (b"content-length", b"5")],
            true,
        ),
        (
            b"POST",
            b"/p",
            vec![(b"host", b"h"), (b"transfer-encoding", b"chunked")],
            true,
        ),
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"expect", b"100-continue")],
            true,
        ),
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"expect", b"other")],
            true,
        ),
        (
            b"GET",
            b"/",
            vec![
                (b"host", b"h"),
                (b"connection", b"close, x-a"),
                (b"x-a", b"1"),
            ],
            true,
        ),
        (
            b"GET",
            b"/",
            vec![
                (b"host", b"h"),
                (b"upgrade", b"ws"),
                (b"connection", b"upgrade"),
            ],
            true,
        ),
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"x", b"caf\xc3\xa9 \t ok")],
            true,
        ),
        (b"GET", b"/", vec![(b"host", b"h"), (b"x", b"")], true),
        // Refused by the parser: never completed.
        (b"GET", b"/", vec![(b"accept", b"*/*")], false),
        (b"GET", b"/", vec![(b"host", b"a"), (b"host", b"b")], false),
        (b"GET", b"/", vec![(b"host", b"a b")], false),
        (
            b"POST",
            b"/",
            vec![
                (b"host", b"h"),
                (b"content-length", b"5"),
                (b"content-length", b"6"),
            ],
            false,
        ),
        (
            b"POST",
            b"/",
            vec![(b"host", b"h"), (b"content-length", b"-1")],
            false,
        ),
        (
            b"POST",
            b"/",
            vec![(b"host", b"h"), (b"transfer-encoding", b"gzip")],
            false,
        ),
        (
            b"POST",
            b"/",
            vec![(b"host", b"h"), (b"content_length", b"5")],
            false,
        ),
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"x", b"a\r\nevil: 1")],
            false,
        ),
        (b"GET", b"/", vec![(b"host", b"h"), (b"x", b"nul\0")], false),
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"x", b"del\x7f")],
            false,
        ),
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"bad name", b"1")],
            false,
        ),
        (b"GET", b"/", vec![(b"host", b"h"), (b"", b"1")], false),
        (b"G(T", b"/", vec![(b"host", b"h")], false),
        (b"GET", b"/a b", vec![(b"host", b"h")], false),
        (b"GET", b"/\xff", vec![(b"host", b"h")], false),
        (b"GET", b"", vec![(b"host", b"h")], false),
        // Over a limit: left to the parser, which answers with the limit.
        (b"GET", b"/", vec![(b"host", b"h"), (b"x", &long)], false),
        (
            b"GET",
            b"/",
            vec![
                (b"host", b"h"),
                (b"a", b"1"),
                (b"b", b"1"),
                (b"c", b"1"),
                (b"d", b"1"),
                (b"e", b"1"),
                (b"f", b"1"),
            ],
            false,
        ),
        // The parser would trim these: left to it.
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"x", b" padded")],
            false,
        ),
        (
            b"GET",
            b"/",
            vec![(b"host", b"h"), (b"x", b"padded\t")],
            false,
        ),
    ];
    for (method, target, fields, fast) in cases {
        let (buf, mut head) = written(method, target, &fields);
        let completed = crate::head::complete_written_head(&buf, &limits, &mut head);
        let mut parsed = RequestHead::default();
        let verdict = parse_request_head(&buf, &limits, &mut parsed);
        let what = String::from_utf8_lossy(&buf).into_owned();
        assert_eq!(completed, fast, "{what:?} (parser: {verdict:?})");
        if completed {
            assert!(matches!(verdict, Ok(true)), "{what:?}: {verdict:?}");
            assert_eq!(head, parsed, "{what:?}");
        }
    }
}

/// The byte checks of `complete_written_head` agree with the parser's
/// rules, written out here from the RFCs, on every byte value.
#[test]
fn written_head_byte_checks_match_the_rules_for_every_byte() {
    let limits = HeadLimits {
        max_head_bytes: 512,
        max_headers: 8,
    };
    let completes = |method: &[u8], target: &[u8], fields: &[(&[u8], &[u8])]| {
        let (buf, mut head) = written(method, target, fields);
        crate::head::complete_written_head(&buf, &limits, &mut head)
    };
    let host: (&[u8], &[u8]) = (b"host", b"h");
    for b in 0..=255u8 {
        let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let target = (0x21..=0x7e).contains(&b);
        let value = b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80;
        assert_eq!(completes(&[b], b"/", &[host]), tchar, "method byte {b:#x}");
        assert_eq!(
            completes(b"GET", &[b'/', b], &[host]),
            target,
            "target byte {b:#x}"
        );
        assert_eq!(
            completes(b"GET", b"/", &[host, (&[b], b"1")]),
            tchar,
            "name byte {b:#x}"
        );
        let v = [b'a', b, b'a'];
        assert_eq!(
            completes(b"GET", b"/", &[host, (b"x", &v)]),
            value,
            "value byte {b:#x}"
        );
    }
}
