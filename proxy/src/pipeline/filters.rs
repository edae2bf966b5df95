//! The `filters` stage: per-route request checks, run in a fixed order after
//! routing and before an upstream is picked. Each returns a [`Flow`].
//!
//! Order (and why): `expect` first (an unknown expectation is answered 417
//! before anything is read), then `body_limit` (a declared Content-Length over
//! the route limit is answered 413 before the client sends the body; chunked
//! bodies are counted while they stream, in `forward`). Authentication,
//! rate limiting and rewrites join this list with their issues.

use crate::error::{ErrorKind, ProxyError};
use crate::http::{BodyFraming, RequestHead};

use super::route::Route;

/// What a filter decided.
#[derive(Debug)]
pub enum Flow {
    /// Go on to the next stage.
    Continue,
    /// Answer now with this error's response; the request goes no further.
    Respond(ProxyError),
}

/// Run the request filters of `route` on `head`.
pub fn run_request_filters(route: &Route, head: &RequestHead) -> Flow {
    if let Flow::Respond(e) = expect(head) {
        return Flow::Respond(e);
    }
    body_limit(route, head)
}

/// `Expect` other than `100-continue` → 417.
fn expect(head: &RequestHead) -> Flow {
    if head.expect_other {
        return Flow::Respond(ProxyError::new(ErrorKind::ExpectationFailed));
    }
    Flow::Continue
}

/// Content-Length over the route's `max_body_bytes` → 413.
fn body_limit(route: &Route, head: &RequestHead) -> Flow {
    if let (Some(max), BodyFraming::Length(n)) = (route.max_body_bytes, head.framing) {
        if n > max {
            return Flow::Respond(ProxyError::new(ErrorKind::BodyTooLarge));
        }
    }
    Flow::Continue
}
