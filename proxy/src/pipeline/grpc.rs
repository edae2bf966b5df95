//! gRPC facts read from HTTP/1.1 heads (the stage loop's view of an
//! HTTP/2 gRPC call): status names, a trailers-only answer's
//! `grpc-status`, and a call's `grpc-timeout`.

use ringway_http::ascii::eq_lower;
use std::time::Duration;

use crate::http::head::field_value;
use crate::http::{RequestHead, ResponseHead};

/// The gRPC status code named `name` (kebab-case, as in the gRPC spec:
/// `"unavailable"`, `"deadline-exceeded"`, ...).
pub fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "ok",
        "cancelled",
        "unknown",
        "invalid-argument",
        "deadline-exceeded",
        "not-found",
        "already-exists",
        "permission-denied",
        "resource-exhausted",
        "failed-precondition",
        "aborted",
        "out-of-range",
        "unimplemented",
        "internal",
        "unavailable",
        "data-loss",
        "unauthenticated",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
}

/// The `grpc-status` of a trailers-only gRPC answer (in its head).
pub fn grpc_status_in_head(buf: &[u8], resp: &ResponseHead) -> Option<u32> {
    field_value(&resp.headers, buf, b"grpc-status")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A gRPC answer: `content-type: application/grpc[+proto|;...]`.
pub fn is_grpc(buf: &[u8], resp: &ResponseHead) -> bool {
    resp.headers.iter().any(|h| {
        eq_lower(&buf[h.name.range()], b"content-type")
            && buf[h.value.range()]
                .get(..16)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"application/grpc"))
    })
}

/// A call's `grpc-timeout` (1 to 8 digits and a unit: `H`, `M`, `S`, `m`,
/// `u`, `n`), if it has a valid one.
pub fn grpc_timeout(data: &[u8], head: &RequestHead) -> Option<Duration> {
    parse_grpc_timeout(field_value(&head.headers, data, b"grpc-timeout")?)
}

fn parse_grpc_timeout(v: &[u8]) -> Option<Duration> {
    let v = v.trim_ascii();
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit[0] {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_status_names() {
        assert_eq!(super::grpc_code("unavailable"), Some(14));
        assert_eq!(super::grpc_code("Deadline-Exceeded"), Some(4));
        assert_eq!(super::grpc_code("ok"), Some(0));
        assert_eq!(super::grpc_code("unauthenticated"), Some(16));
        assert_eq!(super::grpc_code("UNAVAILABLE_"), None);
    }

    #[test]
    fn grpc_timeouts() {
        use std::time::Duration;
        let p = super::parse_grpc_timeout;
        assert_eq!(p(b"200m"), Some(Duration::from_millis(200)));
        assert_eq!(p(b"1S"), Some(Duration::from_secs(1)));
        assert_eq!(p(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(p(b"5n"), Some(Duration::from_nanos(5)));
        assert_eq!(p(b"123456789m"), None, "at most 8 digits");
        assert_eq!(p(b"m"), None);
        assert_eq!(p(b"10x"), None);
        assert_eq!(p(b""), None);
    }
}
