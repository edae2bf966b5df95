//! Which requests become spans.
//!
//! - **Head** ([`head_sampled`]): a continued trace follows its parent's
//!   sampled flag (W3C `traceparent` flags bit 0), so a trace is kept or
//!   dropped whole along its path. A new trace is sampled when the last 16
//!   hex digits of its trace id, read as a number, fall below
//!   `sample_ratio` × 2⁶⁴ (OpenTelemetry's TraceIdRatioBased rule: the
//!   same trace gets the same answer wherever the same ratio is used).
//! - **Keep rules** ([`keep`]), decided when the request has ended: a
//!   request the head did not sample is exported anyway when it failed (a
//!   5xx answer or a proxy error, `keep_errors`) or took at least
//!   `keep_slower_than`.

use std::time::Duration;

use crate::config::OtlpConfig;

/// The head decision for a trace (`trace_id`: 32 hex digits; `parent`:
/// the incoming flags when the trace was continued).
pub fn head_sampled(trace_id: &[u8], parent_flags: Option<&[u8]>, ratio: f64) -> bool {
    if let Some(flags) = parent_flags {
        return flags
            .get(1)
            .is_some_and(|&c| matches!(c, b'1' | b'3' | b'5' | b'7' | b'9' | b'b' | b'd' | b'f'));
    }
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    match trace_id.get(16..32).and_then(hex_u64) {
        // 2^64 × ratio, computed in f64 (exact enough for a ratio).
        Some(v) => (v as f64) < ratio * 18_446_744_073_709_551_616.0,
        None => false,
    }
}

/// 16 hex digits as a number, eight at a time in one register (this runs
/// on every request). The digits are a trace id already checked to be
/// hex (`parse_traceparent`, or generated); other bytes give some number,
/// never a panic.
fn hex_u64(h: &[u8]) -> Option<u64> {
    let h: &[u8; 16] = h.try_into().ok()?;
    let half = |b: [u8; 8]| -> u64 {
        let x = u64::from_be_bytes(b);
        // '0'..'9' = 0x30..0x39, 'a'..'f' / 'A'..'F' = 0x41.. / 0x61..:
        // the low nibble, plus 9 for a letter (bit 6 set).
        let v = (x & 0x0f0f_0f0f_0f0f_0f0f) + ((x >> 6) & 0x0101_0101_0101_0101) * 9;
        // Pack the eight nibbles, first digit highest.
        let v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
        let v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
        (v | (v >> 16)) & 0x0000_0000_ffff_ffff
    };
    let (a, b) = h.split_at(8);
    Some((half(a.try_into().ok()?) << 32) | half(b.try_into().ok()?))
}

/// Export a request the head did not sample?
pub fn keep(cfg: &OtlpConfig, status: u16, failed: bool, elapsed: Duration) -> bool {
    (cfg.keep_errors && (failed || status >= 500))
        || cfg.keep_slower_than.is_some_and(|t| elapsed >= t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_decide_for_continued_traces() {
        let id = b"4bf92f3577b34da6a3ce929d0e0e4736";
        assert!(head_sampled(id, Some(b"01"), 0.0));
        assert!(head_sampled(id, Some(b"03"), 0.0));
        assert!(!head_sampled(id, Some(b"00"), 1.0));
        assert!(!head_sampled(id, Some(b"02"), 1.0));
    }

    #[test]
    fn hex_digits_decode_like_from_str_radix() {
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..10_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for s in [format!("{state:016x}"), format!("{state:016X}")] {
                assert_eq!(hex_u64(s.as_bytes()), Some(state), "{s}");
            }
        }
        assert_eq!(hex_u64(b"0000000000000000"), Some(0));
        assert_eq!(hex_u64(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(hex_u64(b"0123456789abcdef"), Some(0x0123_4567_89ab_cdef));
        assert_eq!(hex_u64(b"0123"), None);
    }

    #[test]
    fn ratio_uses_the_trace_id() {
        assert!(head_sampled(b"ffffffffffffffffffffffffffffffff", None, 1.0));
        assert!(!head_sampled(
            b"00000000000000000000000000000000",
            None,
            0.0
        ));
        // Low half 0x0000…01 is below any positive ratio; 0xffff… only
        // below 1.
        assert!(head_sampled(
            b"ffffffffffffffff0000000000000001",
            None,
            0.001
        ));
        assert!(!head_sampled(
            b"00000000000000007fffffffffffffff",
            None,
            0.4
        ));
        assert!(head_sampled(b"00000000000000007fffffffffffffff", None, 0.6));
        // Over many random ids the share is the ratio.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut kept = 0;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let id = format!("{:016x}{:016x}", state.rotate_left(17), state);
            kept += head_sampled(id.as_bytes(), None, 0.01) as u32;
        }
        assert!((800..1200).contains(&kept), "{kept}");
    }
}
