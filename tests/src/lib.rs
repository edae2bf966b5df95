//! Test harness for ringway's integration tests.
//!
//! Everything here talks to real processes over real sockets on 127.0.0.1,
//! using std threads and blocking sockets only:
//!
//! - [`proxy`]: spawn `ringway run`, wait for `ringway: ready`, parse the
//!   listener lines, signal it, read its memory, kill it on drop;
//!   [`proxy::run_ringway`] for one-shot commands (`check`, `--version`).
//! - [`origin`]: a multi-threaded HTTP/1.1 origin (plain or TLS) that records
//!   every request head it receives and serves a few test paths.
//! - [`client`]: a raw HTTP/1.1 client (plain or TLS) that writes arbitrary
//!   bytes and parses responses strictly.
//! - [`certs`]: an rcgen CA and leaf certificates, written as PEM files.
//! - [`tls`]: rustls client and server configs (ring provider).
//! - [`config`]: a small builder for ringway TOML configs.
//! - [`wire`]: the buffered reader shared by client and origin (heads, chunked
//!   and Content-Length bodies).
//! - [`pattern`]: the deterministic byte pattern used for large bodies.
//! - [`dir`]: per-test temporary directories.
//! - [`h2raw`]: a raw HTTP/2 frame client with a minimal HPACK encoder, for
//!   sending what well-behaved clients refuse to (attack tests).
//! - [`load`]: `ringload run` in the background, its report checked.
//! - [`setup`]: origin + proxy + dir in one value, for the common case.
//! - [`netns`]: Linux network namespaces joined by a bridge (multi-host
//!   fault tests), processes started inside them; all removed on drop.

pub mod certs;
pub mod client;
pub mod config;
pub mod dir;
pub mod h2raw;
pub mod load;
pub mod netns;
pub mod origin;
pub mod pattern;
pub mod proxy;
pub mod setup;
pub mod tls;
pub mod wire;

use std::time::Duration;

/// Read/write timeout put on every socket the harness opens.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
