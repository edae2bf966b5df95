//! The deterministic byte pattern used for large bodies: byte `i` of a
//! stream is `i % 251`. Generating and checking work on whole slices (memcmp
//! against a precomputed buffer), so they are fast even in a debug build.

const PERIOD: usize = 251;

/// Size of the writes used to stream pattern bodies.
pub const CHUNK: usize = 64 * 1024;

/// Byte `i` of the pattern.
pub fn byte_at(i: u64) -> u8 {
    (i % PERIOD as u64) as u8
}

/// A precomputed `CHUNK + PERIOD` bytes of pattern, to slice from.
pub struct Pattern {
    buf: Vec<u8>,
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

impl Pattern {
    pub fn new() -> Pattern {
        Pattern {
            buf: (0..(CHUNK + PERIOD) as u64).map(byte_at).collect(),
        }
    }

    /// The pattern bytes for stream offsets `offset .. offset + len`, `len <= CHUNK`.
    pub fn slice(&self, offset: u64, len: usize) -> &[u8] {
        assert!(len <= CHUNK, "pattern slice of {len} bytes is over {CHUNK}");
        let start = (offset % PERIOD as u64) as usize;
        &self.buf[start..start + len]
    }

    /// Whether `data` equals the pattern at stream offset `offset` (any length).
    pub fn matches(&self, offset: u64, data: &[u8]) -> bool {
        let mut off = offset;
        for piece in data.chunks(CHUNK) {
            if piece != self.slice(off, piece.len()) {
                return false;
            }
            off += piece.len() as u64;
        }
        true
    }

    /// Writes `total` pattern bytes to `w` in `CHUNK`-sized writes.
    pub fn write_to(&self, w: &mut impl std::io::Write, total: u64) -> std::io::Result<()> {
        let mut off = 0u64;
        while off < total {
            let n = (total - off).min(CHUNK as u64) as usize;
            w.write_all(self.slice(off, n))?;
            off += n as u64;
        }
        Ok(())
    }

    /// `len` pattern bytes from offset 0, in memory (for small bodies).
    pub fn vec(&self, len: usize) -> Vec<u8> {
        (0..len as u64).map(byte_at).collect()
    }
}
