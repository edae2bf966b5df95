//! The common arrangement: one origin, one proxy in front of it, one temp dir.

use std::net::SocketAddr;

use crate::client::Client;
use crate::config::Config;
use crate::dir::TestDir;
use crate::origin::Origin;
use crate::proxy::Proxy;

/// Fields drop in order: the proxy first, then the origin, then the dir.
pub struct Setup {
    pub proxy: Proxy,
    pub origin: Origin,
    pub dir: TestDir,
}

impl Setup {
    /// Starts a plain origin and a proxy whose config is
    /// `tweak(Config::simple(origin))` (listener "public", route `/` → "app").
    pub fn new(label: &str, tweak: impl FnOnce(Config) -> Config) -> Setup {
        let dir = TestDir::new(label);
        let origin = Origin::start();
        let config = tweak(Config::simple(origin.addr()));
        let proxy = Proxy::start(&dir, &config);
        Setup { proxy, origin, dir }
    }

    /// As [`Setup::new`], with extra environment for the proxy (it wins
    /// over the test process's own, e.g. `RINGWAY_RING_FEATURES`).
    pub fn with_env(
        label: &str,
        env: &[(&str, &str)],
        tweak: impl FnOnce(Config) -> Config,
    ) -> Setup {
        let dir = TestDir::new(label);
        let origin = Origin::start();
        let config = tweak(Config::simple(origin.addr()));
        let proxy = Proxy::start_toml(&dir, &config.to_toml(), env);
        Setup { proxy, origin, dir }
    }

    /// The "public" listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.proxy.addr("public")
    }

    /// A new client connection to the "public" listener.
    pub fn client(&self) -> Client {
        Client::connect(self.addr())
    }
}

/// Bytes shown for humans: escaped, cut at `max` bytes.
pub fn show(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len().min(max);
    let mut s = bytes[..cut].escape_ascii().to_string();
    if bytes.len() > cut {
        s.push_str(&format!("... ({} bytes in all)", bytes.len()));
    }
    s
}
