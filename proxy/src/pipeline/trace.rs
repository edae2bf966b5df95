//! W3C trace context (`traceparent`): accept a valid one and continue its
//! trace, otherwise start a new trace; every hop gets a new span (parent) id.
//!
//! `traceparent: 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`.
//! Invalid (wrong length or version `ff`, upper-case or non-hex digits, an
//! all-zero id) means: start a new trace and drop `tracestate`.

use crate::http::{RequestHead, Span};
use ringway_http::ascii::eq_lower;

/// Header fields the pipeline looks at besides routing, found in one pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct HeaderScan {
    pub request_id: Option<Span>,
    pub traceparent: Option<Span>,
    pub user_agent: Option<Span>,
    pub referer: Option<Span>,
}

pub fn scan_headers(data: &[u8], head: &RequestHead) -> HeaderScan {
    let mut scan = HeaderScan::default();
    for h in &head.headers {
        let name = h.name.get(data);
        match name.len() {
            12 if eq_lower(name, b"x-request-id") => scan.request_id = Some(h.value),
            11 if eq_lower(name, b"traceparent") => {
                // Several traceparent fields: invalid, start over.
                scan.traceparent = match scan.traceparent {
                    None => Some(h.value),
                    Some(_) => Some(Span::default()),
                }
            }
            10 if eq_lower(name, b"user-agent") => scan.user_agent = Some(h.value),
            7 if eq_lower(name, b"referer") => scan.referer = Some(h.value),
            _ => {}
        }
    }
    scan
}

/// The trace context of one request as forwarded.
#[derive(Debug, Clone, Copy)]
pub struct TraceContext {
    /// `00-<trace>-<span>-<flags>`, the value sent upstream.
    pub header: [u8; 55],
    /// The incoming value was missing or invalid: a new trace was started.
    pub started: bool,
    /// The caller's span id (hex), when the trace was continued.
    pub parent: Option<[u8; 16]>,
    /// This hop's server span id (hex; span export): the span sent
    /// upstream is its child.
    pub server_span: [u8; 16],
    /// The sampled flag forwarded (bit 0 of the flags).
    pub sampled: bool,
}

impl TraceContext {
    pub fn trace_id(&self) -> &[u8] {
        &self.header[3..35]
    }

    /// The span id sent upstream (the client span when spans are exported).
    pub fn span_id(&self) -> &[u8] {
        &self.header[36..52]
    }
}

fn is_lower_hex(s: &[u8]) -> bool {
    s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn all_zero(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b'0')
}

/// Parse a `traceparent` value: `(trace_id, parent_id, flags)` when valid.
pub fn parse_traceparent(v: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    if v.len() < 55 {
        return None;
    }
    let (version, trace, parent, flags) = (&v[0..2], &v[3..35], &v[36..52], &v[53..55]);
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    if !is_lower_hex(version) || version == b"ff" {
        return None;
    }
    // Version 00 is exactly 55 bytes; later versions may append "-...".
    if (version == b"00" && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    if !is_lower_hex(trace) || all_zero(trace) || !is_lower_hex(parent) || all_zero(parent) {
        return None;
    }
    if !is_lower_hex(flags) {
        return None;
    }
    Some((trace, parent, flags))
}

/// Build the context for a request: continue `incoming` when valid, else
/// start a trace. `random` supplies 32 fresh hex digits (the span id sent
/// upstream uses the first 16, the server span id the last 16);
/// `new_trace_id` is called only when a trace starts. `head_ratio` (span
/// export on): a new trace is sampled with this probability
/// (`crate::otel::sample`) and its flags say so; without it a new trace is
/// always flagged sampled.
pub fn trace_context(
    incoming: Option<&[u8]>,
    random: &[u8; 32],
    new_trace_id: impl FnOnce() -> [u8; 32],
    head_ratio: Option<f64>,
) -> TraceContext {
    let mut header = [0u8; 55];
    header[..3].copy_from_slice(b"00-");
    header[35] = b'-';
    header[52] = b'-';
    header[36..52].copy_from_slice(&random[..16]);
    let mut server_span = [0u8; 16];
    server_span.copy_from_slice(&random[16..]);
    let (started, parent) = match incoming.and_then(parse_traceparent) {
        Some((trace, parent_id, flags)) => {
            header[3..35].copy_from_slice(trace);
            header[53..55].copy_from_slice(flags);
            let mut p = [0u8; 16];
            p.copy_from_slice(parent_id);
            (false, Some(p))
        }
        None => {
            header[3..35].copy_from_slice(&new_trace_id());
            let sampled = head_ratio
                .is_none_or(|r| crate::otel::sample::head_sampled(&header[3..35], None, r));
            header[53..55].copy_from_slice(if sampled { b"01" } else { b"00" });
            (true, None)
        }
    };
    let sampled = crate::otel::sample::head_sampled(&header[3..35], Some(&header[53..55]), 0.0);
    TraceContext {
        header,
        started,
        parent,
        server_span,
        sampled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &[u8; 32] = b"1111111111111111aaaaaaaaaaaaaaaa";
    const R2: &[u8; 32] = b"22222222222222222222222222222222";

    #[test]
    fn continues_a_valid_trace_with_a_new_span() {
        let tp = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let t = trace_context(Some(tp), R1, || *R2, None);
        assert!(!t.started);
        assert_eq!(t.trace_id(), b"0af7651916cd43dd8448eb211c80319c");
        assert_eq!(t.span_id(), b"1111111111111111");
        assert_eq!(
            &t.header[..],
            b"00-0af7651916cd43dd8448eb211c80319c-1111111111111111-01"
        );
    }

    #[test]
    fn invalid_values_start_a_new_trace() {
        for bad in [
            &b""[..],
            b"garbage",
            b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            b"00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
        ] {
            let t = trace_context(Some(bad), R1, || *R2, None);
            assert!(t.started, "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(t.trace_id(), &R2[..]);
            assert_eq!(&t.header[53..], b"01");
        }
        assert!(trace_context(None, R1, || *R2, None).started);
    }

    #[test]
    fn span_export_keeps_the_parent_and_samples_new_traces_by_ratio() {
        let tp = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let t = trace_context(Some(tp), R1, || *R2, Some(0.0));
        // A continued trace follows its parent, whatever the ratio.
        assert!(t.sampled);
        assert_eq!(
            t.parent.as_ref().map(|p| &p[..]),
            Some(&b"b7ad6b7169203331"[..])
        );
        assert_eq!(&t.server_span, b"aaaaaaaaaaaaaaaa");
        assert_ne!(t.span_id(), &t.server_span[..]);
        let t = trace_context(None, R1, || *R2, Some(0.0));
        assert!(!t.sampled && t.parent.is_none());
        assert_eq!(&t.header[53..], b"00");
        let t = trace_context(None, R1, || *R2, Some(1.0));
        assert!(t.sampled);
        assert_eq!(&t.header[53..], b"01");
        let tp = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        assert!(!trace_context(Some(tp), R1, || *R2, Some(1.0)).sampled);
    }

    #[test]
    fn future_versions_may_carry_more_fields() {
        let tp = b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-more";
        let t = trace_context(Some(tp), R1, || *R2, None);
        assert!(!t.started);
        assert_eq!(&t.header[53..], b"00");
        assert_eq!(&t.header[..3], b"00-");
    }
}
