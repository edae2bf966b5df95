//! Idle keep-alive connections hold no read buffer (issue #18):
//! `[runtime] idle_read_release` (default on) cancels the read of a
//! connection idle for 1 s, gives its 16 KiB buffer back and polls for
//! readiness instead. N connections each send one request (with a 12 KiB
//! header, so the read buffer is really written, as a request with cookies
//! would) and go idle; the proxy's RSS is measured once they are past the
//! grace, then each connection must serve a second request. The same runs
//! with the release forced off give the comparison.
//!
//! `ring_features = ["buffer_ring"]` (io_uring) lends no buffer at all
//! while a connection waits: with the release off, the same connections
//! then hold no read buffer either, and hold it from the first moment they
//! idle. Every run here names its ring features (`RINGWAY_RING_FEATURES`,
//! which wins over the test suite's own setting of it).

use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request};
use ringway_tests::config::q;
use ringway_tests::proxy::memory_of;
use ringway_tests::setup::Setup;

/// Header padding that fills most of the read buffer.
const PAD: usize = 12 * 1024;
/// Past the release grace (1 s) and a watchdog tick, with room to spare.
const IDLE_WAIT: Duration = Duration::from_millis(2000);
/// Less RSS per idle connection with the release on than with it off: most
/// of the 16 KiB read buffer (`runtime::worker::BUF_SIZE`), of which the
/// padded request writes 12 KiB.
const SAVED_KIB: u64 = 8;

/// RSS growth in KiB (after a warm-up) over `n` connections that each
/// served a request and then sat idle past the release grace; each must
/// serve a second request afterwards.
fn idle_growth(label: &str, driver: &str, release: bool, features: &str, n: usize) -> u64 {
    raise_nofile(n as u64 + 1024);
    let s = Setup::with_env(label, &[("RINGWAY_RING_FEATURES", features)], |c| {
        c.runtime("driver", &q(driver))
            .runtime("idle_read_release", if release { "true" } else { "false" })
            .limit("idle_timeout", &q("60s"))
    });
    let summary = format!(
        "ringway: idle_read_release {}",
        if release { "on" } else { "off" }
    );
    assert!(s.proxy.stdout().contains(&summary), "{}", s.proxy.stdout());
    if !features.is_empty()
        && !s
            .proxy
            .stdout()
            .contains(&format!("ring features: {features}"))
    {
        println!(
            "SKIP {label}: ring features {features} not in use here\n{}",
            s.proxy.stdout()
        );
        return 0;
    }
    let pad = "p".repeat(PAD);
    let req =
        |i: usize, round: u32| Request::get(&format!("/idle/{round}/{i}")).header("x-pad", &pad);
    // Warm-up: the worker's free lists, the upstream pool, the allocator.
    for i in 0..64 {
        let mut c = s.client();
        assert_eq!(c.request(&req(i, 0)).status(), 200);
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = memory_of(s.proxy.pid()).unwrap().rss_kib;
    let started = Instant::now();
    let mut clients: Vec<Client> = (0..n)
        .map(|i| {
            let mut c = s.client();
            let r = c.request(&req(i, 1));
            assert_eq!(r.status(), 200, "connection {i}, first request: {r}");
            c
        })
        .collect();
    let opened = started.elapsed();
    std::thread::sleep(IDLE_WAIT);
    let rss1 = memory_of(s.proxy.pid()).unwrap().rss_kib;
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.request(&req(i, 2));
        assert_eq!(r.status(), 200, "connection {i}, after its idle time: {r}");
        assert!(!r.has_token("connection", "close"), "connection {i}: {r}");
    }
    let grown = rss1.saturating_sub(rss0);
    println!(
        "idle_read_release {release} ({driver}, ring features [{features}]): {n} connections opened in {opened:?}; \
         RSS {rss0} -> {rss1} KiB once idle: +{grown} KiB, {:.1} KiB per connection",
        grown as f64 / n as f64
    );
    grown
}

