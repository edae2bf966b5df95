//! Handing freed memory back to the kernel while a worker is quiet.
//!
//! The allocator (mimalloc, chosen in `main.rs`) keeps the pages of freed
//! blocks for reuse and returns them to the kernel (`MADV_DONTNEED`) only
//! when a page has been free for its purge delay (1 s) *and* the allocator
//! runs again on that thread. A worker that served a burst and then sits
//! with thousands of idle keep-alive connections makes no more allocations,
//! so the burst's per-request state (boxed forward state, buffers, upstream
//! connections) stayed resident. Measured with `bench/idle-memory.sh`
//! (5,000 idle connections after one GET each): with mimalloc's purge delay
//! at 0, the growth per connection fell by about 4 KB (legacy driver, 12.1 →
//! 8.1 KB); the once-a-second [`collect`] here took it from 9.1 to 8.4 KB
//! (io_uring, before the other memory changes). Each worker calls it from
//! its tick: a walk over its own heap's pages, nothing when there is nothing
//! to free.

/// Let the allocator purge what has been free long enough (this thread's
/// heap; not forced, so pages freed less than the purge delay ago stay for
/// reuse).
pub fn collect() {
    // SAFETY: takes no pointer; acts on the calling thread's heap only. With
    // another global allocator (the library's unit tests), mimalloc's heap
    // for this thread is empty and this does nothing.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
