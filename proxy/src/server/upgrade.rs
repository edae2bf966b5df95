//! Zero-downtime binary upgrade: SIGUSR2 (or `ringway upgrade --pid`)
//! makes the running process start the binary again (the file at the path
//! it was started from, so a newly installed version), hand it its
//! listening sockets, wait until it serves, then drain and exit.
//!
//! ```text
//! old: SIGUSR2 → socketpair → spawn <exe> <same args>, RINGWAY_UPGRADE_FD=n
//!      → header line (listeners: name, configured address, socket count;
//!        admin address) + every socket (SCM_RIGHTS, in batches)
//! new: reads them, uses the inherited sockets instead of binding, starts
//!      its workers → "ready <pid>\n" on the channel
//! old: → MAINPID=<new pid> to systemd → drain (listeners stopped without
//!      shutting the shared sockets down) → exit 0
//! ```
//!
//! The listening sockets are the same kernel objects in both processes, so
//! no connection waits in a queue that closes: a connection the old process
//! no longer accepts is accepted by the new one. The old process stops its
//! accepts by cancelling them (`cancelable_accept`), never by `shutdown(2)`
//! (which would close the socket for the new process too).
//!
//! When the new process fails (a bad configuration, a binary that does not
//! start, no "ready" within the timeout), the old one says why and keeps
//! serving.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The environment variable naming the channel's descriptor in the new
/// process.
pub const ENV: &str = "RINGWAY_UPGRADE_FD";

/// How long the old process waits for the new one to serve.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Sockets per `sendmsg` (the kernel's limit is 253).
const BATCH: usize = 200;

/// One listener's sockets, as handed over.
pub struct Handed<'a> {
    pub name: &'a str,
    pub configured: SocketAddr,
    pub fds: Vec<RawFd>,
}

/// The new process's side: the sockets it inherited.
pub struct Inherited {
    channel: UnixStream,
    listeners: Vec<(String, SocketAddr, Vec<TcpListener>)>,
    admin: Option<(SocketAddr, TcpListener)>,
}

impl Inherited {
    /// The sockets of the process that started this one for an upgrade;
    /// `None` when this is not an upgrade.
    pub fn from_env() -> Option<Result<Inherited, String>> {
        let fd: RawFd = std::env::var(ENV).ok()?.trim().parse().ok()?;
        Some(receive(fd).map_err(|e| format!("upgrade: receiving the listening sockets: {e}")))
    }

    /// The sockets of listener `name` at `configured`, if handed over.
    pub fn take_listener(
        &mut self,
        name: &str,
        configured: SocketAddr,
    ) -> Option<Vec<TcpListener>> {
        let i = self
            .listeners
            .iter()
            .position(|(n, a, _)| n == name && *a == configured)?;
        Some(self.listeners.swap_remove(i).2)
    }

    /// The admin socket, if it was bound at `configured`.
    pub fn take_admin(&mut self, configured: SocketAddr) -> Option<TcpListener> {
        match &self.admin {
            Some((a, _)) if *a == configured => self.admin.take().map(|(_, l)| l),
            _ => None,
        }
    }

    /// Tell the old process this one serves. Sockets not taken (listeners
    /// the new configuration dropped or renamed) are shut down here: the old
    /// process stops accepting now, and a connection queued on them would
    /// otherwise wait unanswered until it exits.
    pub fn ready(mut self) {
        let line = format!("ready {}\n", std::process::id());
        if let Err(e) = self.channel.write_all(line.as_bytes()) {
            tracing::warn!("upgrade: could not tell the old process we are ready: {e}");
        }
        for (_, _, sockets) in self.listeners.drain(..) {
            for s in sockets {
                // SAFETY: shutdown(2) on a socket this value owns.
                unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RDWR) };
            }
        }
    }
}