/// The same idle connections with the release off and on: with it on,
/// each holds at least [`SAVED_KIB`] less (its read buffer is gone). An
/// idle connection still costs its task (the stage loop's future, tens of
/// KiB in a debug build), so the growth is compared, not bounded alone.
fn off_then_on(label: &str, driver: &str, n: usize) {
    let off = idle_growth(&format!("{label}-off"), driver, false, "", n);
    let on = idle_growth(&format!("{label}-on"), driver, true, "", n);
    let saved = off.saturating_sub(on);
    println!("{driver}: {saved} KiB saved over {n} idle connections");
    assert!(
        on + n as u64 * SAVED_KIB < off,
        "{n} idle connections ({driver}) grew the RSS by {on} KiB with idle_read_release on, \
         {off} KiB with it off: expected at least {} KiB less with it on",
        n as u64 * SAVED_KIB
    );
}

/// Idle connections give their read buffer back; forced off, they keep it,
/// and either way every connection serves its next request.
#[test]
fn idle_keepalive_connections_hold_no_read_buffer() {
    off_then_on("idle-release", "auto", 1500);
}

/// The epoll driver cancels the read too (a cancelled readiness).
#[test]
fn idle_read_release_works_with_the_legacy_driver() {
    off_then_on("idle-release-legacy", "legacy", 1000);
}

/// With `buffer_ring` and the release off, idle connections hold no read
/// buffer either (none is lent while they wait): at least [`SAVED_KIB`]
/// less each than the same connections without the ring.
#[test]
fn buffer_ring_idle_connections_hold_no_read_buffer() {
    let n = 1500;
    let without = idle_growth("buffer-ring-without", "auto", false, "", n);
    let with = idle_growth("buffer-ring-with", "auto", false, "buffer_ring", n);
    if with == 0 {
        return; // skipped: printed above
    }
    println!(
        "buffer_ring: {} KiB saved over {n} idle connections",
        without.saturating_sub(with)
    );
    assert!(
        with + n as u64 * SAVED_KIB < without,
        "{n} idle connections grew the RSS by {with} KiB with buffer_ring (release off), \
         {without} KiB without: expected at least {} KiB less with it",
        n as u64 * SAVED_KIB
    );
}

/// RSS growth in KiB (after a warm-up) while `n` requests, each on its own
/// client connection, wait for an origin that answers after `DELAY_MS`;
/// every one must then be answered. `None`: the ring features asked for
/// are not in use here (printed).
fn waiting_growth(label: &str, features: &str, n: usize) -> Option<u64> {
    const DELAY_MS: u64 = 5000;
    raise_nofile(2 * n as u64 + 1024);
    let s = Setup::with_env(label, &[("RINGWAY_RING_FEATURES", features)], |c| {
        c.limit("idle_timeout", &q("60s"))
    });
    let wanted = format!(
        "ring features: {}",
        if features.is_empty() {
            "none"
        } else {
            features
        }
    );
    if !s.proxy.stdout().contains(&wanted) {
        println!(
            "SKIP {label}: {wanted} not in use here\n{}",
            s.proxy.stdout()
        );
        return None;
    }
    for i in 0..64 {
        let mut c = s.client();
        assert_eq!(
            c.request(&Request::get(&format!("/warm/{i}"))).status(),
            200
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = memory_of(s.proxy.pid()).unwrap().rss_kib;
    let before = s.origin.request_count();
    let mut clients: Vec<Client> = (0..n)
        .map(|i| {
            let mut c = s.client();
            c.send(&Request::get(&format!("/delay/{DELAY_MS}?waiting={i}")).to_bytes());
            c
        })
        .collect();
    // Every request is at the origin: the proxy waits on each.
    assert!(
        s.origin
            .wait_until(Duration::from_secs(4), |o| o.request_count() >= before + n),
        "{} of {n} requests reached the origin",
        s.origin.request_count() - before
    );
    std::thread::sleep(Duration::from_millis(300));
    let rss1 = memory_of(s.proxy.pid()).unwrap().rss_kib;
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Duration::from_secs(30));
        let r = c.read_response();
        assert_eq!(r.status(), 200, "request {i}: {r}");
        assert_eq!(r.body_str(), format!("delayed {DELAY_MS}"), "request {i}");
    }
    let grown = rss1.saturating_sub(rss0);
    println!(
        "ring features [{features}]: {n} requests waiting for the origin: RSS {rss0} -> {rss1} KiB, \
         +{grown} KiB, {:.1} KiB per request",
        grown as f64 / n as f64
    );
    Some(grown)
}

