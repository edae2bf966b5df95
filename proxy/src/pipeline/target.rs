//! Request targets that could alias a route: refused before routing.
//!
//! Routes match the path as sent, and filters (auth, IP rules) belong to the
//! route that matched. An origin that normalises paths would serve
//! `/public/../admin` or `/%61dmin` as `/admin`, past the filters of the
//! `/admin` route; one that prefers the host of an absolute-form target
//! would serve `http://admin.internal/x` sent with `Host: public.example`.
//! ringway answers such requests 400 instead of guessing (RFC 3986 §6 leaves
//! normalisation to the server; RFC 9112 §3.2.2 says the target's host wins
//! over `Host`):
//!
//! - a `.` or `..` path segment, also when its dots or the slashes around
//!   it are percent-encoded (`%2e`, `%2f`, `%5c`);
//! - a percent-encoded unreserved character (`ALPHA DIGIT - . _ ~`), which
//!   RFC 3986 §2.3 says should never be encoded;
//! - an absolute-form target whose authority is not the `Host` value.
//!
//! Encoded slashes alone (`/repos/a%2Fb`, as some APIs use) pass.

/// Why a target is refused, or `Ok`.
pub fn check_target(target: &[u8], host: Option<&[u8]>) -> Result<(), &'static str> {
    if target == b"*" {
        return Ok(());
    }
    let path = if target.first() == Some(&b'/') {
        target
    } else {
        // Absolute form: `scheme://authority[/path]`.
        let Some(i) = memchr::memmem::find(target, b"://") else {
            return Ok(());
        };
        let rest = &target[i + 3..];
        let end = memchr::memchr3(b'/', b'?', b'#', rest).unwrap_or(rest.len());
        let authority = &rest[..end];
        match host {
            Some(h) if h.eq_ignore_ascii_case(authority) => {}
            _ => return Err("absolute-form target with another host than Host"),
        }
        &rest[end..]
    };
    let path = match memchr::memchr2(b'?', b'#', path) {
        Some(i) => &path[..i],
        None => path,
    };
    // Walk the path decoding only what matters here: encoded dots and
    // separators are checked as what they decode to.
    let mut segment_len = 0usize;
    let mut dots = 0usize;
    let mut i = 0;
    let end_segment = |len: usize, dots: usize| -> Result<(), &'static str> {
        if len > 0 && len == dots && dots <= 2 {
            Err("dot segment in the path")
        } else {
            Ok(())
        }
    };
    while i < path.len() {
        let (byte, width) = if path[i] == b'%' && i + 2 < path.len() {
            match (hex(path[i + 1]), hex(path[i + 2])) {
                (Some(a), Some(b)) => (a << 4 | b, 3),
                _ => (b'%', 1),
            }
        } else {
            (path[i], 1)
        };
        if width == 3 && byte != b'/' && byte != b'\\' && byte != b'.' && is_unreserved(byte) {
            return Err("percent-encoded unreserved character in the path");
        }
        match byte {
            b'/' | b'\\' => {
                end_segment(segment_len, dots)?;
                segment_len = 0;
                dots = 0;
            }
            b'.' => {
                segment_len += 1;
                dots += 1;
            }
            _ => segment_len += 1,
        }
        i += width;
    }
    end_segment(segment_len, dots)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::check_target;

    #[test]
    fn ordinary_targets_pass() {
        for t in [
            "/",
            "/a/b.json",
            "/a/.well-known/x",
            "/a/...",
            "/a/b..c/",
            "/repos/a%2Fb",
            "/q?next=/../x&y=%61",
            "/a%20b",
            "/%E2%82%AC",
            "*",
            "/a/#frag",
        ] {
            assert_eq!(check_target(t.as_bytes(), Some(b"h")), Ok(()), "{t}");
        }
        assert_eq!(check_target(b"http://h.test/x", Some(b"H.test")), Ok(()));
        assert_eq!(check_target(b"http://h.test", Some(b"h.test")), Ok(()));
    }

    #[test]
    fn aliases_are_refused() {
        for t in [
            "/x/../admin",
            "/x/..",
            "/./admin",
            "/a/.",
            "/x/%2e%2e/admin",
            "/x/.%2E/admin",
            "/x%2F..%2Fadmin",
            "/x%5c..%5cadmin",
            "/x\\..\\admin",
            "/%61dmin",
            "/admin%7E",
            "/a%2D",
        ] {
            assert!(check_target(t.as_bytes(), Some(b"h")).is_err(), "{t}");
        }
        assert!(check_target(b"http://admin.internal/x", Some(b"public.example")).is_err());
        assert!(check_target(b"http://admin.internal/x", None).is_err());
    }
}
