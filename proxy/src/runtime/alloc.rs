//! The global allocator: mimalloc, called the way its C API is fastest.
//!
//! The `mimalloc` crate's `GlobalAlloc` passes every layout to
//! `mi_malloc_aligned`, even an 8-byte-aligned one. For a block over
//! 1 KiB whose size class is not a power of two, mimalloc's aligned path
//! then over-allocates (`size + align - 1`, a larger size class, the page
//! marked as holding interior pointers) where plain `mi_malloc` would take
//! the block as it is: the per-request futures (a few KB each) all went that
//! way, about 360 instructions per allocation instead of a few dozen
//! (`bench/h2-instructions.sh`, callgrind).
//!
//! Every mimalloc block is aligned to at least 8 bytes (its smallest size
//! class is 8), so a layout asking for no more than that goes to the plain
//! calls; larger alignments keep the aligned calls. `mi_free` frees both.
//!
//! # Spare blocks on worker threads
//!
//! Each HTTP/1.1 request boxes two futures of a few KB (the connection's
//! stage loop, 2,240 bytes, and the request, 4,064), and allocates the
//! response head's field list (256 bytes) and an output buffer (2 KiB); it
//! frees them when it ends, and the next request allocates them again.
//! With one or two such blocks of a size live at a time, mimalloc's fast
//! path (pop the page's free list) is mostly empty and `mi_malloc` takes its
//! generic path, which first moves the page's freed blocks back: about 100
//! instructions per allocation (callgrind). A worker thread
//! ([`keep_spares_on_this_thread`]) therefore keeps the last [`SPARES`]
//! freed blocks of [`SPARE_MIN`]–[`SPARE_MAX`] bytes (ordinary alignment;
//! a newly freed one pushes the oldest out to mimalloc) and hands one back
//! for an allocation of exactly the same size. That is at most 32 KB per
//! worker, held for the worker's life; other threads (admin, discovery,
//! log writer) never keep any, so a thread that ends leaves nothing
//! behind. Blocks may come from or go to other threads' heaps: mimalloc
//! frees any block on any thread.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has (`MI_INTPTR_SIZE`).
const PLAIN_ALIGN: usize = 8;

/// Spare blocks a worker thread keeps (see the module docs).
pub const SPARES: usize = 4;
/// Smallest block size kept as a spare.
pub const SPARE_MIN: usize = 256;
/// Largest block size kept as a spare.
pub const SPARE_MAX: usize = 8192;

/// A freed block kept for reuse: its address and the exact size it was
/// allocated with (0 = empty slot).
#[derive(Clone, Copy)]
struct Spare {
    ptr: *mut u8,
    size: usize,
}

const NO_SPARE: Spare = Spare {
    ptr: std::ptr::null_mut(),
    size: 0,
};

thread_local! {
    /// Whether this thread keeps spares (worker threads only).
    static KEEPS_SPARES: Cell<bool> = const { Cell::new(false) };
    static SPARE_BLOCKS: Cell<[Spare; SPARES]> = const { Cell::new([NO_SPARE; SPARES]) };
}

/// Keep spare blocks on the calling thread from now on (a worker thread,
/// which lives as long as the process; see the module docs).
pub fn keep_spares_on_this_thread() {
    KEEPS_SPARES.with(|k| k.set(true));
}

/// A spare block of exactly `size` bytes, if this thread keeps one.
#[inline]
fn take_spare(size: usize) -> Option<*mut u8> {
    SPARE_BLOCKS.with(|s| {
        let mut blocks = s.get();
        let slot = blocks.iter_mut().find(|b| b.size == size)?;
        let ptr = slot.ptr;
        *slot = NO_SPARE;
        s.set(blocks);
        Some(ptr)
    })
}

/// Keep `ptr` (a block of `size` bytes) as the newest spare. `Err(ptr)`
/// when this thread keeps none; `Ok(Some(oldest))` when the oldest spare
/// made room and is to be freed.
#[inline]
fn keep_spare(ptr: *mut u8, size: usize) -> Result<Option<*mut u8>, *mut u8> {
    if !KEEPS_SPARES.with(Cell::get) {
        return Err(ptr);
    }
    SPARE_BLOCKS.with(|s| {
        let mut blocks = s.get();
        let oldest = blocks[SPARES - 1];
        blocks.copy_within(..SPARES - 1, 1);
        blocks[0] = Spare { ptr, size };
        s.set(blocks);
        Ok((oldest.size != 0).then_some(oldest.ptr))
    })
}

