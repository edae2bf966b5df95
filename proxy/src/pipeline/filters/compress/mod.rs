//! Response compression: `type = "compress"` (see `config.rs` for the keys,
//! `filter.rs` for when a response is compressed, `encoder.rs` for the
//! streaming and its memory).
//!
//! # Architecture
//! ```text
//! request phase:  Accept-Encoding → negotiate::choose → CompressState::Accepted
//! response phase: response head eligible? → Vary edit, CompressState::Chosen
//! forward:        ResponseInfo::compress (head reframed: chunked,
//!                 Content-Encoding, weak ETag) → Compressor::step per
//!                 upstream read → chunks to the client → last chunk
//! ```
//! The encoder runs on the worker thread that owns the connection (CPU per
//! byte, like nginx's gzip filter); its state is per response and
//! fixed-size, so memory stays bounded whatever the body size. Local
//! replies (`direct_response`, redirects, filter rejections) are never
//! compressed.

pub mod config;
pub mod encoder;
pub mod filter;
pub mod negotiate;
pub mod types;

pub use config::CompressFile;
pub use encoder::Compressor;
pub use filter::CompressFilter;

/// A content coding ringway can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Brotli,
}

impl Codec {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static [u8] {
        match self {
            Codec::Gzip => b"gzip",
            Codec::Brotli => b"br",
        }
    }
}

/// How one response is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub codec: Codec,
    /// gzip level (1-9) or brotli quality (0-11).
    pub level: u8,
    /// log2 of the history window (gzip: 15; brotli: `brotli_window`).
    pub window: u8,
}

#[cfg(test)]
mod tests;
