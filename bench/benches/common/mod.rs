//! Shared inputs of the micro-benchmarks: a typical request/response head
//! (~8 headers, ~300 B) and a large one (~60 headers, ~4 KiB).
#![allow(dead_code)]

/// A browser-ish API request: 8 header fields, about 300 bytes.
pub fn typical_request() -> Vec<u8> {
    let h = b"GET /api/v1/users/12345 HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: Mozilla/5.0 ringway-bench/1.0\r\n\
Accept: application/json\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Connection: keep-alive\r\n\
Cookie: session=abcdef0123456789; theme=dark\r\n\
X-Request-Id: 7f3c9a2e-1b4d-4e8f-9a6b-2c1d0e9f8a7b\r\n\r\n"
        .to_vec();
    debug_assert!((280..=360).contains(&h.len()));
    h
}

/// A request carrying many headers (tracing, auth, cookies): 60 header
/// fields, about 4 KiB.
pub fn large_request() -> Vec<u8> {
    let mut h = b"POST /api/v2/orders/batch?tenant=acme&region=eu-west-1 HTTP/1.1\r\n\
Host: api.example.com\r\n\
Content-Type: application/json\r\n\
Content-Length: 512\r\n\
Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl\r\n"
        .to_vec();
    for i in 0..56 {
        h.extend_from_slice(
            format!(
                "X-Custom-Header-{i:02}: value-{i:02}-0123456789abcdef0123456789abcdef01234\r\n"
            )
            .as_bytes(),
        );
    }
    h.extend_from_slice(b"\r\n");
    debug_assert!((3800..=4400).contains(&h.len()), "{}", h.len());
    h
}

/// A typical origin response head: 8 header fields.
pub fn typical_response() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1024\r\n\
Date: Fri, 27 Nov 2026 20:48:22 GMT\r\n\
Server: origin/1.0\r\n\
Cache-Control: no-cache, no-store\r\n\
Vary: Accept-Encoding\r\n\
Connection: keep-alive\r\n\
X-Trace-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\n\r\n"
        .to_vec()
}

/// A response with 60 header fields (about 4 KiB).
pub fn large_response() -> Vec<u8> {
    let mut h = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n"
        .to_vec();
    for i in 0..57 {
        h.extend_from_slice(
            format!(
                "X-Backend-Header-{i:02}: value-{i:02}-0123456789abcdef0123456789abcdef0123\r\n"
            )
            .as_bytes(),
        );
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// (name, bytes) of both request heads.
pub fn request_heads() -> [(&'static str, Vec<u8>); 2] {
    [("typical", typical_request()), ("large", large_request())]
}

pub fn response_heads() -> [(&'static str, Vec<u8>); 2] {
    [("typical", typical_response()), ("large", large_response())]
}
