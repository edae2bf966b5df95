//! HTTP/2 downstream: the translation between an HTTP/2 stream and the
//! HTTP/1.1 request and response the stage loop works on.
//!
//! ```text
//!  h2 codec ──HEADERS, DATA──▶ request.rs ──HTTP/1.1 bytes──▶ stage loop
//!  h2 codec ◀──HEADERS, DATA── response.rs ◀──HTTP/1.1 bytes── stage loop
//! ```
//!
//! [`bridge::StreamBridge`] joins both as one byte stream, so every stage
//! (route, filters, pick, exchange with retries and hedging, response
//! filters, log) serves an HTTP/2 stream exactly as it serves an HTTP/1.1
//! request. The cost is a second head encoding and parse per request; the
//! gain is one implementation of every stage. `pipeline::h2_conn` drives
//! the connection; [`preface`] tells a cleartext HTTP/2 connection (prior
//! knowledge) from HTTP/1.1.

pub mod bridge;
pub mod preface;
pub mod recv;
pub mod request;
pub mod response;
pub mod send;
