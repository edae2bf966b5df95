//! `accept = "balanced"`: with few long-lived connections, every worker
//! holds within one or two of the others' count (`reuseport` hashes them,
//! and one worker can get most of them). Two workers, 8 connections opened
//! at once and kept open, 25 rounds.

use std::net::TcpStream;
use std::time::Duration;

use ringway_tests::client::Client;
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

/// Open connections per worker, from `/workers`.
fn per_worker(admin: std::net::SocketAddr) -> Vec<u64> {
    let r = Client::connect(admin).get("/workers");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["connections_active"].as_u64().unwrap())
        .collect()
}

/// Rounds of `n` connections held open: the sorted split of each round.
fn rounds(proxy: &Proxy, n: usize, rounds: usize) -> Vec<Vec<u64>> {
    let (addr, admin) = (proxy.addr("public"), proxy.admin_addr());
    (0..rounds)
        .map(|_| {
            let conns: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
            // Accepted and counted by the workers.
            let until = std::time::Instant::now() + Duration::from_secs(5);
            let mut split = per_worker(admin);
            while split.iter().sum::<u64>() < n as u64 && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
                split = per_worker(admin);
            }
            drop(conns);
            let until = std::time::Instant::now() + Duration::from_secs(5);
            while per_worker(admin).iter().sum::<u64>() > 0 && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            split.sort();
            split
        })
        .collect()
}

#[test]
fn balanced_accept_keeps_workers_within_one_or_two() {
    let origin = Origin::start();
    let dir = TestDir::new("accept-balanced");
    let config = |accept: &str| {
        Config::new()
            .runtime("workers", "2")
            .listener_with("public", &[("accept", &format!("\"{accept}\""))])
            .route("public", "/", "app", &[])
            .cluster("app", &[origin.addr()], &[])
            .admin()
    };
    let balanced = Proxy::start(&dir, &config("balanced"));
    let got = rounds(&balanced, 8, 25);
    for split in &got {
        assert_eq!(split.iter().sum::<u64>(), 8, "{got:?}");
        assert!(split[1] - split[0] <= 2, "balanced: {got:?}");
    }
    // It serves like any listener.
    assert_eq!(
        Client::connect(balanced.addr("public")).get("/b").status(),
        200
    );
    let even = got.iter().filter(|s| s[0] == s[1]).count();
    drop(balanced);
    let reuseport = Proxy::start(&dir, &config("reuseport"));
    let hashed = rounds(&reuseport, 8, 25);
    let worst = hashed.iter().map(|s| s[1] - s[0]).max().unwrap_or(0);
    println!(
        "8 connections, 2 workers, 25 rounds: balanced {even}/25 even (never more than 2 apart); reuseport worst split {worst} apart: {hashed:?}"
    );
}
