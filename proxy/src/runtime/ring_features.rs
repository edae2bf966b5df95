//! io_uring features beyond what monoio 0.2 uses on its own, switched on
//! per worker thread through the vendored monoio's `ring_ext`
//! (vendor/README.md): asked for with `[runtime] ring_features`, probed
//! once at start (a feature the kernel refuses stays off), and the ones in
//! use are printed in the start-up summary and listed in `/workers`.
//! Each is measured before it becomes a default (bench/README.md):
//! `buffer_ring` and `fixed_files` are on by default, `recv_poll_first` and
//! `multishot_recv` are not.
//!
//! | feature | what it does | needs |
//! |---|---|---|
//! | `recv_poll_first` | socket receives arm a poll first instead of trying at once (`IORING_RECVSEND_POLL_FIRST`): a keep-alive connection's next request and an upstream's response are usually not there yet when the receive is submitted, so the attempt that would fail is skipped | Linux 5.19; measured no gain here (closed loop 2–4 % fewer req/s, fixed rate within noise), so off by default |
//! | `buffer_ring` | an idle keep-alive connection's read takes a buffer from a per-worker provided-buffer ring only when its next request arrives (`IORING_REGISTER_PBUF_RING`, `IOSQE_BUFFER_SELECT`); the bytes are copied into a head buffer and the ring buffer goes straight back, so a connection between requests holds no read buffer. The ring starts with 16 buffers of 2 KiB and gets one more each time a receive finds it empty (that receive reads into a buffer of its own; at most [`buffer_ring_max`]: one per connection the worker may hold) | Linux 5.19; plain TCP connections only (see `pipeline::read_head`) |
//! | `fixed_files` | sockets worth it get a slot in a per-worker table of registered files, and their ring operations name the slot instead of the descriptor, which spares the kernel a descriptor-table lookup and a reference taken and dropped on the file per operation (`bench/ring-ops-trace.sh`: 4.00 → 0.01 per keep-alive request). Listeners, upstream connections and TLS/HTTP/2 client sockets register at once; a plain HTTP/1.1 client socket at its second request (`IdleRead::kept_alive`), so a connection that carries one request costs no ring entry more (a slot costs two: filled, emptied). The descriptor stays open beside the slot, for everything done outside the ring. [`fixed_file_slots`] slots per worker; a socket that finds them all taken uses its descriptor and asks again at its next request | Linux 5.19 (sparse tables); `IOSQE_CQE_SKIP_SUCCESS` 5.17 |
//! | `multishot_recv` | a plain HTTP/1.1 client socket's reads come from one multishot receive into the buffer ring (`IORING_RECV_MULTISHOT`), armed when the connection first parks and left armed, so a kept-alive request submits no receive (`bench/ring-ops-trace.sh`: 4 → 3 ring operations per request; `net::plain`). A request with a body to stream or an upgrade ends it for the rest of its connection (2 KiB ring buffers are no way to carry a body, and splicing one needs the socket); a receive that queues [`monoio::ring_ext::MULTISHOT_QUEUE_CAP`] unread buffers is cancelled (back-pressure) and armed again at the next park; one that finds the ring dry ends and is armed again at the next park. Measured: CPU within noise at a fixed rate; at 9,900 busy connections −2 % req/s, +5 % p99, +11 % peak RSS: off by default | Linux 6.0; needs `buffer_ring` |

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use crate::config::RingFeatures;

/// Every feature's name, as in the configuration.
pub const ALL: [&str; 4] = [
    "recv_poll_first",
    "buffer_ring",
    "fixed_files",
    "multishot_recv",
];

/// Most buffers a worker's provided-buffer ring grows to: one per
/// connection the worker may hold, rounded up to a power of two, at least
/// 1,024, at most 32,768 (the kernel's limit for one ring; 64 MiB of
/// 2 KiB buffers, mapped up front and touched only as the ring grows).
/// The ring grows only when a receive finds it empty, so it settles at the
/// largest number of requests that arrive in one batch. With at most
/// 1,024, a closed loop of 9,900 connections ran it dry for most requests
/// (each then costs a failed receive and a second one: 5.7–6.1 ring
/// operations per request against 4.2–4.4) and its p99 was 8–18 % higher
/// in three interleaved pairs (bench/README.md).
pub fn buffer_ring_max(max_connections_per_worker: usize) -> u16 {
    // Clamped first: the next power of two of at most 32,768 is at most
    // 32,768.
    max_connections_per_worker
        .clamp(1024, 32_768)
        .next_power_of_two() as u16
}
/// Bytes per provided buffer: a typical request head fits; a longer one
/// is read on into the connection's head buffer.
pub const BUFFER_RING_BUF_LEN: u32 = 2048;

