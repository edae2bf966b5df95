//! A worker's free lists of I/O buffers, one per buffer size.
//!
//! Taking a buffer pops the newest; giving one back pushes it, up to the
//! list's cap (past it, it is freed). Each list notes its low-water mark,
//! the fewest buffers it held since the last [`FreeList::trim`]: that many
//! sat unused all along, and a trim (once a second, from the worker's tick)
//! frees all but [`TRIM_KEEP`] of them, their whole pages first handed back
//! to the kernel (`MADV_DONTNEED`; the allocator would keep a freed block's
//! pages resident for reuse). After a burst, the buffers the burst's
//! connections gave back go back to the system; under a steady load the
//! buffers in use are not touched.

use std::cell::{Cell, RefCell};

/// Buffers of each list kept through a second in which they went unused: a
/// burst's worth comes back from the allocator when the load does.
pub const TRIM_KEEP: usize = 8;

/// Free buffers of one size.
pub struct FreeList {
    list: RefCell<Vec<Vec<u8>>>,
    /// The fewest buffers `list` held since the last trim.
    low: Cell<usize>,
    /// Capacity of a new buffer.
    size: usize,
    /// Most buffers kept.
    max: usize,
}

impl FreeList {
    /// A list of buffers of `size` bytes holding at most `max`.
    pub fn new(size: usize, max: usize) -> Self {
        FreeList {
            list: RefCell::new(Vec::new()),
            low: Cell::new(0),
            size,
            max,
        }
    }

    /// A cleared buffer with at least the list's size of capacity.
    #[inline]
    pub fn take(&self) -> Vec<u8> {
        let mut list = self.list.borrow_mut();
        let buf = list.pop();
        self.low.set(self.low.get().min(list.len()));
        buf.unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    /// Keep `buf` (cleared) unless the list is full.
    #[inline]
    pub fn give(&self, mut buf: Vec<u8>) {
        let mut list = self.list.borrow_mut();
        if list.len() < self.max {
            buf.clear();
            list.push(buf);
        }
    }

    /// Keep `buf` (cleared) unless the list is full; then free it, its
    /// pages handed back to the kernel first.
    pub fn release(&self, mut buf: Vec<u8>) {
        let mut list = self.list.borrow_mut();
        if list.len() < self.max {
            buf.clear();
            list.push(buf);
        } else {
            drop(list);
            discard_pages(buf);
        }
    }

    /// Free what went unused since the last trim, all but [`TRIM_KEEP`],
    /// the oldest first (see the module docs).
    pub fn trim(&self) {
        let mut list = self.list.borrow_mut();
        let unused = self.low.get().min(list.len()).saturating_sub(TRIM_KEEP);
        for buf in list.drain(..unused) {
            discard_pages(buf);
        }
        self.low.set(list.len());
    }

    pub fn len(&self) -> usize {
        self.list.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Free `buf` after `madvise(MADV_DONTNEED)` on the pages it covers whole
/// (as glibc's `malloc_trim` does for free chunks): they stop counting in
/// the RSS, and read back as zeros if the allocator reuses them.
pub fn discard_pages(mut buf: Vec<u8>) {
    discard_pages_keep(&mut buf);
}

/// `madvise(MADV_DONTNEED)` on the whole pages of `buf`'s storage.
fn discard_pages_keep(buf: &mut Vec<u8>) {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let page = *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p).unwrap_or(0)
    });
    if !page.is_power_of_two() {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let end = start + buf.capacity();
    let (from, to) = ((start + page - 1) & !(page - 1), end & !(page - 1));
    if to > from {
        // SAFETY: [from, to) is page-aligned and inside `buf`'s allocation,
        // which is ours alone (`&mut`); its contents are not needed
        // (anonymous private memory reads back as zeros).
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_to_the_low_water_mark() {
        let l = FreeList::new(1024, 64);
        let bufs: Vec<_> = (0..64).map(|_| l.take()).collect();
        for b in bufs {
            l.give(b);
        }
        // Full: one more is freed, not kept.
        l.give(Vec::with_capacity(1024));
        assert_eq!(l.len(), 64);
        // The low-water mark was 0 (the list started empty): nothing goes.
        l.trim();
        assert_eq!(l.len(), 64);
        // 20 taken and given back: 44 went unused, all but TRIM_KEEP go.
        let taken: Vec<_> = (0..20).map(|_| l.take()).collect();
        for b in taken {
            l.give(b);
        }
        l.trim();
        assert_eq!(l.len(), 20 + TRIM_KEEP);
        // Nothing taken since: down to TRIM_KEEP, and it stays there.
        l.trim();
        assert_eq!(l.len(), TRIM_KEEP);
        l.trim();
        assert_eq!(l.len(), TRIM_KEEP);
        // A taken buffer is cleared and has the list's size.
        let b = l.take();
        assert!(b.is_empty() && b.capacity() >= 1024);
    }

    #[test]
    fn released_buffers_past_the_cap_are_freed() {
        let l = FreeList::new(1024, 4);
        for _ in 0..10 {
            let mut b = Vec::with_capacity(1024);
            b.extend_from_slice(b"still holding bytes");
            l.release(b);
        }
        assert_eq!(l.len(), 4);
        // What comes back out is cleared, whatever it held.
        assert!(l.take().is_empty());
    }

    #[test]
    fn discarded_pages_read_back_as_zeros() {
        let mut b = vec![7u8; 64 * 1024];
        let p = b.as_mut_ptr();
        discard_pages_keep(&mut b);
        assert!(b[16 * 1024..32 * 1024].iter().all(|&x| x == 0));
        assert_eq!(b.as_mut_ptr(), p);
    }
}
