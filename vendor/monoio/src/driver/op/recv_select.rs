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
        selected_of(self.await.meta)
    }
}

impl OpAble for RecvSelect {
    fn uring_op(&mut self) -> io_uring::squeue::Entry {
        // Length 0: the whole selected buffer.
        let entry = opcode::Recv::new(types::Fd(self.fd.raw_fd()), std::ptr::null_mut(), 0)
            .buf_group(self.group)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT);
        // The registered slot, when the fd has one.
        self.fd.target(entry)
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

/// The next bytes of an idle socket, or its readiness, as a plain future
/// (`TcpStream::next_bytes`), for a task that waits on it for as long as
/// its connection idles: a selected receive when the thread has a buffer
/// ring (`Some`: the bytes), else, or when the ring ran dry, a readiness
/// poll (`None`: readable, read it yourself). It holds one operation at a
/// time and submits it when first polled.
pub(crate) struct NextBytes<'a> {
    fd: &'a SharedFd,
    state: NextState,
}

enum NextState {
    Start,
    Selecting(Op<RecvSelect>),
    Polling(Op<super::poll::PollAdd>),
}

impl<'a> NextBytes<'a> {
    pub(crate) fn new(fd: &'a SharedFd) -> Self {
        NextBytes {
            fd,
            state: NextState::Start,
        }
    }
}

impl std::future::Future for NextBytes<'_> {
    type Output = io::Result<Option<SelectedBuf>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            match &mut this.state {
                NextState::Start => {
                    let selected = crate::ring_ext::ensure_registered()
                        .and_then(|group| Op::recv_select(this.fd, group));
                    this.state = match selected {
                        Ok(op) => NextState::Selecting(op),
                        Err(_) => NextState::Polling(Op::poll_read(this.fd, false)?),
                    };
                }
                NextState::Selecting(op) => {
                    let complete = std::task::ready!(std::pin::Pin::new(op).poll(cx));
                    match selected_of(complete.meta) {
                        Ok(buf) => {
                            this.state = NextState::Start;
                            return Poll::Ready(Ok(Some(buf)));
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                            this.state = NextState::Polling(Op::poll_read(this.fd, false)?);
                        }
                        Err(e) => {
                            this.state = NextState::Start;
                            return Poll::Ready(Err(e));
                        }
                    }
                }
                NextState::Polling(op) => {
                    let complete = std::task::ready!(std::pin::Pin::new(op).poll(cx));
                    this.state = NextState::Start;
                    return Poll::Ready(complete.meta.result.map(|_| None));
                }
            }
        }
    }
}

/// The bytes of a selected receive's completion (shared by both forms).
fn selected_of(meta: super::CompletionMeta) -> io::Result<SelectedBuf> {
    match meta.result {
        Ok(n) => SelectedBuf::new(io_uring::cqueue::buffer_select(meta.flags), n),
        Err(e) => {
            // A failed receive takes no buffer; should a kernel report one
            // anyway, it goes back.
            crate::ring_ext::recycle_selected(meta.flags);
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                crate::ring_ext::grow_buffer_ring();
            }
            Err(e)
        }
    }
}
