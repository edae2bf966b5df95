//! [`Table`]: GCRA state of every key of one limiter, in a fixed-size,
//! open-addressing array of `AtomicU64` slots shared by all workers.
//!
//! # Architecture
//! One slot is one `u64`: a 20-bit tag (the top bits of the key's hash,
//! never 0) and the key's GCRA *theoretical arrival time* (TAT), 44 bits of
//! microseconds since a process-wide epoch, wrapping (see below). An empty
//! slot is `0`. A key's home is `hash & mask`; it lives in one of the
//! [`PROBES`] slots from there (linear probing: 8 × 8 bytes, one cache
//! line when the home is aligned).
//!
//! A request for a key, from any worker:
//! 1. Probe: a slot with the key's tag is the key's; remember the first
//!    slot that is empty or *expired* (its TAT is not in the future).
//! 2. Found: GCRA on its TAT, written back with a compare-and-swap. A
//!    CAS that fails because another worker updated the slot is retried
//!    with the value it saw; one that fails because the slot now holds
//!    another key restarts the probe.
//! 3. Not found: claim the remembered slot with a CAS (the request is the
//!    key's first: allowed). An expired slot holds nothing a fresh key
//!    would not have (GCRA with `TAT ≤ now` is the idle state), so
//!    overwriting it loses nothing: idle keys are evicted by being reused.
//! 4. No slot to claim among the [`PROBES`]: every one of them holds a key
//!    that is being limited or has used its bucket recently. The request
//!    is **allowed** (fail open) and counted ([`Table::full_total`]): a flood
//!    of new keys must not lock out the clients that are not flooding, and
//!    the keys already in the table, the busy ones, stay limited.
//!
//! No lock, no allocation after build; memory is `8 × slots` bytes whatever
//! the number of keys. Exact across workers: every decision is one CAS on
//! the shared slot.
//!
//! # Time
//! TATs are stored modulo 2^44 µs (~203 days) and read relative to *now*:
//! `ahead = (tat − now) mod 2^44`. A live slot has `1 ≤ ahead ≤ τ + T` (the
//! furthest a TAT can be ahead); anything else is expired. So the clock may
//! run for years: a slot untouched for a multiple of 203 days (± τ + T) could
//! look live again, which at worst limits one key a little early once.
//!
//! # Collisions
//! Two keys with the same home region and the same 20-bit tag share a
//! bucket (roughly 8 / 2^20 per lookup in a full table). The hash is
//! SipHash with a random key per table, so a client cannot aim at another
//! key's slots.

use std::collections::hash_map::RandomState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Bits of a slot holding the TAT.
const TIME_BITS: u32 = 44;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
/// Slots a key may live in, from its home.
pub const PROBES: usize = 8;
/// How often a probe restarts when slots change under it.
const ATTEMPTS: usize = 4;

/// Microseconds since the process-wide epoch (the first call).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// GCRA parameters: one request per `interval_us`, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Emission interval `T` in µs (period / count), at least 1.
    pub interval_us: u64,
    /// Burst tolerance `τ = (burst − 1) · T`.
    pub tolerance_us: u64,
}

impl Gcra {
    pub fn new(interval_us: u64, burst: u32) -> Gcra {
        let interval_us = interval_us.max(1);
        Gcra {
            interval_us,
            tolerance_us: interval_us * u64::from(burst.max(1) - 1),
        }
    }

    /// The furthest ahead of now a TAT can be.
    fn max_ahead(&self) -> u64 {
        self.tolerance_us + self.interval_us
    }
}

/// What the table decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; `remaining` more requests would be allowed right now.
    Allow { remaining: u64 },
    /// Limited: the next request of this key is allowed in `retry_us`.
    Limit { retry_us: u64 },
    /// No slot for this key within the probes: allowed (fail open).
    Full,
}

/// The shared GCRA state of one limiter. See the module docs.
#[derive(Debug)]
pub struct Table {
    slots: Box<[AtomicU64]>,
    mask: usize,
    pub gcra: Gcra,
    /// Keys the hash of every request (random per table, kept with it
    /// across reloads).
    pub hasher: RandomState,
    limited: AtomicU64,
    full: AtomicU64,
}

