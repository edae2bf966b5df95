//! Request aggregation as a route action (`aggregate = { ... }`): one
//! incoming request fans out to several upstream requests ("legs"), run
//! concurrently on the worker's core, and their answers are merged into one
//! JSON object with a member per leg.
//!
//! ```text
//! request filters → render leg paths (captures, query) → wave 1: independent
//!   legs, concurrently → render the dependent legs' paths (fields of wave-1
//!   answers) → wave 2, concurrently → merge → local reply → response
//!   filters → client
//! ```
//!
//! # Architecture
//! - `config`: the `aggregate` table of a `[[route]]` and its compilation
//!   into an [`Aggregation`] (every problem named by its key).
//! - `template`: leg path templates: `{name}` / `{1}` captures of the
//!   route's `path_regex`, `{query.NAME}` parameters of the incoming request,
//!   `{leg.field.sub}` fields of another leg's JSON answer; values are
//!   percent-encoded so they can never add a `/`, `?`, `#` or a line break.
//! - `run`: one leg's exchange (pooled connection or connect, the head, the
//!   response head, the body de-chunked into a bounded buffer) and the waves.
//!   Legs of a wave are joined by a small hand-written `join_all` over boxed
//!   futures polled by the request's own task: no spawning, no `Send`, no
//!   extra dependency.
//! - `merge`: the composite answer (or the 502 problem body).
//!
//! # Dependencies
//! Exactly one level: a leg may use fields of legs that depend on nothing
//! themselves; it runs in the second wave, after the legs it reads. A leg
//! whose source leg failed fails too (it is not sent).
//!
//! # Failures and policy
//! A leg fails on a connect or transport error, its `timeout`, the route's
//! `deadline` (for the whole aggregation), a status outside 200..=299, a body
//! over `max_leg_bytes`, or a placeholder without a value. With
//! `policy = "all"` (default) any failure answers 502 with an RFC 9457
//! `application/problem+json` body whose `legs` member says, per leg, `"ok"`
//! or what failed; with `policy = "partial"` the answer is 200, the failed
//! legs are `null` and `X-Ringway-Partial` lists them (in leg order).
//!
//! # The incoming request
//! Legs carry no body; an incoming body is not forwarded. As for every local
//! answer, a body already received in full is discarded and the connection
//! stays open; one still arriving closes the connection after the answer.
//!
//! # Performance
//! Only aggregate routes pay for this: templates, names (already JSON-quoted)
//! and the capture regex are compiled once per generation. A request
//! allocates its leg heads, bodies and the merged answer. Leg timeouts are
//! plain monoio timers (the connection's watchdog slot guards one operation
//! at a time, legs run several at once).

mod config;
mod merge;
mod run;
mod template;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use config::{build, AggregateFile, LegFile};
pub use merge::reply;
pub use run::{run, Incoming, LegError, LegOutcome, LegSpan};

use template::Template;

/// What an aggregation answers when a leg fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Every leg must succeed, else 502.
    All,
    /// Failed legs are `null`, listed in `X-Ringway-Partial`.
    Partial,
}

/// One upstream request of an aggregation.
#[derive(Debug, Clone)]
pub struct Leg {
    pub name: String,
    /// `"name":` — the leg's member key, JSON-quoted once.
    key_json: Box<[u8]>,
    /// Cluster index.
    pub cluster: usize,
    pub method: Box<[u8]>,
    path: Template,
    pub timeout: Duration,
    /// Incoming request headers sent along (lower-case names).
    pub headers: Vec<Box<[u8]>>,
    /// Legs whose answers this leg's path reads (it runs after them).
    pub deps: Vec<usize>,
    /// Another leg reads fields of this leg's answer.
    referenced: bool,
}

/// A route's compiled `aggregate` action.
#[derive(Debug, Clone)]
pub struct Aggregation {
    pub policy: Policy,
    /// For the whole aggregation, from the request being routed.
    pub deadline: Duration,
    /// Largest body of one leg (decoded); above, the leg fails.
    pub max_leg_bytes: u64,
    pub legs: Vec<Leg>,
    /// The route's `path_regex`, when a leg uses one of its captures.
    captures: Option<regex::bytes::Regex>,
}

impl Aggregation {
    /// The clusters the legs go to (leg order, no repeats).
    pub fn clusters(&self) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for l in &self.legs {
            if !out.contains(&l.cluster) {
                out.push(l.cluster);
            }
        }
        out
    }

    /// The path template of leg `i` as written (for `/config`).
    pub fn leg_path(&self, i: usize) -> &str {
        self.legs[i].path.source()
    }
}
