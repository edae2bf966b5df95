//! What cannot be read from files: which io_uring setup flags this kernel
//! accepts (probed by creating tiny rings) and this process's resource
//! limits. Behind [`Probe`] so tests inject the answers.

use serde::Serialize;

/// An io_uring setup flag `inspect` probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RingFlag {
    Sqpoll,
    CoopTaskrun,
    TaskrunFlag,
    SingleIssuer,
    DeferTaskrun,
    SubmitAll,
}

impl RingFlag {
    /// The kernel's name (`IORING_SETUP_…`).
    pub fn kernel_name(self) -> &'static str {
        match self {
            RingFlag::Sqpoll => "IORING_SETUP_SQPOLL",
            RingFlag::CoopTaskrun => "IORING_SETUP_COOP_TASKRUN",
            RingFlag::TaskrunFlag => "IORING_SETUP_TASKRUN_FLAG",
            RingFlag::SingleIssuer => "IORING_SETUP_SINGLE_ISSUER",
            RingFlag::DeferTaskrun => "IORING_SETUP_DEFER_TASKRUN",
            RingFlag::SubmitAll => "IORING_SETUP_SUBMIT_ALL",
        }
    }

    /// The name in ringway's `[runtime] ring_flags` (`sqpoll` is the
    /// `sqpoll_idle` key instead; the others ringway does not set).
    pub fn name(self) -> &'static str {
        match self {
            RingFlag::Sqpoll => "sqpoll",
            RingFlag::CoopTaskrun => "coop_taskrun",
            RingFlag::TaskrunFlag => "taskrun_flag",
            RingFlag::SingleIssuer => "single_issuer",
            RingFlag::DeferTaskrun => "defer_taskrun",
            RingFlag::SubmitAll => "submit_all",
        }
    }
}

/// The flag sets probed, each a ring of 4 entries: no flags, each flag
/// (DEFER_TASKRUN and TASKRUN_FLAG with the flag the kernel requires
/// beside them), and ringway's default pair.
pub const PROBED: &[&[RingFlag]] = &[
    &[],
    &[RingFlag::Sqpoll],
    &[RingFlag::CoopTaskrun],
    &[RingFlag::CoopTaskrun, RingFlag::TaskrunFlag],
    &[RingFlag::SingleIssuer],
    &[RingFlag::SingleIssuer, RingFlag::DeferTaskrun],
    &[RingFlag::SubmitAll],
    &[RingFlag::SingleIssuer, RingFlag::CoopTaskrun],
];

/// A soft and hard resource limit; `None` = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Which resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Nofile,
    Memlock,
}

pub trait Probe {
    /// Create (and close) a ring of 4 entries with these flags. `Err` holds
    /// the error the kernel returned.
    fn uring_setup(&self, flags: &[RingFlag]) -> Result<(), String>;
    /// This process's limit.
    fn rlimit(&self, resource: Resource) -> Option<Limit>;
}

/// The real kernel, for this process.
pub struct KernelProbe;

impl Probe for KernelProbe {
    fn uring_setup(&self, flags: &[RingFlag]) -> Result<(), String> {
        let mut b =
            io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder();
        for f in flags {
            match f {
                RingFlag::Sqpoll => b.setup_sqpoll(10),
                RingFlag::CoopTaskrun => b.setup_coop_taskrun(),
                RingFlag::TaskrunFlag => b.setup_taskrun_flag(),
                RingFlag::SingleIssuer => b.setup_single_issuer(),
                RingFlag::DeferTaskrun => b.setup_defer_taskrun(),
                RingFlag::SubmitAll => b.setup_submit_all(),
            };
        }
        // The ring is closed when it is dropped.
        b.build(4).map(drop).map_err(|e| e.to_string())
    }

    fn rlimit(&self, resource: Resource) -> Option<Limit> {
        let which = match resource {
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Memlock => libc::RLIMIT_MEMLOCK,
        };
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` into the struct we own.
        if unsafe { libc::getrlimit(which, &mut rl) } != 0 {
            return None;
        }
        // rlim_t is u64 on 64-bit Linux, narrower on some 32-bit targets.
        #[allow(clippy::unnecessary_cast)]
        let value = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v as u64);
        Some(Limit {
            soft: value(rl.rlim_cur),
            hard: value(rl.rlim_max),
        })
    }
}

/// Nothing probed (`inspect --no-probe`): the io_uring and limit rules say
/// so instead of guessing.
pub struct NoProbe;

impl Probe for NoProbe {
    fn uring_setup(&self, _: &[RingFlag]) -> Result<(), String> {
        Err("not probed".into())
    }
    fn rlimit(&self, _: Resource) -> Option<Limit> {
        None
    }
}

/// Answers given in advance (tests): `base_error` fails every ring, flags in
/// `refused` fail the rings that use them.
#[derive(Debug, Clone, Default)]
pub struct FixedProbe {
    pub base_error: Option<String>,
    pub refused: Vec<RingFlag>,
    pub nofile: Option<Limit>,
    pub memlock: Option<Limit>,
}

impl Probe for FixedProbe {
    fn uring_setup(&self, flags: &[RingFlag]) -> Result<(), String> {
        if let Some(e) = &self.base_error {
            return Err(e.clone());
        }
        match flags.iter().find(|f| self.refused.contains(f)) {
            Some(_) => Err("Invalid argument (os error 22)".into()),
            None => Ok(()),
        }
    }
    fn rlimit(&self, resource: Resource) -> Option<Limit> {
        match resource {
            Resource::Nofile => self.nofile,
            Resource::Memlock => self.memlock,
        }
    }
}
