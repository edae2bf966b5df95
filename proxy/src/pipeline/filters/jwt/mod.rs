//! `type = "jwt"`: accept a request only with a valid JSON Web Token
//! (RFC 7519, compact JWS), check its claims and the route's rules, and
//! forward chosen claims to the upstream.
//!
//! # Architecture
//! - `config.rs`: the file form; reads the keys (JWKS file, PEM public keys,
//!   HMAC secrets) when the configuration loads.
//! - `keys.rs`: keys and the one algorithm each allows (the key decides,
//!   never the token); signature checks are `ring`'s.
//! - `verify.rs`: strict parsing of the token and its header, the signature.
//! - `claims.rs`: time, issuer, audience, required claims; rules (403).
//! - `cache.rs`: verified tokens per worker (`thread_local!`, no locks).
//! - `remote.rs`: `jwks_url`, fetched and refreshed by a thread of its own
//!   and published through an `ArcSwap` (never fetched on the request path).
//! - `filter.rs`: the request phase.
//!
//! # Errors
//! No token: 401 with `WWW-Authenticate: Bearer realm="…"`. A bad token:
//! 401 with `error="invalid_token"`. A valid token failing the rules: 403
//! with `error="insufficient_scope"`. The reason is logged at debug level,
//! never sent. The upstream is not contacted.
//!
//! # Performance
//! A cached token costs a SHA-256 of the token and a map lookup; a new one
//! a signature check (HMAC ≈ 1 µs, Ed25519 and RSA-2048 tens of µs, ECDSA
//! more) and two small JSON parses.

pub mod cache;
pub mod claims;
pub mod config;
pub mod filter;
pub mod keys;
pub mod remote;
pub mod verify;

pub use config::JwtFile;
pub use filter::JwtFilter;

#[cfg(test)]
mod tests;
