//! A small builder for ringway TOML configs. Values are given as raw TOML
//! (`"\"5s\""`, `"2"`); [`q`] quotes a string.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// Quotes `s` as a TOML basic string.
pub fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `["127.0.0.1:1", ...]`
pub fn endpoints(addrs: &[SocketAddr]) -> String {
    let items: Vec<String> = addrs.iter().map(|a| q(&a.to_string())).collect();
    format!("[{}]", items.join(", "))
}

type Table = Vec<(String, String)>;

fn set(table: &mut Table, key: &str, value: &str) {
    if let Some(e) = table.iter_mut().find(|(k, _)| k == key) {
        e.1 = value.to_string();
    } else {
        table.push((key.to_string(), value.to_string()));
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: Table,
    pub limits: Table,
    pub listeners: Vec<Table>,
    pub routes: Vec<Table>,
    pub clusters: Vec<Table>,
    /// Other single tables (`[admin]`, `[stats]`, ...), in insertion order.
    pub sections: Vec<(String, Table)>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// `[runtime] workers = 2, driver = "auto", drain_timeout = "5s"`, nothing else.
    pub fn new() -> Config {
        Config {
            runtime: vec![
                ("workers".into(), "2".into()),
                ("driver".into(), q("auto")),
                ("drain_timeout".into(), q("5s")),
            ],
            limits: Vec::new(),
            listeners: Vec::new(),
            routes: Vec::new(),
            clusters: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// One plain listener "public", one route `/` → cluster "app" → `origin`.
    pub fn simple(origin: SocketAddr) -> Config {
        Config::new()
            .listener("public")
            .route("public", "/", "app", &[])
            .cluster("app", &[origin], &[])
    }

    pub fn runtime(mut self, key: &str, value: &str) -> Config {
        set(&mut self.runtime, key, value);
        self
    }

    pub fn limit(mut self, key: &str, value: &str) -> Config {
        set(&mut self.limits, key, value);
        self
    }

    /// A plain listener on 127.0.0.1:0.
    pub fn listener(self, name: &str) -> Config {
        self.listener_with(name, &[])
    }

    /// A listener on 127.0.0.1:0 with extra keys (e.g. `("tls", "{ ... }")`).
    pub fn listener_with(mut self, name: &str, extra: &[(&str, &str)]) -> Config {
        let mut t = vec![
            ("name".to_string(), q(name)),
            ("address".to_string(), q("127.0.0.1:0")),
        ];
        for (k, v) in extra {
            set(&mut t, k, v);
        }
        self.listeners.push(t);
        self
    }

    /// A route; `extra` adds keys such as `("host", "\"api.test\"")`,
    /// `("timeout", "\"500ms\"")`, `("max_body_bytes", "\"1MiB\"")`.
    pub fn route(
        mut self,
        listener: &str,
        path_prefix: &str,
        cluster: &str,
        extra: &[(&str, &str)],
    ) -> Config {
        let mut t = vec![
            ("listener".to_string(), q(listener)),
            ("path_prefix".to_string(), q(path_prefix)),
            ("cluster".to_string(), q(cluster)),
        ];
        for (k, v) in extra {
            set(&mut t, k, v);
        }
        self.routes.push(t);
        self
    }

    /// Sets a key on every route.
    pub fn all_routes(mut self, key: &str, value: &str) -> Config {
        for r in &mut self.routes {
            set(r, key, value);
        }
        self
    }

    /// A cluster; `extra` adds keys such as `("tls", "{ ... }")`.
    pub fn cluster(mut self, name: &str, eps: &[SocketAddr], extra: &[(&str, &str)]) -> Config {
        let mut t = vec![
            ("name".to_string(), q(name)),
            ("endpoints".to_string(), endpoints(eps)),
            ("connect_timeout".to_string(), q("1s")),
        ];
        for (k, v) in extra {
            set(&mut t, k, v);
        }
        self.clusters.push(t);
        self
    }

    /// Sets `key = value` in the single table `[section]` (created empty
    /// when `key` is empty), e.g. `.section("admin", "listen",
    /// "\"127.0.0.1:0\"")`.
    pub fn section(mut self, section: &str, key: &str, value: &str) -> Config {
        let idx = match self.sections.iter().position(|(n, _)| n == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        if !key.is_empty() {
            set(&mut self.sections[idx].1, key, value);
        }
        self
    }

    /// `[admin] listen = "127.0.0.1:0"`: an admin listener on a free port
    /// (see `Proxy::admin_addr`).
    pub fn admin(self) -> Config {
        self.section("admin", "listen", &q("127.0.0.1:0"))
    }

    /// Sets a key on the named cluster.
    pub fn cluster_set(mut self, name: &str, key: &str, value: &str) -> Config {
        let c = self
            .clusters
            .iter_mut()
            .find(|t| t.iter().any(|(k, v)| k == "name" && *v == q(name)))
            .unwrap_or_else(|| panic!("no cluster {name}"));
        set(c, key, value);
        self
    }

    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let table = |out: &mut String, header: &str, t: &Table| {
            let _ = writeln!(out, "{header}");
            for (k, v) in t {
                let _ = writeln!(out, "{k} = {v}");
            }
            out.push('\n');
        };
        table(&mut out, "[runtime]", &self.runtime);
        if !self.limits.is_empty() {
            table(&mut out, "[limits]", &self.limits);
        }
        for l in &self.listeners {
            table(&mut out, "[[listener]]", l);
        }
        for r in &self.routes {
            table(&mut out, "[[route]]", r);
        }
        for c in &self.clusters {
            table(&mut out, "[[cluster]]", c);
        }
        for (name, t) in &self.sections {
            table(&mut out, &format!("[{name}]"), t);
        }
        out
    }
}
