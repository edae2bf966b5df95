//! Chunked decoder.

use crate::chunked::{ChunkError, ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILER_BYTES};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    data: Vec<u8>,
    /// Bytes of the whole stream consumed when done (None: not done).
    body_len: Option<usize>,
}

/// Feed `input` in fragments ending at `cuts`, as a connection would: each
/// fragment is decoded until it is used up or the body is done; the caller
/// never re-feeds bytes. Checks the progress invariants on every call.
fn run(input: &[u8], cuts: &[usize]) -> Result<Outcome, ChunkError> {
    let mut dec = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut total = 0;
    let mut start = 0;
    let ends = cuts.iter().copied().chain([input.len()]);
    for end in ends {
        let piece = &input[start..end];
        let mut off = 0;
        loop {
            let rest = &piece[off..];
            let p = dec.decode(rest)?;
            assert!(p.consumed <= rest.len());
            assert!(
                p.data.start <= p.data.end && p.data.end <= p.consumed,
                "{p:?}"
            );
            data.extend_from_slice(&rest[p.data.clone()]);
            off += p.consumed;
            total += p.consumed;
            if p.done {
                assert!(dec.is_done());
                // After done: nothing more is consumed.
                let again = dec.decode(&piece[off..]).unwrap();
                assert_eq!(again.consumed, 0);
                assert!(again.done && again.data.is_empty());
                return Ok(Outcome {
                    data,
                    body_len: Some(total),
                });
            }
            if off == piece.len() {
                break;
            }
            assert!(p.consumed > 0, "no progress at {total}");
        }
        start = end;
    }
    Ok(Outcome {
        data,
        body_len: None,
    })
}

/// Decode whole, split at every single boundary and byte by byte: all agree.
fn decode_every_split(input: &[u8]) -> Result<Outcome, ChunkError> {
    let whole = run(input, &[]);
    for k in 0..=input.len() {
        assert_eq!(run(input, &[k]), whole, "split at {k}");
    }
    let bytes: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run(input, &bytes), whole, "byte by byte");
    whole
}

