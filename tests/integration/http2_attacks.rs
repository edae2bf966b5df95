//! Known HTTP/2 attacks against a cleartext h2c listener (issue #15,
//! hardening), each sent over a raw socket by [`ringway_tests::h2raw`]
//! (frames no client library would send) to a real ringway process with a
//! test origin behind it. Each test checks the refusal (GOAWAY with its
//! code, RST_STREAM, or the connection closed), that nothing refused
//! reached the origin, that the proxy still serves a fresh connection
//! afterwards, and where it matters that the proxy's RSS stayed bounded.
//! Every test is bounded in time (< 20 s) and in frames sent.

use std::time::{Duration, Instant};

use ringway_tests::client::Client;
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::h2raw::*;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{memory_of, Memory, Proxy};

/// Header list limit of every test listener (`limits.max_head_bytes`).
const MAX_HEAD: usize = 16 * 1024;

struct Bed {
    _dir: TestDir,
    origin: Origin,
    proxy: Proxy,
    /// Requests at the origin before the attack (the warm-up).
    base: usize,
}

impl Bed {
    /// An h2c + HTTP/1.1 listener "public" → origin, `max_head_bytes`
    /// 16 KiB, `body_read_timeout` 2 s; `http2` is an inline
    /// `[listener.http2]` table or "". One HTTP/1.1 and one h2 request
    /// warm it up, so the RSS measured next is a steady baseline.
    fn start(name: &str, http2: &str) -> Bed {
        Bed::start_with(name, http2, &[])
    }

