//! Header value helpers shared by the client's response parser and the
//! origin's request parser.

/// `s` without leading and trailing ASCII whitespace.
pub fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

/// A Content-Length value: 1 to 18 ASCII digits (surrounding whitespace
/// allowed), `None` for anything else.
pub fn content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, d| acc * 10 + (d - b'0') as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_parses_lengths() {
        assert_eq!(trim(b"  a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(content_length(b" 42 "), Some(42));
        assert_eq!(content_length(b""), None);
        assert_eq!(content_length(b"-1"), None);
        assert_eq!(content_length(b"1234567890123456789"), None);
    }
}
