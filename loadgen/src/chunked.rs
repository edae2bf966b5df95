//! An incremental `Transfer-Encoding: chunked` decoder, used for responses
//! (`run`, data discarded) and request bodies (`serve --echo`, data kept).
//!
//! Strict on framing: hex sizes only, CRLF line ends (a bare LF is an
//! error), CRLF after each chunk's data. Extensions and trailers are skipped.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChunkError {
    #[error("invalid chunk size")]
    BadSize,
    #[error("chunk size too large")]
    SizeOverflow,
    #[error("missing CRLF in chunked framing")]
    BadLineEnd,
    #[error("chunk trailer section too large")]
    TrailerTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` counts them.
    Size {
        value: u64,
        digits: u32,
    },
    /// After the size: extensions until CR.
    Ext {
        value: u64,
    },
    /// Expecting the LF that ends a size line.
    SizeLf {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

const MAX_TRAILER: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    trailer_bytes: usize,
    /// Payload bytes decoded so far.
    pub payload: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            trailer_bytes: 0,
            payload: 0,
        }
    }

    /// Decode from `input`, appending payload to `sink` when given. Returns
    /// how many bytes were consumed and whether the body is complete; bytes
    /// after the end of the body are left unconsumed.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut sink: Option<&mut Vec<u8>>,
    ) -> Result<(usize, bool), ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size { value, digits } => {
                    if let Some(d) = hex_digit(b) {
                        if digits >= 15 {
                            return Err(ChunkError::SizeOverflow);
                        }
                        self.state = State::Size {
                            value: value << 4 | d as u64,
                            digits: digits + 1,
                        };
                    } else if digits == 0 {
                        return Err(ChunkError::BadSize);
                    } else if b == b'\r' {
                        self.state = State::SizeLf { value };
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = State::Ext { value };
                    } else {
                        return Err(ChunkError::BadSize);
                    }
                    i += 1;
                }
                State::Ext { value } => {
                    if b == b'\r' {
                        self.state = State::SizeLf { value };
                    } else if b == b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    i += 1;
                }
                State::SizeLf { value } => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = if value == 0 {
                        State::TrailerStart
                    } else {
                        State::Data { remaining: value }
                    };
                    i += 1;
                }
                State::Data { remaining } => {
                    let take = (input.len() - i).min(remaining.min(usize::MAX as u64) as usize);
                    if let Some(out) = sink.as_deref_mut() {
                        out.extend_from_slice(&input[i..i + take]);
                    }
                    self.payload += take as u64;
                    i += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::DataLf;
                    i += 1;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::Size {
                        value: 0,
                        digits: 0,
                    };
                    i += 1;
                }
                State::TrailerStart => {
                    self.state = if b == b'\r' {
                        State::FinalLf
                    } else if b == b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    } else {
                        State::TrailerLine
                    };
                    i += 1;
                    self.count_trailer()?;
                }
                State::TrailerLine => {
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    } else if b == b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    i += 1;
                    self.count_trailer()?;
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::TrailerStart;
                    i += 1;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::Done;
                    return Ok((i + 1, true));
                }
                State::Done => return Ok((i, true)),
            }
        }
        Ok((i, self.state == State::Done))
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER {
            Err(ChunkError::TrailerTooLarge)
        } else {
            Ok(())
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let (n, done) = d.feed(input, Some(&mut out))?;
        assert!(done, "not done");
        Ok((out, n))
    }

    #[test]
    fn simple_body() {
        let input = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
        let (out, n) = decode_all(input).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(&input[n..], b"NEXT");
    }

    #[test]
    fn trailers_are_skipped() {
        let input = b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n";
        let (out, n) = decode_all(input).unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(n, input.len());
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let input = b"A\r\n0123456789\r\n1f\r\nabcdefghijklmnopqrstuvwxyzABCDE\r\n0\r\n\r\n";
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut done = false;
        for (i, b) in input.iter().enumerate() {
            let (n, fin) = d.feed(std::slice::from_ref(b), Some(&mut out)).unwrap();
            assert_eq!(n, 1);
            done = fin;
            assert_eq!(fin, i == input.len() - 1);
        }
        assert!(done);
        assert_eq!(out.len(), 41);
        assert_eq!(d.payload, 41);
    }

    #[test]
    fn rejects_bad_framing() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloXX",
            b"5\r\nhello\r\r",
            b"ffffffffffffffff\r\n",
            b"0\r\n\n",
            b"0\r\nX: y\n",
        ] {
            let mut d = ChunkedDecoder::new();
            assert!(
                d.feed(bad, None).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn incomplete_is_not_done() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.feed(b"5\r\nhel", None).unwrap(), (6, false));
        assert_eq!(d.feed(b"lo\r\n0\r\n", None).unwrap(), (7, false));
        assert_eq!(d.feed(b"\r\n", None).unwrap(), (2, true));
    }
}
