//! Header edits: `type = "headers"` (see `config.rs` for the keys).

pub mod config;
pub mod filter;

pub use config::HeadersFile;
pub use filter::HeadersFilter;
