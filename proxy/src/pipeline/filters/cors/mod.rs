//! Cross-origin resource sharing: `type = "cors"` (see `config.rs` for the
//! keys, `filter.rs` for what is answered and added).

pub mod config;
pub mod filter;

pub use config::CorsFile;
pub use filter::CorsFilter;

#[cfg(test)]
mod tests;