/// What the kernel accepts (probed once per process).
pub fn supported() -> RingFeatures {
    static PROBED: OnceLock<RingFeatures> = OnceLock::new();
    *PROBED.get_or_init(|| RingFeatures {
        recv_poll_first: probe_recv_poll_first(),
        buffer_ring: monoio::ring_ext::probe_buffer_ring(),
        fixed_files: monoio::ring_ext::probe_fixed_files(),
        multishot_recv: monoio::ring_ext::probe_multishot_recv(),
    })
}

/// The features a worker on io_uring turns on: asked for and supported.
pub fn effective(asked: RingFeatures) -> RingFeatures {
    let k = supported();
    RingFeatures {
        recv_poll_first: asked.recv_poll_first && k.recv_poll_first,
        buffer_ring: asked.buffer_ring && k.buffer_ring,
        fixed_files: asked.fixed_files && k.fixed_files,
        // Its receives select from the buffer ring.
        multishot_recv: asked.multishot_recv
            && k.multishot_recv
            && asked.buffer_ring
            && k.buffer_ring,
    }
}

/// Turn `f` on for this thread's ring (call before its runtime serves);
/// `max_connections` is the worker's connection limit.
pub fn apply(f: RingFeatures, max_connections: usize) {
    monoio::ring_ext::set_recv_poll_first(f.recv_poll_first);
    let buffers = if f.buffer_ring {
        buffer_ring_max(max_connections)
    } else {
        0
    };
    monoio::ring_ext::set_buffer_ring(buffers, BUFFER_RING_BUF_LEN);
    let slots = if f.fixed_files {
        fixed_file_slots(max_connections, open_files_limit())
    } else {
        0
    };
    monoio::ring_ext::set_fixed_files(slots);
    monoio::ring_ext::set_multishot_recv(f.multishot_recv);
}

/// Slots in a worker's registered-files table: two per connection it may
/// hold (the client's socket and an upstream's), and 64 for listeners and
/// the rest; at most the open-files limit, which the kernel holds a table
/// to (and which bounds the sockets the process can have anyway). A socket
/// that finds every slot taken uses its descriptor, as without the
/// feature. The table costs the kernel 8 bytes a slot (160 KiB with the
/// default connection limit), none of it in the process's memory.
pub fn fixed_file_slots(max_connections_per_worker: usize, open_files_limit: u64) -> u32 {
    let want = (max_connections_per_worker as u64)
        .saturating_mul(2)
        .saturating_add(64);
    // The kernel's own ceiling (IORING_MAX_FIXED_FILES).
    want.min(open_files_limit).min(1 << 20) as u32
}

/// The process's soft open-files limit (`RLIMIT_NOFILE`).
fn open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}

/// An io_uring runtime for a test of a ring feature the kernel must take
/// (`supported`), or `None` with the reason printed (`refused`: what this
/// kernel or sandbox refuses; or no io_uring at all).
#[cfg(test)]
pub(crate) fn test_runtime(
    supported: bool,
    refused: &str,
) -> Option<monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>> {
    if !supported {
        println!("SKIP: this kernel (or sandbox) refuses {refused}");
        return None;
    }
    let rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build();
    if rt.is_err() {
        println!("SKIP: no io_uring runtime here");
    }
    rt.ok()
}

/// The names of the features on in `f`, in [`ALL`]'s order.
pub fn names(f: RingFeatures) -> Vec<&'static str> {
    let on = [
        f.recv_poll_first,
        f.buffer_ring,
        f.fixed_files,
        f.multishot_recv,
    ];
    ALL.into_iter()
        .zip(on)
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
}

