//! parse_response_head never panics; an accepted head is rewritten into a
//! head that parses again with the same status (and framing unless de-chunked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway_http::head::HeadLimits;
use ringway_http::response::{parse_response_head, ResponseFraming, ResponseHead};
use ringway_http::rewrite::{write_response_head, ResponseInfo};

fuzz_target!(|data: &[u8]| {
    let flags = data.len() as u8;
    let request_was_head = flags & 1 != 0;
    let limits = HeadLimits {
        max_head_bytes: 4096,
        max_headers: 64,
    };
    let mut head = ResponseHead::default();
    if parse_response_head(data, &limits, request_was_head, &mut head) != Ok(true) {
        return;
    }
    assert!(head.head_len <= data.len().min(limits.max_head_bytes));
    let info = ResponseInfo {
        close: flags & 2 != 0,
        keep_alive_http10: flags & 4 != 0,
        dechunk: flags & 8 != 0,
        upgrade: flags & 16 != 0,
        edits: None,
        // Compression re-frames a response that has a body as chunked.
        compress: (flags & 32 != 0
            && head.framing != ResponseFraming::None
            && !request_was_head
            && flags & (4 | 8 | 16) == 0)
            .then_some(&b"gzip"[..]),
    };
    let mut out = Vec::new();
    write_response_head(&mut out, data, &head, &info);
    let mut again = ResponseHead::default();
    let roomy = HeadLimits {
        max_head_bytes: usize::MAX,
        max_headers: 256,
    };
    assert_eq!(
        parse_response_head(&out, &roomy, request_was_head, &mut again),
        Ok(true)
    );
    assert_eq!(again.head_len, out.len());
    assert_eq!(again.status, head.status);
    if info.compress.is_some() {
        assert_eq!(again.framing, ResponseFraming::Chunked);
    } else if !info.dechunk {
        assert_eq!(again.framing, head.framing);
    }
});
