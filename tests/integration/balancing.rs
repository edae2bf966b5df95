//! `lb` on a cluster against real origins: smooth weighted round robin is
//! exact, hashing a header sticks each user to one origin, and peak-EWMA
//! steers away from a slow origin, with a lower p99 than round robin in
//! the same run.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ringway_tests::client::{Client, Request};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

/// One worker, one listener, everything to cluster "app" with `cluster`
/// (the rest of its `[[cluster]]` table).
fn config(cluster: &str) -> String {
    format!(
        r#"[runtime]
workers = 1

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
listener = "public"
path_prefix = "/"
cluster = "app"

[[cluster]]
name = "app"
{cluster}
"#
    )
}

fn tally(c: &mut HashMap<String, usize>, r: &ringway_tests::client::Response) {
    assert_eq!(r.status(), 200, "{r}");
    *c.entry(r.header("x-origin").unwrap_or("?").to_owned())
        .or_default() += 1;
}

#[test]
fn weighted_round_robin_three_to_one_is_exact() {
    let dir = TestDir::new("lb-wrr");
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let proxy = Proxy::start_toml(
        &dir,
        &config(&format!(
            "lb = \"weighted_round_robin\"\nendpoints = [{{ address = \"{}\", weight = 3 }}, \"{}\"]",
            a.addr(),
            b.addr()
        )),
        &[],
    );
    let mut c = Client::connect(proxy.addr("public"));
    let mut counts = HashMap::new();
    for i in 0..400 {
        tally(&mut counts, &c.get(&format!("/w/{i}")));
    }
    assert_eq!((counts["a"], counts["b"]), (300, 100), "{counts:?}");
}

#[test]
fn hashing_a_header_sticks_each_user_to_one_origin() {
    for lb in ["ring_hash", "maglev"] {
        let dir = TestDir::new(&format!("lb-{lb}"));
        let origins: Vec<Origin> = ["a", "b", "c"].map(Origin::start_named).into();
        let eps: Vec<String> = origins
            .iter()
            .map(|o| format!("\"{}\"", o.addr()))
            .collect();
        let proxy = Proxy::start_toml(
            &dir,
            &config(&format!(
                "lb = \"{lb}\"\nhash_key = {{ header = \"x-user\" }}\nendpoints = [{}]",
                eps.join(", ")
            )),
            &[],
        );
        let addr = proxy.addr("public");
        let mut seen: HashMap<String, String> = HashMap::new();
        for round in 0..4 {
            // A new connection each round: stickiness is by key, not by
            // connection.
            let mut c = Client::connect(addr);
            for u in 0..30 {
                let user = format!("user-{u}");
                let r = c.request(&Request::get(&format!("/r{round}")).header("x-user", &user));
                assert_eq!(r.status(), 200, "{r}");
                let origin = r.header("x-origin").unwrap().to_owned();
                let first = seen.entry(user.clone()).or_insert_with(|| origin.clone());
                assert_eq!(*first, origin, "{lb}: {user} moved");
            }
        }
        let used: std::collections::HashSet<_> = seen.values().collect();
        assert_eq!(used.len(), 3, "{lb}: 30 users on {used:?}");
        // Without the key: weighted round robin over all three.
        let mut c = Client::connect(addr);
        let mut counts = HashMap::new();
        for _ in 0..30 {
            tally(&mut counts, &c.get("/anonymous"));
        }
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            [10; 3],
            "{lb}"
        );
    }
}

/// An origin that answers every request after `delay` (keep-alive, no body).
fn slow_origin(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            std::thread::spawn(move || serve_slowly(&mut s, delay));
        }
    });
    addr
}

fn serve_slowly(s: &mut TcpStream, delay: Duration) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            std::thread::sleep(delay);
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-origin: slow\r\n\r\n";
            if s.write_all(reply).is_err() {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Three concurrent keep-alive clients, `each` requests apiece, through
/// `addr`: requests per origin, and every request's latency.
fn drive(addr: SocketAddr, each: usize) -> (HashMap<String, usize>, Vec<Duration>) {
    let threads: Vec<_> = (0..3)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut counts = HashMap::new();
                let mut times = Vec::with_capacity(each);
                for i in 0..each {
                    let sent = std::time::Instant::now();
                    let r = c.get(&format!("/p/{t}/{i}"));
                    times.push(sent.elapsed());
                    tally(&mut counts, &r);
                }
                (counts, times)
            })
        })
        .collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut times = Vec::new();
    for t in threads {
        let (c, ts) = t.join().unwrap();
        for (k, v) in c {
            *counts.entry(k).or_default() += v;
        }
        times.extend(ts);
    }
    times.sort();
    (counts, times)
}

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99).div_ceil(100) - 1]
}

#[test]
fn peak_ewma_avoids_a_slow_origin() {
    // One of three origins answers 20 ms late. The same clients run
    // through a round-robin proxy and a peak-EWMA proxy in turn, in front
    // of the same origins: peak-EWMA sends the slow one under 10 % of the
    // requests, and its p99 is below round robin's.
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let slow = slow_origin(Duration::from_millis(20));
    let start = |label: &str, lb: &str| {
        let dir = TestDir::new(label);
        let toml = config(&format!(
            "lb = \"{lb}\"\nendpoints = [\"{}\", \"{slow}\", \"{}\"]",
            a.addr(),
            b.addr()
        ));
        let proxy = Proxy::start_toml(&dir, &toml, &[]);
        (proxy, dir)
    };
    let (rr, _rr_dir) = start("lb-rr-vs-ewma", "round_robin");
    let (ewma, _ewma_dir) = start("lb-peak-ewma", "peak_ewma");
    // 1,800 requests each: peak-EWMA's few probes of the slow origin stay
    // well under the 1 % a p99 would see.
    let (rr_counts, rr_times) = drive(rr.addr("public"), 600);
    let (counts, times) = drive(ewma.addr("public"), 600);
    assert_eq!(counts.values().sum::<usize>(), 1800);
    assert_eq!(rr_counts.values().sum::<usize>(), 1800);
    assert_eq!(rr_counts.get("slow").copied(), Some(600), "{rr_counts:?}");
    let slow_share = counts.get("slow").copied().unwrap_or(0);
    assert!(
        slow_share < 180,
        "slow origin got {slow_share} of 1800: {counts:?}"
    );
    let (p99_rr, p99_ewma) = (p99(&rr_times), p99(&times));
    println!(
        "peak_ewma: slow origin {slow_share}/1800, p99 {p99_ewma:?}; round_robin: 600/1800, p99 {p99_rr:?}"
    );
    assert!(
        p99_ewma < p99_rr,
        "peak_ewma p99 {p99_ewma:?} not below round_robin's {p99_rr:?} (slow share {slow_share}/1800)"
    );
}