impl Table {
    /// A table of `size` slots (rounded up to a power of two, at least
    /// [`PROBES`]).
    pub fn new(size: usize, gcra: Gcra) -> Table {
        let size = size.max(PROBES).next_power_of_two();
        Table {
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
            gcra,
            hasher: RandomState::new(),
            limited: AtomicU64::new(0),
            full: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Requests limited so far (a 429 each).
    pub fn limited_total(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Requests allowed because no slot was free for their key.
    pub fn full_total(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// Slots that hold a live key at `now` (for tests and debugging: a
    /// scan of the whole table).
    pub fn live_slots(&self, now: u64) -> usize {
        self.slots
            .iter()
            .filter(|s| self.live(s.load(Ordering::Relaxed), now))
            .count()
    }

    /// Decide for one request of the key whose hash is `hash`, at `now`
    /// (µs, [`now_us`]), and count what must be counted.
    pub fn check(&self, hash: u64, now: u64) -> Decision {
        let d = self.decide(hash, now);
        match d {
            Decision::Limit { .. } => self.limited.fetch_add(1, Ordering::Relaxed),
            Decision::Full => self.full.fetch_add(1, Ordering::Relaxed),
            Decision::Allow { .. } => 0,
        };
        d
    }

    fn decide(&self, hash: u64, now: u64) -> Decision {
        let tag = (hash >> TIME_BITS).max(1);
        let home = hash as usize;
        'probe: for _ in 0..ATTEMPTS {
            let mut free = None;
            for i in 0..PROBES {
                let idx = home.wrapping_add(i) & self.mask;
                let w = self.slots[idx].load(Ordering::Acquire);
                if w >> TIME_BITS == tag {
                    match self.update(idx, w, tag, now) {
                        Some(d) => return d,
                        None => continue 'probe,
                    }
                }
                if free.is_none() && !self.live(w, now) {
                    free = Some((idx, w));
                }
            }
            let Some((idx, w)) = free else {
                return Decision::Full;
            };
            let new = (tag << TIME_BITS) | (now.wrapping_add(self.gcra.interval_us) & TIME_MASK);
            if self.slots[idx]
                .compare_exchange(w, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Decision::Allow {
                    remaining: self.gcra.tolerance_us / self.gcra.interval_us,
                };
            }
        }
        // Slots kept changing under the probe: a storm of keys on this
        // region; treat as full.
        Decision::Full
    }

    /// How far ahead of `now` the TAT in `w` is, if the slot is live.
    fn ahead(&self, w: u64, now: u64) -> Option<u64> {
        let ahead = (w.wrapping_sub(now)) & TIME_MASK;
        (w != 0 && ahead != 0 && ahead <= self.gcra.max_ahead()).then_some(ahead)
    }

    fn live(&self, w: u64, now: u64) -> bool {
        self.ahead(w, now).is_some()
    }

    /// GCRA on the key's slot `idx` (seen holding `w`). `None` when the
    /// slot was taken by another key meanwhile.
    fn update(&self, idx: usize, mut w: u64, tag: u64, now: u64) -> Option<Decision> {
        let g = self.gcra;
        loop {
            // TAT relative to now: 0 when idle.
            let tat = self.ahead(w, now).unwrap_or(0);
            if tat > g.tolerance_us {
                return Some(Decision::Limit {
                    retry_us: tat - g.tolerance_us,
                });
            }
            let next = tat + g.interval_us;
            let new = (tag << TIME_BITS) | (now.wrapping_add(next) & TIME_MASK);
            match self.slots[idx].compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let remaining = if next > g.tolerance_us {
                        0
                    } else {
                        (g.tolerance_us - next) / g.interval_us + 1
                    };
                    return Some(Decision::Allow { remaining });
                }
                Err(seen) if seen >> TIME_BITS == tag => w = seen,
                Err(_) => return None,
            }
        }
    }
}
