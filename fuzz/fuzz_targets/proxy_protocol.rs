//! parse_proxy_header never panics, never claims more bytes than it was
//! given, answers every proper prefix of an accepted header with "need
//! more", and an accepted address pair written again parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway_http::proxy_protocol::{
    parse_proxy_header, write_proxy_v1, write_proxy_v2, MAX_HEADER_LEN,
};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((header, consumed))) = parse_proxy_header(data) else {
        return;
    };
    assert!(consumed > 0 && consumed <= data.len().min(MAX_HEADER_LEN));
    // Bytes after the header never change the answer.
    assert_eq!(
        parse_proxy_header(&data[..consumed]),
        Ok(Some((header, consumed)))
    );
    for cut in [0, 1, consumed / 2, consumed - 1] {
        assert_eq!(parse_proxy_header(&data[..cut]), Ok(None));
    }
    if let (Some(src), Some(dst)) = (header.source, header.destination) {
        for v2 in [false, true] {
            let mut out = Vec::new();
            if v2 {
                write_proxy_v2(&mut out, src, dst);
            } else {
                write_proxy_v1(&mut out, src, dst);
            }
            let (again, n) = parse_proxy_header(&out).unwrap().unwrap();
            assert_eq!(n, out.len());
            let canon = |a: std::net::SocketAddr| (a.ip().to_canonical(), a.port());
            assert_eq!(again.source.map(canon), Some(canon(src)));
            assert_eq!(again.destination.map(canon), Some(canon(dst)));
        }
    }
});
