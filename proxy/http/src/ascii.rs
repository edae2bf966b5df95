//! Case-insensitive comparison of a field name against a lower-case
//! constant, eight bytes at a time.
//!
//! Every field of every head is compared against a dozen names (hop-by-hop
//! ones, framing, forwarding, tracing); `<[u8]>::eq_ignore_ascii_case` goes
//! byte by byte, about four instructions a byte. [`eq_lower`] lower-cases a
//! whole 64-bit word of the name at once (exactly: only `A`–`Z` change, any
//! other byte value is left as it is) and compares it with the constant's.

/// The 64-bit word of `s` at `at` (`at + 8 <= s.len()`), little-endian.
#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(b)
}

/// `x` with every byte `A`–`Z` lower-cased and every other byte unchanged.
#[inline(always)]
fn lower_word(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Per byte, on its low seven bits (no carry crosses a byte): bit 7 of
    // `ge_a` is set when the byte is at least 'A', of `gt_z` when it is
    // past 'Z'; a byte with bit 7 set itself is no letter.
    let low = x & !HIGH;
    let ge_a = low + ONES * (0x80 - u64::from(b'A'));
    let gt_z = low + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = (ge_a & !gt_z) & !x & HIGH;
    x | (upper >> 2)
}

/// Whether `name` equals `lower` ignoring ASCII case, where `lower` has no
/// upper-case letter (a constant). The same answer as
/// `name.eq_ignore_ascii_case(lower)` for every input.
#[inline]
pub fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    debug_assert!(!lower.iter().any(u8::is_ascii_uppercase));
    let n = name.len();
    if n != lower.len() {
        return false;
    }
    if n < 8 {
        return name
            .iter()
            .zip(lower)
            .all(|(a, b)| a.to_ascii_lowercase() == *b);
    }
    let mut at = 0;
    while at + 8 <= n {
        if lower_word(word(name, at)) != word(lower, at) {
            return false;
        }
        at += 8;
    }
    // The last, partial word: the last eight bytes (overlapping).
    at == n || lower_word(word(name, n - 8)) == word(lower, n - 8)
}

#[cfg(test)]
mod tests {
    use super::eq_lower;

    const NAMES: [&str; 14] = [
        "te",
        "host",
        "expect",
        "upgrade",
        "trailer",
        "connection",
        "keep-alive",
        "user-agent",
        "x-request-id",
        "content-length",
        "proxy-connection",
        "transfer-encoding",
        "proxy-authenticate",
        "proxy-authorization",
    ];

    /// Every constant against itself in every case pattern of its first
    /// bytes, and against every one-byte change at every position (all 256
    /// byte values): the same answer as `eq_ignore_ascii_case`.
    #[test]
    fn agrees_with_eq_ignore_ascii_case_on_every_byte() {
        let mut checked = 0u32;
        for lower in NAMES {
            let lower = lower.as_bytes();
            for i in 0..lower.len() {
                for v in 0..=255u8 {
                    let mut name = lower.to_vec();
                    name[i] = v;
                    assert_eq!(
                        eq_lower(&name, lower),
                        name.eq_ignore_ascii_case(lower),
                        "{name:?} vs {lower:?}"
                    );
                    // And with the rest upper-cased.
                    let mut upper = name.to_ascii_uppercase();
                    upper[i] = v;
                    assert_eq!(eq_lower(&upper, lower), upper.eq_ignore_ascii_case(lower));
                    checked += 2;
                }
            }
            // Case patterns over the first 12 bytes.
            for mask in 0..(1u32 << lower.len().min(12)) {
                let name: Vec<u8> = lower
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        if mask >> i & 1 == 1 {
                            b.to_ascii_uppercase()
                        } else {
                            *b
                        }
                    })
                    .collect();
                assert!(eq_lower(&name, lower), "{name:?}");
            }
            // Other lengths never match.
            assert!(!eq_lower(&lower[..lower.len() - 1], lower));
            let mut longer = lower.to_vec();
            longer.push(b'x');
            assert!(!eq_lower(&longer, lower));
        }
        assert!(checked > 70_000);
    }
}