/// Old side: start `exe` with `args`, hand it `listeners` and `admin`, and
/// wait until it serves. The new process's id.
pub fn hand_over(
    exe: &Path,
    args: &[std::ffi::OsString],
    listeners: &[Handed<'_>],
    admin: Option<(SocketAddr, RawFd)>,
    timeout: Duration,
) -> Result<u32, String> {
    let (ours, theirs) = socketpair().map_err(|e| format!("socketpair: {e}"))?;
    let mut child = std::process::Command::new(exe)
        .args(args)
        .env(ENV, theirs.as_raw_fd().to_string())
        // systemd's WATCHDOG_PID names this process; the successor pings
        // for itself once it is the main process (`MAINPID=`).
        .env_remove("WATCHDOG_PID")
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    drop(theirs);
    let pid = child.id();
    let result = (|| {
        send(&ours, listeners, admin).map_err(|e| format!("handing the sockets over: {e}"))?;
        wait_ready(&ours, pid, timeout)
    })();
    match result {
        Ok(()) => {
            // Reaped by whoever inherits it; the old process exits soon.
            std::mem::forget(child);
            Ok(pid)
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

fn wait_ready(channel: &UnixStream, pid: u32, timeout: Duration) -> Result<(), String> {
    let until = Instant::now() + timeout;
    let mut reader = BufReader::new(channel);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("process {pid} was not ready within {timeout:?}"));
        }
        channel
            .set_read_timeout(Some(left.min(Duration::from_millis(500))))
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => {
                return Err(format!(
                    "process {pid} exited before it was ready (see its errors above)"
                ))
            }
            Ok(_) if line.trim() == format!("ready {pid}") => return Ok(()),
            Ok(_) => return Err(format!("process {pid} said {:?}", line.trim())),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("process {pid}: {e}")),
        }
    }
}

