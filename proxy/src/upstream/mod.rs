//! Upstreams: picking an endpoint, connecting (plain or TLS) and keeping idle
//! keep-alive connections per worker.
//!
//! Everything here is per worker and `!Send`: the balancer cursor is a `Cell`,
//! the pool a `Slab` owned by one worker. No locks, no cross-core traffic.

pub mod balancer;
pub mod connect;
pub mod gauge;
pub mod h2;
pub mod health;
pub mod lb;
pub mod pool;
pub mod stream;

pub use balancer::{RoundRobin, SmoothWeighted};
pub use connect::connect;
pub use pool::{EndpointId, UpstreamPool};
pub use stream::UpstreamStream;
