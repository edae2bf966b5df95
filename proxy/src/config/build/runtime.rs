//! `[runtime]` and `[limits]`.

use super::super::file::*;
use super::super::units::*;
use super::super::*;
use super::{defaults, Builder, MAX_WORKERS};

impl Builder<'_> {
    pub(super) fn runtime(&mut self, file: &RuntimeFile, online: usize) -> RuntimeConfig {
        let mut cores = Vec::new();
        for (i, c) in file.cores.iter().flatten().enumerate() {
            let path = format!("runtime.cores[{i}]");
            match usize::try_from(*c) {
                Ok(c) if c < online => cores.push(c),
                _ => self.error(
                    path,
                    format!(
                        "CPU {c} does not exist: this machine has {online} online CPU(s), ids 0..={}",
                        online.saturating_sub(1)
                    ),
                ),
            }
        }
        if file.cores.as_ref().is_some_and(|c| c.is_empty()) {
            self.error(
                "runtime.cores",
                "must list at least one CPU id (or be left out)",
            );
        }

        let auto_workers = || {
            if let Some(c) = &file.cores {
                if !c.is_empty() {
                    return c.len();
                }
            }
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let workers = match &file.workers {
            None => auto_workers(),
            Some(WorkersValue(IntOrText::Text(t))) if t.trim() == "auto" => auto_workers(),
            Some(WorkersValue(IntOrText::Int(n))) if (1..=MAX_WORKERS as i64).contains(n) => {
                *n as usize
            }
            Some(WorkersValue(v)) => {
                self.error(
                    "runtime.workers",
                    format!(
                        "invalid worker count {v}: expected an integer between 1 and {MAX_WORKERS} or \"auto\""
                    ),
                );
                1
            }
        };

        let driver = match file.driver.as_deref().map(str::trim) {
            None | Some("auto") => DriverKind::Auto,
            Some("io_uring") => DriverKind::IoUring,
            Some("legacy") => DriverKind::Legacy,
            Some(other) => {
                self.error(
                    "runtime.driver",
                    format!(
                        "unknown driver {other:?}: expected \"auto\", \"io_uring\" or \"legacy\""
                    ),
                );
                DriverKind::Auto
            }
        };

        let ring_entries = match file.ring_entries {
            None => defaults::RING_ENTRIES,
            Some(n) if (2..=32768).contains(&n) && (n as u64).is_power_of_two() => n as u32,
            Some(n) => {
                self.error(
                    "runtime.ring_entries",
                    format!("must be a power of two between 2 and 32768 (found {n})"),
                );
                defaults::RING_ENTRIES
            }
        };

        let sqpoll_idle = match &file.sqpoll_idle {
            None => None,
            Some(v) => match v.parse() {
                Ok(d) if d.is_zero() => {
                    self.error(
                        "runtime.sqpoll_idle",
                        "must be greater than zero (leave it out to disable SQPOLL)",
                    );
                    None
                }
                Ok(d) if d.as_millis() > u128::from(u32::MAX) => {
                    self.error("runtime.sqpoll_idle", "is too long");
                    None
                }
                Ok(d) => Some(d),
                Err(m) => {
                    self.error("runtime.sqpoll_idle", m);
                    None
                }
            },
        };

        let ring_flags = match &file.ring_flags {
            // Not DEFER_TASKRUN: same CPU per request, but under overload
            // at 1,000 connections it let some requests wait 3-5x the
            // median (docs/config.md, `ring_flags`).
            None => RingFlags {
                single_issuer: true,
                defer_taskrun: false,
                coop_taskrun: true,
            },
            Some(list) => {
                let mut flags = RingFlags::default();
                for (i, f) in list.iter().enumerate() {
                    match f.trim() {
                        "single_issuer" => flags.single_issuer = true,
                        "defer_taskrun" => flags.defer_taskrun = true,
                        "coop_taskrun" => flags.coop_taskrun = true,
                        other => self.error(
                            format!("runtime.ring_flags[{i}]"),
                            format!(
                                "unknown ring flag {other:?}: expected \"single_issuer\", \"defer_taskrun\" or \"coop_taskrun\""
                            ),
                        ),
                    }
                }
                if flags.defer_taskrun && !flags.single_issuer {
                    self.error(
                        "runtime.ring_flags",
                        "\"defer_taskrun\" requires \"single_issuer\"",
                    );
                }
                flags
            }
        };

        // The file's list is checked whatever runs; RINGWAY_RING_FEATURES
        // (comma-separated, "" = none) wins over it, as RUST_LOG over
        // log_level: the same configurations can then run with a feature
        // forced on or off (the test suite does).
        let from_file = file
            .ring_features
            .as_ref()
            .map(|list| self.ring_features(list, "runtime.ring_features"));
        let from_env = std::env::var("RINGWAY_RING_FEATURES").ok().map(|v| {
            let list: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            self.ring_features(&list, "RINGWAY_RING_FEATURES")
        });
        let ring_features = from_env.or(from_file).unwrap_or(RingFeatures::DEFAULT);

        let max_connections_per_worker = self.int_in(
            "runtime.max_connections_per_worker",
            file.max_connections_per_worker,
            defaults::MAX_CONNECTIONS_PER_WORKER as u64,
            1,
            u64::MAX,
        ) as usize;

        let cq_entries = match file.cq_entries {
            None => defaults::cq_entries(ring_entries, max_connections_per_worker),
            Some(n)
                if (ring_entries as i64..=defaults::MAX_CQ_ENTRIES as i64).contains(&n)
                    && (n as u64).is_power_of_two() =>
            {
                n as u32
            }
            Some(n) => {
                self.error(
                    "runtime.cq_entries",
                    format!(
                        "must be a power of two between ring_entries ({ring_entries}) and {} (found {n})",
                        defaults::MAX_CQ_ENTRIES
                    ),
                );
                defaults::cq_entries(ring_entries, max_connections_per_worker)
            }
        };

        let drain_timeout = self.duration(
            "runtime.drain_timeout",
            file.drain_timeout.as_ref(),
            defaults::DRAIN_TIMEOUT,
        );
        let drain_idle_grace = self.duration(
            "runtime.drain_idle_grace",
            file.drain_idle_grace.as_ref(),
            defaults::DRAIN_IDLE_GRACE,
        );

        let idle_read_release = file.idle_read_release.unwrap_or(true);

        let log_level = file
            .log_level
            .clone()
            .unwrap_or_else(|| defaults::LOG_LEVEL.to_owned());
        if log_level.trim().is_empty() {
            self.error(
                "runtime.log_level",
                "must not be empty (e.g. \"info\" or \"ringway=debug,warn\")",
            );
        } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            self.error(
                "runtime.log_level",
                format!("invalid log filter {log_level:?}: {e} (e.g. \"info\" or \"ringway=debug,warn\")"),
            );
        }

        RuntimeConfig {
            workers,
            cores,
            driver,
            ring_entries,
            cq_entries,
            sqpoll_idle,
            ring_flags,
            ring_features,
            max_connections_per_worker,
            drain_timeout,
            drain_idle_grace,
            idle_read_release,
            log_level,
        }
    }

    /// A `ring_features` list (`what`: where it came from, for errors).
    fn ring_features(&mut self, list: &[String], what: &str) -> RingFeatures {
        let mut f = RingFeatures::default();
        for (i, name) in list.iter().enumerate() {
            match name.as_str() {
                "recv_poll_first" => f.recv_poll_first = true,
                "buffer_ring" => f.buffer_ring = true,
                "fixed_files" => f.fixed_files = true,
                "multishot_recv" => f.multishot_recv = true,
                other => self.error(
                    format!("{what}[{i}]"),
                    format!(
                        "unknown ring feature {other:?}: expected one of {:?}",
                        crate::runtime::ring_features::ALL
                    ),
                ),
            }
        }
        f
    }

    /// `limits.splice_min_bytes` and `splice_min_request_bytes`: 0 (off)
    /// or 64KiB..=1GiB (`default` when invalid, with the error).
    fn splice_min_bytes(&mut self, path: &str, v: &SizeValue, default: u64) -> u64 {
        match self.size(path, v) {
            Some(n) if n == 0 || (defaults::MIN_SPLICE_MIN_BYTES..=1 << 30).contains(&n) => n,
            Some(n) => {
                self.error(
                    path,
                    format!(
                        "must be 0 (off) or between 64KiB and 1GiB (found {})",
                        units::format_size(n)
                    ),
                );
                default
            }
            None => default,
        }
    }

    pub(super) fn limits(&mut self, file: &LimitsFile) -> Limits {
        let max_head_bytes = match &file.max_head_bytes {
            None => defaults::MAX_HEAD_BYTES,
            Some(v) => match self.size("limits.max_head_bytes", v) {
                Some(n)
                    if n >= defaults::MIN_HEAD_BYTES as u64
                        && n <= defaults::MAX_MAX_HEAD_BYTES as u64 =>
                {
                    n as usize
                }
                Some(n) => {
                    self.error(
                        "limits.max_head_bytes",
                        format!(
                            "must be between 1KiB and 1MiB (found {})",
                            units::format_size(n)
                        ),
                    );
                    defaults::MAX_HEAD_BYTES
                }
                None => defaults::MAX_HEAD_BYTES,
            },
        };
        let max_headers = self.int_in(
            "limits.max_headers",
            file.max_headers,
            defaults::MAX_HEADERS as u64,
            1,
            defaults::MAX_MAX_HEADERS as u64,
        ) as usize;
        let request_buffer_bytes = match &file.request_buffer_bytes {
            None => defaults::REQUEST_BUFFER_BYTES,
            Some(v) => match self.size("limits.request_buffer_bytes", v) {
                Some(n) if n <= defaults::MAX_REQUEST_BUFFER_BYTES as u64 => n as usize,
                Some(n) => {
                    self.error(
                        "limits.request_buffer_bytes",
                        format!(
                            "must be at most 1MiB (found {}); 0 turns gathering off",
                            units::format_size(n)
                        ),
                    );
                    defaults::REQUEST_BUFFER_BYTES
                }
                None => defaults::REQUEST_BUFFER_BYTES,
            },
        };
        // RINGWAY_SPLICE_MIN_BYTES, when set, wins over the file for both
        // directions (as RINGWAY_RING_FEATURES does): the test suite runs
        // once with splicing off.
        let from_env = std::env::var("RINGWAY_SPLICE_MIN_BYTES").ok().map(|v| {
            let v = v.trim();
            let value = v
                .parse::<i64>()
                .map_or_else(|_| SizeValue::from(v), SizeValue::from);
            self.splice_min_bytes("RINGWAY_SPLICE_MIN_BYTES", &value, 0)
        });
        let splice_min_bytes = match (from_env, &file.splice_min_bytes) {
            (Some(n), _) => n,
            (None, Some(v)) => {
                self.splice_min_bytes("limits.splice_min_bytes", v, defaults::SPLICE_MIN_BYTES)
            }
            (None, None) => defaults::SPLICE_MIN_BYTES,
        };
        let splice_min_request_bytes = match (from_env, &file.splice_min_request_bytes) {
            (Some(n), _) => n,
            (None, Some(v)) => self.splice_min_bytes(
                "limits.splice_min_request_bytes",
                v,
                defaults::SPLICE_MIN_REQUEST_BYTES,
            ),
            (None, None) => defaults::SPLICE_MIN_REQUEST_BYTES,
        };
        Limits {
            max_head_bytes,
            max_headers,
            request_buffer_bytes,
            splice_min_bytes,
            splice_min_request_bytes,
            header_read_timeout: self.timeout(
                "limits.header_read_timeout",
                file.header_read_timeout.as_ref(),
                defaults::HEADER_READ_TIMEOUT,
            ),
            body_read_timeout: self.timeout(
                "limits.body_read_timeout",
                file.body_read_timeout.as_ref(),
                defaults::BODY_READ_TIMEOUT,
            ),
            idle_timeout: self.timeout(
                "limits.idle_timeout",
                file.idle_timeout.as_ref(),
                defaults::IDLE_TIMEOUT,
            ),
        }
    }
}
