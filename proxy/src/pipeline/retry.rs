//! Retries (`retries` on a route): a failed upstream attempt is sent again,
//! to another endpoint when the cluster has one, after a jittered backoff,
//! within the cluster's retry budget.
//!
//! # When
//! Only a request whose body is wholly in hand can be sent again (a GET,
//! or a small body that arrived with the head); only before any byte of
//! the response reached the client. Retried:
//! - the connection failed (refused, unreachable, TLS, connect timeout);
//! - the connection closed or reset before any response byte;
//! - no response head within `per_try_timeout` (when set, and time is left
//!   of the route's `timeout`);
//! - a status in `statuses` (default 502, 503, 504): the upstream's
//!   connection is dropped, its answer discarded;
//! - a gRPC status in `grpc_statuses` (e.g. `unavailable`) carried by a
//!   trailers-only answer (`grpc-status` in the response head).
//!
//! # How often
//! At most `attempts` retries per request, and per cluster per worker at
//! most `ratio` × requests + `min_per_second` (the retry budget, as
//! linkerd2-proxy's): every request deposits `ratio` tokens, the budget
//! refills `min_per_second` tokens a second, a retry takes one, and the
//! balance is capped at ten seconds' worth, so an outage cannot be
//! amplified beyond `1 + ratio` times the traffic. A retry the budget
//! refuses is counted (`retries_budget_exhausted`) and the failure goes to
//! the client as it is.
//!
//! # Delay
//! Full jitter: a random time in `[0, min(max_backoff, backoff × 2^n))`
//! before retry n+1, or a 503's `Retry-After` (seconds) up to
//! `retry_after_max`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::config::RetryPolicy;
use crate::error::{ErrorKind, ProxyError};

/// A cluster's retry budget on one worker.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    per_second: f64,
    cap: f64,
    tokens: Cell<f64>,
    last: Cell<Instant>,
}

impl RetryBudget {
    pub fn new((ratio, per_second): (f64, f64)) -> RetryBudget {
        let cap = (per_second * 10.0).max(1.0) + 1000.0 * ratio;
        RetryBudget {
            ratio,
            per_second,
            cap,
            tokens: Cell::new(per_second.min(cap)),
            last: Cell::new(Instant::now()),
        }
    }

    /// A request went to the cluster: its share of a retry.
    #[inline]
    pub fn deposit(&self) {
        self.tokens
            .set((self.tokens.get() + self.ratio).min(self.cap));
    }

    /// Give back a token taken for a retry or hedge that was not sent.
    pub fn refund(&self) {
        self.tokens.set((self.tokens.get() + 1.0).min(self.cap));
    }

    /// Take one retry, if the budget has it.
    pub fn withdraw(&self) -> bool {
        let now = Instant::now();
        let refill = now.saturating_duration_since(self.last.get()).as_secs_f64() * self.per_second;
        self.last.set(now);
        let t = (self.tokens.get() + refill).min(self.cap);
        if t >= 1.0 {
            self.tokens.set(t - 1.0);
            true
        } else {
            self.tokens.set(t);
            false
        }
    }
}

/// Whether a failed attempt may be sent again (before any response byte).
pub fn retriable(e: &ProxyError, per_try: bool) -> bool {
    match e.kind {
        ErrorKind::ConnectFailed | ErrorKind::ConnectTimeout | ErrorKind::UpstreamTls => true,
        // Closed or reset before any response byte.
        ErrorKind::UpstreamClosed => e.retry,
        // The attempt's own timeout (time may be left of the route's).
        ErrorKind::UpstreamTimeout => per_try,
        _ => false,
    }
}

/// Methods RFC 9110 calls idempotent: safe to send twice.
pub fn idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

/// The delay before retry number `n` (0 for the first retry).
pub fn backoff(p: &RetryPolicy, n: u32, random: u64) -> Duration {
    let ceiling = p
        .backoff
        .saturating_mul(1u32 << n.min(16))
        .min(p.max_backoff);
    let nanos = ceiling.as_nanos() as u64;
    if nanos == 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(random % nanos)
    }
}

/// A `Retry-After: <seconds>` value (an HTTP date is not honoured).
pub fn retry_after(value: &[u8]) -> Option<Duration> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v)
        .ok()?
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 2,
            statuses: vec![502, 503, 504],
            grpc_statuses: Vec::new(),
            per_try_timeout: None,
            backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
            retry_after_max: Duration::from_secs(1),
        }
    }

    #[test]
    fn budget_allows_ratio_of_requests_plus_a_floor() {
        // No floor: 20 % of the requests.
        let b = RetryBudget::new((0.2, 0.0));
        let mut allowed = 0;
        for _ in 0..1000 {
            b.deposit();
            if b.withdraw() {
                allowed += 1;
            }
        }
        assert!((195..=200).contains(&allowed), "{allowed}");
        // Spent: nothing more without new requests.
        assert!(!b.withdraw());
        // A floor of 5 per second, no ratio: 5 at once (the start), then
        // about 5 per second.
        let b = RetryBudget::new((0.0, 5.0));
        let n = (0..100).filter(|_| b.withdraw()).count();
        assert_eq!(n, 5);
        std::thread::sleep(Duration::from_millis(420));
        let n = (0..100).filter(|_| b.withdraw()).count();
        assert!((1..=3).contains(&n), "{n}");
    }

    #[test]
    fn backoff_grows_with_full_jitter_under_the_cap() {
        let p = policy();
        assert_eq!(backoff(&p, 0, 0), Duration::ZERO);
        assert!(backoff(&p, 0, u64::MAX) < Duration::from_millis(25));
        assert!(backoff(&p, 2, u64::MAX - 1) < Duration::from_millis(100));
        assert!(backoff(&p, 10, u64::MAX) < Duration::from_millis(250));
    }

    #[test]
    fn what_is_retried() {
        let e = |k| ProxyError::new(k);
        assert!(retriable(&e(ErrorKind::ConnectFailed), false));
        assert!(retriable(&e(ErrorKind::ConnectTimeout), false));
        assert!(!retriable(&e(ErrorKind::UpstreamClosed), false));
        assert!(retriable(
            &e(ErrorKind::UpstreamClosed).retryable(true),
            false
        ));
        assert!(!retriable(&e(ErrorKind::UpstreamTimeout), false));
        assert!(retriable(&e(ErrorKind::UpstreamTimeout), true));
        assert!(!retriable(&e(ErrorKind::ClientClosed), true));
        assert_eq!(retry_after(b" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after(b"-1"), None);
    }
}
