//! The request path as named stages (DESIGN.md §3):
//!
//! ```text
//! accept → [tls handshake] → read_head → (listener ip_acl) → route → checks
//!   → request filters → action: local answer | cluster (split) → pick
//!   → gather → upstream exchange → response filters → response → log
//! ```
//!
//! | stage             | file                 | what it does                                            |
//! |-------------------|----------------------|---------------------------------------------------------|
//! | accept            | serve                | accept gate, a task per connection, generation updates  |
//! | proxy header      | proxy_header         | PROXY protocol v1/v2 source, before TLS (opt-in)        |
//! | tls               | connection           | rustls handshake (SNI, ALPN) with the header timeout    |
//! | read_head         | read_head            | read + strict parse, header/idle timeouts               |
//! | route             | route                | first matching route of the listener's table            |
//! | checks            | filters (run_checks) | 417 for an unknown `Expect`, 413 for a declared body    |
//! | request filters   | filters              | the route's chain: edits, variables, or a local answer  |
//! | action            | connection, split,   | local answer, or the cluster (weighted split, or the    |
//! |                   | versioning,          | API version's cluster; 400/404 for an unknown version), |
//! |                   | aggregate            | or legs to several clusters merged into one JSON answer |
//! | pick              | pick                 | the endpoint of the cluster                             |
//! | gather            | gather               | a small Content-Length body read whole (one write up)   |
//! | upstream exchange | exchange             | send the request, read the response head; may run again |
//! | response filters  | forward, filters     | the chain's response phase (also for local answers)     |
//! | response          | forward, body        | response head and body to the client                    |
//! | log               | log                  | one record per request, always                          |
//!
//! Each request is served with the configuration generation current when
//! its head arrived (`generation`). Errors from any stage are `ProxyError`s,
//! turned into responses in one place (`error::write_error_response`).

pub mod aggregate;
pub mod body;
pub mod buffer;
pub mod connection;
pub mod cookie;
pub mod exchange;
pub mod filters;
pub mod forward;
pub mod gather;
pub mod generation;
pub mod grpc;
pub mod h2_conn;
pub mod hedge;
pub mod log;
pub mod mirror;
pub mod pick;
pub mod proxy_header;
pub mod read_head;
pub mod retry;
pub mod route;
pub mod serve;
pub mod spans;
pub mod splice;
pub mod split;
pub mod target;
pub mod trace;
pub mod upgrade;
pub mod versioning;

pub use connection::serve_tcp;
pub use route::RouteTable;
