//! Streaming chunked transfer-coding decoder (RFC 9112 §7.1).

use std::ops::Range;

/// What one `decode` call did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkProgress {
    /// Bytes of the input consumed (framing and data). The caller forwards
    /// `input[..consumed]` unchanged when passing chunked through.
    pub consumed: usize,
    /// Payload bytes within `input[..consumed]` (empty when none): what the
    /// caller forwards when it removes the chunked framing.
    pub data: Range<usize>,
    /// The last chunk and the trailer section (with its final CRLF) are
    /// complete; `input[consumed..]` belongs to whatever follows the body.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Invalid hex size, size overflow, missing CRLF after data, bare LF...
    Malformed(&'static str),
    /// Chunk-size line (size + extensions) longer than the limit.
    LineTooLong,
    /// Trailer section larger than the limit.
    TrailersTooLarge,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Malformed(why) => write!(f, "bad chunked body: {why}"),
            ChunkError::LineTooLong => f.write_str("chunk-size line too long"),
            ChunkError::TrailersTooLarge => f.write_str("chunked trailers too large"),
        }
    }
}

/// Incremental decoder. Keeps every bit of partial state itself (a size line
/// split over two reads is fine), so callers never need to keep unconsumed
/// bytes around: each call consumes framing up to and including at most one
/// run of payload bytes and returns.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk size being parsed, then the payload bytes left in the chunk.
    size: u64,
    /// Hex digits of the current chunk size.
    digits: u8,
    /// Bytes of the current chunk-size line so far (CRLF excluded).
    line_len: usize,
    /// Bytes of the trailer section so far (final CRLF included).
    trailer_len: usize,
    /// Sticky error: once failed, every later call fails the same way.
    failed: Option<ChunkError>,
}

/// Longest chunk-size line (size and extensions, CRLF excluded).
pub const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section (fields and final CRLF).
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// A u64 has at most 16 hex digits.
const MAX_HEX_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Start of a chunk-size line: a hex digit must follow.
    #[default]
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// BWS after the size or after an extension: only SP/HTAB or `;`.
    ExtBws,
    /// After `;`: BWS then an extension name.
    ExtSemi,
    ExtName,
    /// BWS after an extension name: `=` or `;` must follow.
    ExtNameBws,
    /// After `=`: BWS then a token or quoted-string.
    ExtEq,
    ExtValToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// After a quoted-string's closing quote.
    ExtAfterQuoted,
    /// CR of the chunk-size line seen, LF must follow.
    SizeLf,
    /// Payload bytes (`size` left).
    Data,
    /// CRLF after the payload.
    DataCr,
    DataLf,
    /// Start of a trailer field line or of the final CRLF.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

