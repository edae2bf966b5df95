//! Tiny io_uring feature probe (io-uring 0.6.4): what this kernel offers
//! for ringway issue #18. Loopback only.
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

const OPS: &[(u8, &str, &str)] = &[
    (6, "POLL_ADD", "5.1"), (9, "SENDMSG", "5.3"), (10, "RECVMSG", "5.3"),
    (13, "ACCEPT", "5.5"), (16, "CONNECT", "5.5"), (19, "CLOSE", "5.6"),
    (20, "FILES_UPDATE", "5.6"), (22, "READ", "5.6"), (23, "WRITE", "5.6"),
    (26, "SEND", "5.6"), (27, "RECV", "5.6"), (31, "PROVIDE_BUFFERS", "5.7"),
    (34, "SHUTDOWN", "5.11"), (40, "MSG_RING", "5.18"), (45, "SOCKET", "5.19"),
    (46, "URING_CMD", "5.19"), (47, "SEND_ZC", "6.0"), (48, "SENDMSG_ZC", "6.1"),
    (49, "READ_MULTISHOT", "6.7"), (54, "FIXED_FD_INSTALL", "6.8"),
    (56, "BIND", "6.11"), (57, "LISTEN", "6.11"), (58, "RECV_ZC", "6.15"),
    (59, "EPOLL_WAIT", "6.15"), (60, "READV_FIXED", "6.15"), (61, "WRITEV_FIXED", "6.15"),
    (62, "PIPE", "6.16"),
];

const FEATS: &[(u32, &str)] = &[
    (0, "SINGLE_MMAP"), (1, "NODROP"), (2, "SUBMIT_STABLE"), (3, "RW_CUR_POS"),
    (4, "CUR_PERSONALITY"), (5, "FAST_POLL"), (6, "POLL_32BITS"), (7, "SQPOLL_NONFIXED"),
    (8, "EXT_ARG"), (9, "NATIVE_WORKERS"), (10, "RSRC_TAGS"), (11, "CQE_SKIP"),
    (12, "LINKED_FILE"), (13, "REG_REG_RING"), (14, "RECVSEND_BUNDLE"), (15, "MIN_TIMEOUT"),
    (16, "RW_ATTR"), (17, "NO_IOWAIT"),
];

const POLL_FIRST: u16 = 1;
const RECV_MULTISHOT: u16 = 2;
const RECVSEND_BUNDLE: u16 = 1 << 4;
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
const F_BUFFER: u32 = 1;
const F_MORE: u32 = 2;
const F_SOCK_NONEMPTY: u32 = 4;
const F_NOTIF: u32 = 8;

/// Patch the SQE's ioprio field (offset 2, u16): io-uring 0.6.4's Recv/Send
/// builders have no setter for it.
fn set_ioprio(e: squeue::Entry, v: u16) -> squeue::Entry {
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(e) };
    let old = u16::from_ne_bytes([raw[2], raw[3]]);
    raw[2..4].copy_from_slice(&(old | v).to_ne_bytes());
    unsafe { std::mem::transmute(raw) }
}

fn raw_features() -> Option<u32> {
    let mut p = [0u32; 30]; // struct io_uring_params, 120 bytes
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 8u32, p.as_mut_ptr()) };
    if fd < 0 {
        return None;
    }
    unsafe { libc::close(fd as i32) };
    Some(p[5])
}

fn push(ring: &mut IoUring, e: squeue::Entry) {
    unsafe { ring.submission().push(&e).expect("sq full") };
}

/// Submit, wait for at least `n` CQEs (with a 1 s cap), return all.
fn reap(ring: &mut IoUring, n: usize) -> Vec<(u64, i32, u32)> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        let ts = types::Timespec::new().nsec(50_000_000);
        let args = types::SubmitArgs::new().timespec(&ts);
        let _ = ring.submitter().submit_with_args(1, &args);
        for c in ring.completion() {
            out.push((c.user_data(), c.result(), c.flags()));
        }
        if out.len() >= n || std::time::Instant::now() > deadline {
            return out;
        }
    }
}

fn fl(f: u32) -> String {
    let mut s = Vec::new();
    if f & F_BUFFER != 0 { s.push(format!("BUFFER(bid {})", f >> 16)); }
    if f & F_MORE != 0 { s.push("MORE".into()); }
    if f & F_SOCK_NONEMPTY != 0 { s.push("SOCK_NONEMPTY".into()); }
    if f & F_NOTIF != 0 { s.push("NOTIF".into()); }
    s.join("|")
}

fn errstr(r: i32) -> String {
    if r >= 0 || r < -4095 { format!("{r}") } else { format!("{} ({})", r, std::io::Error::from_raw_os_error(-r)) }
}

