//! Sockets: the per-worker `SO_REUSEPORT` listener sockets.

pub mod listener;

pub use listener::{bind_group, ListenerGroup};
