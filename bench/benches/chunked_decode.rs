//! `ChunkedDecoder`: validating a chunked body as the proxy passes it
//! through. Three shapes: a 64 KiB body in 4 KiB chunks fed whole, the same
//! body arriving in 1,500-byte reads (partial state carried across calls), and
//! a 1 KiB body in 16-byte chunks (framing-dominated).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway::http::ChunkedDecoder;

fn chunked(body: usize, chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body + body / chunk * 8 + 16);
    let mut left = body;
    while left > 0 {
        let n = left.min(chunk);
        out.extend_from_slice(format!("{n:x};ext=1\r\n").as_bytes());
        out.extend(std::iter::repeat_n(b'a', n));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    out
}

/// Decode `input` delivered in reads of `read` bytes; payload bytes seen.
fn decode(input: &[u8], read: usize) -> usize {
    let mut d = ChunkedDecoder::new();
    let mut payload = 0;
    for piece in input.chunks(read) {
        let mut at = 0;
        while at < piece.len() {
            let p = d.decode(&piece[at..]).expect("valid chunked body");
            payload += p.data.len();
            at += p.consumed;
            if p.done {
                return payload;
            }
        }
    }
    assert!(d.is_done());
    payload
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunked_decode");
    let cases = [
        (
            "64k_in_4k_chunks",
            chunked(64 * 1024, 4096),
            usize::MAX,
            64 * 1024,
        ),
        (
            "64k_in_4k_chunks_1500b_reads",
            chunked(64 * 1024, 4096),
            1500,
            64 * 1024,
        ),
        ("1k_in_16b_chunks", chunked(1024, 16), usize::MAX, 1024),
    ];
    for (name, input, read, body) in cases {
        assert_eq!(decode(&input, read), body);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(decode(black_box(&input), read)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
