//! DNS discovery against a real resolver: dnsmasq (Debian `dnsmasq-base`)
//! on loopback serves A and SRV records from a hosts file the test
//! rewrites (SIGHUP makes dnsmasq read it again); ringway follows the
//! answers by TTL while requests run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_tests::client::Client;
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::{run_ringway, Proxy};

fn dnsmasq_bin() -> Option<&'static str> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    hosts: PathBuf,
}

impl Dnsmasq {
    /// dnsmasq on a loopback port free for both UDP and TCP (it binds
    /// both; a port free for UDP only made it exit at once when a
    /// concurrent test held the TCP one). A start that fails (it exited, or
    /// never answered) is tried again on another port, up to 5 times.
    fn start(bin: &str, dir: &TestDir, hosts: &str, srv: &[String]) -> Dnsmasq {
        let hosts_file = dir.join("dns-hosts");
        std::fs::write(&hosts_file, hosts).unwrap();
        let log = dir.join("dnsmasq.stderr");
        for attempt in 1..=5 {
            let port = free_udp_and_tcp_port();
            let mut cmd = Command::new(bin);
            cmd.args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--local-ttl=1",
                "--user=root",
                "--log-facility=-",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", hosts_file.display()))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
            for s in srv {
                cmd.arg(format!("--srv-host={s}"));
            }
            let child = cmd.spawn().expect("dnsmasq starts");
            let mut d = Dnsmasq {
                child,
                addr: ([127, 0, 0, 1], port).into(),
                hosts: hosts_file.clone(),
            };
            if d.wait_ready() {
                return d;
            }
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            println!("dnsmasq on port {port} did not start (attempt {attempt}): {err}");
        }
        panic!(
            "dnsmasq did not start in 5 attempts (last stderr in {})",
            log.display()
        );
    }

    /// Until dnsmasq answers a query (any answer; a fixed sleep was too
    /// short on a busy machine, and the proxy then found the port closed).
    /// False when it exited or did not answer within 10 s.
    fn wait_ready(&mut self) -> bool {
        // A standard query, recursion desired, for `ready.test` A.
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["ready", "test"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            let _ = sock.send_to(&q, self.addr);
            if matches!(sock.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[..2] == q[..2]) {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn set_hosts(&self, hosts: &str) {
        std::fs::write(&self.hosts, hosts).unwrap();
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGHUP);
        }
    }
}

/// A loopback port that is free for UDP and for TCP right now.
fn free_udp_and_tcp_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An origin on `ip` (port `port`, 0 = any) answering 200 with `x-origin`.
fn origin(ip: [u8; 4], port: u16, name: &'static str, hits: Arc<AtomicUsize>) -> SocketAddr {
    let l = TcpListener::bind(SocketAddr::from((ip, port))).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let hits = hits.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        hits.fetch_add(1, Ordering::Relaxed);
                        let r = format!(
                            "HTTP/1.1 200 OK\r\nx-origin: {name}\r\nContent-Length: 0\r\n\r\n"
                        );
                        if s.write_all(r.as_bytes()).is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

fn wait(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dns_config(dns: &str) -> String {
    Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[], &[("dns", dns)])
        .admin()
        .to_toml()
        .replace("endpoints = []\n", "")
}

#[test]
fn dns_a_records_added_and_removed_while_requests_run() {
    let Some(bin) = dnsmasq_bin() else {
        println!("SKIP dns_a_records_added_and_removed_while_requests_run: no dnsmasq (Debian dnsmasq-base; ./run.sh test installs it as root)");
        return;
    };
    let (h2, h3) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a2 = origin([127, 0, 0, 2], 0, "two", h2.clone());
    let port = a2.port();
    origin([127, 0, 0, 3], port, "three", h3.clone());
    let dir = TestDir::new("dns-a");
    let dns = Dnsmasq::start(bin, &dir, "127.0.0.2 svc.test\n", &[]);
    let toml = dns_config(&format!(
        r#"{{ name = "svc.test", port = {port}, resolver = "{}", min_ttl = "200ms" }}"#,
        dns.addr
    ));
    let proxy = Proxy::start_toml(&dir, &toml, &[]);
    let addr = proxy.addr("public");
    // ringload runs throughout the changes below, beside a client that
    // counts its own failures.
    let ringload = ringway_tests::load::Load::start(
        "dns_a_records_added_and_removed_while_requests_run",
        &format!("http://{addr}/load"),
        8,
        400,
        "6s",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, failed) = (stop.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let until = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                if c.get("/x").status() != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    wait("127.0.0.2 to serve", Duration::from_secs(5), || {
        h2.load(Ordering::Relaxed) > 20
    });
    assert_eq!(h3.load(Ordering::Relaxed), 0);
    // Added in DNS: 127.0.0.3 takes traffic once the TTL runs out.
    dns.set_hosts("127.0.0.2 svc.test\n127.0.0.3 svc.test\n");
    wait("127.0.0.3 to take traffic", Duration::from_secs(10), || {
        h3.load(Ordering::Relaxed) > 20
    });
    let v: serde_json::Value =
        serde_json::from_slice(&Client::connect(proxy.admin_addr()).get("/clusters").body).unwrap();
    let eps = v["clusters"][0]["endpoints"].as_array().unwrap().clone();
    assert_eq!(eps.len(), 2, "{v}");
    assert!(eps.iter().all(|e| e["source"] == "dns"), "{v}");
    // Removed: 127.0.0.2 stops getting requests.
    dns.set_hosts("127.0.0.3 svc.test\n");
    wait("127.0.0.2 to leave", Duration::from_secs(10), || {
        let before = h2.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(400));
        h2.load(Ordering::Relaxed) == before
    });
    if let Some(l) = ringload {
        let n = l.assert_no_failure();
        println!("DNS changes: {n} ringload requests, none failed");
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests while DNS changed"
    );
}

#[test]
fn dns_srv_records_give_ports_and_unknown_names_are_config_errors() {
    let Some(bin) = dnsmasq_bin() else {
        println!("SKIP dns_srv_records_give_ports_and_unknown_names_are_config_errors: no dnsmasq (Debian dnsmasq-base)");
        return;
    };
    let hits = Arc::new(AtomicUsize::new(0));
    let o = origin([127, 0, 0, 4], 0, "srv", hits.clone());
    let dir = TestDir::new("dns-srv");
    let dns = Dnsmasq::start(
        bin,
        &dir,
        "127.0.0.4 web.test\n",
        &[format!("_web._tcp.svc.test,web.test,{},0,5", o.port())],
    );
    let toml = dns_config(&format!(
        r#"{{ name = "_web._tcp.svc.test", record = "SRV", resolver = "{}" }}"#,
        dns.addr
    ));
    let proxy = Proxy::start_toml(&dir, &toml, &[]);
    let r = Client::connect(proxy.addr("public")).get("/s");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-origin"), Some("srv"));
    // A name the resolver does not know: `ringway check` names the key.
    let bad = dns_config(&format!(
        r#"{{ name = "missing.test", port = 80, resolver = "{}" }}"#,
        dns.addr
    ));
    std::fs::write(dir.join("bad.toml"), bad).unwrap();
    let out = run_ringway(
        &["check", "-c", dir.join("bad.toml").to_str().unwrap()],
        None,
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.all().contains("cluster[0].dns"), "{out}");
}