    /// With extra `[limits]`.
    fn start_with(name: &str, http2: &str, limits: &[(&str, &str)]) -> Bed {
        let dir = TestDir::new(name);
        let origin = Origin::start_named("app");
        let mut listener = vec![("protocols", r#"["http/1.1", "h2"]"#)];
        if !http2.is_empty() {
            listener.push(("http2", http2));
        }
        let cfg = Config::new()
            .limit("max_head_bytes", &q("16KiB"))
            .limit("body_read_timeout", &q("2s"));
        let cfg = limits
            .iter()
            .fold(cfg, |c, (k, v)| c.limit(k, &q(v)))
            .listener_with("public", &listener)
            .route("public", "/", "app", &[])
            .cluster("app", &[origin.addr()], &[]);
        let proxy = Proxy::start(&dir, &cfg);
        let mut bed = Bed {
            _dir: dir,
            origin,
            proxy,
            base: 0,
        };
        bed.still_serves();
        bed.base = settled_count(&bed.origin);
        bed
    }

    /// Requests the origin got since the warm-up, once it is still.
    fn at_origin(&self) -> usize {
        settled_count(&self.origin) - self.base
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.proxy.addr("public")
    }

    fn rss_kib(&self) -> u64 {
        memory_of(self.proxy.pid()).unwrap().rss_kib
    }

    /// A fresh HTTP/1.1 connection and a fresh h2 connection are both
    /// served normally.
    fn still_serves(&self) {
        let mut c = Client::connect(self.addr());
        assert_eq!(
            c.get("/after-h1").status(),
            200,
            "HTTP/1.1 after the attack"
        );
        let mut h = H2Conn::handshake(self.addr(), &[]).expect("h2 connect after the attack");
        h.get(1, "/after-h2").unwrap();
        let seen = h.watch(Duration::from_secs(10), |s| s.ended.contains(&1));
        assert!(
            seen.ended.contains(&1) && seen.headers.contains(&1) && seen.resets.is_empty(),
            "h2 after the attack: {seen:?}"
        );
    }
}

/// The request count at the origin once it has been still for 300 ms.
fn settled_count(origin: &Origin) -> usize {
    let mut last = origin.request_count();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = origin.request_count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// CVE-2023-44487: HEADERS(END_STREAM) + RST_STREAM pairs as fast as the
/// socket takes them. h2 counts streams reset before they were accepted
/// (`max_pending_accept_reset_streams`) and locally reset ones; either
/// limit ends the connection with ENHANCE_YOUR_CALM.
#[test]
fn rapid_reset_is_answered_with_enhance_your_calm() {
    const PAIRS: u32 = 10_000;
    let bed = Bed::start("h2-rapid-reset", "");
    let rss0 = bed.rss_kib();
    let mut conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    let block = Hpack::request("GET", "/rapid", "attack.test");
    let mut bytes = Vec::with_capacity(PAIRS as usize * 60);
    for i in 0..PAIRS {
        let id = 2 * i + 1;
        bytes.extend(headers_frame(id, block.bytes(), true, true));
        bytes.extend(rst_frame(id, CANCEL));
    }
    let started = Instant::now();
    let writer = flood(&conn, bytes, 1, Duration::from_secs(5));
    let seen = conn.watch(Duration::from_secs(15), |s| s.closed.is_some());
    let flooded = writer.join().unwrap();
    let at_origin = bed.at_origin();
    let rss1 = bed.rss_kib();
    println!(
        "rapid reset: {PAIRS} pairs; goaway {:?} after {:?}, flood {flooded:?}, \
         {} resets and {} responses seen, {at_origin} requests at the origin, RSS {rss0} -> {rss1} KiB",
        seen.goaway,
        started.elapsed(),
        seen.resets.len(),
        seen.headers.len(),
    );
    let (last, code) = seen.goaway.expect("GOAWAY");
    assert_eq!(code, ENHANCE_YOUR_CALM, "{seen:?}");
    assert!(seen.closed.is_some(), "connection closed: {seen:?}");
    assert!(
        last < PAIRS,
        "GOAWAY well before all streams were processed (last {last} of {})",
        2 * PAIRS - 1
    );
    assert!(
        at_origin <= 200,
        "{at_origin} reset requests reached the origin"
    );
    assert!(rss1 < rss0 + 20 * 1024, "RSS {rss0} -> {rss1} KiB");
    bed.still_serves();
}

/// Rapid reset paced so that the proxy accepts each stream before its
/// RST_STREAM arrives (the variant h2's pending-accept counter does not
/// see): 2,000 pairs to `/delay/500`, one pair every 0.5 ms. The origin
/// must not get them all: streams still served count against
/// `max_concurrent_streams` (128), so later HEADERS are refused and the
/// refusals end the connection (`max_local_error_reset_streams`), or the
/// reset streams are cancelled before the origin sees them.
#[test]
fn paced_rapid_reset_is_bounded() {
    const PAIRS: u32 = 2_000;
    let bed = Bed::start("h2-paced-reset", "");
    let rss0 = bed.rss_kib();
    let mut conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    let block = Hpack::request("GET", "/delay/500", "attack.test");
    let mut reader = conn.try_clone().unwrap();
    let started = Instant::now();
    let watcher =
        std::thread::spawn(move || reader.watch(Duration::from_secs(15), |s| s.closed.is_some()));
    let mut sent = 0;
    for i in 0..PAIRS {
        let id = 2 * i + 1;
        let mut pair = headers_frame(id, block.bytes(), true, true);
        pair.extend(rst_frame(id, CANCEL));
        if conn.send(&pair).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_micros(500));
    }
    let seen = watcher.join().unwrap();
    let at_origin = bed.at_origin();
    let rss1 = bed.rss_kib();
    println!(
        "paced rapid reset: {sent} of {PAIRS} pairs sent in {:?}; goaway {:?}, {} resets seen {:?}, \
         closed {:?}, {at_origin} requests at the origin, RSS {rss0} -> {rss1} KiB",
        started.elapsed(),
        seen.goaway,
        seen.resets.len(),
        seen.resets.first(),
        seen.closed
    );
    assert!(
        at_origin < PAIRS as usize / 2,
        "{at_origin} of {sent} reset requests reached the origin"
    );
    assert!(rss1 < rss0 + 20 * 1024, "RSS {rss0} -> {rss1} KiB");
    bed.still_serves();
}

/// HEADERS without END_HEADERS, then CONTINUATION frames that never end the
/// block (each adding a 1 KiB field): the connection ends before the block
/// completes, memory stays bounded, nothing reaches the origin.
#[test]
fn continuation_flood_ends_the_connection() {
    let bed = Bed::start("h2-continuation-flood", "");
    let rss0 = bed.rss_kib();
    let mut conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    let first = Hpack::request("GET", "/continuation", "attack.test");
    conn.send(&headers_frame(1, first.bytes(), true, false))
        .unwrap();
    let mut field = Hpack::new();
    field.literal("x-flood", &"c".repeat(1024));
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend(continuation_frame(1, field.bytes(), false));
    }
    // 50 MB of CONTINUATION in all, never END_HEADERS.
    let total = batch.len() * 50;
    let writer = flood(&conn, batch, 50, Duration::from_secs(5));
    let seen = conn.watch(Duration::from_secs(15), |s| s.closed.is_some());
    let flooded = writer.join().unwrap();
    let rss1 = bed.rss_kib();
    let at_origin = bed.at_origin();
    println!(
        "CONTINUATION flood: goaway {:?}, closed {:?}, flood {flooded:?} of {total}, \
         {at_origin} at the origin, RSS {rss0} -> {rss1} KiB",
        seen.goaway, seen.closed
    );
    assert!(seen.closed.is_some(), "connection closed: {seen:?}");
    if let Some((_, code)) = seen.goaway {
        assert!(
            [ENHANCE_YOUR_CALM, COMPRESSION_ERROR, PROTOCOL_ERROR].contains(&code),
            "{seen:?}"
        );
    }
    assert!(seen.headers.is_empty(), "no response: {seen:?}");
    assert!(flooded.written < total / 10, "stopped early: {flooded:?}");
    assert_eq!(at_origin, 0);
    assert!(rss1 < rss0 + 10 * 1024, "RSS {rss0} -> {rss1} KiB");
    bed.still_serves();
}

/// One HPACK block per stream: a ~4 KiB value inserted in the dynamic
/// table, then 4,000 one-byte references to it (16 MB decoded from 8 KB).
/// `bombs` such streams on one connection.
fn hpack_bomb(conn: &mut H2Conn, bombs: u32) {
    let value = "b".repeat(4000);
    for i in 0..bombs {
        let mut h = Hpack::request("GET", "/bomb", "attack.test");
        h.literal_indexed("x-bomb", &value);
        for _ in 0..4000 {
            h.indexed(FIRST_DYNAMIC);
        }
        assert!(h.bytes().len() < 16 * 1024);
        if conn
            .send(&headers_frame(2 * i + 1, h.bytes(), true, true))
            .is_err()
        {
            return;
        }
    }
}

/// Send `bombs` HPACK bombs on `conn` and check they are refused and
/// none reaches the origin; RSS before, and the memory after.
fn refuse_hpack_bombs(bed: &Bed, mut conn: H2Conn, bombs: u32, what: &str) -> (u64, Memory) {
    let rss0 = bed.rss_kib();
    hpack_bomb(&mut conn, bombs);
    let seen = conn.watch(Duration::from_secs(10), |s| {
        s.closed.is_some() || s.goaway.is_some() || s.resets.len() + s.ended.len() >= bombs as usize
    });
    let rss1 = memory_of(bed.proxy.pid()).unwrap();
    let at_origin = bed.at_origin();
    println!(
        "{what} ({bombs} streams): goaway {:?}, {} resets {:?}, \
         {} responses, closed {:?}, {at_origin} at the origin, RSS {rss0} -> {} KiB (peak {})",
        seen.goaway,
        seen.resets.len(),
        seen.resets.first(),
        seen.headers.len(),
        seen.closed,
        rss1.rss_kib,
        rss1.hwm_kib
    );
    assert!(
        seen.goaway.is_some()
            || seen.closed.is_some()
            || !seen.resets.is_empty()
            || !seen.ended.is_empty(),
        "refused: {seen:?}"
    );
    assert_eq!(at_origin, 0, "a bomb reached the origin");
    (rss0, rss1)
}

/// The HPACK bomb once the client has ACKed the proxy's SETTINGS (so h2
/// applies `max_header_list_size` = `limits.max_head_bytes`): each stream
/// (or the connection) is refused, nothing reaches the origin.
#[test]
fn hpack_bomb_is_refused() {
    let bed = Bed::start("h2-hpack-bomb", "");
    let conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    let what = format!("HPACK bomb, limit {MAX_HEAD}");
    let (rss0, rss1) = refuse_hpack_bombs(&bed, conn, 50, &what);
    assert!(rss1.rss_kib < rss0 + 20 * 1024, "RSS {rss0} -> {rss1:?}");
    bed.still_serves();
}

/// The HPACK bomb from a client that never ACKs the proxy's SETTINGS: h2
/// then decodes with its default header list limit (16 MiB) instead of
/// `limits.max_head_bytes`. The bombs must still not reach the origin and
/// memory must stay bounded.
#[test]
fn hpack_bomb_without_settings_ack_is_refused() {
    let bed = Bed::start("h2-hpack-bomb-noack", "");
    let conn = H2Conn::connect(bed.addr(), &[]).unwrap();
    let (rss0, rss1) = refuse_hpack_bombs(&bed, conn, 20, "HPACK bomb without SETTINGS ACK");
    assert!(rss1.hwm_kib < rss0 + 50 * 1024, "RSS {rss0} -> {rss1:?}");
    bed.still_serves();
}

/// The HPACK dynamic table is held at the protocol's 4,096 bytes (the
/// `h2` crate's decoder; not configurable): a client whose block opens
/// with a table size update above that gets a connection error (GOAWAY)
/// and nothing reaches the origin. An update within it is taken, and the
/// request that follows it is served.
#[test]
fn hpack_table_larger_than_4096_bytes_is_refused() {
    let bed = Bed::start("h2-hpack-table-size", "");
    // A dynamic table size update (RFC 7541 §6.3: 001xxxxx, 5-bit prefix)
    // to `size`, then an ordinary request.
    let block = |size: usize, path: &str| {
        let mut b = Vec::new();
        integer(&mut b, 5, 0x20, size);
        b.extend_from_slice(Hpack::request("GET", path, "attack.test").bytes());
        b
    };
    let mut conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    conn.send(&headers_frame(1, &block(4096, "/table-4096"), true, true))
        .unwrap();
    let seen = conn.watch(Duration::from_secs(10), |s| {
        s.ended.contains(&1) || s.goaway.is_some() || s.closed.is_some()
    });
    assert!(
        seen.ended.contains(&1) && seen.goaway.is_none(),
        "an update to 4,096 bytes: {seen:?}"
    );
    let served = bed.at_origin();
    assert_eq!(served, 1, "the request after an update within the limit");

    let mut conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    conn.send(&headers_frame(1, &block(65_536, "/table-64k"), true, true))
        .unwrap();
    let seen = conn.watch(Duration::from_secs(10), |s| {
        s.goaway.is_some() || s.closed.is_some() || s.ended.contains(&1)
    });
    // RFC 7541 §4.2 makes it a decoding error (COMPRESSION_ERROR); the
    // h2 crate answers PROTOCOL_ERROR. Either ends the connection.
    assert!(
        seen.goaway
            .is_some_and(|g| [COMPRESSION_ERROR, PROTOCOL_ERROR].contains(&g.1)),
        "an update to 64 KiB: {seen:?}"
    );
    assert!(!seen.headers.contains(&1), "answered: {seen:?}");
    assert_eq!(
        bed.at_origin(),
        served,
        "the refused request reached the origin"
    );
    bed.still_serves();
}

/// A flood of `frames` identical control frames written without reading a
/// single reply: memory stays bounded, the flood is throttled (the proxy
/// stops reading while its replies are unread) or the connection closed,
/// and the proxy serves others meanwhile.
///
/// 100,000 frames (1.5–1.7 MB) fit in loopback's socket buffers, so the
/// floods send 1,000,000 (15–17 MB): more than the kernel holds, so the
/// proxy must either stop reading (throttle) or close.
fn control_flood(name: &str, one: Vec<u8>, frames: usize) {
    let bed = Bed::start(name, "");
    let rss0 = bed.rss_kib();
    let mut conn = H2Conn::connect(bed.addr(), &[]).unwrap();
    let mut batch = Vec::with_capacity(one.len() * 1000);
    for _ in 0..1000 {
        batch.extend_from_slice(&one);
    }
    let total = batch.len() * (frames / 1000);
    let started = Instant::now();
    let flooded = flood(&conn, batch, frames / 1000, Duration::from_secs(2))
        .join()
        .unwrap();
    let took = started.elapsed();
    // Let the proxy work through what the kernel holds.
    std::thread::sleep(Duration::from_secs(1));
    let rss1 = memory_of(bed.proxy.pid()).unwrap();
    println!(
        "{name}: {frames} frames ({total} bytes), flood ended after {took:?}: {flooded:?}, \
         RSS {rss0} -> {} KiB (peak {})",
        rss1.rss_kib, rss1.hwm_kib
    );
    assert!(
        rss1.hwm_kib < rss0 + 10 * 1024,
        "RSS {rss0} -> {rss1:?} while flooded"
    );
    assert!(
        flooded.error.is_some(),
        "the proxy neither stopped reading nor closed: {flooded:?}"
    );
    // Others are served while the flooding connection is still open.
    bed.still_serves();
    // What the proxy answered, read for a moment.
    let seen = conn.watch(Duration::from_secs(2), |s| s.closed.is_some());
    println!(
        "{name}: then read {} frames: {} PING ACKs, {} SETTINGS ACKs, goaway {:?}, closed {:?}",
        seen.frames, seen.ping_acks, seen.settings_acks, seen.goaway, seen.closed
    );
    drop(conn);
    assert_eq!(bed.at_origin(), 2, "only the two requests after");
}

#[test]
fn ping_flood_keeps_memory_bounded() {
    control_flood("h2-ping-flood", ping_frame(*b"pingpong"), 1_000_000);
}

#[test]
fn settings_flood_keeps_memory_bounded() {
    control_flood(
        "h2-settings-flood",
        settings_frame(&[(SETTINGS_INITIAL_WINDOW_SIZE, 65_535)]),
        1_000_000,
    );
}

/// A client that advertises INITIAL_WINDOW_SIZE 0 and asks for 10 MB never
/// opens its window: the proxy must not buffer the body; returns what the
/// client saw within `wait`.
fn zero_window_stall(bed: &Bed, wait: Duration) -> (Seen, u64, u64) {
    let rss0 = bed.rss_kib();
    let mut conn = H2Conn::handshake(bed.addr(), &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]).unwrap();
    conn.get(1, "/bytes/10000000").unwrap();
    let seen = conn.watch(wait, |s| s.closed.is_some() || !s.resets.is_empty());
    let rss1 = memory_of(bed.proxy.pid()).unwrap();
    println!(
        "zero window: after {wait:?}: headers {:?}, {} DATA bytes, resets {:?}, goaway {:?}, \
         closed {:?}, RSS {rss0} -> {} KiB (peak {})",
        seen.headers,
        seen.data_bytes,
        seen.resets,
        seen.goaway,
        seen.closed,
        rss1.rss_kib,
        rss1.hwm_kib
    );
    assert_eq!(seen.data_bytes, 0, "no DATA without window");
    (seen, rss0, rss1.hwm_kib)
}

