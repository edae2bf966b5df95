//! Local replies: a response ringway writes itself (a direct response, a
//! redirect, a CORS preflight, a 403 from an IP rule, a 401 from an auth
//! filter), instead of one from an upstream.
//!
//! The reply's extra fields (`Location`, `WWW-Authenticate`, CORS headers,
//! a route's response header edits) are the `response` [`HeaderEdits`] of
//! the request's [`FilterState`](super::FilterState); the writer adds
//! `Content-Type` and `Content-Length` and the `Connection` field the
//! connection needs. Unlike an error response, a local reply keeps the
//! connection open when the request's body was absent or fully read.

use std::sync::Arc;

use crate::http::HeaderEdits;

/// The body of a local reply.
#[derive(Debug, Clone, Default)]
pub enum ReplyBody {
    #[default]
    Empty,
    /// Compiled with the configuration (a direct response).
    Static(Arc<[u8]>),
    /// Written for this request.
    Text(&'static str),
    Owned(Vec<u8>),
}

impl ReplyBody {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ReplyBody::Empty => b"",
            ReplyBody::Static(b) => b,
            ReplyBody::Text(t) => t.as_bytes(),
            ReplyBody::Owned(v) => v,
        }
    }
}

/// A response ringway answers with itself.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: u16,
    /// `Content-Type` (none when the body is empty and this is `None`).
    pub content_type: Option<Arc<str>>,
    pub body: ReplyBody,
}

impl LocalReply {
    /// A reply with a `text/plain` body.
    pub fn text(status: u16, body: &'static str) -> LocalReply {
        LocalReply {
            status,
            content_type: Some(Arc::from("text/plain; charset=utf-8")),
            body: ReplyBody::Text(body),
        }
    }

    /// A reply without a body.
    pub fn empty(status: u16) -> LocalReply {
        LocalReply {
            status,
            content_type: None,
            body: ReplyBody::Empty,
        }
    }
}

/// How the reply's connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyConnection {
    /// HTTP/1.1 keep-alive: no Connection field.
    KeepAlive,
    /// HTTP/1.0 client that stays open: `Connection: keep-alive`.
    KeepAliveHttp10,
    /// `Connection: close`.
    Close,
}

/// Append the whole reply to `out`. `head_only`: the request was HEAD (no
/// body bytes, same `Content-Length`). Statuses without a body (1xx, 204,
/// 304) get no `Content-Length` and no body.
pub fn write_local_reply(
    out: &mut Vec<u8>,
    reply: &LocalReply,
    edits: &HeaderEdits,
    conn: ReplyConnection,
    head_only: bool,
) {
    let status = reply.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(crate::http::rewrite::canonical_reason(status));
    out.extend_from_slice(b"\r\n");
    let no_body = matches!(status, 100..=199 | 204 | 304);
    let body = reply.body.as_bytes();
    if !no_body {
        if let Some(ct) = &reply.content_type {
            if !edits.drops(b"content-type") {
                out.extend_from_slice(b"Content-Type: ");
                out.extend_from_slice(ct.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in edits.fields() {
        // Framing is ringway's: an edit cannot change it here either.
        if name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"connection")
        {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    match conn {
        ReplyConnection::KeepAlive => {}
        ReplyConnection::KeepAliveHttp10 => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ReplyConnection::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    if !no_body && !head_only {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reply_with_body_edits_and_keep_alive() {
        let mut edits = HeaderEdits::new();
        edits.set(b"Location", b"https://a.test/");
        edits.set(b"Content-Length", b"999");
        let reply = LocalReply::text(301, "moved\n");
        let mut out = Vec::new();
        write_local_reply(&mut out, &reply, &edits, ReplyConnection::KeepAlive, false);
        assert_eq!(
            text(out),
            "HTTP/1.1 301 Moved Permanently\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\nLocation: https://a.test/\r\n\r\nmoved\n"
        );
    }

    #[test]
    fn head_and_no_body_statuses() {
        let edits = HeaderEdits::new();
        let mut out = Vec::new();
        let reply = LocalReply::text(200, "hello");
        write_local_reply(&mut out, &reply, &edits, ReplyConnection::Close, true);
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        write_local_reply(
            &mut out,
            &LocalReply::empty(204),
            &edits,
            ReplyConnection::KeepAliveHttp10,
            false,
        );
        assert_eq!(
            text(out),
            "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
        );
    }
}
