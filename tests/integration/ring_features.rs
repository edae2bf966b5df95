//! `[runtime] ring_features` (issue #18): io_uring features beyond
//! monoio's own, probed at start, reported in the start-up summary and in
//! `/workers`, and overridden by `RINGWAY_RING_FEATURES` (the suite runs a
//! second time with each feature flipped from its default: `./run.sh
//! test`).

use ringway_tests::client::{Client, Request};
use ringway_tests::config::q;
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::check_config;
use ringway_tests::setup::Setup;

/// Whether the suite runs with `RINGWAY_RING_FEATURES` set (it wins over
/// the file, so the file's choice is not what runs).
fn overridden() -> bool {
    std::env::var_os("RINGWAY_RING_FEATURES").is_some()
}

/// Requests of several shapes through `s`: keep-alive GETs, a body that
/// arrives in parts, a new connection per request.
fn traffic(s: &Setup) {
    let mut c = s.client();
    for i in 0..50 {
        let r = c.request(&Request::get(&format!("/rf/{i}")));
        assert_eq!(r.status(), 200, "{r}");
    }
    let body = vec![b'b'; 200_000];
    let r = c.request(&Request::post("/rf/upload").body(body));
    assert_eq!(r.status(), 200, "{r}");
    for i in 0..20 {
        let r = s.client().request(&Request::get(&format!("/rf/new/{i}")));
        assert_eq!(r.status(), 200, "{r}");
    }
}

/// `/workers`, parsed.
fn workers_json(s: &Setup) -> serde_json::Value {
    let r = Client::connect(s.proxy.admin_addr()).get("/workers");
    serde_json::from_slice(&r.body).unwrap()
}

/// The `ring_features` list of each worker in `/workers`.
fn worker_features(s: &Setup) -> Vec<Vec<String>> {
    workers_json(s)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w["ring_features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn recv_poll_first_serves_and_is_reported() {
    let s = Setup::new("ring-features-on", |c| {
        c.runtime("ring_features", "[\"recv_poll_first\"]")
            .runtime("workers", "2")
            .admin()
    });
    let out = s.proxy.stdout();
    if !out.contains("driver io_uring") {
        println!("SKIP ring features: io_uring is not available here (epoll fallback)");
        return;
    }
    if !out.contains("ringway: ring features: recv_poll_first") && !overridden() {
        // The probe refused it: only a kernel older than 5.19 does.
        println!("SKIP recv_poll_first: this kernel refuses IORING_RECVSEND_POLL_FIRST\n{out}");
        return;
    }
    if !overridden() {
        assert!(
            out.contains("ringway: ring features: recv_poll_first (off: buffer_ring fixed_files multishot_recv;"),
            "{out}"
        );
        assert_eq!(
            worker_features(&s),
            vec![vec!["recv_poll_first".to_owned()]; 2]
        );
    }
    traffic(&s);
}

#[test]
fn buffer_ring_and_fixed_files_by_default_none_when_empty_and_an_unknown_one_is_refused() {
    let s = Setup::new("ring-features-default", |c| c.admin());
    let out = s.proxy.stdout();
    if !overridden() && out.contains("driver io_uring") {
        // On by default where the kernel takes them (5.19 and later).
        let (line, listed) = if out.contains("ringway: ring features: buffer_ring fixed_files") {
            (
                "ringway: ring features: buffer_ring fixed_files (off: recv_poll_first multishot_recv;",
                vec!["buffer_ring".to_owned(), "fixed_files".to_owned()],
            )
        } else {
            (
                "ringway: ring features: none (off: recv_poll_first buffer_ring fixed_files multishot_recv;",
                vec![],
            )
        };
        assert!(out.contains(line), "{out}");
        assert!(
            worker_features(&s).iter().all(|f| *f == listed),
            "{:?}",
            worker_features(&s)
        );
    }
    traffic(&s);
    drop(s);

    // An empty list turns every feature off.
    let s = Setup::new("ring-features-none", |c| {
        c.runtime("ring_features", "[]").admin()
    });
    let out = s.proxy.stdout();
    if !overridden() && out.contains("driver io_uring") {
        assert!(
            out.contains(
                "ringway: ring features: none (off: recv_poll_first buffer_ring fixed_files multishot_recv;"
            ),
            "{out}"
        );
        assert!(worker_features(&s).iter().all(|f| f.is_empty()));
        let v = workers_json(&s);
        assert!(v["workers"][0]["buffer_ring"].is_null(), "{v}");
        assert!(v["workers"][0]["fixed_files"].is_null(), "{v}");
    }
    traffic(&s);

    let dir = TestDir::new("ring-features-check");
    let cfg = format!(
        "[runtime]\nworkers = 1\nring_features = [\"recv_poll_first\", {}]\n",
        q("fixed_buffers")
    );
    let out = check_config(&dir, "bad.toml", &cfg);
    let all = out.all();
    assert_ne!(out.code(), Some(0), "{all}");
    assert!(all.contains("runtime.ring_features[1]"), "{all}");
    assert!(
        all.contains("unknown ring feature \"fixed_buffers\""),
        "{all}"
    );
    assert!(all.contains("line 3"), "{all}");
}

/// Reads of every shape through a plain keep-alive connection (what the
/// buffer ring and the multishot receive change): heads larger than a ring
/// buffer (2 KiB) and than a head buffer (8 KiB) come whole, header bytes
/// intact; requests pipelined behind an idle wait are all answered; a burst
/// of more connections than the ring has buffers (it starts with 16) is
/// served whole, the ring growing by one buffer each time a read finds it
/// empty.
fn reads_of_every_shape(s: &Setup) {
    // Heads of every size after an idle wait, on one connection; the
    // origin echoes the padded header, so a byte lost or repeated where
    // the ring buffer ends would show.
    let mut c = s.client();
    for (i, size) in [10usize, 1_900, 2_048, 2_100, 5_000, 9_000, 20_000]
        .into_iter()
        .enumerate()
    {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let pad: String = (0..size).map(|j| (b'a' + (j % 26) as u8) as char).collect();
        let r = c.request(
            &Request::get(&format!("/big/{i}"))
                .header("x-pad", &pad)
                .header("x-echo-headers", "x-pad"),
        );
        assert_eq!(r.status(), 200, "{size}-byte header: {r}");
        assert_eq!(
            r.header("x-echo-x-pad"),
            Some(pad.as_str()),
            "{size}-byte header"
        );
    }

    // Three requests in one write, after the connection went idle.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let mut wire = Vec::new();
    for i in 0..3 {
        wire.extend_from_slice(&Request::get(&format!("/pipelined/{i}")).to_bytes());
    }
    c.send(&wire);
    for i in 0..3 {
        let r = c.read_response();
        assert_eq!(r.status(), 200, "pipelined request {i}: {r}");
    }

    // A burst: 200 idle connections send their next request at once.
    let mut clients: Vec<_> = (0..200)
        .map(|i| {
            let mut c = s.client();
            let r = c.request(&Request::get(&format!("/burst/0/{i}")));
            assert_eq!(r.status(), 200, "connection {i}: {r}");
            c
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&Request::get(&format!("/burst/1/{i}")).to_bytes());
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status(), 200, "connection {i}, second request: {r}");
        assert!(!r.has_token("connection", "close"), "connection {i}: {r}");
    }
}