#[test]
fn zero_window_stall_does_not_buffer_the_body() {
    let bed = Bed::start("h2-zero-window", "");
    let (_, rss0, peak) = zero_window_stall(&bed, Duration::from_secs(4));
    assert!(
        peak < rss0 + 5 * 1024,
        "RSS {rss0} -> peak {peak} KiB: body buffered"
    );
    bed.still_serves();
}

/// Response DATA waits for send window at most `idle_timeout` (the write
/// timeout HTTP/1.1 clients get too), then the stream is reset.
#[test]
fn zero_window_stall_is_reset() {
    let bed = Bed::start_with("h2-zero-window-reset", "", &[("idle_timeout", "2s")]);
    // idle_timeout is 2 s; allow a few times that.
    let (seen, _, _) = zero_window_stall(&bed, Duration::from_secs(10));
    assert!(
        !seen.resets.is_empty() || seen.closed.is_some(),
        "the stalled stream is given up: {seen:?}"
    );
    bed.still_serves();
}

/// The highest stream id works; a HEADERS with a lower id after it is a
/// connection error (PROTOCOL_ERROR).
#[test]
fn stream_ids_must_increase_to_the_last() {
    const LAST: u32 = (1 << 31) - 1;
    let bed = Bed::start("h2-stream-ids", "");
    let mut conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    conn.get(LAST, "/last-id").unwrap();
    let seen = conn.watch(Duration::from_secs(10), |s| s.ended.contains(&LAST));
    assert!(
        seen.ended.contains(&LAST) && seen.headers.contains(&LAST),
        "{seen:?}"
    );
    assert_eq!(bed.at_origin(), 1);
    let _ = conn.get(5, "/backwards");
    let seen = conn.watch(Duration::from_secs(10), |s| s.closed.is_some());
    println!("stream id going backwards: {seen:?}");
    assert_eq!(seen.goaway_code(), Some(PROTOCOL_ERROR), "{seen:?}");
    assert_eq!(seen.goaway.unwrap().0, LAST);
    assert_eq!(bed.at_origin(), 1, "the backwards stream was refused");
    bed.still_serves();
}

/// `max_concurrent_streams = 10`: an 11th stream while ten wait on the
/// origin is refused; the ten complete.
#[test]
fn max_concurrent_streams_is_enforced() {
    let bed = Bed::start("h2-max-streams", "{ max_concurrent_streams = 10 }");
    let mut conn = H2Conn::handshake(bed.addr(), &[]).unwrap();
    for i in 0..11 {
        conn.get(2 * i + 1, "/delay/1000").unwrap();
    }
    let seen = conn.watch(Duration::from_secs(15), |s| {
        s.closed.is_some() || s.ended.len() + s.resets.len() >= 11
    });
    println!("11 streams with a limit of 10: {seen:?}");
    let refused = seen.reset_of(21).expect("stream 21 reset");
    assert!(
        [REFUSED_STREAM, PROTOCOL_ERROR].contains(&refused),
        "{seen:?}"
    );
    assert_eq!(seen.resets.len(), 1, "{seen:?}");
    assert_eq!(seen.ended.len(), 10, "{seen:?}");
    assert_eq!(bed.at_origin(), 10);
    bed.still_serves();
}
