//! `type = "concurrency_limit"`: admit while fewer than `max` requests of
//! the route are in flight, else 503.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::super::context::{RequestCx, ResponseCx};
use super::super::reply::LocalReply;
use super::super::Flow;

/// A route's requests in flight, shared by every worker.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    rejected: AtomicU64,
}

impl InFlight {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// A slot in a shared in-flight count, given back on drop.
#[derive(Debug)]
pub struct Permit(Arc<InFlight>);

impl Permit {
    /// Take a slot of `counter` if fewer than `max` are taken (else count
    /// the rejection).
    pub fn acquire(counter: &Arc<InFlight>, max: usize) -> Option<Permit> {
        // Take, then give back when over: no CAS loop, and a request that
        // lost the race is never admitted.
        let before = counter.count.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            counter.count.fetch_sub(1, Ordering::AcqRel);
            counter.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Permit(Arc::clone(counter)))
    }

    /// Whether this permit is a slot of `counter`.
    pub fn of(&self, counter: &Arc<InFlight>) -> bool {
        Arc::ptr_eq(&self.0, counter)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Clone)]
pub struct ConcurrencyLimitFilter {
    pub max: usize,
    /// The route's in-flight count, shared by every worker.
    pub in_flight: Arc<InFlight>,
    /// The 503's `Retry-After` value.
    pub retry_after: Arc<[u8]>,
}

impl ConcurrencyLimitFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        match Permit::acquire(&self.in_flight, self.max) {
            Some(p) => {
                cx.state.permits.push(p);
                Flow::Continue
            }
            None => {
                cx.state.response.set(b"retry-after", &self.retry_after);
                Flow::Respond(LocalReply::text(503, "503 Service Unavailable\n"))
            }
        }
    }

    /// The response head is here (or a local reply): the request no longer
    /// holds an upstream slot.
    pub fn on_response(&self, cx: &mut ResponseCx<'_>) -> Flow {
        if let Some(i) = cx.state.permits.iter().rposition(|p| p.of(&self.in_flight)) {
            cx.state.permits.swap_remove(i);
        }
        Flow::Continue
    }

    /// Requests of the route in flight now (all workers).
    pub fn in_flight(&self) -> usize {
        self.in_flight.count()
    }

    /// Requests answered 503 (since the route's count was made: it
    /// survives reloads). For `/metrics`.
    pub fn rejected_total(&self) -> u64 {
        self.in_flight.rejected_total()
    }
}
