//! ringway: a socket receive that selects its buffer from the thread's
//! provided-buffer ring (`ring_ext`) when data arrives, instead of lending
//! one for as long as it waits.

use std::io;

use io_uring::{opcode, squeue, types};

use super::{super::shared_fd::SharedFd, Op, OpAble};
#[cfg(any(feature = "legacy", feature = "poll-io"))]
use crate::driver::ready::Direction;
use crate::ring_ext::SelectedBuf;

pub(crate) struct RecvSelect {
    /// Holds a strong ref to the FD, preventing the file from being closed
    /// while the operation is in-flight.
    fd: SharedFd,
    /// The buffer group (`ring_ext::BUFFER_GROUP`).
    group: u16,
}

impl Op<RecvSelect> {
    pub(crate) fn recv_select(fd: &SharedFd, group: u16) -> io::Result<Self> {
        Op::submit_with(RecvSelect {
            fd: fd.clone(),
            group,
        })
    }

    /// The bytes received, in a buffer of the ring.
    pub(crate) async fn selected(self) -> io::Result<SelectedBuf> {
        let complete = self.await;
        let flags = complete.meta.flags;
        match complete.meta.result {
            Ok(n) => SelectedBuf::new(io_uring::cqueue::buffer_select(flags), n),
            Err(e) => {
                // A failed receive takes no buffer; should a kernel report
                // one anyway, it goes back.
                crate::ring_ext::recycle_selected(flags);
                if e.raw_os_error() == Some(libc::ENOBUFS) {
                    crate::ring_ext::grow_buffer_ring();
                }
                Err(e)
            }
        }
    }
}

impl OpAble for RecvSelect {
    fn uring_op(&mut self) -> io_uring::squeue::Entry {
        // Length 0: the whole selected buffer.
        opcode::Recv::new(types::Fd(self.fd.raw_fd()), std::ptr::null_mut(), 0)
            .buf_group(self.group)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }

    #[cfg(any(feature = "legacy", feature = "poll-io"))]
    fn legacy_interest(&self) -> Option<(Direction, usize)> {
        self.fd.registered_index().map(|idx| (Direction::Read, idx))
    }

    /// The epoll driver has no buffer ring: `ring_ext` never submits this
    /// there (`ensure_registered` reports `Unsupported` first).
    #[cfg(any(feature = "legacy", feature = "poll-io"))]
    fn legacy_call(&mut self) -> io::Result<u32> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}
