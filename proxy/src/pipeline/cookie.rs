//! Reading one cookie from a `Cookie` field value (RFC 6265 §5.4:
//! `name=value` pairs separated by `;` and optional spaces).

/// The value of cookie `name` in `header` (a `Cookie` field value).
pub fn cookie_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = trim(pair);
        let eq = memchr::memchr(b'=', pair)?;
        (trim(&pair[..eq]) == name).then(|| {
            let v = trim(&pair[eq + 1..]);
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v)
        })
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cookies() {
        let h = b"a=1; session=abc ;b=\"q\";empty=";
        assert_eq!(cookie_value(h, b"a"), Some(&b"1"[..]));
        assert_eq!(cookie_value(h, b"session"), Some(&b"abc"[..]));
        assert_eq!(cookie_value(h, b"b"), Some(&b"q"[..]));
        assert_eq!(cookie_value(h, b"empty"), Some(&b""[..]));
        assert_eq!(cookie_value(h, b"sess"), None);
        assert_eq!(cookie_value(b"", b"a"), None);
        assert_eq!(cookie_value(b"noequals", b"noequals"), None);
    }
}
