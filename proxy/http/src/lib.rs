//! HTTP/1.1 wire handling: strict head parsing into spans of the read buffer,
//! response head parsing, the chunked decoder and head rewriting.
//!
//! # Architecture
//! Parsing never copies: `httparse` parses the head in place and we keep only
//! byte offsets (`Span`) into the connection's read buffer, so the buffer can be
//! lent to the kernel again while the head is still "known". Rewriting writes the
//! forwarded head straight into the connection's reusable output buffer.
//!
//! # Errors
//! Every rejection is a [`HeadError`] or [`ChunkError`] with a static reason; the
//! pipeline maps them to 400 / 431 / 502 in `error.rs`. A malformed PROXY
//! protocol header ([`ProxyHeaderError`]) closes the connection unanswered.

pub mod ascii;
pub mod chunked;
pub mod edits;
mod fields;
pub mod forwarded;
pub mod head;
pub mod hop;
pub mod proxy_protocol;
pub mod response;
pub mod rewrite;

#[cfg(test)]
mod tests;

pub use chunked::{ChunkError, ChunkProgress, ChunkedDecoder};
pub use edits::HeaderEdits;
pub use forwarded::{client_address, Cidr};
pub use head::{BodyFraming, HeadError, HeadLimits, HeaderSpan, RequestHead, Span, Version};
pub use proxy_protocol::{parse_proxy_header, ProxyHeader, ProxyHeaderError};
pub use response::{ResponseFraming, ResponseHead};