/// `buffer_ring`: an idle keep-alive connection's read takes a buffer from
/// the worker's provided-buffer ring only when its next request arrives.
/// Heads larger than a ring buffer (2 KiB) and than a head buffer (8 KiB)
/// come whole, header bytes intact; requests pipelined behind an idle wait
/// are all answered; a burst of more connections than the ring has
/// buffers (it starts with 16) is served whole, the ring growing by one
/// buffer each time a read finds it empty.
#[test]
fn buffer_ring_serves_and_is_reported() {
    let s = Setup::new("ring-features-buffer-ring", |c| {
        c.runtime("ring_features", "[\"buffer_ring\"]")
            .runtime("workers", "1")
            .admin()
    });
    let out = s.proxy.stdout();
    if !out.contains("driver io_uring") {
        println!("SKIP buffer_ring: io_uring is not available here (epoll fallback)");
        return;
    }
    if !out.contains("ringway: ring features: buffer_ring") && !overridden() {
        println!("SKIP buffer_ring: this kernel refuses provided-buffer rings\n{out}");
        return;
    }
    if !overridden() {
        assert!(
            out.contains("ringway: ring features: buffer_ring (off: recv_poll_first fixed_files multishot_recv;"),
            "{out}"
        );
        assert_eq!(worker_features(&s), vec![vec!["buffer_ring".to_owned()]]);
    }
    traffic(&s);
    reads_of_every_shape(&s);

    // `/workers` reports the ring (published once a second): it was
    // registered and used, and grew by one buffer each time it ran dry.
    if !overridden() {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let v = workers_json(&s);
        let ring = &v["workers"][0]["buffer_ring"];
        let buffers = ring["buffers"].as_u64().unwrap_or(0);
        let ran_dry = ring["ran_dry"].as_u64().unwrap_or(u64::MAX);
        println!("buffer ring after the burst: {ring}");
        assert!(buffers >= 16, "{v}");
        assert_eq!(buffers, (16 + ran_dry).min(1024), "{v}");
    }
}