/// Whether a block of this layout may be a spare.
#[inline]
fn spare_sized(layout: Layout) -> bool {
    layout.align() <= PLAIN_ALIGN && (SPARE_MIN..=SPARE_MAX).contains(&layout.size())
}

/// mimalloc with plain calls for ordinary alignments.
pub struct Allocator;

// SAFETY: each method forwards to the mimalloc call with the same contract;
// blocks from the plain calls are 8-byte aligned, which satisfies every
// layout sent there (align <= 8).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if spare_sized(layout) {
            if let Some(p) = take_spare(layout.size()) {
                return p;
            }
        }
        if layout.align() <= PLAIN_ALIGN {
            unsafe { mi::mi_malloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            unsafe { mi::mi_zalloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let ptr = if spare_sized(layout) {
            match keep_spare(ptr, layout.size()) {
                Ok(None) => return,
                Ok(Some(oldest)) => oldest,
                Err(ptr) => ptr,
            }
        } else {
            ptr
        };
        unsafe { mi::mi_free(ptr as *mut c_void) };
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            unsafe { mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            unsafe {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a thread that keeps spares, a freed block of the spare range comes
    /// back for an allocation of exactly its size (and only that size), at
    /// most `SPARES` are kept (the oldest makes room), and a thread that
    /// does not keep spares never gets one.
    #[test]
    fn worker_threads_reuse_spare_blocks_of_the_same_size() {
        std::thread::spawn(|| {
            let a = Allocator;
            let l4064 = Layout::from_size_align(4064, 8).unwrap();
            let l2240 = Layout::from_size_align(2240, 8).unwrap();
            unsafe {
                // Not a worker: nothing kept.
                let p = a.alloc(l4064);
                a.dealloc(p, l4064);
                assert_eq!(take_spare(4064), None);

                keep_spares_on_this_thread();
                let p = a.alloc(l4064);
                std::ptr::write_bytes(p, 0x5A, 4064);
                a.dealloc(p, l4064);
                // Another size does not take it; the same size does.
                let q = a.alloc(l2240);
                assert_ne!(q, p);
                let r = a.alloc(l4064);
                assert_eq!(r, p);
                std::ptr::write_bytes(r, 0, 4064);
                a.dealloc(q, l2240);
                a.dealloc(r, l4064);
                // `SPARES` kept: each block freed past them takes the
                // oldest one's slot (q's first), which goes to mimalloc.
                let extra: Vec<(Layout, *mut u8)> = (0..SPARES - 1)
                    .map(|i| {
                        let l = Layout::from_size_align(3000 + 8 * i, 8).unwrap();
                        (l, a.alloc(l))
                    })
                    .collect();
                for &(l, p) in &extra {
                    a.dealloc(p, l);
                }
                assert_eq!(take_spare(2240), None);
                assert_eq!(take_spare(4064), Some(r));
                for &(l, p) in &extra {
                    assert_eq!(take_spare(l.size()), Some(p));
                }
                assert_eq!(take_spare(4064), None);
                a.dealloc(r, l4064);
                // Outside the range, or over-aligned: never kept.
                let big = Layout::from_size_align(SPARE_MAX + 8, 8).unwrap();
                let b = a.alloc(big);
                a.dealloc(b, big);
                assert_eq!(take_spare(SPARE_MAX + 8), None);
                let aligned = Layout::from_size_align(4096, 64).unwrap();
                let c = a.alloc(aligned);
                assert_eq!(c as usize % 64, 0);
                a.dealloc(c, aligned);
            }
        })
        .join()
        .unwrap();
    }

    /// Every size a request path allocates, at every alignment up to a
    /// page: the block is aligned, writable to its end, grows and shrinks
    /// keeping its bytes, and zeroed blocks are zero.
    #[test]
    fn blocks_are_aligned_zeroed_and_keep_their_bytes() {
        let a = Allocator;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 7, 8, 9, 24, 100, 1000, 1025, 2100, 5048, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    std::ptr::write_bytes(p, 0xA5, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                    assert!((0..size).all(|i| *q.add(i) == 0xA5));
                    let r = a.realloc(q, Layout::from_size_align(size * 3, align).unwrap(), size);
                    assert!((0..size).all(|i| *r.add(i) == 0xA5));
                    a.dealloc(r, layout);

                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
