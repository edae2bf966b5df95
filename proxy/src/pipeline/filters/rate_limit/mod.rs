//! `type = "rate_limit"`: GCRA per key (client address or block, header,
//! variable, route, or a combination), decided by each worker on its own
//! request path without a lock, exact across workers.
//!
//! # Architecture
//! - [`key`]: the key spec and the request's key hash.
//! - [`table`]: the shared, fixed-size table of `AtomicU64` slots holding
//!   (tag, theoretical arrival time) per key; CAS updates.
//! - [`registry`]: keeps a limiter's table across reloads while its
//!   identity (route, key, rate, burst, table size) is unchanged.
//! - [`config`] / [`filter`]: the file form and the compiled filter (429
//!   with `Retry-After` and the IETF `RateLimit` fields).
//!
//! # Performance
//! Per request: one SipHash of the key parts, one to eight loads of one
//! cache line, one CAS (two when a worker raced). No allocation, no lock.
//! Memory: 8 bytes per slot, fixed at build (`table_size`).

pub mod config;
pub mod filter;
pub mod key;
pub mod registry;
pub mod table;

pub use config::RateLimitFile;
pub use filter::RateLimitFilter;

#[cfg(test)]
mod tests;
