//! systemd integration: the notifications ringway sends to the
//! `NOTIFY_SOCKET` the test creates (READY, RELOADING + MONOTONIC_USEC,
//! READY, STOPPING, WATCHDOG pings), in order; and the unit file in
//! `packaging/` passes `systemd-analyze verify`.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

/// The messages received on the socket (WATCHDOG pings counted apart).
struct Notifications {
    socket: UnixDatagram,
    watchdog: usize,
}

impl Notifications {
    fn bind(dir: &TestDir) -> (Notifications, String) {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        (
            Notifications {
                socket,
                watchdog: 0,
            },
            path.display().to_string(),
        )
    }

    /// The next message other than a watchdog ping, within `timeout`.
    fn next(&mut self, timeout: Duration) -> Option<String> {
        let until = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).to_string();
                if m == "WATCHDOG=1" {
                    self.watchdog += 1;
                    continue;
                }
                return Some(m);
            }
        }
        None
    }

    fn expect(&mut self, first_line: &str) -> String {
        let m = self
            .next(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no notification (waiting for {first_line})"));
        assert!(
            m.lines().next() == Some(first_line),
            "expected {first_line}, got {m:?}"
        );
        m
    }
}

fn field<'a>(m: &'a str, key: &str) -> Option<&'a str> {
    m.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[test]
fn notifications_follow_the_service_lifecycle() {
    let dir = TestDir::new("sd-notify");
    let origin = Origin::start();
    let (mut sd, path) = Notifications::bind(&dir);
    let config = Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let mut proxy = Proxy::start_toml(
        &dir,
        &config.to_toml(),
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "200000")],
    );

    // READY=1 once every worker serves: by then the listener answers.
    let ready = sd.expect("READY=1");
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.contains("2 worker")),
        "{ready}"
    );
    assert!(proxy.stdout().contains("ringway: ready"));

    // Watchdog pings every WATCHDOG_USEC / 2 while the workers turn.
    std::thread::sleep(Duration::from_millis(700));
    assert!(sd.next(Duration::from_millis(50)).is_none());
    assert!(sd.watchdog >= 3, "{} watchdog pings in 0.7 s", sd.watchdog);

    // SIGHUP: RELOADING=1 with the monotonic time it started, then READY=1.
    let before = monotonic_usec();
    proxy.sighup();
    let reloading = sd.expect("RELOADING=1");
    let at: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{reloading}"));
    assert!(at >= before && at <= monotonic_usec(), "{reloading}");
    let ready = sd.expect("READY=1");
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.contains("generation 2")),
        "{ready}"
    );

    // A refused reload still ends with READY=1, and says so.
    proxy.rewrite_config_toml("[[listener]]\nname = 3\n");
    proxy.sighup();
    sd.expect("RELOADING=1");
    let ready = sd.expect("READY=1");
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.contains("refused")),
        "{ready}"
    );

    // SIGTERM: STOPPING=1, then the process exits.
    proxy.sigterm();
    sd.expect("STOPPING=1");
    assert!(proxy.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn without_notify_socket_start_is_unchanged() {
    // No NOTIFY_SOCKET: ringway starts as usual (the harness waits for its
    // "ready" line) and a WATCHDOG_USEC alone starts no pings.
    let dir = TestDir::new("sd-none");
    let origin = Origin::start();
    let config = Config::new()
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let mut proxy = Proxy::start_toml(&dir, &config.to_toml(), &[("WATCHDOG_USEC", "100000")]);
    proxy.sigterm();
    assert!(proxy.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn unit_file_verifies() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        println!("SKIP unit_file_verifies: no systemd-analyze (Debian package systemd)");
        return;
    };
    assert!(out.status.success());
    let dir = TestDir::new("sd-unit");
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/ringway.service"),
    )
    .unwrap();
    // The unit names the installed binary; verify it against the built one.
    let bin = ringway_tests::proxy::ringway_bin();
    let unit = unit.replace("/usr/local/bin/ringway", &bin.display().to_string());
    let path = dir.join("ringway.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify: {text}");
    // Warnings about the unit itself (not about the host) fail the test.
    let about_unit: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ringway.service") || l.contains("/ringway.service:"))
        .collect();
    assert!(about_unit.is_empty(), "{text}");
    for needed in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "LimitNOFILE=",
        "WatchdogSec=",
    ] {
        assert!(
            std::fs::read_to_string(&path).unwrap().contains(needed),
            "{needed}"
        );
    }
}
