//! Streaming gzip / brotli encoders behind one API, writing HTTP/1.1 chunks.
//!
//! # Memory
//! Every response compressed holds one [`Compressor`]: the codec's state,
//! fixed by its settings and not by the body size, plus two buffers bounded
//! by what one upstream read brings. Measured resident memory per stream
//! (encoder state after 1 MiB of input):
//! - gzip (zlib-rs, 32 KiB window, memLevel 8): about 500 KiB at level 6,
//!   330 KiB at level 1 (deflate state, flate2's 32 KiB buffer);
//! - brotli: about 2 MiB at quality 4 / window 18 (ring buffer of
//!   `2^brotli_window` bytes, hash tables, 16 KiB output buffer), 2.9 MiB at
//!   window 22, 21 MiB at quality 11 / window 22 (quality 10-11 are for
//!   static assets, not for on-the-fly compression);
//! - the de-framed payload of one upstream read and the encoder output of
//!   that read (each at most one read buffer, 64 KiB).
//!
//! # Flow
//! [`Compressor::step`] takes one upstream read: the body framing
//! ([`BodyFrame`]) strips chunked framing into `payload`, the encoder
//! consumes it, and whatever compressed bytes it has produced so far are
//! appended to `out` as one chunk (none when it produced nothing: encoders
//! keep back output until a block is full). When the upstream has nothing
//! more for now (its read buffer is empty, the body not done, and the body
//! is chunked or ends with the close: a stream, not a sized document),
//! [`Compressor::flush`] hands over what the encoder holds, so events and
//! long-poll messages are not held back. When the body ends the encoder is
//! finished and the last chunk (`0\r\n\r\n`) written.

use std::io::Write;

use flate2::write::GzEncoder;

use super::{Codec, Plan};
use crate::error::{ErrorKind, ProxyError};
use crate::pipeline::body::BodyFrame;

/// Size of brotli's output buffer (what one of its writes hands over).
const BROTLI_OUT: usize = 16 * 1024;

// Boxed: the encoders are large and a `Compressor` lives in the
// connection's future.
enum Encoder {
    Gzip(Box<GzEncoder<Vec<u8>>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Finished,
}

std::thread_local! {
    /// Compressors alive on this thread (a worker): bounded by the filter's
    /// `max_streams_per_worker`.
    static LIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Compressors alive on this worker.
pub fn live_streams() -> usize {
    LIVE.with(|l| l.get())
}

/// One response body on its way through an encoder.
pub struct Compressor {
    encoder: Encoder,
    /// De-framed payload of the current upstream read.
    payload: Vec<u8>,
    /// Input went in since the last flush.
    dirty: bool,
}

impl Drop for Compressor {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get().saturating_sub(1)));
    }
}

impl Compressor {
    pub fn new(plan: Plan) -> Compressor {
        let encoder = match plan.codec {
            Codec::Gzip => Encoder::Gzip(Box::new(GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(u32::from(plan.level)),
            ))),
            Codec::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_OUT,
                u32::from(plan.level),
                u32::from(plan.window),
            ))),
        };
        LIVE.with(|l| l.set(l.get() + 1));
        Compressor {
            encoder,
            payload: Vec::new(),
            dirty: false,
        }
    }

    /// Hand over what the encoder holds back (a sync flush), as a chunk:
    /// called when the upstream has nothing more for now, so a stream of
    /// small writes reaches the client as it comes. Nothing when no input
    /// arrived since the last flush.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        let produced = match &mut self.encoder {
            Encoder::Gzip(e) => {
                e.flush().map_err(encoder_error)?;
                e.get_mut()
            }
            Encoder::Brotli(e) => {
                e.flush().map_err(encoder_error)?;
                e.get_mut()
            }
            Encoder::Finished => return Ok(()),
        };
        push_chunk(out, produced);
        produced.clear();
        Ok(())
    }

    /// Whether the last chunk was written.
    pub fn is_finished(&self) -> bool {
        matches!(self.encoder, Encoder::Finished)
    }

    /// Take the body bytes at the start of `input` (framed as `body` says),
    /// compress their payload and append the output as chunks to `out`;
    /// when that ends the body, finish the stream too. Returns how many
    /// bytes of `input` were taken.
    pub fn step(
        &mut self,
        body: &mut BodyFrame,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, ProxyError> {
        self.payload.clear();
        let taken = body.advance(input, Some(&mut self.payload))?;
        let payload = std::mem::take(&mut self.payload);
        let res = self.push(&payload, out);
        self.payload = payload;
        res?;
        if body.is_done() {
            self.finish(out)?;
        }
        Ok(taken)
    }

    /// Compress `input`; append what the encoder produced as one chunk.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ProxyError> {
        if input.is_empty() {
            return Ok(());
        }
        self.dirty = true;
        let produced = match &mut self.encoder {
            Encoder::Gzip(e) => {
                e.write_all(input).map_err(encoder_error)?;
                e.get_mut()
            }
            Encoder::Brotli(e) => {
                e.write_all(input).map_err(encoder_error)?;
                e.get_mut()
            }
            Encoder::Finished => {
                return Err(ProxyError::new(ErrorKind::Internal("compress after end")))
            }
        };
        push_chunk(out, produced);
        produced.clear();
        Ok(())
    }

    /// End the stream: the encoder's last bytes as a chunk, then the last
    /// chunk. A second call does nothing.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let rest = match std::mem::replace(&mut self.encoder, Encoder::Finished) {
            Encoder::Gzip(e) => e.finish().map_err(encoder_error)?,
            Encoder::Brotli(e) => e.into_inner(),
            Encoder::Finished => return Ok(()),
        };
        push_chunk(out, &rest);
        out.extend_from_slice(b"0\r\n\r\n");
        Ok(())
    }
}

/// Append `data` as one chunk (nothing when empty: an empty chunk would end
/// the body).
fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    while n > 0 {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.reserve(hex.len() - i + data.len() + 4);
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Encoders write into a `Vec`, which cannot fail: an error here is a bug.
fn encoder_error(e: std::io::Error) -> ProxyError {
    ProxyError::new(ErrorKind::Internal("compression failed")).with_cause(e)
}
