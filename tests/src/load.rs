//! `ringload run` in the background: start it against a URL for a fixed
//! time, do something to the proxy meanwhile, then read its JSON report and
//! check that no request failed.

use std::process::{Child, Command, Stdio};

use crate::proxy::ringload_bin;

/// A `ringload run --json` child process.
pub struct Load {
    child: Option<Child>,
    what: String,
}

impl Load {
    /// `rate` requests a second (open loop) on `connections` keep-alive
    /// connections (one thread) for `duration` (ringload's syntax, e.g.
    /// `"6s"`). `None`, after printing a SKIP line for `test`, when the
    /// ringload binary was not built.
    pub fn start(
        test: &str,
        url: &str,
        connections: usize,
        rate: u32,
        duration: &str,
    ) -> Option<Load> {
        let (c, r) = (connections.to_string(), rate.to_string());
        Load::spawn(test, url, &["-c", &c, "-R", &r, "-t", "1", "-d", duration])
    }

    /// Exactly `requests` requests, closed loop, on `connections`
    /// keep-alive connections (one thread); `None` as for [`Load::start`].
    pub fn count(test: &str, url: &str, connections: usize, requests: u64) -> Option<Load> {
        let (c, n) = (connections.to_string(), requests.to_string());
        Load::spawn(test, url, &["-c", &c, "-n", &n, "-t", "1"])
    }

    fn spawn(test: &str, url: &str, args: &[&str]) -> Option<Load> {
        let Some(bin) = ringload_bin() else {
            println!("SKIP {test} (ringload part): ringload binary not built (cargo build --workspace --bins)");
            return None;
        };
        let child = Command::new(bin)
            .arg("run")
            .args(args)
            .args(["--json", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringload");
        Some(Load {
            child: Some(child),
            what: format!("ringload against {url} ({test})"),
        })
    }

    /// Wait for the run to end; its report.
    pub fn report(mut self) -> serde_json::Value {
        let out = self
            .child
            .take()
            .expect("ringload child")
            .wait_with_output()
            .expect("ringload output");
        assert!(
            out.status.success(),
            "{}: {}",
            self.what,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: {}",
                self.what,
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Wait for the run to end and assert that every request got a 200 and
    /// no connection failed; the number of requests.
    pub fn assert_no_failure(self) -> u64 {
        let what = self.what.clone();
        let r = self.report();
        let requests = r["requests"].as_u64().unwrap_or(0);
        assert!(requests > 0, "{what}: no requests: {r}");
        assert_eq!(r["errors_total"], 0, "{what}: {r}");
        assert_eq!(
            r["status_counts"]["200"].as_u64(),
            Some(requests),
            "{what}: {r}"
        );
        requests
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
