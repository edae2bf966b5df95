//! `type = "basic_auth"`: let a request through only with a user and
//! password of an htpasswd file (`Authorization: Basic …`, RFC 7617).
//!
//! # Architecture
//! - `htpasswd.rs`: the file (`user:hash` lines) and the accepted hash
//!   schemes: bcrypt (`$2y$`, `$2b$`, `$2a$`) and SHA-crypt (`$5$`, `$6$`);
//!   every other scheme is refused when the config loads, with its line.
//! - `config.rs`: the file form; the htpasswd file is read by every config
//!   load (so a reload re-reads it).
//! - `cache.rs`: a per-worker cache of credentials that verified, so a
//!   keep-alive client does not pay a bcrypt per request.
//! - `filter.rs`: the request phase: parse `Authorization`, consult the
//!   cache, verify, set `$var.user`, or answer 401 with
//!   `WWW-Authenticate: Basic realm="…", charset="UTF-8"`.
//!
//! # Performance
//! Password hashes are slow on purpose: a bcrypt verify at cost 10–12
//! takes about 50–250 ms of CPU, a SHA-512-crypt at 5000 rounds a few
//! milliseconds, and it runs on the worker's thread: every connection of
//! that worker waits meanwhile. A cache hit costs one SHA-256 of the
//! `Authorization` value and a hash-map probe. Failures are never cached:
//! a client guessing passwords costs a full verify per guess (put a rate
//! limit or an `ip_acl` in front of a public login).

pub mod cache;
pub mod config;
pub mod filter;
pub mod htpasswd;

pub use config::BasicAuthFile;
pub use filter::BasicAuthFilter;

#[cfg(test)]
mod tests;