fn ok(input: &[u8], data: &[u8]) {
    let out = decode_every_split(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert_eq!(out.data, data);
    assert_eq!(
        out.body_len,
        Some(input.len()),
        "{:?}",
        String::from_utf8_lossy(input)
    );
}

fn malformed(input: &[u8]) {
    let r = decode_every_split(input);
    assert!(
        matches!(r, Err(ChunkError::Malformed(_))),
        "{:?}: {r:?}",
        String::from_utf8_lossy(input)
    );
}

#[test]
fn simple_bodies() {
    ok(b"0\r\n\r\n", b"");
    ok(b"5\r\nhello\r\n0\r\n\r\n", b"hello");
    ok(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world");
    ok(b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789");
    ok(b"a\r\n0123456789\r\n00\r\n\r\n", b"0123456789");
    ok(b"1\r\n\n\r\n1\r\n\r\r\n0\r\n\r\n", b"\n\r");
    ok(
        b"000000000000000f\r\n0123456789abcde\r\n0\r\n\r\n",
        b"0123456789abcde",
    );
}

#[test]
fn bytes_after_body_are_not_consumed() {
    let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    let out = decode_every_split(input).unwrap();
    assert_eq!(out.data, b"abc");
    assert_eq!(out.body_len, Some(input.len() - 16));
}

#[test]
fn one_run_of_payload_per_call() {
    let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let mut dec = ChunkedDecoder::new();
    let p = dec.decode(input).unwrap();
    assert_eq!((p.consumed, p.data.clone(), p.done), (6, 3..6, false));
    let p = dec.decode(&input[6..]).unwrap();
    assert_eq!((p.consumed, p.data.clone(), p.done), (7, 5..7, false));
    let p = dec.decode(&input[13..]).unwrap();
    assert_eq!((p.consumed, p.data.is_empty(), p.done), (7, true, true));
    assert!(dec.is_done());
    let p = dec.decode(b"more").unwrap();
    assert_eq!((p.consumed, p.done), (0, true));
}

#[test]
fn partial_data_runs() {
    let mut dec = ChunkedDecoder::new();
    let p = dec.decode(b"a\r\n01234").unwrap();
    assert_eq!((p.consumed, p.data.clone()), (8, 3..8));
    let p = dec.decode(b"567").unwrap();
    assert_eq!((p.consumed, p.data.clone()), (3, 0..3));
    let p = dec.decode(b"89\r").unwrap();
    assert_eq!((p.consumed, p.data.clone()), (2, 0..2));
    let p = dec.decode(b"\r").unwrap();
    assert_eq!((p.consumed, p.data.is_empty(), p.done), (1, true, false));
    let p = dec.decode(b"").unwrap();
    assert_eq!((p.consumed, p.done), (0, false));
    assert!(!dec.is_done());
    let p = dec.decode(b"\n0\r\n\r\n").unwrap();
    assert_eq!((p.consumed, p.done), (6, true));
}

#[test]
fn extensions() {
    ok(b"5;name\r\nhello\r\n0\r\n\r\n", b"hello");
    ok(b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello");
    ok(
        b"5 ; a = b ; c\t;d=\"q;\\\"uo\\\\ted\"\r\nhello\r\n0;last\r\n\r\n",
        b"hello",
    );
    ok(b"5;a=\"\"\r\nhello\r\n0\r\n\r\n", b"hello");
    ok(b"5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", b"hello");
    malformed(b"5;\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;=v\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a=\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a b\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a=b c\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a=\"unterminated\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a=(\r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a\0\r\nhello\r\n0\r\n\r\n");
    malformed(b"5 \r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a \r\nhello\r\n0\r\n\r\n");
    malformed(b"5;a=\"x\\\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn trailers() {
    ok(b"5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n", b"hello");
    ok(b"0\r\nA: 1\r\nB:\r\nC:\t x y \r\n\r\n", b"");
    ok(b"0\r\nX: caf\xc3\xa9\r\n\r\n", b"");
    malformed(b"0\r\nX-Sum abc\r\n\r\n");
    malformed(b"0\r\nX : abc\r\n\r\n");
    malformed(b"0\r\n: abc\r\n\r\n");
    malformed(b"0\r\nA: 1\r\n folded\r\n\r\n");
    malformed(b"0\r\nA: 1\n\r\n");
    malformed(b"0\r\nA: 1\r\n\n");
    malformed(b"0\r\nA: \x01\r\n\r\n");
    malformed(b"0\r\nA: 1\rB: 2\r\n\r\n");
    malformed(b"0\r\n\rX");
}

#[test]
fn bad_sizes_and_framing() {
    malformed(b"\r\nhello\r\n0\r\n\r\n"); // empty size
    malformed(b"g\r\nhello\r\n0\r\n\r\n"); // non-hex
    malformed(b"-5\r\nhello\r\n0\r\n\r\n");
    malformed(b"+5\r\nhello\r\n0\r\n\r\n");
    malformed(b"0x5\r\nhello\r\n0\r\n\r\n");
    malformed(b" 5\r\nhello\r\n0\r\n\r\n");
    malformed(b";x\r\nhello\r\n0\r\n\r\n");
    malformed(b"5\nhello\r\n0\r\n\r\n"); // bare LF
    malformed(b"5\rhello\r\n0\r\n\r\n"); // bare CR
    malformed(b"5\r\nhelloX\r\n0\r\n\r\n"); // data longer than size
    malformed(b"5\r\nhell\r\n0\r\n\r\n"); // data shorter: CR taken as data
    malformed(b"5\r\nhello\n0\r\n\r\n"); // LF only after data
    malformed(b"5\r\nhello\r0\r\n\r\n"); // CR only after data
    malformed(b"5\r\nhello0\r\n\r\n"); // no CRLF after data
    malformed(b"0\r\n\n"); // bare LF ending trailers
    malformed(b"0\n\r\n");
    // 16 hex digits fit a u64; 17 never do (even with leading zeros).
    let r = run(b"ffffffffffffffff\r\nabc", &[]).unwrap();
    assert_eq!(r.data, b"abc");
    malformed(b"00000000000000005\r\nhello\r\n0\r\n\r\n");
    malformed(b"10000000000000000\r\n");
}

#[test]
fn oversize_lines_and_trailers() {
    let mut line = b"1;".to_vec();
    line.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE - 2));
    line.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    let out = run(&line, &[]).unwrap();
    assert_eq!(out.data, b"x");

    let mut line = b"1;".to_vec();
    line.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE - 1));
    line.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    assert_eq!(run(&line, &[]), Err(ChunkError::LineTooLong));
    // Split across many calls: still counted.
    let cuts: Vec<usize> = (1..line.len()).step_by(7).collect();
    assert_eq!(run(&line, &cuts), Err(ChunkError::LineTooLong));
    // No CRLF ever: an endless size line fails instead of buffering.
    let endless = vec![b'0'; MAX_CHUNK_LINE + 10];
    assert!(run(&endless, &[]).is_err());

    // Trailers: exactly the limit is fine, one more byte is not.
    let mut t = b"0\r\n".to_vec();
    let field_len = MAX_TRAILER_BYTES - 2; // plus the final CRLF
    t.extend_from_slice(b"X: ");
    t.extend(std::iter::repeat_n(b'v', field_len - 5));
    t.extend_from_slice(b"\r\n\r\n");
    assert_eq!(run(&t, &[]).unwrap().body_len, Some(t.len()));
    let mut t = b"0\r\n".to_vec();
    t.extend_from_slice(b"X: ");
    t.extend(std::iter::repeat_n(b'v', field_len - 4));
    t.extend_from_slice(b"\r\n\r\n");
    assert_eq!(run(&t, &[]), Err(ChunkError::TrailersTooLarge));
    let mut many = b"0\r\n".to_vec();
    for _ in 0..3000 {
        many.extend_from_slice(b"A: b\r\n");
    }
    assert_eq!(run(&many, &[100, 5000]), Err(ChunkError::TrailersTooLarge));
}

#[test]
fn errors_are_sticky() {
    let mut dec = ChunkedDecoder::new();
    let e = dec.decode(b"zz\r\n").unwrap_err();
    assert_eq!(dec.decode(b"0\r\n\r\n"), Err(e));
    assert!(!dec.is_done());
}

#[test]
fn large_chunk_counts_down() {
    let mut dec = ChunkedDecoder::new();
    let p = dec.decode(b"100000\r\n").unwrap();
    assert_eq!(p.consumed, 8);
    let block = vec![7u8; 4096];
    let mut seen = 0;
    while seen < 0x100000 {
        let p = dec.decode(&block).unwrap();
        assert_eq!(p.data, 0..4096);
        seen += p.consumed;
    }
    assert_eq!(seen, 0x100000);
    let p = dec.decode(b"\r\n0\r\n\r\n").unwrap();
    assert!(p.done);
}
