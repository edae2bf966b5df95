//! Sockets: the per-worker `SO_REUSEPORT` listener sockets.

pub mod h2;
pub mod idle_read;
pub mod listener;
pub mod plain;
pub mod splice;

pub use listener::{adopt_group, bind_group, ListenerGroup};
