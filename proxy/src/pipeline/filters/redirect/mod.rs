//! Redirects: `type = "redirect"` and the route action `redirect = {…}`
//! answer with a 3xx and a `Location` built from the request.

pub mod config;
pub mod filter;

pub use config::RedirectFile;
pub use filter::RedirectFilter;

#[cfg(test)]
mod tests;
