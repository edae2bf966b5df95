//! `[admin]`, `[stats]`, `[access_log]` and `[tracing]`.

use super::super::file::*;
use super::super::*;
use super::{defaults, Builder, HISTOGRAM_DIMENSIONS};

impl Builder<'_> {
    pub(super) fn admin(&mut self, file: &AdminFile) -> Option<AdminConfig> {
        let (path, text) = match (&file.address, &file.listen) {
            (Some(_), Some(_)) => {
                self.error(
                    "admin.listen",
                    "`listen` is another name for `address`: set only one of them",
                );
                return None;
            }
            (Some(a), None) => ("admin.address", a.as_str()),
            (None, Some(l)) => ("admin.listen", l.as_str()),
            (None, None) => ("admin.address", defaults::ADMIN_ADDRESS),
        };
        self.socket_addr(path, text)
            .map(|address| AdminConfig { address })
    }

    pub(super) fn stats(&mut self, file: &StatsFile) -> StatsConfig {
        let histogram_sigfig = self.int_in(
            "stats.histogram_sigfig",
            file.histogram_sigfig,
            defaults::HISTOGRAM_SIGFIG as u64,
            1,
            5,
        ) as u8;
        let mut publish_interval = self.duration(
            "stats.publish_interval",
            file.publish_interval.as_ref(),
            defaults::PUBLISH_INTERVAL,
        );
        if publish_interval < defaults::MIN_PUBLISH_INTERVAL {
            self.error(
                "stats.publish_interval",
                format!(
                    "must be at least 10ms (found {}ms)",
                    publish_interval.as_millis()
                ),
            );
            publish_interval = defaults::PUBLISH_INTERVAL;
        }
        let mut on = [true; 4];
        if let Some(list) = &file.histograms {
            on = [false; 4];
            for (i, name) in list.iter().enumerate() {
                match HISTOGRAM_DIMENSIONS.iter().position(|d| *d == name.trim()) {
                    Some(d) => on[d] = true,
                    None => self.error(
                        format!("stats.histograms[{i}]"),
                        format!(
                            "unknown histogram dimension {name:?}: expected {}",
                            HISTOGRAM_DIMENSIONS.map(|d| format!("{d:?}")).join(", ")
                        ),
                    ),
                }
            }
        }
        StatsConfig {
            histogram_sigfig,
            publish_interval,
            listener_histograms: on[0],
            route_histograms: on[1],
            cluster_histograms: on[2],
            endpoint_histograms: on[3],
            per_worker: file.per_worker.unwrap_or(false),
        }
    }

    pub(super) fn access_log(&mut self, file: &AccessLogFile) -> AccessLogConfig {
        let target = match file.path.as_deref().map(str::trim) {
            None | Some("stdout") => AccessLogTarget::Stdout,
            Some("") => {
                self.error(
                    "access_log.path",
                    "must not be empty: \"stdout\" or a file path",
                );
                AccessLogTarget::Stdout
            }
            Some(p) => {
                let path = tls::resolve_path(&self.base_dir, p);
                if path.is_dir() {
                    self.error(
                        "access_log.path",
                        format!("{} is a directory: expected a file path", path.display()),
                    );
                } else {
                    let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
                    if let Some(dir) = parent.filter(|d| !d.is_dir()) {
                        self.error(
                            "access_log.path",
                            format!("directory {} does not exist", dir.display()),
                        );
                    }
                }
                AccessLogTarget::File(path)
            }
        };
        let format = match file.format.as_deref().map(str::trim) {
            None | Some("json") => AccessLogFormat::Json,
            Some("combined") => AccessLogFormat::Combined,
            Some(other) => {
                self.error(
                    "access_log.format",
                    format!("unknown format {other:?}: expected \"json\" or \"combined\""),
                );
                AccessLogFormat::Json
            }
        };
        let buffer_bytes = match &file.buffer {
            None => defaults::ACCESS_LOG_BUFFER,
            Some(v) => match self.size("access_log.buffer", v) {
                Some(n)
                    if n >= defaults::MIN_ACCESS_LOG_BUFFER as u64
                        && n <= defaults::MAX_ACCESS_LOG_BUFFER as u64 =>
                {
                    n as usize
                }
                Some(n) => {
                    self.error(
                        "access_log.buffer",
                        format!(
                            "must be between 4KiB and 16MiB (found {})",
                            units::format_size(n)
                        ),
                    );
                    defaults::ACCESS_LOG_BUFFER
                }
                None => defaults::ACCESS_LOG_BUFFER,
            },
        };
        let flush_interval = self.timeout(
            "access_log.flush_interval",
            file.flush_interval.as_ref(),
            defaults::ACCESS_LOG_FLUSH_INTERVAL,
        );
        let mut redact_query = Vec::new();
        for (i, name) in file.redact_query.iter().flatten().enumerate() {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"&=#%+?".contains(&b));
            if ok {
                redact_query.push(name.clone());
            } else {
                self.error(
                    format!("access_log.redact_query[{i}]"),
                    format!("{name:?} is not a query parameter name (visible ASCII without & = # % + ?)"),
                );
            }
        }
        AccessLogConfig {
            target,
            format,
            buffer_bytes,
            flush_interval,
            redact_query,
        }
    }

    pub(super) fn tracing(&mut self, file: &TracingFile) -> TraceConfig {
        let w3c = file.w3c.unwrap_or(TraceConfig::default().w3c);
        let otlp = file.otlp.as_ref().and_then(|o| self.otlp(o));
        if otlp.is_some() && !w3c {
            self.error(
                "tracing.w3c",
                "must be true when [tracing.otlp] exports spans (spans need trace context)",
            );
        }
        TraceConfig { w3c, otlp }
    }

    fn otlp(&mut self, file: &OtlpFile) -> Option<OtlpConfig> {
        let endpoint = match crate::otel::Endpoint::parse(&file.endpoint) {
            Ok(e) => Some(e),
            Err(m) => {
                self.error("tracing.otlp.endpoint", m);
                None
            }
        };
        let text = |b: &mut Self, key: &str, v: Option<&String>, default: String| match v {
            None => default,
            Some(s)
                if !s.trim().is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) =>
            {
                s.trim().to_owned()
            }
            Some(_) => {
                b.error(
                    format!("tracing.otlp.{key}"),
                    "must be 1 to 256 printable characters",
                );
                default
            }
        };
        let service_name = text(
            self,
            "service_name",
            file.service_name.as_ref(),
            "ringway".into(),
        );
        let node = text(self, "node", file.node.as_ref(), crate::otel::host_name());
        let sample_ratio = match file.sample_ratio {
            None => 1.0,
            Some(r) if (0.0..=1.0).contains(&r) => r,
            Some(r) => {
                self.error(
                    "tracing.otlp.sample_ratio",
                    format!("must be between 0 and 1 (found {r})"),
                );
                1.0
            }
        };
        let keep_slower_than = file
            .keep_slower_than
            .as_ref()
            .map(|v| self.timeout("tracing.otlp.keep_slower_than", Some(v), Duration::MAX));
        let batch_spans =
            self.int_in("tracing.otlp.batch_spans", file.batch_spans, 512, 1, 65_536) as usize;
        let queue_batches = self.int_in(
            "tracing.otlp.queue_batches",
            file.queue_batches,
            16,
            1,
            1024,
        ) as usize;
        let flush_interval = self.timeout(
            "tracing.otlp.flush_interval",
            file.flush_interval.as_ref(),
            Duration::from_secs(1),
        );
        let timeout = self.timeout(
            "tracing.otlp.timeout",
            file.timeout.as_ref(),
            Duration::from_secs(2),
        );
        Some(OtlpConfig {
            endpoint: endpoint?,
            service_name,
            node,
            sample_ratio,
            keep_errors: file.keep_errors.unwrap_or(true),
            keep_slower_than,
            batch_spans,
            queue_batches,
            flush_interval,
            timeout,
        })
    }

    pub(super) fn reload(&mut self, file: &ReloadFile) -> ReloadConfig {
        let interval = self.duration(
            "reload.interval",
            file.interval.as_ref(),
            Duration::from_secs(1),
        );
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&interval) {
            self.error("reload.interval", "must be between 100ms and 1h");
        }
        ReloadConfig {
            watch: file.watch.unwrap_or(false),
            interval,
        }
    }
}