/// CQEs for one user_data only (others, e.g. a multishot poll's late
/// events, are dropped).
fn reap_ud(ring: &mut IoUring, ud: u64, n: usize) -> Vec<(u64, i32, u32)> {
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(reap(ring, 1).into_iter().filter(|c| c.0 == ud));
        if got.len() >= n { break; }
    }
    got
}

fn pair() -> (TcpListener, TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (l, c, s)
}

/// A page-aligned buffer ring of `n` entries, registered as group `bgid`,
/// filled with `n` buffers of `size` bytes. Returns (ring mem, buffers).
fn buf_ring(ring: &IoUring, n: u16, size: usize, bgid: u16, flags: u16) -> Result<(*mut types::BufRingEntry, Vec<Vec<u8>>), std::io::Error> {
    let bytes = (n as usize * 16 + 4095) & !4095;
    let mem = unsafe {
        libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE,
                   libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    } as *mut types::BufRingEntry;
    if flags == 0 {
        unsafe { ring.submitter().register_buf_ring(mem as u64, n, bgid)? };
    } else {
        // struct io_uring_buf_reg { u64 ring_addr; u32 ring_entries; u16 bgid; u16 flags; u64 resv[3]; }
        #[repr(C)]
        struct Reg { addr: u64, entries: u32, bgid: u16, flags: u16, resv: [u64; 3] }
        let reg = Reg { addr: mem as u64, entries: n as u32, bgid, flags, resv: [0; 3] };
        let r = unsafe { libc::syscall(libc::SYS_io_uring_register, ring.as_raw_fd(), 22u32, &reg as *const Reg, 1u32) };
        if r < 0 { return Err(std::io::Error::last_os_error()); }
    }
    let mut bufs = Vec::new();
    for i in 0..n {
        let mut b = vec![0u8; size];
        unsafe {
            let e = &mut *mem.add(i as usize);
            e.set_addr(b.as_mut_ptr() as u64);
            e.set_len(size as u32);
            e.set_bid(i);
        }
        bufs.push(b);
    }
    unsafe {
        let tail = types::BufRingEntry::tail(mem) as *const std::sync::atomic::AtomicU16;
        (*tail).store(n, std::sync::atomic::Ordering::Release);
    }
    Ok((mem, bufs))
}

