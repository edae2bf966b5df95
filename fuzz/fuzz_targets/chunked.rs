//! ChunkedDecoder never panics, stays inside its input, and gives the same
//! result whether the body arrives whole or in pieces (sizes from byte 0).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway_http::chunked::{ChunkError, ChunkedDecoder};

/// Decode `input` delivered in pieces of the given sizes (cycled).
/// Returns (payload, bytes consumed, done) or the error.
fn run(input: &[u8], sizes: &[usize]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
    let mut dec = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut total = 0;
    let mut pos = 0;
    for &size in sizes.iter().cycle() {
        if pos >= input.len() {
            break;
        }
        let piece = &input[pos..(pos + size).min(input.len())];
        pos += piece.len();
        let mut off = 0;
        while off < piece.len() {
            let rest = &piece[off..];
            let p = dec.decode(rest)?;
            assert!(p.consumed <= rest.len());
            assert!(p.data.start <= p.data.end && p.data.end <= p.consumed);
            payload.extend_from_slice(&rest[p.data.clone()]);
            off += p.consumed;
            total += p.consumed;
            if p.done {
                assert!(dec.is_done());
                assert_eq!(
                    dec.decode(rest).map(|p| (p.consumed, p.done)),
                    Ok((0, true))
                );
                assert!(total <= input.len());
                return Ok((payload, total, true));
            }
            assert!(p.consumed > 0);
        }
    }
    assert_eq!(total, input.len());
    Ok((payload, total, false))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let sizes = [usize::from(first & 7) + 1, usize::from(first >> 3) + 1, 1];
    let pieces = run(input, &sizes);
    let whole = run(input, &[usize::MAX]);
    match (&pieces, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("split {pieces:?} vs whole {whole:?}"),
    }
});
