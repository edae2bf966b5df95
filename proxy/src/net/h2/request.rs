//! An HTTP/2 request as the HTTP/1.1 head the stage loop reads.
//!
//! `:method` and `:path` make the request line, `:authority` the `Host`
//! field (an incoming `host` field is dropped when `:authority` is there,
//! RFC 9113 §8.3.1); `cookie` fields, which HTTP/2 splits, are joined with
//! `"; "` (§8.2.3). A body of known length keeps its `content-length`; one
//! without is sent chunked, so the stage loop frames it as it frames any
//! HTTP/1.1 body. h2 has already refused connection-specific fields and
//! malformed pseudo-headers (a stream error), so they never get here.

use http::request::Parts;

use crate::http::{HeaderSpan, RequestHead, Span};

/// How the body that follows the head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (END_STREAM came with the HEADERS).
    None,
    /// `content-length` bytes, as they arrive.
    Length,
    /// Chunked: each DATA frame a chunk, trailers after the last one.
    Chunked,
}

/// Append the HTTP/1.1 head of `req` to `out` (empty), recording where
/// its method, target and fields are in `spans` (`method`, `target`,
/// `headers`, `head_len`: for `crate::http::head::complete_written_head`).
/// `end_of_stream`: the HEADERS frame ended the stream (no body).
/// `whole_body`: the length of the body when all of it is already in hand
/// (it is then sent with that `content-length`, whatever the client
/// declared, so the stage loop can replay or copy it).
pub fn write_head(
    req: &Parts,
    end_of_stream: bool,
    whole_body: Option<usize>,
    out: &mut Vec<u8>,
    spans: &mut RequestHead,
) -> BodyFraming {
    debug_assert!(out.is_empty());
    spans.headers.clear();
    out.extend_from_slice(req.method.as_str().as_bytes());
    spans.method = span_from(out, 0);
    out.push(b' ');
    let at = out.len();
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    // CONNECT names an authority, not a path.
    if req.method == http::Method::CONNECT {
        out.extend_from_slice(req.uri.authority().map_or("", |a| a.as_str()).as_bytes());
    } else {
        out.extend_from_slice(if target.is_empty() { "/" } else { target }.as_bytes());
    }
    spans.target = span_from(out, at);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let authority = req.uri.authority();
    if let Some(a) = authority {
        spanned_field(out, b"host", a.as_str().as_bytes(), spans);
    }
    let mut has_length = false;
    let mut cookies = 0usize;
    for (name, value) in &req.headers {
        if *name == http::header::HOST && authority.is_some() {
            continue;
        }
        if *name == http::header::COOKIE {
            cookies += 1;
            continue;
        }
        if *name == http::header::CONTENT_LENGTH {
            if whole_body.is_some() {
                continue;
            }
            has_length = true;
        }
        spanned_field(out, name.as_str().as_bytes(), value.as_bytes(), spans);
    }
    if cookies > 0 {
        let name_at = out.len();
        out.extend_from_slice(b"cookie");
        let name = span_from(out, name_at);
        out.extend_from_slice(b": ");
        let value_at = out.len();
        for (i, v) in req.headers.get_all(http::header::COOKIE).iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(v.as_bytes());
        }
        let value = span_from(out, value_at);
        out.extend_from_slice(b"\r\n");
        spans.headers.push(HeaderSpan { name, value });
    }
    let framing = if end_of_stream {
        BodyFraming::None
    } else if let Some(n) = whole_body {
        let mut digits = itoa::Buffer::new();
        spanned_field(out, b"content-length", digits.format(n).as_bytes(), spans);
        BodyFraming::Length
    } else if has_length {
        BodyFraming::Length
    } else {
        spanned_field(out, b"transfer-encoding", b"chunked", spans);
        BodyFraming::Chunked
    };
    out.extend_from_slice(b"\r\n");
    spans.head_len = out.len();
    framing
}

/// The span from `from` to the end of `out`.
fn span_from(out: &[u8], from: usize) -> Span {
    Span {
        start: from as u32,
        end: out.len() as u32,
    }
}

