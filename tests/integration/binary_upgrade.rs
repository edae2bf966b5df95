//! Zero-downtime binary upgrade: SIGUSR2 while `ringload` runs → a new
//! ringway process takes the listening sockets (and the admin socket) over,
//! the old one drains and exits 0; not one request fails and not one
//! connection is refused. A successor that cannot start leaves the old
//! process serving.

use std::time::{Duration, Instant};

use ringway_tests::client::Client;
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::load::Load;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

/// Kills a process that is not our child (the successor) on drop.
struct Successor(u32);

impl Successor {
    fn alive(&self) -> bool {
        // A zombie (exited, not yet reaped by its new parent) is gone.
        std::fs::read_to_string(format!("/proc/{}/stat", self.0))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().next())
                    != Some("Z")
            })
            .unwrap_or(false)
    }

    fn stop(&self, within: Duration) -> bool {
        // SAFETY: kill(2) with a pid we were told about.
        unsafe { libc::kill(self.0 as i32, libc::SIGTERM) };
        let until = Instant::now() + within;
        while Instant::now() < until {
            if !self.alive() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Successor {
    fn drop(&mut self) {
        if self.alive() {
            // SAFETY: as above.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
}

fn config(origin: &Origin) -> Config {
    Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[])
        .admin()
}

#[test]
fn sigusr2_upgrades_without_a_failed_request() {
    let origin = Origin::start();
    let dir = TestDir::new("upgrade");
    let mut proxy = Proxy::start(&dir, &config(&origin));
    let public = proxy.addr("public");
    let admin = proxy.admin_addr();
    let old_pid = proxy.pid();
    let Some(load) = Load::start(
        "sigusr2_upgrades_without_a_failed_request",
        &format!("http://{public}/u"),
        20,
        2000,
        "4s",
    ) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(1000));
    proxy.signal(libc::SIGUSR2);
    let line = proxy
        .wait_stdout_line("ringway: upgrade: process", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no upgrade line:\n{}", proxy.output_report()));
    let pid: u32 = line
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let successor = Successor(pid);
    assert_ne!(pid, old_pid);
    // The old process drains and exits 0.
    let status = proxy
        .wait_exit(Duration::from_secs(20))
        .expect("the old process did not exit");
    assert!(status.success(), "old process: {status:?}");
    assert!(successor.alive());

    // Every request of the run was answered, none refused or reset.
    let n = load.assert_no_failure();
    println!("upgrade under load: {n} requests, none failed, none refused");

    // The new process serves the same listener and admin addresses.
    assert_eq!(Client::connect(public).get("/after").status(), 200);
    let w = Client::connect(admin).get("/workers");
    assert_eq!(w.status(), 200);
    assert!(
        successor.stop(Duration::from_secs(15)),
        "successor did not stop"
    );
}

#[test]
fn a_successor_that_cannot_start_leaves_the_old_process_serving() {
    let origin = Origin::start();
    let dir = TestDir::new("upgrade-bad");
    let mut proxy = Proxy::start(&dir, &config(&origin));
    let public = proxy.addr("public");
    // The new process reads the file again: make it invalid.
    proxy.rewrite_config_toml("[[listener]]\nname = 3\n");
    proxy.signal(libc::SIGUSR2);
    assert!(
        proxy.wait_stderr_contains("upgrade failed", Duration::from_secs(30)),
        "{}",
        proxy.output_report()
    );
    assert!(proxy.is_running());
    assert_eq!(Client::connect(public).get("/still").status(), 200);
    proxy.sigterm();
    assert!(proxy.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn upgrade_command_hands_over_and_waits_for_the_old_process() {
    use ringway_tests::proxy::run_ringway;
    let origin = Origin::start();
    let dir = TestDir::new("upgrade-cmd");
    let mut proxy = Proxy::start(&dir, &config(&origin));
    let public = proxy.addr("public");
    let pid = proxy.pid().to_string();
    let out = run_ringway(
        &["upgrade", "--pid", &pid, "--timeout", "30s"],
        None,
        Duration::from_secs(40),
    );
    assert_eq!(out.code(), Some(0), "{}", out.all());
    assert!(out.all().contains("has exited"), "{}", out.all());
    let status = proxy.wait_exit(Duration::from_secs(5)).expect("old exited");
    assert!(status.success());
    let line = proxy
        .wait_stdout_line("ringway: upgrade: process", Duration::from_secs(1))
        .expect("upgrade line");
    let successor = Successor(line.split_whitespace().nth(3).unwrap().parse().unwrap());
    assert_eq!(Client::connect(public).get("/after").status(), 200);
    assert!(successor.stop(Duration::from_secs(15)));

    // Not a ringway process: refused, nothing signalled.
    let out = run_ringway(&["upgrade", "--pid", "1"], None, Duration::from_secs(10));
    assert_eq!(out.code(), Some(1), "{}", out.all());
    assert!(out.all().contains("no ringway process"), "{}", out.all());
}
