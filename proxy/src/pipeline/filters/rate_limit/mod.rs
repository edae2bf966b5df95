//! `type = "rate_limit"`: GCRA per key (client address or block, header,
//! variable, route, or a combination), decided by each worker on its own
//! request path without a lock, exact across workers. With `plans`, the
//! rate and burst depend on the request's plan (a variable, by default
//! `$var.api_key_plan`): each plan is a limiter of its own.
//!
//! # Architecture
//! - [`key`]: the key spec and the request's key hash.
//! - [`table`]: the shared, fixed-size table of `AtomicU64` slots holding
//!   (tag, theoretical arrival time) per key; CAS updates.
//! - [`registry`]: keeps a limiter's table across reloads while its
//!   identity (route, key, plan, rate, burst, table size) is unchanged.
//! - [`config`] / [`filter`]: the file form and the compiled filter: the
//!   default plan and one [`filter::Limiter`] (table, GCRA, policy fields)
//!   per plan, picked by a binary search on the plan name; 429 with
//!   `Retry-After` and the IETF `RateLimit` fields naming the plan.
//!
//! # Performance
//! Per request: one SipHash of the key parts, one to eight loads of one
//! cache line, one CAS (two when a worker raced); with plans, one variable
//! lookup and a binary search over the plan names. No allocation, no lock.
//! Memory: 8 bytes per slot, `table_size` slots per plan (the default
//! plan included), fixed at build.

pub mod config;
pub mod filter;
pub mod key;
pub mod registry;
pub mod table;

pub use config::RateLimitFile;
pub use filter::RateLimitFilter;

#[cfg(test)]
mod tests;
