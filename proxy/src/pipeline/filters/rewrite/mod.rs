//! Path rewriting: `type = "rewrite"` replaces the request target sent
//! upstream (a path prefix, or a regex with capture groups).

pub mod config;
pub mod filter;

pub use config::{PrefixFile, RegexFile, RewriteFile};
pub use filter::RewriteFilter;

#[cfg(test)]
mod tests;
