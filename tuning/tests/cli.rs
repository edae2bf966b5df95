//! The `ringway-tune` binary: `inspect` on this machine and on a fake tree,
//! `sysctl` against `packaging/60-ringway.conf`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringway-tune"))
        .args(args)
        .output()
        .expect("run ringway-tune")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn packaging_file() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/60-ringway.conf");
    std::fs::read_to_string(p).expect("packaging/60-ringway.conf")
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ringway-tune-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn inspect_json_on_this_machine() {
    let out = tune(&["inspect", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["root"], "/");
    let summary = &v["summary"];
    let findings = v["findings"].as_array().expect("findings");
    let count = |sev: &str| findings.iter().filter(|f| f["severity"] == sev).count() as u64;
    for sev in ["critical", "warn", "info"] {
        assert_eq!(summary[sev].as_u64(), Some(count(sev)), "{sev}");
    }
    assert!(summary["ok"].as_u64().is_some());
    let mut last = 3;
    for f in findings {
        assert!(f["id"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        assert!(f["seen"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        assert!(f["why"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        let rank = match f["severity"].as_str() {
            Some("critical") => 2,
            Some("warn") => 1,
            Some("info") => 0,
            other => panic!("severity {other:?}"),
        };
        assert!(rank <= last, "not most severe first: {f}");
        last = rank;
        match &f["fix"] {
            serde_json::Value::Null => {}
            fix => {
                let kind = fix["kind"].as_str().expect("fix.kind");
                assert!(
                    ["sysctl", "systemd", "command", "config"].contains(&kind),
                    "{kind}"
                );
                assert!(fix["text"].as_str().is_some_and(|t| !t.is_empty()));
            }
        }
    }
    for id in [
        "cpu.smt",
        "cpu.governor",
        "cpu.isolated",
        "numa.nodes",
        "uring.disabled",
        "uring.kernel",
        "uring.setup",
        "uring.memlock",
        "limits.nofile",
        "sysctl.net.core.somaxconn",
        "sysctl.net.ipv4.tcp_max_syn_backlog",
        "sysctl.net.ipv4.ip_local_port_range",
        "sysctl.net.ipv4.tcp_tw_reuse",
        "net.busy_poll",
    ] {
        assert!(findings.iter().any(|f| f["id"] == id), "no {id}");
    }
    let facts = &v["facts"];
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(facts["kernel"].as_str(), Some(release.trim()));
    let cpus = facts["online_cpus"].as_array().expect("online_cpus");
    assert!(!cpus.is_empty());
    let rings = facts["io_uring"].as_array().expect("io_uring");
    assert_eq!(rings.len(), 8);
    assert_eq!(rings[0]["flags"], serde_json::json!([]));
    for r in rings {
        assert!(r["accepted"].is_boolean());
    }
    assert!(facts["nofile"]["soft"].is_u64() || facts["nofile"]["soft"].is_null());
    assert!(facts["sysctl"]["net.core.somaxconn"].is_string());
}

#[test]
fn inspect_text_on_this_machine() {
    let out = tune(&["inspect"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("ringway-tune inspect: root /, kernel "),
        "{text}"
    );
    assert!(text.contains("\n  seen: "));
    assert!(text.trim_end().ends_with("of them ok)"), "{text}");
}

#[test]
fn inspect_a_fake_tree_without_probes() {
    let t = TempDir::new("fake");
    t.file("sys/devices/system/cpu/online", "0-3\n");
    t.file("proc/sys/kernel/osrelease", "6.1.0-26-amd64\n");
    t.file("proc/sys/kernel/io_uring_disabled", "2\n");
    t.file("proc/sys/net/core/somaxconn", "128\n");
    let root = t.0.to_str().unwrap();
    let out = tune(&["inspect", "--root", root, "--no-probe", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |id: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .clone()
    };
    assert_eq!(find("uring.disabled")["severity"], "critical");
    assert_eq!(
        find("uring.disabled")["fix"]["text"],
        "-kernel.io_uring_disabled = 0"
    );
    assert_eq!(find("sysctl.net.core.somaxconn")["severity"], "warn");
    assert!(find("uring.setup")["seen"]
        .as_str()
        .unwrap()
        .contains("not probed"));
    assert_eq!(v["facts"]["online_cpus"], serde_json::json!([0, 1, 2, 3]));
    // --fail-on turns findings into an exit status.
    let out = tune(&[
        "inspect",
        "--root",
        root,
        "--no-probe",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(out.status.code(), Some(1));
    t.file("proc/sys/kernel/io_uring_disabled", "0\n");
    let out = tune(&[
        "inspect",
        "--root",
        root,
        "--no-probe",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn sysctl_prints_the_packaging_file() {
    let out = tune(&["sysctl"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), packaging_file());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dry run: nothing written"), "{err}");
    // The crate's embedded copy is the file (one source of truth).
    assert_eq!(ringway_tune::profile::PROFILE, packaging_file());
}

#[test]
fn sysctl_write_into_a_directory() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("write");
    let path = t.0.join("60-ringway.conf");
    let out = tune(&["sysctl", "--write", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), packaging_file());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert!(String::from_utf8_lossy(&out.stderr).contains("sysctl --system"));
    // Nowhere to write: an error, not a panic.
    let missing = t.0.join("no/such/dir/60-ringway.conf");
    let out = tune(&["sysctl", "--write", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

/// `sweep` needs the ringway and ringload binaries next to ringway-tune
/// (`cargo build --workspace --bins`, as `./run.sh test` does first).
#[test]
fn sweep_quick_writes_a_tuned_file_and_a_report() {
    let bin = Path::new(env!("CARGO_BIN_EXE_ringway-tune"));
    let dir = bin.parent().unwrap();
    if !dir.join("ringway").exists() || !dir.join("ringload").exists() {
        eprintln!("SKIP: ringway or ringload not built in {}", dir.display());
        return;
    }
    let t = TempDir::new("sweep");
    let config = "# mine\n[runtime]\nworkers = 1   # one\n\n[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:8080\"\n\n[[route]]\nlistener = \"public\"\npath_prefix = \"/\"\ncluster = \"app\"\n\n[[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9000\"]\n";
    t.file("ringway.toml", config);
    let cfg = t.0.join("ringway.toml");
    let out = tune(&[
        "sweep",
        "-c",
        cfg.to_str().unwrap(),
        "--quick",
        "--duration",
        "300ms",
        "--reps",
        "1",
        "--rate",
        "300",
        "--connections",
        "10",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let report = std::fs::read_to_string(t.0.join("ringway-tune-sweep.md")).unwrap();
    assert!(report.contains("**Objective**"), "{report}");
    assert!(report.contains("**Result**"), "{report}");
    assert!(
        report.contains("| 0 (current) | 1 | 1024 | single_issuer + coop_taskrun |"),
        "{report}"
    );
    assert!(report.contains("fixed 300 req/s"), "{report}");
    assert!(report.contains("**Core placement**: "), "{report}");
    for chart in ["throughput", "p99", "cpu"] {
        let name = format!("ringway-tune-sweep-{chart}.svg");
        let svg = std::fs::read_to_string(t.0.join(&name)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{name}");
        assert!(report.contains(&format!("]({name})")), "{report}");
    }
    let tuned = std::fs::read_to_string(t.0.join("ringway.tuned.toml")).unwrap();
    // The rest of the file is kept as written.
    assert!(tuned.contains("# mine\n"), "{tuned}");
    assert!(tuned.contains("[[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9000\"]\n"));
    let table: toml::Table = toml::from_str(&tuned).unwrap();
    assert_eq!(table["listener"][0]["name"].as_str(), Some("public"));
    assert!(table["runtime"]["workers"].is_integer());
}
