//! parse_request_head never panics; a head it accepts is rewritten into a
//! head that parses again with the same framing.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use ringway_http::head::{parse_request_head, HeadLimits, RequestHead};
use ringway_http::rewrite::{write_request_head, ForwardInfo};

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits {
        max_head_bytes: 4096,
        max_headers: 64,
    };
    let mut head = RequestHead::default();
    if parse_request_head(data, &limits, &mut head) != Ok(true) {
        return;
    }
    assert!(head.head_len <= data.len().min(limits.max_head_bytes));
    let flags = data.len() as u8;
    let info = ForwardInfo {
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        tls: flags & 1 != 0,
        request_id: b"fuzz-id",
        default_host: b"fuzz.local",
        upgrade: flags & 2 != 0,
        strip_expect: flags & 4 != 0,
        traceparent: (flags & 8 != 0)
            .then_some(&b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"[..]),
        drop_tracestate: flags & 16 != 0,
        target: None,
        edits: None,
        client_cert: (flags & 32 != 0).then_some(&b"Hash=ab;URI=spiffe://fuzz.test/x"[..]),
    };
    let mut out = Vec::new();
    write_request_head(&mut out, data, &head, &info);
    let mut again = RequestHead::default();
    let roomy = HeadLimits {
        max_head_bytes: usize::MAX,
        max_headers: 256,
    };
    assert_eq!(parse_request_head(&out, &roomy, &mut again), Ok(true));
    assert_eq!(again.head_len, out.len());
    assert_eq!(again.framing, head.framing);
    assert_eq!(again.method(&out), head.method(data));
});
