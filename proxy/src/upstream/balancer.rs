//! Endpoint choice. Round robin, one cursor per cluster per worker.

use std::cell::Cell;

/// Round robin over `n` endpoints. Each worker has its own cursor, so
/// workers do not coordinate; over many requests each endpoint still gets
/// an equal share.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: Cell<usize>,
}

impl RoundRobin {
    /// A cursor starting at `start` (workers start at different offsets so
    /// that the first requests of each do not all hit endpoint 0).
    pub fn starting_at(start: usize) -> Self {
        RoundRobin {
            next: Cell::new(start),
        }
    }

    /// The index of the next endpoint, or `None` when there is none.
    pub fn pick(&self, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let i = self.next.get() % n;
        self.next.set(i + 1);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_through_all_endpoints() {
        let rr = RoundRobin::starting_at(1);
        let picks: Vec<_> = (0..6).map(|_| rr.pick(3).unwrap()).collect();
        assert_eq!(picks, vec![1, 2, 0, 1, 2, 0]);
        assert_eq!(rr.pick(0), None);
    }
}
