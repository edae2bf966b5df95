//! A connection's read buffer: bytes read but not yet consumed.
//!
//! `data()` is `buf[pos..]`. Heads are parsed at the start of `data()` and
//! their spans stay valid until the next `consume`, `make_room` or read.
//! Reads go straight into the spare capacity (owned-buffer I/O: the `Vec` is
//! lent to the kernel and handed back).

use std::io;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle};

use crate::net::idle_read::IdleRead;

#[derive(Debug, Default)]
pub struct ConnBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl ConnBuf {
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Self::with_data(buf)
    }

    /// Bytes already in hand as the buffer's content (its storage grows
    /// as reads need room).
    pub fn with_data(buf: Vec<u8>) -> Self {
        ConnBuf { buf, pos: 0 }
    }

    /// Give the storage back (for recycling).
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Hand the storage out while nothing is buffered, keeping none (an
    /// idle connection; `replace_storage` gives it one again).
    pub fn take_storage(&mut self) -> Vec<u8> {
        debug_assert!(self.is_empty());
        self.pos = 0;
        std::mem::take(&mut self.buf)
    }

    /// Move what is buffered into `bigger` storage (when it has more room
    /// than this one's); returns the old storage. Recycled buffers grow
    /// this way instead of by reallocation, which would leave the smaller
    /// block free in the allocator.
    pub fn move_into(&mut self, mut bigger: Vec<u8>) -> Vec<u8> {
        if bigger.capacity() <= self.buf.capacity() {
            return bigger;
        }
        bigger.clear();
        bigger.extend_from_slice(self.data());
        self.pos = 0;
        std::mem::replace(&mut self.buf, bigger)
    }

    /// Swap in other storage while nothing is buffered; returns the old one.
    pub fn replace_storage(&mut self, mut buf: Vec<u8>) -> Vec<u8> {
        debug_assert!(self.is_empty());
        buf.clear();
        self.pos = 0;
        std::mem::replace(&mut self.buf, buf)
    }

    /// Append bytes received elsewhere (a provided buffer the kernel chose;
    /// `net::idle_read`).
    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Drop the first `n` bytes of `data()`.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Whether `min_spare` bytes can be read into the storage as it is
    /// (consumed bytes at the front are dropped to make room; it never
    /// grows).
    pub fn has_room(&mut self, min_spare: usize) -> bool {
        if self.buf.capacity() - self.buf.len() < min_spare && self.pos > 0 {
            let len = self.len();
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(len);
            self.pos = 0;
        }
        self.buf.capacity() - self.buf.len() >= min_spare
    }

    /// Make sure at least `min_spare` bytes can be read without growing past
    /// `max_total` bytes of data. Returns false when the data alone already
    /// fills `max_total`.
    pub fn make_room(&mut self, min_spare: usize, max_total: usize) -> bool {
        if self.buf.capacity() - self.buf.len() >= min_spare {
            return true;
        }
        if self.pos > 0 {
            let len = self.len();
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(len);
            self.pos = 0;
            if self.buf.capacity() - self.buf.len() >= min_spare {
                return true;
            }
        }
        if self.len() >= max_total {
            return false;
        }
        let want = (self.buf.capacity() * 2).clamp(min_spare, max_total.max(min_spare));
        self.buf.reserve(want.saturating_sub(self.buf.len()));
        true
    }

    /// Read once into the spare capacity. `Ok(0)` is end of stream. A cancelled
    /// read (its future dropped, e.g. by a timeout) loses the storage; the
    /// connection must then be closed.
    pub async fn read_from<S: AsyncReadRent>(&mut self, stream: &mut S) -> io::Result<usize> {
        if self.buf.capacity() == self.buf.len() {
            self.make_room(4096, usize::MAX);
        }
        let buf = std::mem::take(&mut self.buf);
        let len = buf.len();
        let cap = buf.capacity();
        let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
        self.buf = slice.into_inner();
        res
    }
}

impl ConnBuf {
    /// As `read_from`, on a read `cancel` can cancel (`ECANCELED`). The
    /// storage comes back either way.
    pub async fn read_cancelable_from<S: IdleRead>(
        &mut self,
        stream: &mut S,
        cancel: CancelHandle,
    ) -> io::Result<usize> {
        if self.buf.capacity() == self.buf.len() {
            self.make_room(4096, usize::MAX);
        }
        let buf = std::mem::take(&mut self.buf);
        let len = buf.len();
        let cap = buf.capacity();
        let (res, slice) = stream.idle_read(buf.slice_mut(len..cap), cancel).await;
        self.buf = slice.into_inner();
        res
    }

    /// Write the first `n` bytes of `data()` to `stream` (all of them, or an
    /// error) and consume them. No copy: the storage itself is lent out.
    pub async fn write_prefix_to<W: AsyncWriteRent>(
        &mut self,
        stream: &mut W,
        n: usize,
    ) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let start = self.pos;
        let (res, slice) = stream.write_all(buf.slice(start..start + n)).await;
        self.buf = slice.into_inner();
        res?;
        self.consume(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_and_compact() {
        let mut b = ConnBuf::with_buffer(Vec::with_capacity(16));
        b.buf.extend_from_slice(b"0123456789abcdef");
        b.consume(10);
        assert_eq!(b.data(), b"abcdef");
        assert!(b.make_room(8, 64));
        assert_eq!(b.data(), b"abcdef");
        assert!(b.buf.capacity() - b.buf.len() >= 8);
        b.consume(6);
        assert!(b.is_empty());
        assert_eq!(b.pos, 0);
    }

    #[test]
    fn replace_storage_when_empty() {
        let mut b = ConnBuf::with_buffer(Vec::with_capacity(16));
        b.buf.extend_from_slice(b"abc");
        b.consume(3);
        let mut big = Vec::with_capacity(64);
        big.extend_from_slice(b"stale");
        let old = b.replace_storage(big);
        assert_eq!(old.capacity(), 16);
        assert!(b.is_empty());
        assert_eq!(b.capacity(), 64);
        assert_eq!(b.data(), b"");
    }

    #[test]
    fn move_into_keeps_the_data() {
        let mut b = ConnBuf::with_buffer(Vec::with_capacity(8));
        b.buf.extend_from_slice(b"abcdefgh");
        b.consume(3);
        let old = b.move_into(Vec::with_capacity(64));
        assert_eq!(old.capacity(), 8);
        assert_eq!(b.data(), b"defgh");
        assert!(b.capacity() >= 64);
        assert!(b.has_room(59) && !b.has_room(1000));
        // Storage no larger is handed straight back.
        let same = b.move_into(Vec::with_capacity(16));
        assert_eq!(same.capacity(), 16);
        assert_eq!(b.data(), b"defgh");
    }

    #[test]
    fn make_room_respects_max() {
        let mut b = ConnBuf::with_buffer(Vec::with_capacity(8));
        b.buf.extend_from_slice(b"12345678");
        assert!(!b.make_room(8, 8));
        assert!(b.make_room(8, 32));
    }

    #[test]
    fn reads_append() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut b = ConnBuf::with_buffer(Vec::with_capacity(4));
            let mut src: &[u8] = b"hello world";
            let n = b.read_from(&mut src).await.unwrap();
            assert_eq!(n, 4);
            let n = b.read_from(&mut src).await.unwrap();
            assert!(n > 0);
            assert!(b"hello world".starts_with(b.data()));
            assert!(b.len() > 4);
        });
    }
}
