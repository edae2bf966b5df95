//! `type = "api_key"`: let a request through only with a known API key, in
//! a header (`x-api-key` by default) or a query parameter.
//!
//! # Architecture
//! - `config.rs`: the file form, the keys file (`keys_file`, re-read by
//!   every config load, so a reload picks up its changes) and their checks.
//! - `filter.rs`: the request phase: find the key, hash it, look it up,
//!   set `$var.api_key_id` / `$var.api_key_plan`, strip the key, or answer
//!   401 with `WWW-Authenticate: ApiKey realm="…"`.
//! - `counters.rs`: per-key counters (ok / rejected) striped per worker
//!   thread, read with [`ApiKeyFilter::counts`].
//!
//! # Security
//! The config holds SHA-256 hashes, never keys. A presented key is hashed
//! and looked up by its hash; the lookup's timing depends on the hash of
//! what the client sent, which a client cannot steer toward a stored hash
//! without a SHA-256 preimage, so it tells nothing about stored keys. The
//! match is then confirmed with a constant-time compare.
//!
//! # Performance
//! One SHA-256 of the key (tens of bytes: well under a microsecond), one
//! hash-map probe, one relaxed add on a counter line of this worker. The
//! query-parameter form rewrites the target into the connection's reusable
//! target buffer.

pub mod config;
pub mod counters;
pub mod filter;

pub use config::{ApiKeyFile, KeyEntryFile};
pub use filter::{hash_key, new_key, ApiKeyFilter, KeyCount};

#[cfg(test)]
mod tests;
