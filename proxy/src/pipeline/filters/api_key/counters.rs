//! Per-key request counters that workers bump without sharing a contended
//! cache line.
//!
//! The filter is one value shared by every worker (the configuration
//! snapshot is immutable and `Send + Sync`), so per-worker storage cannot
//! live in it as `Cell`s. Instead the counters are striped: `slots` blocks
//! of cache-line-aligned `AtomicU64`s, one block per thread slot. A thread
//! takes a slot number once (a thread-local, from a global counter) and
//! only ever adds into its own block (relaxed `fetch_add`, uncontended as
//! long as there are no more threads than slots). Readers (the admin
//! endpoint, tests) sum the blocks.
//!
//! There are as many slots as online CPUs (at most [`MAX_SLOTS`]): one per
//! worker in a thread-per-core layout. With more workers than slots two
//! workers share a block: still correct, just contended.
//!
//! Memory: `slots × ⌈(2 × keys + 2) / 8⌉ × 64` bytes (16 bytes per key per
//! slot).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Upper bound on the number of striped blocks.
pub const MAX_SLOTS: usize = 64;

#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; 8]);

/// ok / rejected per key, plus requests without a key and with an unknown
/// one.
pub struct KeyCounters {
    keys: usize,
    slots: usize,
    lines_per_slot: usize,
    lines: Box<[Line]>,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
}

/// Which counter of a key or of the filter.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// The request carried this key and went on.
    Ok(usize),
    /// The request carried this key but was refused (it sent the key
    /// field more than once).
    Rejected(usize),
    /// No key, or an empty one.
    Missing,
    /// A key that matches none.
    Unknown,
}

impl KeyCounters {
    pub fn new(keys: usize) -> KeyCounters {
        let slots = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_SLOTS);
        KeyCounters::with_slots(keys, slots)
    }

    pub fn with_slots(keys: usize, slots: usize) -> KeyCounters {
        let slots = slots.max(1);
        let lines_per_slot = (2 * keys + 2).div_ceil(8);
        let lines = (0..slots * lines_per_slot)
            .map(|_| Line::default())
            .collect();
        KeyCounters {
            keys,
            slots,
            lines_per_slot,
            lines,
        }
    }

    fn cell(&self, c: Count) -> usize {
        match c {
            Count::Ok(k) => 2 * k,
            Count::Rejected(k) => 2 * k + 1,
            Count::Missing => 2 * self.keys,
            Count::Unknown => 2 * self.keys + 1,
        }
    }

    /// Add one to `c` in this thread's block.
    #[inline]
    pub fn bump(&self, c: Count) {
        let slot = SLOT.with(|s| *s) % self.slots;
        let i = slot * self.lines_per_slot * 8 + self.cell(c);
        self.lines[i / 8].0[i % 8].fetch_add(1, Ordering::Relaxed);
    }

    /// The sum over every block.
    pub fn get(&self, c: Count) -> u64 {
        let cell = self.cell(c);
        (0..self.slots)
            .map(|s| {
                let i = s * self.lines_per_slot * 8 + cell;
                self.lines[i / 8].0[i % 8].load(Ordering::Relaxed)
            })
            .sum()
    }
}

impl std::fmt::Debug for KeyCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCounters")
            .field("keys", &self.keys)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}
