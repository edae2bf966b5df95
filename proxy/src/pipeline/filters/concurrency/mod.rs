//! `type = "concurrency_limit"`: at most `max` requests of a route in
//! flight at once, across every worker; 503 with `Retry-After` beyond.
//!
//! # Architecture
//! One `AtomicUsize` per route ([`InFlight`]), shared by the workers (and kept across
//! reloads by route name, [`config::IN_FLIGHT`]). An admitted request
//! holds a [`Permit`] in its `FilterState::permits`; dropping the permit
//! gives the slot back. It is dropped by the filter's response phase
//! (upstream response head or local reply), and otherwise — an error, a
//! client gone mid-request, a later filter's response phase answering
//! first — by `FilterState::clear()` at the next request or with the
//! connection's state: every path gives it back.
//!
//! # Performance
//! Per request: one `fetch_add` and one `fetch_sub` on a shared counter,
//! one `Arc` clone; no allocation once the connection's permit list has
//! its capacity.

pub mod config;
pub mod filter;

pub use config::ConcurrencyLimitFile;
pub use filter::{ConcurrencyLimitFilter, InFlight, Permit};

#[cfg(test)]
mod tests;
