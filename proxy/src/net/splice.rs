//! splice(2) between two TCP sockets through a pipe: a large body moves
//! from one socket to the other without being copied into user space.
//!
//! Why not io_uring's `SPLICE` operation: the kernel cannot splice without
//! blocking from its submission path, so every such operation is handed to
//! an io-wq worker thread (a thread per core outside ringway's control,
//! and a context switch per operation). Instead the splices here are plain
//! non-blocking syscalls on the worker's own thread, and the waits between
//! them are readiness polls through monoio (io_uring `POLL_ADD`, or the
//! epoll driver's readiness): the same model as the idle read
//! (`net::idle_read`).
//!
//! Non-blocking: a socket's side of splice(2) honours only the socket's
//! own `O_NONBLOCK` (not `SPLICE_F_NONBLOCK`). Sockets of the io_uring
//! driver are blocking, and some of its operations (`READV`/`WRITEV`)
//! would return `EAGAIN` on a non-blocking one, so [`NonBlocking`] sets the
//! flag for the transfer only and restores it after.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes a body pipe is asked to hold (`F_SETPIPE_SZ`; the default is
/// 64 KiB). Fewer splices per body; a pipe holds page references, not
/// copies, so this is not memory of its own. When the kernel refuses (a
/// user past `fs.pipe-user-pages-soft`), the pipe keeps its default size.
pub const PIPE_BYTES: usize = 256 * 1024;

/// A pipe, both ends non-blocking, that is empty whenever it is not in
/// use (a transfer that fails drops its pipe instead of returning it).
#[derive(Debug)]
pub struct BodyPipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl BodyPipe {
    pub fn new() -> io::Result<BodyPipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened and are owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor this function owns.
        let set = unsafe {
            libc::fcntl(
                write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                PIPE_BYTES as libc::c_int,
            )
        };
        let capacity = if set > 0 {
            set as usize
        } else {
            // SAFETY: as above.
            let got = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
            if got > 0 {
                got as usize
            } else {
                64 * 1024
            }
        };
        Ok(BodyPipe {
            read,
            write,
            capacity,
        })
    }

    /// Bytes the pipe holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Move up to `len` bytes from socket `from` into the pipe. `Ok(0)`:
    /// the socket's peer ended its stream. `WouldBlock`: nothing to read.
    pub fn fill_from(&self, from: RawFd, len: usize) -> io::Result<usize> {
        splice(from, self.write.as_raw_fd(), len, 0)
    }

    /// Move up to `len` bytes from the pipe to socket `to`; `more`: more
    /// bytes follow soon (the kernel may hold a partial segment back, like
    /// `MSG_MORE`). `WouldBlock`: the socket's send buffer is full.
    pub fn drain_to(&self, to: RawFd, len: usize, more: bool) -> io::Result<usize> {
        let flags = if more { libc::SPLICE_F_MORE } else { 0 };
        splice(self.read.as_raw_fd(), to, len, flags)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize, flags: libc::c_uint) -> io::Result<usize> {
    let flags = flags | libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    loop {
        // SAFETY: no offsets (both ends are pipes or sockets); the kernel
        // validates the descriptors.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                flags,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A socket set to `O_NONBLOCK` for as long as this lives, then restored
/// (when it was not set before).
pub struct NonBlocking {
    fd: RawFd,
    restore: bool,
}

impl NonBlocking {
    /// `fd` must stay open while the guard lives.
    pub fn set(fd: RawFd) -> io::Result<NonBlocking> {
        // SAFETY: fcntl on a descriptor the caller keeps open.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK != 0 {
            return Ok(NonBlocking { fd, restore: false });
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NonBlocking { fd, restore: true })
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        if self.restore {
            // SAFETY: the caller keeps `fd` open while the guard lives.
            unsafe {
                let flags = libc::fcntl(self.fd, libc::F_GETFL);
                if flags >= 0 {
                    libc::fcntl(self.fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn bytes_go_from_one_socket_to_another_through_the_pipe() {
        let (mut src_peer, src) = pair();
        let (dst, mut dst_peer) = pair();
        let _nb = (
            NonBlocking::set(src.as_raw_fd()).unwrap(),
            NonBlocking::set(dst.as_raw_fd()).unwrap(),
        );
        let pipe = BodyPipe::new().unwrap();
        assert!(pipe.capacity() >= 64 * 1024);
        // Nothing to read yet: would block, not block.
        let e = pipe.fill_from(src.as_raw_fd(), 1000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        src_peer
            .write_all(b"hello, body; and the next request")
            .unwrap();
        // Only the 12 body bytes are taken; the rest stays in the socket.
        let mut got = 0;
        while got < 12 {
            match pipe.fill_from(src.as_raw_fd(), 12 - got) {
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.drain_to(dst.as_raw_fd(), 12, false).unwrap(), 12);
        let mut buf = [0u8; 12];
        dst_peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello, body;");
        let mut rest = [0u8; 21];
        let mut src = src;
        src.set_nonblocking(false).unwrap();
        src.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b" and the next request");
        // The end of the stream reads as 0.
        drop(src_peer);
        assert_eq!(pipe.fill_from(src.as_raw_fd(), 10).unwrap(), 0);
    }

    #[test]
    fn the_blocking_flag_comes_back() {
        let (a, _b) = pair();
        let fd = a.as_raw_fd();
        let nonblocking = || unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_NONBLOCK != 0;
        assert!(!nonblocking());
        {
            let _g = NonBlocking::set(fd).unwrap();
            assert!(nonblocking());
        }
        assert!(!nonblocking());
        // Already non-blocking: left so.
        a.set_nonblocking(true).unwrap();
        drop(NonBlocking::set(fd).unwrap());
        assert!(nonblocking());
    }
}