/// `multishot_recv`: a plain keep-alive connection's reads come from one
/// multishot receive, armed when it first parks. Every shape of read
/// still arrives whole and in order (heads larger than a ring buffer,
/// pipelined requests, a burst that runs the ring dry, an upload, which
/// ends the receive for its connection); `/workers` counts the receives;
/// and a kept-alive request costs three ring operations instead of four:
/// its bytes arrive with no receive submitted.
#[test]
fn multishot_recv_serves_and_saves_a_ring_operation_per_request() {
    let s = Setup::new("ring-features-multishot", |c| {
        c.runtime(
            "ring_features",
            "[\"buffer_ring\", \"fixed_files\", \"multishot_recv\"]",
        )
        .runtime("workers", "1")
        .admin()
    });
    let out = s.proxy.stdout();
    if !out.contains("driver io_uring") {
        println!("SKIP multishot_recv: io_uring is not available here (epoll fallback)");
        return;
    }
    if !out.contains("ringway: ring features: buffer_ring fixed_files multishot_recv")
        && !overridden()
    {
        println!("SKIP multishot_recv: this kernel refuses multishot receives\n{out}");
        return;
    }
    traffic(&s);
    reads_of_every_shape(&s);
    if overridden() {
        return;
    }
    assert!(
        out.contains(
            "ringway: ring features: buffer_ring fixed_files multishot_recv (off: recv_poll_first;"
        ),
        "{out}"
    );

    // One connection, many requests: one receive, three operations each.
    let mut c = s.client();
    let r = c.request(&Request::get("/ms/warm"));
    assert_eq!(r.status(), 200, "{r}");
    let settle = || std::thread::sleep(std::time::Duration::from_millis(1300));
    settle();
    let before = submissions(&s);
    let arms = workers_json(&s)["workers"][0]["multishot_recv"]["arms"]
        .as_u64()
        .unwrap();
    const N: u64 = 300;
    for i in 0..N {
        let r = c.request(&Request::get(&format!("/ms/{i}")));
        assert_eq!(r.status(), 200, "{r}");
    }
    settle();
    let ops = submissions(&s) - before;
    println!("{ops} ring operations for {N} kept-alive requests");
    assert!(ops >= 2 * N, "{ops} operations for {N} requests");
    assert!(ops <= 3 * N + 10, "{ops} operations for {N} requests");
    let v = workers_json(&s);
    let ms = &v["workers"][0]["multishot_recv"];
    assert_eq!(
        ms["arms"].as_u64(),
        Some(arms),
        "no receive armed again: {v}"
    );
    assert!(ms["armed"].as_u64().unwrap() >= 1, "{v}");

    // A large download still moves with splice(2): writes to the socket
    // do not race its receive. Intact, and the receive stays armed.
    let spliced = || {
        let r = Client::connect(s.proxy.admin_addr()).get("/stats");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["total"]["listeners"][0]["bytes_spliced"]
            .as_u64()
            .unwrap()
    };
    let before = spliced();
    const SIZE: u64 = 3 << 20;
    let r = c.request(&Request::get(&format!("/bytes/{SIZE}")));
    assert_eq!(r.status(), 200, "{}", r.status());
    assert!(
        r.body == ringway_tests::pattern::Pattern::new().vec(SIZE as usize),
        "the download came back changed"
    );
    assert!(spliced() - before >= SIZE - 64 * 1024, "not spliced");
    let r = c.request(&Request::get("/ms/after-download"));
    assert_eq!(r.status(), 200, "{r}");

    // An upload ends its connection's receive, for good; the body arrives
    // whole (the origin echoes it).
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let r = c.request(&Request::post("/ms/upload").body(body.clone()));
    assert_eq!(r.status(), 200, "{r}");
    assert!(r.body == body, "the body came back changed");
    for i in 0..3 {
        let r = c.request(&Request::get(&format!("/ms/after/{i}")));
        assert_eq!(r.status(), 200, "{r}");
    }
    drop(c);
    settle();
    let v = workers_json(&s);
    assert_eq!(
        v["workers"][0]["multishot_recv"]["arms"].as_u64(),
        Some(arms),
        "an uploading connection arms no new receive: {v}"
    );
}