/// One receive with `IORING_RECVSEND_POLL_FIRST` on a socket pair with a
/// byte waiting: the kernel returns the byte, or refuses the flag
/// (`EINVAL`, before 5.19).
fn probe_recv_poll_first() -> bool {
    let Ok(mut ring) = io_uring::IoUring::new(2) else {
        return false;
    };
    let Ok((mut a, b)) = std::os::unix::net::UnixStream::pair() else {
        return false;
    };
    if a.write_all(b"x").is_err() {
        return false;
    }
    let mut buf = [0u8; 1];
    let entry = io_uring::opcode::Recv::new(
        io_uring::types::Fd(b.as_raw_fd()),
        buf.as_mut_ptr(),
        buf.len() as u32,
    )
    .build()
    .user_data(1);
    let entry = monoio::ring_ext::with_poll_first(entry);
    // SAFETY: `buf` and the socket outlive the submission: it completes
    // (the byte is waiting) before this function returns, as
    // `submit_and_wait(1)` waits for it.
    unsafe {
        if ring.submission().push(&entry).is_err() {
            return false;
        }
    }
    if ring.submit_and_wait(1).is_err() {
        return false;
    }
    let done = ring.completion().next();
    matches!(done, Some(c) if c.result() == 1 && buf[0] == b'x')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_ring_may_grow_to_one_buffer_per_connection() {
        assert_eq!(buffer_ring_max(1), 1024);
        assert_eq!(buffer_ring_max(1024), 1024);
        assert_eq!(buffer_ring_max(1500), 2048);
        assert_eq!(buffer_ring_max(10_000), 16_384, "the default limit");
        assert_eq!(buffer_ring_max(20_000), 32_768);
        assert_eq!(buffer_ring_max(usize::MAX), 32_768);
    }

    #[test]
    fn effective_features_are_asked_and_supported() {
        let none = RingFeatures::default();
        assert_eq!(effective(none), none);
        assert!(names(none).is_empty());
        let all = RingFeatures {
            recv_poll_first: true,
            buffer_ring: true,
            fixed_files: true,
            multishot_recv: true,
        };
        assert_eq!(effective(all), supported());
        assert_eq!(names(all), ALL.to_vec());
    }

    #[test]
    fn this_kernel_takes_poll_first_buffer_rings_and_fixed_files() {
        // Linux 5.19 and later (CI and the benchmark host run 6.x); the
        // probe must not report a refusal there.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.trim().split(['.', '-']);
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if (major, minor) >= (5, 19) && io_uring::IoUring::new(2).is_ok() {
            assert!(supported().recv_poll_first, "kernel {release}");
            assert!(supported().buffer_ring, "kernel {release}");
            assert!(supported().fixed_files, "kernel {release}");
        }
        if (major, minor) >= (6, 0) && io_uring::IoUring::new(2).is_ok() {
            assert!(supported().multishot_recv, "kernel {release}");
        }
    }

    /// The vendored monoio's registered files on a real ring and real
    /// sockets: a table of three slots holds the listener and two
    /// sockets, the third socket goes without and still carries bytes on
    /// its descriptor, a socket that closes empties its slot (its peer
    /// reads the end of the stream) and the next socket takes it.
    #[test]
    fn a_full_slot_table_leaves_sockets_on_their_descriptors() {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        use monoio::net::{TcpListener, TcpStream};
        let Some(mut rt) = test_runtime(supported().fixed_files, "io_uring registered files")
        else {
            return;
        };
        async fn ping(a: &mut TcpStream, b: &mut TcpStream) {
            let (res, _) = a.write_all(b"ping".to_vec()).await;
            res.unwrap();
            let (res, got) = b.read(Vec::with_capacity(16)).await;
            assert_eq!(res.unwrap(), 4);
            assert_eq!(got, b"ping");
        }
        monoio::ring_ext::set_fixed_files(3);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            assert!(listener.register_fixed());
            let mut pairs = Vec::new();
            for _ in 0..3 {
                let c = TcpStream::connect(addr).await.unwrap();
                let (s, _) = listener.accept().await.unwrap();
                pairs.push((c, s));
            }
            assert!(pairs[0].0.register_fixed());
            assert!(pairs[1].0.register_fixed());
            assert!(!pairs[2].0.register_fixed(), "every slot is taken");
            assert_eq!(monoio::ring_ext::fixed_files_stats(), (3, 3, 1));
            for (c, s) in pairs.iter_mut() {
                ping(c, s).await;
                ping(s, c).await;
            }
            // The first client goes: its slot is emptied (else the table
            // would keep the socket open and its peer would wait).
            let (c0, mut s0) = pairs.remove(0);
            drop(c0);
            let eof = s0.read(Vec::with_capacity(16));
            let (res, _) = monoio::time::timeout(std::time::Duration::from_secs(5), eof)
                .await
                .expect("the socket stayed open: its slot was not emptied");
            assert_eq!(res.unwrap(), 0, "the peer reads the end of the stream");
            assert_eq!(monoio::ring_ext::fixed_files_stats().0, 2);
            // The socket that went without takes the freed slot and works.
            let (c2, s2) = &mut pairs[1];
            assert!(c2.register_fixed());
            assert_eq!(monoio::ring_ext::fixed_files_stats(), (3, 3, 1));
            ping(c2, s2).await;
            ping(s2, c2).await;
        });
        monoio::ring_ext::set_fixed_files(0);
    }

    #[test]
    fn two_slots_per_connection_within_the_open_files_limit() {
        assert_eq!(
            fixed_file_slots(10_000, 1 << 20),
            20_064,
            "the default limit"
        );
        assert_eq!(fixed_file_slots(10_000, 20_000), 20_000);
        assert_eq!(fixed_file_slots(100, 1024), 264);
        assert_eq!(fixed_file_slots(usize::MAX, u64::MAX), 1 << 20);
        assert_eq!(fixed_file_slots(10, 0), 0, "no descriptors, no table");
    }
}