fn main() {
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut uts) };
    let rel = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    println!("kernel: {}", rel.to_string_lossy());
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(s) => println!("kernel.io_uring_disabled = {}", s.trim()),
        Err(_) => println!("kernel.io_uring_disabled: (no sysctl)"),
    }

    // 1. Ring setup flags ringway uses.
    let mut b: io_uring::Builder<squeue::Entry, cqueue::Entry> = IoUring::builder();
    b.setup_single_issuer().setup_defer_taskrun();
    println!("\n[setup] single_issuer+defer_taskrun ring: {}",
             match b.build(64) { Ok(_) => "ok".to_string(), Err(e) => format!("ERR {e}") });
    let mut ring = IoUring::builder().build(64).expect("io_uring");

    // 2. Feature bits.
    println!("\n[features] (IORING_FEAT_*, from io_uring_setup params)");
    if let Some(f) = raw_features() {
        println!("  raw = {f:#x}");
        let mut on = Vec::new();
        let mut off = Vec::new();
        for (bit, n) in FEATS {
            if f & (1 << bit) != 0 { on.push(*n) } else { off.push(*n) }
        }
        println!("  set:     {}", on.join(" "));
        println!("  not set: {}", off.join(" "));
    }
    let p = ring.params();
    println!("  io-uring 0.6.4 helpers: fast_poll={} ext_arg={} cqe_skip={} linked_file={} native_workers={}",
             p.is_feature_fast_poll(), p.is_feature_ext_arg(), p.is_feature_skip_cqe_on_success(),
             p.is_feature_linked_file(), p.is_feature_native_workers());

    // 3. Opcode probe.
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).expect("probe");
    println!("\n[opcodes] (IORING_REGISTER_PROBE)");
    for (code, name, since) in OPS {
        println!("  {:>2} {:<17} (since {:<5}) {}", code, name, since,
                 if probe.is_supported(*code) { "yes" } else { "NO" });
    }
    let last = (0u16..=255).filter(|c| probe.is_supported(*c as u8)).max().unwrap_or(0);
    println!("  highest supported opcode number: {last}");

    // 4. Registered files.
    println!("\n[registered files]");
    let (_l, mut c, s) = pair();
    let r = ring.submitter().register_files_sparse(64);
    println!("  register_files_sparse(64): {:?}", r.as_ref().map(|_| "ok"));
    let r = ring.submitter().register_files_update(3, &[s.as_raw_fd()]);
    println!("  register_files_update(slot 3, accepted socket): {:?}", r);
    c.write_all(b"hello-fixed").unwrap();
    let mut buf = vec![0u8; 64];
    push(&mut ring, opcode::Recv::new(types::Fixed(3), buf.as_mut_ptr(), 64).build().user_data(1));
    let cq = reap(&mut ring, 1);
    println!("  Recv via IOSQE_FIXED_FILE slot 3: res={} data={:?}", errstr(cq[0].1),
             String::from_utf8_lossy(&buf[..cq[0].1.max(0) as usize]));

    // 5. POLL_FIRST / BUNDLE accepted on recv / send?
    println!("\n[recv/send ioprio flags]");
    c.write_all(b"pf").unwrap();
    push(&mut ring, set_ioprio(opcode::Recv::new(types::Fd(s.as_raw_fd()), buf.as_mut_ptr(), 64).build(), POLL_FIRST).user_data(2));
    let cq = reap(&mut ring, 1);
    println!("  Recv + IORING_RECVSEND_POLL_FIRST (data already queued): res={}", errstr(cq[0].1));
    push(&mut ring, set_ioprio(opcode::Send::new(types::Fd(s.as_raw_fd()), b"x".as_ptr(), 1).build(), POLL_FIRST).user_data(3));
    let cq = reap(&mut ring, 1);
    println!("  Send + IORING_RECVSEND_POLL_FIRST: res={}", errstr(cq[0].1));
    let mut sink = [0u8; 8];
    let _ = c.read(&mut sink);
    push(&mut ring, set_ioprio(opcode::Recv::new(types::Fd(s.as_raw_fd()), buf.as_mut_ptr(), 64).build(), 1 << 7).user_data(4));
    let cq = reap(&mut ring, 1);
    println!("  Recv + bogus ioprio bit 7 (control: expect EINVAL): res={}", errstr(cq[0].1));

    // 6. Provided buffer ring + multishot recv.
    println!("\n[provided buffers]");
    let mut ring2 = IoUring::builder().build(64).unwrap();
    match buf_ring(&ring2, 8, 4096, 1, 0) {
        Ok((_mem, bufs)) => {
            std::mem::forget(bufs); // the kernel may still hold them
            println!("  IORING_REGISTER_PBUF_RING (8 x 4 KiB, bgid 1): ok");
            let (_l2, mut c2, s2) = pair();
            push(&mut ring2, opcode::RecvMulti::new(types::Fd(s2.as_raw_fd()), 1).build().user_data(10));
            let _ = reap(&mut ring2, 0);
            let mut got = Vec::new();
            for msg in [&b"GET /a HTTP/1.1\r\n\r\n"[..], b"GET /b HTTP/1.1\r\n\r\n", b"GET /c HTTP/1.1\r\n\r\n"] {
                c2.write_all(msg).unwrap();
                got.extend(reap(&mut ring2, 1));
            }
            for (_, r, f) in &got {
                println!("  RecvMulti CQE: res={} flags={}", errstr(*r), fl(*f));
            }
            // Bundle: one CQE may cover several buffers (6.10+).
            push(&mut ring2, opcode::AsyncCancel::new(10).build().user_data(11));
            let _ = reap(&mut ring2, 2);
        }
        Err(e) => println!("  IORING_REGISTER_PBUF_RING: ERR {e}"),
    }
    match buf_ring(&ring2, 8, 4096, 2, 2 /* IOU_PBUF_RING_INC */) {
        Ok((_m, bufs)) => { std::mem::forget(bufs); println!("  PBUF_RING with IOU_PBUF_RING_INC (incremental consumption, 6.12): ok") }
        Err(e) => println!("  PBUF_RING with IOU_PBUF_RING_INC: ERR {e}"),
    }
    {
        let (_l3, mut c3, s3) = pair();
        let e = set_ioprio(opcode::RecvMulti::new(types::Fd(s3.as_raw_fd()), 2).build(), RECVSEND_BUNDLE).user_data(12);
        push(&mut ring2, e);
        let _ = reap(&mut ring2, 0);
        c3.write_all(&[b'z'; 10000]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let got = reap(&mut ring2, 1);
        for (_, r, f) in got.iter().take(3) {
            println!("  RecvMulti+BUNDLE on incremental ring (10000 B): res={} flags={}", errstr(*r), fl(*f));
        }
    }

    // 7. Multishot poll (readiness for idle connections).
    println!("\n[multishot poll]");
    {
        let (_l4, mut c4, s4) = pair();
        push(&mut ring, opcode::PollAdd::new(types::Fd(s4.as_raw_fd()), libc::POLLIN as u32).multi(true).build().user_data(20));
        let _ = reap(&mut ring, 0);
        c4.write_all(b"1").unwrap();
        let got = reap(&mut ring, 1);
        for (_, r, f) in &got { println!("  PollAdd(multi) POLLIN: res={r:#x} flags={}", fl(*f)); }
    }

    // 8. Accept into a fixed file slot, multishot accept, socket+connect direct.
    println!("\n[accept / connect with fixed files]");
    {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        unsafe {
            let one: libc::c_int = 1;
            libc::setsockopt(l.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const _, 4);
        }
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        push(&mut ring, opcode::Accept::new(types::Fd(l.as_raw_fd()), std::ptr::null_mut(), std::ptr::null_mut())
            .file_index(Some(types::DestinationSlot::auto_target())).build().user_data(30));
        let got = reap_ud(&mut ring, 30, 1);
        println!("  Accept direct (IORING_FILE_INDEX_ALLOC): res={} (= fixed slot)", errstr(got[0].1));
        push(&mut ring, opcode::AcceptMulti::new(types::Fd(l.as_raw_fd())).build().user_data(31));
        let _ = reap(&mut ring, 0);
        let _c2 = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let _c3 = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let got = reap_ud(&mut ring, 31, 2);
        let mut fds = Vec::new();
        for (_, r, f) in &got { println!("  AcceptMulti CQE: res={} flags={}", errstr(*r), fl(*f)); if *r > 0 { fds.push(*r) } }
        // TCP_NODELAY inherited from the listener?
        for fd in &fds {
            let mut v: libc::c_int = 0;
            let mut len: libc::socklen_t = 4;
            unsafe { libc::getsockopt(*fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &mut v as *mut _ as *mut _, &mut len) };
            println!("  accepted fd {fd}: TCP_NODELAY={v} (listener had it set; no setsockopt after accept)");
        }
        {
            let l0 = TcpListener::bind("127.0.0.1:0").unwrap();
            let _k = TcpStream::connect(l0.local_addr().unwrap()).unwrap();
            let (a, _) = l0.accept().unwrap();
            let mut v: libc::c_int = 0;
            let mut len: libc::socklen_t = 4;
            unsafe { libc::getsockopt(a.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, &mut v as *mut _ as *mut _, &mut len) };
            println!("  control: listener without TCP_NODELAY -> accepted TCP_NODELAY={v}");
        }
        push(&mut ring, opcode::AsyncCancel::new(31).build().user_data(32));
        let _ = reap(&mut ring, 2);
        push(&mut ring, opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0)
            .file_index(Some(types::DestinationSlot::auto_target())).build().user_data(33));
        let got = reap_ud(&mut ring, 33, 1);
        println!("  Socket direct: res={} (= fixed slot)", errstr(got[0].1));
        if got[0].1 >= 0 {
            let slot = got[0].1 as u32;
            let addr = l.local_addr().unwrap();
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
                sin_zero: [0; 8],
            };
            push(&mut ring, opcode::Connect::new(types::Fixed(slot), &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32).build().user_data(34));
            let got = reap_ud(&mut ring, 34, 1);
            println!("  Connect on fixed slot {slot}: res={}", errstr(got[0].1));
            push(&mut ring, opcode::Shutdown::new(types::Fixed(slot), libc::SHUT_RDWR).build().user_data(35));
            let got = reap_ud(&mut ring, 35, 1);
            println!("  Shutdown on fixed slot {slot} (watchdog without a raw fd): res={}", errstr(got[0].1));
            push(&mut ring, opcode::Close::new(types::Fixed(slot)).build().user_data(36));
            let got = reap_ud(&mut ring, 36, 1);
            println!("  Close fixed slot {slot}: res={}", errstr(got[0].1));
        }
    }

    // 9. send_zc on loopback.
    println!("\n[send_zc]");
    {
        let (_l5, c5, s5) = pair();
        let reader = std::thread::spawn(move || {
            let mut c5 = c5;
            let mut sink = vec![0u8; 1 << 16];
            let mut n = 0;
            while n < (256 << 10) {
                match c5.read(&mut sink) { Ok(0) | Err(_) => break, Ok(k) => n += k }
            }
            n
        });
        let data = vec![7u8; 256 << 10];
        push(&mut ring, opcode::SendZc::new(types::Fd(s5.as_raw_fd()), data.as_ptr(), data.len() as u32)
            .zc_flags(SEND_ZC_REPORT_USAGE).build().user_data(40));
        let got = reap_ud(&mut ring, 40, 2);
        for (_, r, f) in &got {
            let note = if f & F_NOTIF != 0 {
                if (*r as u32) & 0x8000_0000 != 0 { " (NOTIF: data was COPIED - loopback)" } else { " (NOTIF: zero-copy)" }
            } else { "" };
            println!("  SendZc 256 KiB CQE: res={} flags={}{}", errstr(*r), fl(*f), note);
        }
        drop(s5);
        println!("  reader got {} bytes", reader.join().unwrap());
    }
}
