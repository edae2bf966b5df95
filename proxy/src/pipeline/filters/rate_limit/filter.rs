//! `type = "rate_limit"`: allow or answer 429, per key, GCRA.

use std::sync::Arc;

use super::super::context::RequestCx;
use super::super::reply::LocalReply;
use super::super::Flow;
use super::config::Rate;
use super::key::KeySpec;
use super::table::{now_us, Decision, Table};

/// One plan's limiter: its GCRA parameters, its table and its fields.
#[derive(Debug, Clone)]
pub struct Limiter {
    /// Shared by every worker, and by the next generation when unchanged.
    pub table: Arc<Table>,
    pub rate: Rate,
    pub burst: u32,
    /// The policy's name in the `RateLimit` fields: the plan's name, or
    /// `policy` for the default plan.
    pub policy_name: Arc<str>,
    /// The `RateLimit-Policy` value: `"default";q=100;w=1`.
    pub policy_field: Arc<[u8]>,
}

#[derive(Debug, Clone)]
pub struct RateLimitFilter {
    pub key: KeySpec,
    /// The default plan (`rate`, `burst`): requests without a plan, or
    /// whose plan is not in `plans`.
    pub default: Limiter,
    /// The variable naming the request's plan (`Some` when `plans` is set).
    pub plan_from: Option<Box<str>>,
    /// The plans, sorted by name.
    pub plans: Box<[(Box<[u8]>, Limiter)]>,
}

impl RateLimitFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let limiter = self.limiter_for(cx);
        let hash = self.key.hash(cx, &limiter.table.hasher);
        match limiter.table.check(hash, now_us()) {
            Decision::Allow { .. } | Decision::Full => Flow::Continue,
            Decision::Limit { retry_us } => {
                limiter.limited_reply(cx, retry_us);
                Flow::Respond(LocalReply::text(429, "429 Too Many Requests\n"))
            }
        }
    }

    /// The request's plan: the one `plan_from` names, else the default.
    #[inline]
    pub fn limiter_for(&self, cx: &RequestCx<'_>) -> &Limiter {
        self.plan(self.plan_from.as_deref().and_then(|v| cx.state.vars.get(v)))
    }

    /// The limiter of plan `name` (`None`, or a name not in `plans`: the
    /// default).
    pub fn plan(&self, name: Option<&[u8]>) -> &Limiter {
        name.and_then(|n| {
            self.plans
                .binary_search_by(|(p, _)| p.as_ref().cmp(n))
                .ok()
                .map(|i| &self.plans[i].1)
        })
        .unwrap_or(&self.default)
    }

    /// Every plan's limiter, the default first.
    pub fn limiters(&self) -> impl Iterator<Item = &Limiter> {
        std::iter::once(&self.default).chain(self.plans.iter().map(|(_, l)| l))
    }

    /// Requests this limiter answered with 429, all plans together (since
    /// their tables were made: they survive reloads with the tables). For
    /// `/metrics`.
    pub fn limited_total(&self) -> u64 {
        self.limiters().map(|l| l.table.limited_total()).sum()
    }

    /// Requests allowed because a table had no slot for their key.
    pub fn table_full_total(&self) -> u64 {
        self.limiters().map(|l| l.table.full_total()).sum()
    }
}

impl Limiter {
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
}

/// `Retry-After` for a wait of `us`: whole seconds, rounded up, at least 1.
pub fn retry_seconds(us: u64) -> u64 {
    us.div_ceil(1_000_000).max(1)
}
