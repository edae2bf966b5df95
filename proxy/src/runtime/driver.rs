//! Building a worker's monoio runtime: io_uring with the configured ring
//! setup, or the epoll ("legacy") driver.
//!
//! `driver = "auto"` tries io_uring with the configured flags, then io_uring
//! without setup flags (older kernels reject DEFER_TASKRUN), then epoll; the
//! reason for falling back is returned so it can be printed once.

use std::future::Future;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::config::{DriverKind, RuntimeConfig};

/// Which driver a worker ended up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverUsed {
    /// `features`: the `ring_features` this worker's ring uses (not part
    /// of the driver's name).
    IoUring {
        flags: String,
        features: Vec<&'static str>,
    },
    Legacy {
        reason: Option<String>,
    },
}

impl std::fmt::Display for DriverUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverUsed::IoUring { flags, .. } if flags.is_empty() => f.write_str("io_uring"),
            DriverUsed::IoUring { flags, .. } => write!(f, "io_uring ({flags})"),
            DriverUsed::Legacy { .. } => f.write_str("epoll (legacy)"),
        }
    }
}

fn uring_builder(rc: &RuntimeConfig, with_flags: bool) -> (io_uring::Builder, String) {
    let mut b = io_uring::IoUring::builder();
    b.setup_cqsize(rc.cq_entries);
    let mut names = Vec::new();
    if with_flags {
        if rc.ring_flags.single_issuer {
            b.setup_single_issuer();
            names.push("single_issuer");
        }
        if rc.ring_flags.defer_taskrun {
            b.setup_defer_taskrun();
            names.push("defer_taskrun");
        }
        if rc.ring_flags.coop_taskrun {
            b.setup_coop_taskrun();
            names.push("coop_taskrun");
        }
    }
    if let Some(idle) = rc.sqpoll_idle {
        b.setup_sqpoll(idle.as_millis().min(u32::MAX as u128) as u32);
        names.push("sqpoll");
    }
    (b, names.join(", "))
}

/// Build the runtime for this thread and run `make()`'s future on it.
/// `on_start` is told which driver is in use before the future starts.
pub fn run_on_driver<F, Fut>(
    rc: &RuntimeConfig,
    make: F,
    on_start: impl FnOnce(Result<DriverUsed, String>),
) where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut fallback_reason = None;
    if rc.driver != DriverKind::Legacy {
        let mut last_err = None;
        for with_flags in [true, false] {
            let (urb, flags) = uring_builder(rc, with_flags);
            let built = RuntimeBuilder::<IoUringDriver>::new()
                .enable_timer()
                .with_entries(rc.ring_entries)
                .uring_builder(urb)
                .build();
            match built {
                Ok(mut rt) => {
                    let features = super::ring_features::effective(rc.ring_features);
                    super::ring_features::apply(features, rc.max_connections_per_worker);
                    on_start(Ok(DriverUsed::IoUring {
                        flags,
                        features: super::ring_features::names(features),
                    }));
                    rt.block_on(make());
                    return;
                }
                Err(e) => last_err = Some(e),
            }
            if !(rc.ring_flags.single_issuer
                || rc.ring_flags.defer_taskrun
                || rc.ring_flags.coop_taskrun)
            {
                break;
            }
        }
        let reason = format!(
            "io_uring unavailable: {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        );
        if rc.driver == DriverKind::IoUring {
            on_start(Err(format!("driver = \"io_uring\" but {reason}")));
            return;
        }
        fallback_reason = Some(reason);
    }
    match RuntimeBuilder::<LegacyDriver>::new().enable_timer().build() {
        Ok(mut rt) => {
            on_start(Ok(DriverUsed::Legacy {
                reason: fallback_reason,
            }));
            rt.block_on(make());
        }
        Err(e) => on_start(Err(format!("cannot start the epoll driver: {e}"))),
    }
}