#[inline]
fn is_tchar(b: u8) -> bool {
    super::fields::is_tchar(b)
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `qdtext` (RFC 9110 §5.6.4).
#[inline]
fn is_qdtext(b: u8) -> bool {
    b == b'\t'
        || b == b' '
        || b == 0x21
        || (0x23..=0x5b).contains(&b)
        || (0x5d..=0x7e).contains(&b)
        || b >= 0x80
}

/// Second byte of a `quoted-pair`.
#[inline]
fn is_quoted_pair_byte(b: u8) -> bool {
    b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode from the start of `input`. Returns after the first run of
    /// payload bytes, at the end of the input, or when the body is done.
    pub fn decode(&mut self, input: &[u8]) -> Result<ChunkProgress, ChunkError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Done => break,
                State::Data => {
                    let avail = (input.len() - pos) as u64;
                    let n = self.size.min(avail) as usize;
                    let start = pos;
                    pos += n;
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(ChunkProgress {
                        consumed: pos,
                        data: start..pos,
                        done: false,
                    });
                }
                _ => {
                    let b = input[pos];
                    pos += 1;
                    if let Err(e) = self.step(b) {
                        self.failed = Some(e);
                        return Err(e);
                    }
                }
            }
        }
        Ok(ChunkProgress {
            consumed: pos,
            data: 0..0,
            done: self.state == State::Done,
        })
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Advance the framing state machine by one byte (never in `Data`/`Done`).
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        use State::*;
        let in_size_line = matches!(
            self.state,
            SizeStart
                | Size
                | ExtBws
                | ExtSemi
                | ExtName
                | ExtNameBws
                | ExtEq
                | ExtValToken
                | ExtQuoted
                | ExtQuotedEscape
                | ExtAfterQuoted
        );
        if in_size_line && b != b'\r' {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(ChunkError::LineTooLong);
            }
        }
        if matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | FinalLf
        ) {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILER_BYTES {
                return Err(ChunkError::TrailersTooLarge);
            }
        }
        let bad = ChunkError::Malformed;
        self.state = match (self.state, b) {
            (SizeStart, _) => {
                let Some(d) = hex_value(b) else {
                    return Err(bad("invalid chunk size"));
                };
                self.size = u64::from(d);
                self.digits = 1;
                Size
            }
            (Size, _) if hex_value(b).is_some() => {
                self.digits += 1;
                if self.digits > MAX_HEX_DIGITS {
                    return Err(bad("chunk size too large"));
                }
                self.size = (self.size << 4) | u64::from(hex_value(b).unwrap_or(0));
                Size
            }
            (Size, b';') => ExtSemi,
            (Size, b'\r') => SizeLf,
            (Size | ExtBws | ExtValToken | ExtAfterQuoted, b' ' | b'\t') => ExtBws,
            (Size, _) => return Err(bad("invalid chunk size")),
            (ExtBws | ExtValToken | ExtAfterQuoted | ExtName | ExtNameBws, b';') => ExtSemi,
            (ExtBws, _) => return Err(bad("invalid chunk extension")),
            (ExtSemi, _) if is_ws(b) => ExtSemi,
            (ExtSemi, _) if is_tchar(b) => ExtName,
            (ExtSemi, _) => return Err(bad("invalid chunk extension")),
            (ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtNameBws, b'=') => ExtEq,
            (ExtName | ExtNameBws, b' ' | b'\t') => ExtNameBws,
            (ExtName | ExtValToken | ExtAfterQuoted, b'\r') => SizeLf,
            (ExtName | ExtNameBws, _) => return Err(bad("invalid chunk extension")),
            (ExtEq, _) if is_ws(b) => ExtEq,
            (ExtEq, _) if is_tchar(b) => ExtValToken,
            (ExtEq, b'"') => ExtQuoted,
            (ExtEq, _) => return Err(bad("invalid chunk extension")),
            (ExtValToken, _) if is_tchar(b) => ExtValToken,
            (ExtValToken, _) => return Err(bad("invalid chunk extension")),
            (ExtQuoted, b'"') => ExtAfterQuoted,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            (ExtQuoted, _) => return Err(bad("invalid chunk extension")),
            (ExtQuotedEscape, _) if is_quoted_pair_byte(b) => ExtQuoted,
            (ExtQuotedEscape, _) => return Err(bad("invalid chunk extension")),
            (ExtAfterQuoted, _) => return Err(bad("invalid chunk extension")),
            (SizeLf, b'\n') => {
                self.line_len = 0;
                if self.size == 0 {
                    TrailerStart
                } else {
                    Data
                }
            }
            (SizeLf, _) => return Err(bad("bare CR in chunk-size line")),
            (DataCr, b'\r') => DataLf,
            (DataCr, _) => return Err(bad("missing CRLF after chunk data")),
            (DataLf, b'\n') => {
                self.size = 0;
                self.digits = 0;
                SizeStart
            }
            (DataLf, _) => return Err(bad("missing CRLF after chunk data")),
            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart, _) if is_tchar(b) => TrailerName,
            (TrailerStart, _) => return Err(bad("invalid trailer field")),
            (TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerName, _) => return Err(bad("invalid trailer field name")),
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if super::fields::is_field_value_byte(b) => TrailerValue,
            (TrailerValue, _) => return Err(bad("invalid trailer field value")),
            (TrailerLf, b'\n') => TrailerStart,
            (TrailerLf, _) => return Err(bad("bare CR in trailer section")),
            (FinalLf, b'\n') => Done,
            (FinalLf, _) => return Err(bad("bare CR in trailer section")),
            (Data | Done, _) => return Err(bad("internal decoder state")),
        };
        Ok(())
    }
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
