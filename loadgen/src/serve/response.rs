//! `serve`'s responses, serialised once at start-up.

use crate::cli::ServeConfig;

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Statuses that never carry a body.
pub fn bodyless(status: u16) -> bool {
    status == 204 || status == 304
}

/// The fixed response in its variants. Leaked once: they live as long as
/// the process and are written without copying or reference counting.
#[derive(Debug, Clone, Copy)]
pub struct Templates {
    /// Head + body, keep-alive.
    pub full: &'static [u8],
    /// Head + body with `Connection: close`.
    pub full_close: &'static [u8],
    /// The heads alone (HEAD requests, slow bodies).
    pub head: &'static [u8],
    pub head_close: &'static [u8],
    /// The raw body bytes.
    pub body: &'static [u8],
    pub chunked: bool,
    /// The `--fail-status` answer (a short fixed body), keep-alive and close.
    pub fail: &'static [u8],
    pub fail_close: &'static [u8],
}

/// Head lines shared by every response: status line, Server, extra headers.
pub fn start_head(out: &mut Vec<u8>, status: u16, extra: &[(String, String)]) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    out.extend_from_slice(b"Server: ringload\r\n");
    for (name, value) in extra {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
}

/// Framing header for a body of `len` bytes.
pub fn framing(out: &mut Vec<u8>, status: u16, chunked: bool, len: usize) {
    if bodyless(status) {
        return;
    }
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    } else {
        out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
    }
}

/// Append `data` as one chunk (nothing for empty data).
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if !data.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}

pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A body of `size` bytes: `abc...z` repeated.
pub fn body_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

impl Templates {
    pub fn build(cfg: &ServeConfig) -> Templates {
        let body = if bodyless(cfg.status) {
            Vec::new()
        } else {
            body_bytes(cfg.body_size)
        };
        let head = |close: bool| {
            let mut h = Vec::new();
            start_head(&mut h, cfg.status, &cfg.headers);
            framing(&mut h, cfg.status, cfg.chunked, body.len());
            if close {
                h.extend_from_slice(b"Connection: close\r\n");
            }
            h.extend_from_slice(b"\r\n");
            h
        };
        let full = |close: bool| {
            let mut f = head(close);
            if !bodyless(cfg.status) {
                if cfg.chunked {
                    push_chunk(&mut f, &body);
                    f.extend_from_slice(LAST_CHUNK);
                } else {
                    f.extend_from_slice(&body);
                }
            }
            f
        };
        let leak = |v: Vec<u8>| -> &'static [u8] { Box::leak(v.into_boxed_slice()) };
        let fail = |close: bool| {
            let body: &[u8] = if bodyless(cfg.fail_status) {
                b""
            } else {
                b"fail\n"
            };
            let mut f = Vec::new();
            start_head(&mut f, cfg.fail_status, &[]);
            framing(&mut f, cfg.fail_status, false, body.len());
            if close {
                f.extend_from_slice(b"Connection: close\r\n");
            }
            f.extend_from_slice(b"\r\n");
            f.extend_from_slice(body);
            f
        };
        Templates {
            full: leak(full(false)),
            full_close: leak(full(true)),
            head: leak(head(false)),
            head_close: leak(head(true)),
            body: leak(body),
            chunked: cfg.chunked && !bodyless(cfg.status),
            fail: leak(fail(false)),
            fail_close: leak(fail(true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(args: &[&str]) -> ServeConfig {
        let mut full = vec!["ringload", "serve"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Serve(s) => s.validate().unwrap(),
            _ => unreachable!(),
        }
    }

    fn parse(bytes: &[u8], head: bool) -> (u16, bool) {
        let mut p = crate::run::response::ResponseParser::new();
        match p.feed(bytes, head).unwrap() {
            crate::run::response::Parsed::Done { consumed, response } => {
                assert_eq!(consumed, bytes.len());
                (response.status, response.keep_alive)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn templates_frame_correctly() {
        for args in [
            vec!["--body-size", "100"],
            vec!["--body-size", "0"],
            vec!["--body-size", "100", "--chunked"],
            vec!["--status", "204"],
            vec!["--status", "503", "-H", "Retry-After: 1"],
        ] {
            let t = Templates::build(&config(&args));
            let status = if args.contains(&"204") {
                204
            } else if args.contains(&"503") {
                503
            } else {
                200
            };
            assert_eq!(parse(t.full, false), (status, true), "{args:?}");
            assert_eq!(parse(t.full_close, false), (status, false), "{args:?}");
            assert_eq!(parse(t.head, true), (status, true), "{args:?}");
            assert_eq!(parse(t.head_close, true), (status, false), "{args:?}");
        }
    }

    #[test]
    fn body_pattern() {
        assert_eq!(body_bytes(3), b"abc");
        assert_eq!(body_bytes(28)[26..], *b"ab");
    }
}
