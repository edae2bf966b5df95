//! Process lifecycle: --version, graceful drain on SIGTERM, drain timeout,
//! SIGINT, workers sharing connections, drivers, bad configs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::{run_ringway, Proxy};
use ringway_tests::setup::Setup;

#[test]
fn version_flag() {
    let out = run_ringway(&["--version"], None, Duration::from_secs(10));
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout.trim(), "ringway 0.1.0", "{out}");
}

/// Polls until connecting to `addr` is refused; returns when that happened.
fn wait_refused(addr: SocketAddr, timeout: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Some(t.elapsed())
            }
            _ => std::thread::sleep(Duration::from_millis(25)),
        }
    }
    None
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let mut s = Setup::new("drain", |c| c.runtime("drain_timeout", "\"5s\""));
    let addr = s.addr();
    let mut c = s.client();
    c.send(&Request::get("/delay/1500").to_bytes());
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    s.proxy.sigterm();

    // New connections are refused while the request is still in flight.
    let refused = wait_refused(addr, Duration::from_millis(1000));
    assert!(
        refused.is_some(),
        "connections to {addr} were still accepted 1 s after SIGTERM"
    );
    let r = c.read_response();
    assert_eq!(r.status(), 200, "the in-flight request: {r}");
    assert_eq!(r.body_str(), "delayed 1500", "{r}");
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "response too early?"
    );

    let status = s.proxy.wait_exit(Duration::from_secs(8));
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running 8 s after SIGTERM\n{}",
            s.proxy.output_report()
        )
    });
    assert!(
        status.success(),
        "exit status after drain: {status:?}\n{}",
        s.proxy.output_report()
    );
    assert!(
        Client::try_connect(addr).is_err(),
        "still accepting after exit"
    );
}

#[test]
fn drain_timeout_bounds_shutdown() {
    let mut s = Setup::new("drain-timeout", |c| c.runtime("drain_timeout", "\"1s\""));
    let mut c = s.client();
    c.send(&Request::get("/delay/8000").to_bytes());
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    s.proxy.sigterm();
    let status = s.proxy.wait_exit(Duration::from_secs(6));
    let took = t.elapsed();
    let status =
        status.unwrap_or_else(|| panic!("still running 6 s after SIGTERM with drain_timeout = 1s"));
    assert!(status.success(), "exit status: {status:?}");
    assert!(
        took < Duration::from_secs(4),
        "exit {took:?} after SIGTERM with drain_timeout = 1s"
    );
    assert!(
        took >= Duration::from_millis(900),
        "exit {took:?} after SIGTERM: the in-flight request did not get its drain_timeout = 1s"
    );
    // The cut request did not get a 200.
    if let Ok(r) = c.try_read_response() {
        assert_ne!(
            r.status(),
            200,
            "a request still running at the drain deadline got: {r}"
        );
    }
}

#[test]
fn sigint_stops_with_idle_connections_open() {
    let mut s = Setup::new("sigint", |c| c.runtime("drain_timeout", "\"3s\""));
    let mut idle = s.client();
    assert_eq!(idle.get("/x").status(), 200);
    let t = Instant::now();
    s.proxy.sigint();
    let status = s.proxy.wait_exit(Duration::from_secs(8));
    let status = status.unwrap_or_else(|| panic!("still running 8 s after SIGINT"));
    assert!(status.success(), "exit status after SIGINT: {status:?}");
    println!(
        "exited {:?} after SIGINT with an idle keep-alive connection",
        t.elapsed()
    );
    idle.assert_closed(Duration::from_secs(2), "an idle connection after shutdown");
}

#[test]
fn connections_land_on_more_than_one_worker() {
    let dir = TestDir::new("workers");
    let origin = ringway_tests::origin::Origin::start();
    let config = Config::simple(origin.addr()).runtime("workers", "2");
    let proxy = Proxy::start_toml(&dir, &config.to_toml(), &[("RUST_LOG", "debug")]);
    let addr = proxy.addr("public");
    let mut clients: Vec<Client> = (0..40).map(|_| Client::connect(addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.get(&format!("/w/{i}")).status(), 200);
    }
    for w in ["accepted worker=0", "accepted worker=1"] {
        assert!(
            proxy.wait_stderr_contains(w, Duration::from_secs(5)),
            "stderr has no `{w}` after 40 connections with workers = 2\n{}",
            proxy.output_report()
        );
    }
    let err = proxy.stderr();
    let n0 = err.matches("accepted worker=0").count();
    let n1 = err.matches("accepted worker=1").count();
    println!("40 connections: worker 0 accepted {n0}, worker 1 accepted {n1}");
    assert!(
        n0 + n1 >= 40,
        "only {} accept lines for 40 connections",
        n0 + n1
    );
}

fn serves_with_driver(driver: &str) {
    let s = Setup::new(&format!("driver-{driver}"), |c| {
        c.runtime("driver", &format!("\"{driver}\""))
    });
    let mut c = s.client();
    for i in 0..3 {
        let r = c.request(&Request::post(&format!("/driver/{i}")).body(format!("body {i}")));
        assert_eq!(r.status(), 200, "driver {driver}: {r}");
        assert_eq!(r.body_str(), format!("body {i}"), "driver {driver}");
    }
    let r = c.get("/bytes/1000000");
    assert_eq!(r.body.len(), 1_000_000, "driver {driver}");
    assert!(ringway_tests::pattern::Pattern::new().matches(0, &r.body));
}

#[test]
fn legacy_driver_serves() {
    serves_with_driver("legacy");
}

#[test]
fn io_uring_driver_serves() {
    serves_with_driver("io_uring");
}

#[test]
fn run_with_invalid_config_fails_fast() {
    let dir = TestDir::new("bad-run");
    let path = dir.write("bad.toml", "[runtime]\nworkers = \"many\"\n");
    let out = run_ringway(
        &["run", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    );
    assert!(
        out.status.is_some(),
        "`ringway run` with an invalid config kept running\n{out}"
    );
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(!out.stdout.contains("ringway: ready"), "{out}");
    assert!(!out.all().contains("panicked"), "{out}");
}
