//! In-flight requests per endpoint of one cluster, on one worker: what
//! `least_request`, `peak_ewma` and bounded-load hashing read. Counted by the
//! [`super::InFlight`] guard a pick returns (up on pick, down on drop).

use std::cell::Cell;

#[derive(Debug)]
pub struct Load {
    in_flight: Box<[Cell<u32>]>,
    total: Cell<u32>,
}

impl Load {
    /// Endpoints counted.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    pub fn new(endpoints: usize) -> Load {
        Load {
            in_flight: (0..endpoints).map(|_| Cell::new(0)).collect(),
            total: Cell::new(0),
        }
    }

    /// Requests in flight to `endpoint` on this worker.
    #[inline]
    pub fn in_flight(&self, endpoint: usize) -> u32 {
        self.in_flight[endpoint].get()
    }

    /// Requests in flight to the whole cluster on this worker.
    #[inline]
    pub fn total(&self) -> u32 {
        self.total.get()
    }

    #[inline]
    pub fn start(&self, endpoint: usize) {
        let c = &self.in_flight[endpoint];
        c.set(c.get() + 1);
        self.total.set(self.total.get() + 1);
    }

    #[inline]
    pub fn finish(&self, endpoint: usize) {
        let c = &self.in_flight[endpoint];
        c.set(c.get().saturating_sub(1));
        self.total.set(self.total.get().saturating_sub(1));
    }

    /// Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam
    /// 2018): `endpoint` may take one more request when its in-flight count
    /// stays within `c` × its weighted share of the cluster's in-flight
    /// requests (this one included), rounded up.
    #[inline]
    pub fn has_room(&self, endpoint: usize, c: f64, weight: u32, total_weight: u64) -> bool {
        let share = f64::from(self.total.get() + 1) * f64::from(weight) / total_weight as f64;
        f64::from(self.in_flight(endpoint) + 1) <= (c * share).ceil()
    }
}
