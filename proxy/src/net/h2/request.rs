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

/// Append the HTTP/1.1 head of `req` to `out`. `end_of_stream`: the
/// HEADERS frame ended the stream (no body). `whole_body`: the length of
/// the body when all of it is already in hand (it is then sent with that
/// `content-length`, whatever the client declared, so the stage loop can
/// replay or copy it).
pub fn write_head(
    req: &Parts,
    end_of_stream: bool,
    whole_body: Option<usize>,
    out: &mut Vec<u8>,
) -> BodyFraming {
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    // CONNECT names an authority, not a path.
    if req.method == http::Method::CONNECT {
        out.extend_from_slice(req.uri.authority().map_or("", |a| a.as_str()).as_bytes());
    } else {
        out.extend_from_slice(if target.is_empty() { "/" } else { target }.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let authority = req.uri.authority();
    if let Some(a) = authority {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(a.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
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
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if cookies > 0 {
        out.extend_from_slice(b"cookie: ");
        for (i, v) in req.headers.get_all(http::header::COOKIE).iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    let framing = if end_of_stream {
        BodyFraming::None
    } else if let Some(n) = whole_body {
        field(out, b"content-length", n.to_string().as_bytes());
        BodyFraming::Length
    } else if has_length {
        BodyFraming::Length
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        BodyFraming::Chunked
    };
    out.extend_from_slice(b"\r\n");
    framing
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
        let f = write_head(&parts, eos, None, &mut out);
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
            write_head(&parts, false, Some(5), &mut out),
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
