//! Fixed local answers: `type = "direct_response"` and the route action of
//! the same name.

pub mod config;
pub mod filter;

pub use config::DirectFile;
pub use filter::DirectFilter;
