//! ringway: a thread-per-core, io_uring HTTP/1.1 proxy that is both an API
//! gateway and a service-mesh proxy.
//!
//! The request path is a list of named stages (see `pipeline`):
//!
//! ```text
//! accept → [tls handshake] → read_head → route → request filters → pick
//!        → forward → response filters → log
//! ```
//!
//! Module map: `config` (file → typed config), `server` (the process: bind,
//! start workers, signals, live reload), `runtime` (per-core core state:
//! driver, pool, buffers, deadlines, drain), `net` (listeners, TLS
//! acceptor, downstream stream type), `http` (strict codec), `pipeline` (the
//! per-connection stages), `upstream` (balancer, connection pools, connect),
//! `error` (one error type, one mapping to responses).

pub mod accesslog;
pub mod admin;
pub mod cert;
pub mod config;
pub mod error;
/// The strict HTTP/1.1 codec lives in its own small crate (`proxy/http`), so
/// the fuzz targets build without the runtime and TLS stacks.
pub use ringway_http as http;
pub mod net;
pub mod otel;
pub mod pipeline;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod upstream;
