//! A buffered reader/writer over a byte stream, shared by the client and the
//! origin: reads heads (up to the blank line), CRLF lines, Content-Length,
//! chunked and read-until-close bodies, handing body bytes to a callback so
//! large bodies are never held in memory.

use std::io::{self, Read, Write};

const READ_SIZE: usize = 64 * 1024;

/// What a chunked body carried besides its data.
#[derive(Debug, Default, Clone)]
pub struct ChunkedInfo {
    /// Number of non-empty chunks.
    pub chunks: usize,
    /// Trailer fields (name lowercased).
    pub trailers: Vec<(String, String)>,
    /// Chunk extensions as received (the text after the size, per chunk, if any).
    pub extensions: Vec<String>,
}

pub struct Wire<S> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<S: Read + Write> Wire<S> {
    pub fn new(stream: S) -> Wire<S> {
        Wire {
            stream,
            buf: vec![0; READ_SIZE],
            start: 0,
            end: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Bytes read from the stream but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Takes all buffered bytes.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let v = self.buffered().to_vec();
        self.consume(v.len());
        v
    }

    /// Reads once more from the stream into the buffer; returns the number of
    /// bytes read (0 at end of stream).
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Returns buffered bytes if there are any, else reads once (empty at EOF).
    pub fn read_some(&mut self) -> io::Result<Vec<u8>> {
        if self.start == self.end {
            self.fill()?;
        }
        Ok(self.take_buffered())
    }

    /// Reads a head up to and including the first `\r\n\r\n`.
    /// `Ok(None)`: the stream ended before any byte.
    pub fn read_head(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut searched: usize = 0;
        loop {
            let b = self.buffered();
            let from = searched.saturating_sub(3);
            if let Some(i) = find(&b[from..], b"\r\n\r\n") {
                let head = b[..from + i + 4].to_vec();
                self.consume(head.len());
                return Ok(Some(head));
            }
            searched = b.len();
            if b.len() > max {
                return Err(invalid(format!("head longer than {max} bytes")));
            }
            if self.fill()? == 0 {
                if self.start == self.end {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "stream ended inside a head; got {:?}",
                        String::from_utf8_lossy(self.buffered())
                    ),
                ));
            }
        }
    }

    /// Reads one line ending in CRLF (a bare LF is an error); returns it without the CRLF.
    pub fn read_line(&mut self, max: usize) -> io::Result<Vec<u8>> {
        loop {
            let b = self.buffered();
            if let Some(i) = b.iter().position(|&c| c == b'\n') {
                if i == 0 || b[i - 1] != b'\r' {
                    return Err(invalid(format!(
                        "bare LF in line {:?}",
                        String::from_utf8_lossy(&b[..i])
                    )));
                }
                let line = b[..i - 1].to_vec();
                self.consume(i + 1);
                return Ok(line);
            }
            if b.len() > max {
                return Err(invalid(format!("line longer than {max} bytes")));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a line",
                ));
            }
        }
    }

    /// Reads exactly `n` bytes, handing them to `f` piece by piece.
    pub fn read_exact_with(
        &mut self,
        mut n: u64,
        f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        while n > 0 {
            if self.start == self.end && self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended with {n} body bytes still expected"),
                ));
            }
            let take = (self.end - self.start).min(n.min(usize::MAX as u64) as usize);
            f(&self.buf[self.start..self.start + take])?;
            self.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Reads until the stream ends, handing bytes to `f`; returns the count.
    pub fn read_to_eof_with(
        &mut self,
        f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            if self.start == self.end && self.fill()? == 0 {
                return Ok(total);
            }
            let b = &self.buf[self.start..self.end];
            total += b.len() as u64;
            f(b)?;
            let n = b.len();
            self.consume(n);
        }
    }

    /// Reads a chunked body strictly (hex size, optional `;ext`, CRLF after
    /// data, trailers), handing decoded data to `f`.
    pub fn read_chunked_with(
        &mut self,
        f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<ChunkedInfo> {
        let mut info = ChunkedInfo::default();
        loop {
            let line = self.read_line(64 * 1024)?;
            let (size_part, ext) = match line.iter().position(|&c| c == b';') {
                Some(i) => (&line[..i], Some(&line[i..])),
                None => (&line[..], None),
            };
            let size_text = std::str::from_utf8(size_part)
                .map_err(|_| invalid("chunk size not ASCII"))?
                .trim_end_matches([' ', '\t']);
            if size_text.is_empty() || !size_text.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "bad chunk size line {:?}",
                    String::from_utf8_lossy(&line)
                )));
            }
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("chunk size overflow {size_text:?}")))?;
            if let Some(ext) = ext {
                info.extensions
                    .push(String::from_utf8_lossy(ext).into_owned());
            }
            if size == 0 {
                loop {
                    let t = self.read_line(64 * 1024)?;
                    if t.is_empty() {
                        return Ok(info);
                    }
                    let t = String::from_utf8_lossy(&t).into_owned();
                    let (name, value) = t
                        .split_once(':')
                        .ok_or_else(|| invalid(format!("bad trailer line {t:?}")))?;
                    info.trailers
                        .push((name.to_ascii_lowercase(), value.trim().to_string()));
                }
            }
            info.chunks += 1;
            self.read_exact_with(size, f)?;
            let crlf = self.read_line(2)?;
            if !crlf.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
    }

    /// Writes all of `data` and flushes.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)?;
        self.stream.flush()
    }
}

/// Encodes `data` as one chunk (`size CRLF data CRLF`); empty data gives the last chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut v = format!("{:x}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    if data.is_empty() {
        v.truncate(3); // "0\r\n"
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Encodes `data` as a whole chunked body split at the given piece sizes
/// (cycled), ending with the last chunk and no trailers.
pub fn chunked_body(data: &[u8], piece_sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = piece_sizes[i % piece_sizes.len()].max(1).min(rest.len());
        out.extend_from_slice(&chunk(&rest[..n]));
        rest = &rest[n..];
        i += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}
