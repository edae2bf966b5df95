//! Client address rules: `type = "ip_acl"` (see `config.rs` for the keys),
//! and the compiled [`IpAcl`] that listeners use too (`ip_acl = {…}` on a
//! `[[listener]]`).

pub mod acl;
pub mod config;
pub mod filter;

pub use acl::{Cidr, IpAcl};
pub use config::IpAclFile;
pub use filter::IpAclFilter;

#[cfg(test)]
mod tests;