/// `runtime.cq_entries`, and its default of two completions per
/// connection, reach the kernel: each worker's completion queue, as the
/// ring's fdinfo reports it in `/workers`, is the size asked for, and the
/// proxy serves with it. (A queue smaller than a burst of completions
/// sends them through the kernel's overflow list: `bench/README.md`.)
#[test]
fn the_completion_queue_is_the_size_configured() {
    for (label, set, want) in [
        ("cq-default", None, 8192u64),
        ("cq-set", Some("16384"), 16384),
    ] {
        let s = Setup::new(label, |c| {
            let c = c
                .runtime("max_connections_per_worker", "3000")
                .runtime("workers", "2")
                .admin();
            match set {
                Some(v) => c.runtime("cq_entries", v),
                None => c,
            }
        });
        let out = s.proxy.stdout();
        assert!(
            out.contains(&format!("ring_entries 1024 (completion queue {want})")),
            "{out}"
        );
        traffic(&s);
        if !out.contains("driver io_uring") {
            println!("SKIP {label}: io_uring is not available here (epoll fallback)");
            continue;
        }
        let v = workers_json(&s);
        let workers = v["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 2);
        for w in workers {
            assert_eq!(w["ring"]["cq_entries"].as_u64(), Some(want), "{w}");
            assert_eq!(w["ring"]["sq_entries"].as_u64(), Some(1024), "{w}");
        }
    }
}

/// The ring operations of all workers so far (`/workers`, sampled by the
/// admin side once a second).
fn submissions(s: &Setup) -> u64 {
    workers_json(s)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ring"]["submissions"].as_u64().unwrap())
        .sum()
}

/// A connection that carries one request costs six ring operations:
/// accept, receive the request, send it upstream, receive the answer, send
/// it back, close. Closing a socket used to add a seventh: dropping the
/// close operation asked the kernel to cancel it, which found nothing.
#[test]
fn a_connection_per_request_costs_six_ring_operations() {
    let s = Setup::new("ops-per-connection", |c| c.admin());
    if !s.proxy.stdout().contains("driver io_uring") {
        println!("SKIP ops per connection: io_uring is not available here (epoll fallback)");
        return;
    }
    // Warm: the upstream connection is pooled.
    let r = s
        .client()
        .request(&Request::get("/ops/warm").header("connection", "close"));
    assert_eq!(r.status(), 200, "{r}");
    let settle = || std::thread::sleep(std::time::Duration::from_millis(1300));
    settle();
    let before = submissions(&s);
    const N: u64 = 300;
    for i in 0..N {
        let r = s
            .client()
            .request(&Request::get(&format!("/ops/{i}")).header("connection", "close"));
        assert_eq!(r.status(), 200, "{r}");
    }
    settle();
    let ops = submissions(&s) - before;
    println!("{ops} ring operations for {N} connections");
    assert!(ops >= 5 * N, "{ops} operations for {N} connections");
    assert!(ops <= 6 * N + 10, "{ops} operations for {N} connections");
}

/// The sockets in the registered-files tables of `pid`'s rings, as the
/// kernel lists them in each io_uring descriptor's fdinfo (`socket:[INODE]`).
/// The listing needs the ring's lock, which an idle worker does not hold;
/// a read that finds it held lists nothing, so a few reads are made and the
/// first that lists anything is taken.
fn registered_sockets(pid: u32) -> Vec<String> {
    for _ in 0..20 {
        let mut all = Vec::new();
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
        {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            if !target.to_string_lossy().contains("io_uring") {
                continue;
            }
            let name = fd.file_name();
            let info =
                std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", name.to_string_lossy()))
                    .unwrap_or_default();
            let mut lines = info.lines().skip_while(|l| !l.starts_with("UserFiles:"));
            lines.next();
            for line in lines {
                let Some((slot, file)) = line.split_once(": ") else {
                    break;
                };
                if slot.trim().parse::<u32>().is_err() {
                    break;
                }
                all.push(file.trim().to_owned());
            }
        }
        if !all.is_empty() {
            return all;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Vec::new()
}

/// The sockets `pid` holds as descriptors (`socket:[INODE]`).
fn open_sockets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.starts_with("socket:["))
        .collect()
}

/// The inodes of `pid`'s connected TCP sockets whose local port is `port`
/// (the proxy's side of its client connections), as `socket:[INODE]`.
fn client_side_sockets(pid: u32, port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            let local_port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 0A is LISTEN.
            if local_port == Some(port) && cols[3] != "0A" {
                out.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    out
}

/// `fixed_files`: a kept-alive client connection's socket, an upstream
/// connection's and the listener get a slot in the worker ring's
/// registered-files table (the kernel's fdinfo lists the table); a
/// connection that carries one request never takes one; a socket whose
/// connection ends leaves the table, so it really closes (the client reads
/// the end of the stream) and the table holds no socket the process has
/// closed; `/workers` counts the slots in use.
#[test]
fn fixed_files_hold_kept_alive_sockets_and_let_go_of_closed_ones() {
    let s = Setup::new("ring-features-fixed-files", |c| {
        c.runtime("ring_features", "[\"fixed_files\"]")
            .runtime("workers", "1")
            .admin()
    });
    let out = s.proxy.stdout();
    if !out.contains("driver io_uring") {
        println!("SKIP fixed_files: io_uring is not available here (epoll fallback)");
        return;
    }
    if overridden() {
        println!("SKIP fixed_files checks: RINGWAY_RING_FEATURES chooses the features");
        traffic(&s);
        return;
    }
    if !out.contains("ringway: ring features: fixed_files") {
        println!("SKIP fixed_files: this kernel refuses registered files\n{out}");
        return;
    }
    assert!(
        out.contains(
            "ringway: ring features: fixed_files (off: recv_poll_first buffer_ring multishot_recv;"
        ),
        "{out}"
    );
    let pid = s.proxy.pid();
    let port = s.proxy.addr("public").port();
    let settle = || std::thread::sleep(std::time::Duration::from_millis(300));
    let clients_registered = || {
        let reg = registered_sockets(pid);
        let clients = client_side_sockets(pid, port);
        reg.iter().filter(|r| clients.contains(r)).count()
    };
    // The listener, before any connection.
    let at_start = registered_sockets(pid);
    assert_eq!(at_start.len(), 1, "{at_start:?}");

    // Thirty kept-alive connections, two requests each.
    let mut kept: Vec<_> = (0..30)
        .map(|i| {
            let mut c = s.client();
            for j in 0..2 {
                let r = c.request(&Request::get(&format!("/ff/{i}/{j}")));
                assert_eq!(r.status(), 200, "{r}");
            }
            c
        })
        .collect();
    settle();
    assert_eq!(clients_registered(), 30, "{:?}", registered_sockets(pid));

    // Connections that carry one request take no slot.
    for i in 0..20 {
        let r = s
            .client()
            .request(&Request::get(&format!("/ff/once/{i}")).header("connection", "close"));
        assert_eq!(r.status(), 200, "{r}");
    }
    settle();
    assert_eq!(clients_registered(), 30, "{:?}", registered_sockets(pid));

    // A registered connection the client asks to close ends: the proxy's
    // side really closes (an end of stream), its slot emptied.
    let mut last = kept.pop().unwrap();
    let r = last.request(&Request::get("/ff/bye").header("connection", "close"));
    assert_eq!(r.status(), 200, "{r}");
    last.set_read_timeout(std::time::Duration::from_secs(5));
    let mut rest = [0u8; 16];
    let n = std::io::Read::read(&mut last.tcp(), &mut rest);
    assert!(
        matches!(n, Ok(0)),
        "the proxy kept the connection open: {n:?}"
    );

    // The rest close from the client's side.
    drop(kept);
    settle();
    assert_eq!(clients_registered(), 0, "{:?}", registered_sockets(pid));
    // Nothing in the table that the process closed: every registered
    // socket is still one of its descriptors (the listener and the pooled
    // upstream connections).
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let registered = registered_sockets(pid);
    let open = open_sockets(pid);
    assert!(
        registered.len() >= 2,
        "listener and upstream: {registered:?}"
    );
    for r in &registered {
        assert!(
            open.contains(r),
            "{r} is registered but closed: {registered:?} {open:?}"
        );
    }
    // `/workers` (published once a second) counts the same slots.
    let v = workers_json(&s);
    let ff = &v["workers"][0]["fixed_files"];
    assert_eq!(ff["in_use"].as_u64(), Some(registered.len() as u64), "{v}");
    // Two slots per connection the worker may hold (10,000 by default)
    // and 64, within the open-files limit.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(ff["slots"].as_u64(), Some(20_064u64.min(nofile)), "{v}");
    assert_eq!(ff["went_without"].as_u64(), Some(0), "{v}");
    drop(s);

    // Off: nothing is registered.
    let s = Setup::new("ring-features-no-fixed-files", |c| {
        c.runtime("ring_features", "[]").runtime("workers", "1")
    });
    traffic(&s);
    let mut c = s.client();
    for j in 0..3 {
        let r = c.request(&Request::get(&format!("/ff/off/{j}")));
        assert_eq!(r.status(), 200, "{r}");
    }
    assert!(registered_sockets(s.proxy.pid()).is_empty());
}