/// With `buffer_ring`, a request waiting for its upstream's answer holds
/// no response buffer: the first read of the response takes one of the
/// worker's ring buffers only when the answer arrives
/// (`pipeline::exchange::read_upstream_selected`). Without the ring, each
/// waiting request holds a pooled 16 KiB buffer lent to its receive (at
/// least its first page is written when the allocator hands it out).
#[test]
fn buffer_ring_requests_waiting_for_the_upstream_hold_no_response_buffer() {
    let n = 1200;
    let Some(without) = waiting_growth("waiting-without-ring", "", n) else {
        return;
    };
    let Some(with) = waiting_growth("waiting-with-ring", "buffer_ring", n) else {
        return;
    };
    println!(
        "buffer_ring: {} KiB saved over {n} waiting requests",
        without.saturating_sub(with)
    );
    assert!(
        with + n as u64 * 3 < without,
        "{n} requests waiting for the origin grew the RSS by {with} KiB with buffer_ring, \
         {without} KiB without: expected at least {} KiB less with it",
        n as u64 * 3
    );
}

/// Lift the soft open-files limit to `want` (within the hard limit).
fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// On a listener that also takes cleartext HTTP/2 (the first bytes are
/// sniffed, then read back), and through a drain: a connection idle past
/// the grace serves its next request, and an idle one still closes at
/// `idle_timeout`.
#[test]
fn idle_release_on_a_sniffing_listener_and_at_the_idle_timeout() {
    let dir = ringway_tests::dir::TestDir::new("idle-release-sniff");
    let origin = ringway_tests::origin::Origin::start();
    let cfg = ringway_tests::config::Config::new()
        .limit("idle_timeout", &q("3s"))
        .listener_with("public", &[("protocols", r#"["http/1.1", "h2"]"#)])
        .route("public", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let mut proxy = ringway_tests::proxy::Proxy::start(&dir, &cfg);
    let mut c = Client::connect(proxy.addr("public"));
    for i in 0..3 {
        let r = c.request(&Request::get(&format!("/sniffed/{i}")));
        assert_eq!(r.status(), 200, "request {i}: {r}");
        std::thread::sleep(Duration::from_millis(1500));
    }
    // Idle past idle_timeout (3 s): closed by the proxy, buffer or not.
    c.set_read_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let n = std::io::Read::read(&mut c.tcp(), &mut byte).unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was not closed");
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_millis(1000) && waited < Duration::from_secs(5),
        "closed after {waited:?} (idle_timeout 3 s, 1.5 s of it spent before)"
    );
    // A drain closes a connection that released its buffer (by
    // drain_idle_grace, 1 s, spread over as long again), and the proxy exits.
    let mut c = Client::connect(proxy.addr("public"));
    assert_eq!(c.request(&Request::get("/before-drain")).status(), 200);
    std::thread::sleep(Duration::from_millis(1500));
    c.set_read_timeout(Duration::from_secs(10));
    proxy.sigterm();
    let started = Instant::now();
    let n = std::io::Read::read(&mut c.tcp(), &mut byte).unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was not closed by the drain");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        proxy.wait_exit(Duration::from_secs(5)).is_some(),
        "no exit after the drain"
    );
}

/// `AnonHugePages` of `pid`'s mappings, in KiB.
fn anon_huge_pages_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("AnonHugePages in smaps_rollup")
}

/// The proxy runs without transparent huge pages from its first
/// allocation on (`main.rs`, `disable_transparent_huge_pages`): the kernel
/// reports THP off for it, and after serving requests none of its memory
/// is in huge pages. Set in `main` instead, it came after the allocator's
/// first arena had faulted 4 MiB of huge pages on a host whose THP mode is
/// `madvise` or `always`; on a host with THP `never` only the first check
/// means anything, and the test says so.
#[test]
fn no_transparent_huge_pages() {
    let s = Setup::new("no_thp", |c| c);
    let pid = s.proxy.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
    for i in 0..200 {
        let mut c = s.client();
        assert_eq!(c.request(&Request::get(&format!("/thp/{i}"))).status(), 200);
    }
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if mode.is_empty() || mode.contains("[never]") {
        println!(
            "NOTE no_transparent_huge_pages: host THP mode {mode:?}; huge pages cannot appear here"
        );
    }
    assert_eq!(anon_huge_pages_kib(pid), 0, "THP mode {mode:?}");
}
