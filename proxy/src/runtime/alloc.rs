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

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has (`MI_INTPTR_SIZE`).
const PLAIN_ALIGN: usize = 8;

/// mimalloc with plain calls for ordinary alignments.
pub struct Allocator;

// SAFETY: each method forwards to the mimalloc call with the same contract;
// blocks from the plain calls are 8-byte aligned, which satisfies every
// layout sent there (align <= 8).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
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
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
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
