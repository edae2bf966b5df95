//! `type = "concurrency_limit"`: the file form.
//!
//! ```toml
//! [[route.filters]]
//! type = "concurrency_limit"
//! max = 100          # requests in flight on the route, all workers
//! retry_after = 1    # seconds, in the 503's Retry-After
//! ```

use serde::Deserialize;

use super::filter::{ConcurrencyLimitFilter, InFlight};
use crate::pipeline::filters::rate_limit::registry::Registry;
use crate::pipeline::filters::Problems;

/// In-flight counters of the live generations, by route name: a reload
/// (even one that changes `max`) keeps counting the requests in flight.
pub static IN_FLIGHT: Registry<InFlight> = Registry::new();

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyLimitFile {
    pub max: u64,
    #[serde(default)]
    pub retry_after: Option<u32>,
}

impl ConcurrencyLimitFile {
    pub fn build(&self, route: &str, p: &mut Problems) -> Option<ConcurrencyLimitFilter> {
        let before = p.len();
        if !(1..=1_000_000_000).contains(&self.max) {
            p.push((
                "max".into(),
                format!("must be 1..=1000000000 (found {})", self.max),
            ));
        }
        let retry_after = self.retry_after.unwrap_or(1);
        if !(1..=3600).contains(&retry_after) {
            p.push((
                "retry_after".into(),
                format!("must be 1..=3600 seconds (found {retry_after})"),
            ));
        }
        if p.len() != before {
            return None;
        }
        let in_flight = IN_FLIGHT.get_or_insert(route.to_owned(), InFlight::default);
        let mut n = itoa::Buffer::new();
        Some(ConcurrencyLimitFilter {
            max: self.max as usize,
            in_flight,
            retry_after: n.format(retry_after).as_bytes().into(),
        })
    }
}