/// A connected pair; the first end close-on-exec, the second inherited by
/// the child.
fn socketpair() -> std::io::Result<(UnixStream, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: socketpair writes two descriptors into `fds`.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(a.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok((UnixStream::from(a), b))
}

/// The header line: listeners (name, configured address, count) and the
/// admin address; then the descriptors in that order.
fn send(
    channel: &UnixStream,
    listeners: &[Handed<'_>],
    admin: Option<(SocketAddr, RawFd)>,
) -> std::io::Result<()> {
    let header = serde_json::json!({
        "listeners": listeners.iter().map(|l| serde_json::json!({
            "name": l.name,
            "configured": l.configured.to_string(),
            "count": l.fds.len(),
        })).collect::<Vec<_>>(),
        "admin": admin.map(|(a, _)| a.to_string()),
    });
    let mut line = header.to_string();
    line.push('\n');
    (&*channel).write_all(line.as_bytes())?;
    let mut all: Vec<RawFd> = listeners
        .iter()
        .flat_map(|l| l.fds.iter().copied())
        .collect();
    all.extend(admin.map(|(_, fd)| fd));
    for batch in all.chunks(BATCH) {
        send_fds(channel.as_raw_fd(), batch)?;
    }
    Ok(())
}

fn receive(fd: RawFd) -> std::io::Result<Inherited> {
    // SAFETY: the descriptor was handed to this process for this purpose.
    let channel = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: fcntl on the descriptor we now own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    channel.set_read_timeout(Some(Duration::from_secs(10)))?;
    // The header line, byte by byte (the descriptors follow it).
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = std::io::Read::read(&mut &channel, &mut byte)?;
        if n == 0 {
            return Err(std::io::Error::other("channel closed before the header"));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > 1 << 20 {
            return Err(std::io::Error::other("header too long"));
        }
    }
    let header: serde_json::Value =
        serde_json::from_slice(&line).map_err(|e| std::io::Error::other(e.to_string()))?;
    let bad = |what: &str| std::io::Error::other(format!("bad header: {what}"));
    let mut wanted = 0usize;
    let mut shapes = Vec::new();
    for l in header["listeners"]
        .as_array()
        .ok_or_else(|| bad("listeners"))?
    {
        let name = l["name"].as_str().ok_or_else(|| bad("name"))?.to_string();
        let addr: SocketAddr = l["configured"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| bad("configured"))?;
        let count = l["count"].as_u64().ok_or_else(|| bad("count"))? as usize;
        wanted += count;
        shapes.push((name, addr, count));
    }
    let admin_addr: Option<SocketAddr> = header["admin"].as_str().and_then(|a| a.parse().ok());
    wanted += usize::from(admin_addr.is_some());
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(wanted);
    while fds.len() < wanted {
        let got = recv_fds(channel.as_raw_fd(), BATCH)?;
        if got.is_empty() {
            return Err(std::io::Error::other(
                "channel closed before every socket arrived",
            ));
        }
        fds.extend(got);
    }
    let mut fds = fds.into_iter();
    let mut listeners = Vec::with_capacity(shapes.len());
    for (name, addr, count) in shapes {
        let sockets: Vec<TcpListener> = fds.by_ref().take(count).map(TcpListener::from).collect();
        listeners.push((name, addr, sockets));
    }
    let admin = admin_addr.and_then(|a| fds.next().map(|fd| (a, TcpListener::from(fd))));
    Ok(Inherited {
        channel,
        listeners,
        admin,
    })
}

/// One `sendmsg` with one byte and `fds` as SCM_RIGHTS.
fn send_fds(sock: RawFd, fds: &[RawFd]) -> std::io::Result<()> {
    let bytes = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut data = [b'F'];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the
    // sendmsg call, and the control buffer is CMSG_SPACE(bytes) long.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr(),
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            fds.len(),
        );
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One `recvmsg`: the descriptors it carried (close-on-exec).
fn recv_fds(sock: RawFd, max: usize) -> std::io::Result<Vec<OwnedFd>> {
    let bytes = max * std::mem::size_of::<RawFd>();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut data = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut out = Vec::new();
    // SAFETY: as in `send_fds`; the kernel writes at most `space` bytes of
    // control data, and every descriptor it installed is taken over once.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(out);
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let count = len / std::mem::size_of::<RawFd>();
                let p = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    out.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(std::io::Error::other("descriptors truncated"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_cross_the_channel_in_batches_and_stay_the_same_sockets() {
        let (a, b) = UnixStream::pair().unwrap();
        // More sockets than one batch holds.
        let listeners: Vec<TcpListener> = (0..BATCH + 5)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let admin = TcpListener::bind("127.0.0.1:0").unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let fds: Vec<RawFd> = listeners.iter().map(|l| l.as_raw_fd()).collect();
        let handed = [
            Handed {
                name: "public",
                configured: "127.0.0.1:0".parse().unwrap(),
                fds: fds[..3].to_vec(),
            },
            Handed {
                name: "many",
                configured: "127.0.0.1:8443".parse().unwrap(),
                fds: fds[3..].to_vec(),
            },
        ];
        send(&a, &handed, Some((admin_addr, admin.as_raw_fd()))).unwrap();
        let fd = b.as_raw_fd();
        std::mem::forget(b);
        let mut got = receive(fd).unwrap();
        assert!(got
            .take_listener("public", "127.0.0.1:1".parse().unwrap())
            .is_none());
        let public = got
            .take_listener("public", "127.0.0.1:0".parse().unwrap())
            .unwrap();
        assert_eq!(public.len(), 3);
        for (mine, theirs) in listeners.iter().zip(&public) {
            assert_eq!(mine.local_addr().unwrap(), theirs.local_addr().unwrap());
        }
        let many = got
            .take_listener("many", "127.0.0.1:8443".parse().unwrap())
            .unwrap();
        assert_eq!(many.len(), BATCH + 2);
        assert_eq!(
            many.last().unwrap().local_addr().unwrap(),
            listeners.last().unwrap().local_addr().unwrap()
        );
        // A connection to the original is accepted through the copy.
        let admin_copy = got.take_admin(admin_addr).unwrap();
        let _c = std::net::TcpStream::connect(admin_addr).unwrap();
        assert!(admin_copy.accept().is_ok());
        // "ready <pid>" reaches the other end.
        got.ready();
        let mut line = String::new();
        BufReader::new(&a).read_line(&mut line).unwrap();
        assert_eq!(line, format!("ready {}\n", std::process::id()));
    }
}
