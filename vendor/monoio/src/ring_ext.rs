//! ringway additions: per-thread switches for io_uring features monoio does
//! not expose (see ringway's vendor/README.md). Each is off by default, so
//! monoio behaves as upstream until its runtime's owner turns one on, after
//! probing that the kernel accepts it.

use std::cell::Cell;

thread_local! {
    static RECV_POLL_FIRST: Cell<bool> = const { Cell::new(false) };
}

/// `IORING_RECVSEND_POLL_FIRST` on every socket receive (`IORING_OP_RECV`)
/// this thread submits from now on: the kernel arms a poll first instead of
/// trying the receive at once. Worth it where data usually is not there yet
/// (a keep-alive connection's next request, an upstream's response); when
/// it is, the poll completes at once. Needs Linux 5.19; the caller probes.
pub fn set_recv_poll_first(on: bool) {
    RECV_POLL_FIRST.with(|c| c.set(on));
}

/// Whether [`set_recv_poll_first`] is on for this thread.
pub fn recv_poll_first() -> bool {
    RECV_POLL_FIRST.with(Cell::get)
}

/// The `ioprio` bit of `IORING_RECVSEND_POLL_FIRST`.
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub(crate) const RECVSEND_POLL_FIRST: u16 = 1;

/// `entry` (a socket send or receive) with `IORING_RECVSEND_POLL_FIRST`
/// set, for a caller that probes the kernel with its own ring.
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub fn with_poll_first(entry: io_uring::squeue::Entry) -> io_uring::squeue::Entry {
    with_ioprio(entry, RECVSEND_POLL_FIRST)
}

/// `entry` with `bits` or-ed into its `ioprio` field (the send/receive
/// flags of socket opcodes). io-uring 0.6's `Recv` builder has no setter
/// for it; the entry is the kernel's 64-byte SQE (`#[repr(C)]`), whose
/// `ioprio` is the `u16` at offset 2.
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub(crate) fn with_ioprio(entry: io_uring::squeue::Entry, bits: u16) -> io_uring::squeue::Entry {
    const _: () = assert!(std::mem::size_of::<io_uring::squeue::Entry>() == 64);
    // SAFETY: `Entry` is `#[repr(C)]` around `io_uring_sqe`, 64 bytes, any
    // bit pattern of which is a valid array of bytes and back.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    let old = u16::from_ne_bytes([raw[2], raw[3]]);
    raw[2..4].copy_from_slice(&(old | bits).to_ne_bytes());
    // SAFETY: as above; only the ioprio bytes changed.
    unsafe { std::mem::transmute::<[u8; 64], io_uring::squeue::Entry>(raw) }
}
