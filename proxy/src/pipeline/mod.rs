//! The request path as named stages (DESIGN.md §3):
//!
//! ```text
//! accept → [tls handshake] → read_head → route → filters → forward → log
//! ```
//!
//! | stage      | file            | what it does                                         |
//! |------------|-----------------|------------------------------------------------------|
//! | accept     | runtime/worker  | accept gate, spawn a task per connection             |
//! | tls        | connection      | rustls handshake (SNI, ALPN) with the header timeout |
//! | read_head  | read_head       | read + strict parse, header/idle timeouts            |
//! | route      | route           | first matching route of the listener's table        |
//! | filters    | filters         | per-route checks returning `Flow`                    |
//! | forward    | forward, body   | upstream exchange, bodies streamed, retries          |
//! | log        | log             | one record per request, always                       |
//!
//! Errors from any stage are `ProxyError`s, turned into responses in one
//! place (`error::write_error_response`).

pub mod body;
pub mod buffer;
pub mod connection;
pub mod cookie;
pub mod exchange;
pub mod filters;
pub mod forward;
pub mod generation;
pub mod log;
pub mod pick;
pub mod read_head;
pub mod route;
pub mod serve;
pub mod split;
pub mod trace;
pub mod upgrade;

pub use connection::serve_tcp;
pub use route::RouteTable;
