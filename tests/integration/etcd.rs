//! etcd discovery and self-registration against a real etcd (Debian
//! `etcd-server`, 3.4, through its HTTP/JSON gateway): one etcd per test on
//! free loopback ports with its own data directory. Endpoints come and go
//! under a prefix while `ringload` runs; etcd is killed and restarted under
//! a watch; a malformed value is skipped; ringway's own key lives under a
//! lease, comes back after etcd loses it and goes on shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ringway_tests::client::Client;
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{ringload_bin, run_ringway, Proxy};
use serde_json::{json, Value};

fn etcd_bin() -> Option<&'static str> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One etcd member on loopback.
struct Etcd {
    bin: &'static str,
    child: Option<Child>,
    client: SocketAddr,
    peer: u16,
    data: PathBuf,
    log: PathBuf,
}

impl Etcd {
    fn start(bin: &'static str, dir: &TestDir) -> Etcd {
        let mut e = Etcd {
            bin,
            child: None,
            client: ([127, 0, 0, 1], free_port()).into(),
            peer: free_port(),
            data: dir.join("etcd-data"),
            log: dir.join("etcd.log"),
        };
        e.run();
        e
    }

    fn url(&self) -> String {
        format!("http://{}", self.client)
    }

    fn run(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(self.bin)
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.data.display()))
            .arg(format!("--listen-client-urls={}", self.url()))
            .arg(format!("--advertise-client-urls={}", self.url()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self
            .call("/v3/kv/range", &json!({"key": B64.encode("x")}))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "etcd did not answer: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill and start again on the same ports (and data, unless `wipe`).
    fn restart(&mut self, wipe: bool) {
        self.kill();
        if wipe {
            std::fs::remove_dir_all(&self.data).unwrap();
        }
        self.run();
    }

    /// Kill, start on the same data with another client port (ringway
    /// cannot see it there), run `meanwhile`, then come back home.
    fn away(&mut self, meanwhile: impl FnOnce(&Etcd)) {
        self.kill();
        let home = self.client;
        self.client = ([127, 0, 0, 1], free_port()).into();
        self.run();
        meanwhile(self);
        self.kill();
        self.client = home;
        self.run();
    }

    fn call(&self, path: &str, body: &Value) -> Result<Value, String> {
        let mut s = TcpStream::connect_timeout(&self.client, Duration::from_secs(1))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let body = body.to_string();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no head")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(text.into_owned());
        }
        serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))
    }

    fn put(&self, key: &str, value: &str) {
        self.call(
            "/v3/kv/put",
            &json!({"key": B64.encode(key), "value": B64.encode(value)}),
        )
        .unwrap();
    }

    fn delete(&self, key: &str) {
        self.call("/v3/kv/deleterange", &json!({"key": B64.encode(key)}))
            .unwrap();
    }

    /// The value of `key` and its lease (0 = none), if it exists.
    fn get(&self, key: &str) -> Option<(String, i64)> {
        let v = self
            .call("/v3/kv/range", &json!({"key": B64.encode(key)}))
            .unwrap();
        let kv = v["kvs"].get(0)?;
        let value = B64.decode(kv["value"].as_str().unwrap_or("")).unwrap();
        let lease = kv["lease"].as_str().map_or(0, |l| l.parse().unwrap());
        Some((String::from_utf8(value).unwrap(), lease))
    }

    fn revision(&self) -> i64 {
        let v = self
            .call("/v3/kv/range", &json!({"key": B64.encode("x")}))
            .unwrap();
        v["header"]["revision"].as_str().unwrap().parse().unwrap()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn endpoint(addr: SocketAddr) -> String {
    json!({"address": addr.to_string(), "metadata": {"version": "v2"}}).to_string()
}

/// One listener, one cluster fed by the etcd prefix `/svc/app/`.
fn discovery_config(etcd: &str) -> String {
    let toml = Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[], &[("etcd", r#"{ prefix = "/svc/app/" }"#)])
        .admin()
        .to_toml()
        .replace("endpoints = []\n", "");
    format!("{toml}\n[etcd]\nendpoints = [{}]\n", q(etcd))
}

fn admin_json(proxy: &Proxy, path: &str) -> Value {
    serde_json::from_slice(&Client::connect(proxy.admin_addr()).get(path).body).unwrap()
}

/// Endpoints put and deleted under the prefix take traffic and leave while
/// `ringload` runs: no request fails. A malformed value is skipped (with a
/// warning naming its key) and the rest of the set stays.
#[test]
fn etcd_endpoints_added_and_removed_while_ringload_runs() {
    let Some(bin) = etcd_bin() else {
        println!("SKIP etcd_endpoints_added_and_removed_while_ringload_runs: no etcd (Debian etcd-server; ./run.sh test installs it as root)");
        return;
    };
    let Some(ringload) = ringload_bin() else {
        println!("SKIP etcd_endpoints_added_and_removed_while_ringload_runs: ringload binary not built (cargo build --workspace --bins)");
        return;
    };
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let dir = TestDir::new("etcd-load");
    let etcd = Etcd::start(bin, &dir);
    etcd.put("/svc/app/a", &endpoint(a.addr()));
    let proxy = Proxy::start_toml(&dir, &discovery_config(&etcd.url()), &[]);
    let url = format!("http://{}/load", proxy.addr("public"));
    let load = std::thread::spawn(move || {
        Command::new(&ringload)
            .args(["run", "-c", "8", "-t", "1", "-d", "8s", "--json", &url])
            .output()
            .expect("ringload runs")
    });
    wait("a to serve", Duration::from_secs(5), || {
        a.request_count() > 20
    });
    assert_eq!(b.request_count(), 0);

    // Added: b takes traffic.
    etcd.put("/svc/app/b", &endpoint(b.addr()));
    wait("b to take traffic", Duration::from_secs(5), || {
        b.request_count() > 20
    });
    let v = admin_json(&proxy, "/clusters");
    let eps = v["clusters"][0]["endpoints"].as_array().unwrap().clone();
    assert_eq!(eps.len(), 2, "{v}");
    assert!(eps.iter().all(|e| e["source"] == "etcd"), "{v}");
    assert!(eps.iter().all(|e| e["metadata"]["version"] == "v2"), "{v}");
    assert_eq!(v["clusters"][0]["etcd_prefix"], "/svc/app/", "{v}");
    let config = admin_json(&proxy, "/config");
    assert_eq!(config["etcd"]["endpoints"][0], etcd.url(), "{config}");

    // Malformed: skipped with a warning, a and b stay.
    etcd.put("/svc/app/broken", "{\"address\": ");
    assert!(
        proxy.wait_stderr_contains("/svc/app/broken", Duration::from_secs(5)),
        "{}",
        proxy.output_report()
    );

    // Removed: a stops getting requests.
    etcd.delete("/svc/app/a");
    wait("a to leave", Duration::from_secs(5), || {
        let before = a.request_count();
        std::thread::sleep(Duration::from_millis(300));
        a.request_count() == before
    });
    let before = b.request_count();
    wait("b to keep serving", Duration::from_secs(5), || {
        b.request_count() > before + 20
    });

    let out = load.join().unwrap();
    assert!(
        out.status.success(),
        "ringload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let requests = report["requests"].as_u64().unwrap();
    assert!(requests > 500, "{report}");
    assert_eq!(report["errors_total"], 0, "{report}");
    assert_eq!(
        report["status_counts"]["200"].as_u64(),
        Some(requests),
        "{report}"
    );
    let stats = admin_json(&proxy, "/stats");
    assert!(
        stats["etcd"]["updates_applied"].as_u64() >= Some(2),
        "{stats}"
    );
    assert!(
        stats["etcd"]["malformed_values"].as_u64() >= Some(1),
        "{stats}"
    );
    println!("etcd discovery under load: {requests} requests, 0 errors");
}

/// etcd killed and restarted (same data) under a watch: what was written
/// while ringway could not see etcd is applied once the watch is back (it
/// resumes from the last revision it saw), and so is what is written right
/// after a restart; when the missed revisions were compacted away, the
/// prefix is read afresh.
#[test]
fn etcd_watch_resumes_after_etcd_restarts() {
    let Some(bin) = etcd_bin() else {
        println!("SKIP etcd_watch_resumes_after_etcd_restarts: no etcd (Debian etcd-server; ./run.sh test installs it as root)");
        return;
    };
    let (a, b, c) = (
        Origin::start_named("a"),
        Origin::start_named("b"),
        Origin::start_named("c"),
    );
    let dir = TestDir::new("etcd-restart");
    let mut etcd = Etcd::start(bin, &dir);
    etcd.put("/svc/app/a", &endpoint(a.addr()));
    let proxy = Proxy::start_toml(&dir, &discovery_config(&etcd.url()), &[]);
    let addr = proxy.addr("public");
    let served_by = |o: &Origin| {
        let before = o.request_count();
        let mut c = Client::connect(addr);
        for i in 0..10 {
            assert_eq!(c.get(&format!("/r/{i}")).status(), 200);
        }
        o.request_count() > before
    };
    assert!(served_by(&a));
    let compactions = || admin_json(&proxy, "/stats")["etcd"]["compactions"].as_u64();

    // Written while the watch is broken (etcd elsewhere): a keeps serving
    // meanwhile; once etcd is back, b comes and a leaves.
    etcd.away(|e| {
        assert!(
            proxy.wait_stderr_contains("broken", Duration::from_secs(5)),
            "{}",
            proxy.output_report()
        );
        assert!(served_by(&a));
        e.put("/svc/app/b", &endpoint(b.addr()));
        e.delete("/svc/app/a");
    });
    wait("b to take traffic", Duration::from_secs(10), || {
        served_by(&b)
    });
    wait("a to leave", Duration::from_secs(5), || !served_by(&a));
    assert_eq!(compactions(), Some(0));

    // Written right after a restart.
    etcd.restart(false);
    etcd.put("/svc/app/c", &endpoint(c.addr()));
    wait("c to take traffic", Duration::from_secs(10), || {
        served_by(&c)
    });

    // Missed and compacted away: read afresh.
    etcd.away(|e| {
        e.delete("/svc/app/c");
        e.call(
            "/v3/kv/compaction",
            &json!({"revision": e.revision().to_string()}),
        )
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_by(&c) {
        assert!(
            Instant::now() < deadline,
            "c still served: {}",
            proxy.output_report()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served_by(&b));
    let stats = admin_json(&proxy, "/stats");
    assert_eq!(stats["etcd"]["compactions"], 1, "{stats}");
    assert!(
        stats["etcd"]["watch_reconnects"].as_u64() >= Some(3),
        "{stats}"
    );
    println!("etcd restarts: {}", stats["etcd"]);
}

/// `[etcd.register]`: the key appears with a lease, is put again after
/// etcd loses its data (a restart on an empty data directory) and goes as
/// soon as ringway shuts down cleanly.
#[test]
fn etcd_registration_lives_under_a_lease() {
    let Some(bin) = etcd_bin() else {
        println!("SKIP etcd_registration_lives_under_a_lease: no etcd (Debian etcd-server; ./run.sh test installs it as root)");
        return;
    };
    let o = Origin::start();
    let dir = TestDir::new("etcd-register");
    let mut etcd = Etcd::start(bin, &dir);
    let toml = format!(
        "{}\n[etcd]\nendpoints = [{}]\n[etcd.register]\nkey = \"/svc/gateway/node-1\"\naddress = \"127.0.0.1:8080\"\nzone = \"a\"\nmetadata = {{ version = \"v2\" }}\nlease_ttl = \"3s\"\n",
        Config::simple(o.addr()).admin().to_toml(),
        q(&etcd.url())
    );
    // `ringway check` registers nothing.
    std::fs::write(dir.join("check.toml"), &toml).unwrap();
    let out = run_ringway(
        &["check", "-c", dir.join("check.toml").to_str().unwrap()],
        None,
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(etcd.get("/svc/gateway/node-1"), None);

    let mut proxy = Proxy::start_toml(&dir, &toml, &[]);
    let key = "/svc/gateway/node-1";
    wait("the key", Duration::from_secs(5), || {
        etcd.get(key).is_some()
    });
    let (value, lease) = etcd.get(key).unwrap();
    assert_ne!(lease, 0, "no lease");
    let v: Value = serde_json::from_str(&value).unwrap();
    assert_eq!(v["address"], "127.0.0.1:8080");
    assert_eq!(v["zone"], "a");
    assert_eq!(v["metadata"]["version"], "v2");
    // Kept alive past its TTL.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(etcd.get(key).map(|k| k.1), Some(lease));

    // etcd loses everything: the key is registered again, on a new lease.
    etcd.restart(true);
    assert_eq!(etcd.get(key), None);
    wait("the key again", Duration::from_secs(10), || {
        etcd.get(key).is_some()
    });
    assert_ne!(etcd.get(key).unwrap().1, 0);

    // Clean shutdown: the lease is revoked, the key goes at once.
    proxy.sigterm();
    wait("the key to go", Duration::from_secs(2), || {
        etcd.get(key).is_none()
    });
    assert!(proxy.wait_exit(Duration::from_secs(10)).is_some());
    let stats_line = proxy.stdout();
    assert!(stats_line.contains("revoked"), "{stats_line}");
}

/// Config problems name the key: `etcd` with `endpoints`, a cluster's
/// prefix without `[etcd]`, an https member, and etcd unreachable when the
/// prefix is first read.
#[test]
fn etcd_config_problems_are_named() {
    let dir = TestDir::new("etcd-check");
    let o = Origin::start();
    let check = |toml: &str| {
        std::fs::write(dir.join("c.toml"), toml).unwrap();
        run_ringway(
            &["check", "-c", dir.join("c.toml").to_str().unwrap()],
            None,
            Duration::from_secs(10),
        )
    };
    // Nothing listens on this port.
    let down = format!("http://127.0.0.1:{}", free_port());
    let base = |extra: &[(&str, &str)]| {
        Config::new()
            .listener("public")
            .route("public", "/", "app", &[])
            .cluster("app", &[o.addr()], extra)
            .to_toml()
    };
    let both = format!(
        "{}\n[etcd]\nendpoints = [{}]\n",
        base(&[("etcd", r#"{ prefix = "/svc/app/" }"#)]),
        q(&down)
    );
    let out = check(&both);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.all().contains("cluster[0].etcd"), "{out}");
    assert!(out.all().contains("give one of"), "{out}");

    let no_section = discovery_config(&down);
    let no_section = &no_section[..no_section.find("[etcd]").unwrap()];
    let out = check(no_section);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.all().contains("needs an [etcd] section"), "{out}");

    let out = check(&discovery_config("https://127.0.0.1:2379"));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.all().contains("etcd.endpoints[0]"), "{out}");

    let out = check(&discovery_config(&down));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.all().contains("cluster[0].etcd"), "{out}");
    assert!(out.all().contains("unreachable"), "{out}");
}