/// One `name: value` line, its spans recorded.
fn spanned_field(out: &mut Vec<u8>, name: &[u8], value: &[u8], spans: &mut RequestHead) {
    out.reserve(name.len() + value.len() + 4);
    let at = out.len();
    out.extend_from_slice(name);
    let name = span_from(out, at);
    out.extend_from_slice(b": ");
    let at = out.len();
    out.extend_from_slice(value);
    let value = span_from(out, at);
    out.extend_from_slice(b"\r\n");
    spans.headers.push(HeaderSpan { name, value });
}

/// One `name: value` line.
pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The chunked trailer section for `trailers` (after the last chunk's
/// `0\r\n`), final CRLF included.
pub fn write_trailers(trailers: &http::HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in trailers {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(req: http::Request<()>, eos: bool) -> (String, BodyFraming) {
        let (parts, ()) = req.into_parts();
        let mut out = Vec::new();
        let mut spans = RequestHead::default();
        let f = write_head(&parts, eos, None, &mut out, &mut spans);
        // The recorded spans are the parser's: the head completes from them
        // to exactly what parsing the bytes gives.
        let limits = crate::http::HeadLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        };
        let mut parsed = RequestHead::default();
        assert!(crate::http::head::parse_request_head(&out, &limits, &mut parsed).unwrap());
        assert!(crate::http::head::complete_written_head(
            &out, &limits, &mut spans
        ));
        assert_eq!(spans, parsed);
        (String::from_utf8(out).unwrap(), f)
    }

    #[test]
    fn authority_becomes_host_and_cookies_are_joined() {
        let req = http::Request::builder()
            .method("GET")
            .uri("https://example.com:8443/a/b?x=1")
            .header("host", "other.example")
            .header("cookie", "a=1")
            .header("user-agent", "t")
            .header("cookie", "b=2")
            .body(())
            .unwrap();
        let (h, f) = head_of(req, true);
        assert_eq!(
            h,
            "GET /a/b?x=1 HTTP/1.1\r\nhost: example.com:8443\r\nuser-agent: t\r\ncookie: a=1; b=2\r\n\r\n"
        );
        assert_eq!(f, BodyFraming::None);
    }

    #[test]
    fn bodies_keep_their_length_or_go_chunked() {
        let req = http::Request::builder()
            .method("POST")
            .uri("http://h/p")
            .header("content-length", "5")
            .body(())
            .unwrap();
        let (h, f) = head_of(req, false);
        assert!(h.ends_with("content-length: 5\r\n\r\n"), "{h}");
        assert_eq!(f, BodyFraming::Length);

        let req = http::Request::builder()
            .method("POST")
            .uri("http://h/p")
            .body(())
            .unwrap();
        let (h, f) = head_of(req, false);
        assert!(h.ends_with("transfer-encoding: chunked\r\n\r\n"), "{h}");
        assert_eq!(f, BodyFraming::Chunked);
    }

    #[test]
    fn a_body_in_hand_gets_its_length() {
        let req = http::Request::builder()
            .method("POST")
            .uri("http://h/p")
            .header("content-length", "99")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let mut out = Vec::new();
        assert_eq!(
            write_head(
                &parts,
                false,
                Some(5),
                &mut out,
                &mut RequestHead::default()
            ),
            BodyFraming::Length
        );
        let h = String::from_utf8(out).unwrap();
        assert!(
            h.ends_with("content-length: 5\r\n\r\n") && !h.contains("99"),
            "{h}"
        );
    }

    #[test]
    fn without_authority_the_host_field_stays() {
        let req = http::Request::builder()
            .method("GET")
            .uri("/only-path")
            .header("host", "h.example")
            .body(())
            .unwrap();
        let (h, _) = head_of(req, true);
        assert_eq!(h, "GET /only-path HTTP/1.1\r\nhost: h.example\r\n\r\n");
    }

    #[test]
    fn trailers_end_the_section() {
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", http::HeaderValue::from_static("0"));
        let mut out = Vec::new();
        write_trailers(&t, &mut out);
        assert_eq!(out, b"grpc-status: 0\r\n\r\n");
    }
}
