//! `type = "rate_limit"`: allow or answer 429, per key, GCRA.

use std::sync::Arc;

use super::super::context::RequestCx;
use super::super::reply::LocalReply;
use super::super::Flow;
use super::config::Rate;
use super::key::KeySpec;
use super::table::{now_us, Decision, Table};

#[derive(Debug, Clone)]
pub struct RateLimitFilter {
    pub key: KeySpec,
    /// Shared by every worker, and by the next generation when unchanged.
    pub table: Arc<Table>,
    pub rate: Rate,
    pub burst: u32,
    /// The policy's name in the `RateLimit` fields.
    pub policy_name: Arc<str>,
    /// The `RateLimit-Policy` value: `"default";q=100;w=1`.
    pub policy_field: Arc<[u8]>,
}

impl RateLimitFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let hash = self.key.hash(cx, &self.table.hasher);
        match self.table.check(hash, now_us()) {
            Decision::Allow { .. } | Decision::Full => Flow::Continue,
            Decision::Limit { retry_us } => {
                self.limited_reply(cx, retry_us);
                Flow::Respond(LocalReply::text(429, "429 Too Many Requests\n"))
            }
        }
    }

    /// Record the 429's fields: `Retry-After` (whole seconds, rounded up),
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).
    fn limited_reply(&self, cx: &mut RequestCx<'_>, retry_us: u64) {
        let secs = retry_seconds(retry_us);
        let mut n = itoa::Buffer::new();
        let secs = n.format(secs).as_bytes();
        let edits = &mut cx.state.response;
        edits.set(b"retry-after", secs);
        edits.set(b"ratelimit-policy", &self.policy_field);
        let start = edits.begin_value();
        edits.push_value(b"\"");
        edits.push_value(self.policy_name.as_bytes());
        edits.push_value(b"\";r=0;t=");
        edits.push_value(secs);
        edits.finish_value(start, b"ratelimit", false);
    }

    /// Requests this limiter answered with 429 (since its table was made:
    /// it survives reloads with the table). For `/metrics`.
    pub fn limited_total(&self) -> u64 {
        self.table.limited_total()
    }

    /// Requests allowed because the table had no slot for their key.
    pub fn table_full_total(&self) -> u64 {
        self.table.full_total()
    }
}

/// `Retry-After` for a wait of `us`: whole seconds, rounded up, at least 1.
pub fn retry_seconds(us: u64) -> u64 {
    us.div_ceil(1_000_000).max(1)
}
