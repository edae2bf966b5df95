//! The exporter thread (`ringway-otlp`): receives span batches from the
//! workers, wraps them in one `ExportTraceServiceRequest` (the resource
//! names the service and node; the scope is `ringway` and its version)
//! and POSTs it to the collector (`Content-Type: application/x-protobuf`).
//!
//! A failed export (connect error, timeout, a status other than 2xx) drops
//! that request's spans and counts them; there is no retry queue, so a
//! dead collector costs spans, never memory. Batches that arrive while
//! an export is in progress wait in the bounded channel (`queue_batches`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::proto::{self, attribute, attribute_len, field_len, Value};
use crate::config::OtlpConfig;

/// Encoded spans from one worker.
pub struct Batch {
    pub spans: usize,
    pub bytes: Vec<u8>,
}

/// Process-wide export counters (exporter thread; workers only on a
/// dropped batch).
#[derive(Debug, Default)]
pub struct Counters {
    pub exported: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_export_failed: AtomicU64,
    pub requests_ok: AtomicU64,
    pub requests_failed: AtomicU64,
}

static COUNTERS: Counters = Counters {
    exported: AtomicU64::new(0),
    dropped_queue_full: AtomicU64::new(0),
    dropped_export_failed: AtomicU64::new(0),
    requests_ok: AtomicU64::new(0),
    requests_failed: AtomicU64::new(0),
};

pub fn counters() -> &'static Counters {
    &COUNTERS
}

/// The running exporter: the workers' sender and the thread.
pub struct Exporter {
    tx: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    pub fn start(cfg: &OtlpConfig) -> std::io::Result<Exporter> {
        let (tx, rx) = sync_channel::<Batch>(cfg.queue_batches);
        let cfg = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("ringway-otlp".into())
            .spawn(move || run(rx, cfg))?;
        Ok(Exporter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// A sender for one worker.
    pub fn sender(&self) -> SyncSender<Batch> {
        self.tx.clone().expect("exporter is running")
    }

    /// Export what is queued and stop (the workers are gone: their
    /// senders are dropped, so the thread sees the channel close).
    pub fn stop(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Batch>, cfg: OtlpConfig) {
    let prefix = request_prefix(&cfg);
    let mut pending: Vec<Batch> = Vec::new();
    let mut spans = 0;
    let mut body = Vec::new();
    loop {
        let closed = match rx.recv_timeout(cfg.flush_interval) {
            Ok(b) => {
                spans += b.spans;
                pending.push(b);
                // Take whatever else is queued, up to one batch's worth.
                while spans < cfg.batch_spans {
                    match rx.try_recv() {
                        Ok(b) => {
                            spans += b.spans;
                            pending.push(b);
                        }
                        Err(_) => break,
                    }
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !pending.is_empty() {
            build_body(&mut body, &prefix, &pending);
            let ok = post(&cfg, &body).is_ok();
            let c = counters();
            if ok {
                c.exported.fetch_add(spans as u64, Ordering::Relaxed);
                c.requests_ok.fetch_add(1, Ordering::Relaxed);
            } else {
                c.dropped_export_failed
                    .fetch_add(spans as u64, Ordering::Relaxed);
                c.requests_failed.fetch_add(1, Ordering::Relaxed);
            }
            pending.clear();
            spans = 0;
        }
        if closed {
            return;
        }
    }
}

/// `Resource` (as field 1 of `ResourceSpans`) and the `InstrumentationScope`
/// (as field 1 of `ScopeSpans`): the same for every request.
struct Prefix {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

fn request_prefix(cfg: &OtlpConfig) -> Prefix {
    let attrs: [(&str, &[u8]); 4] = [
        ("service.name", cfg.service_name.as_bytes()),
        ("service.instance.id", cfg.node.as_bytes()),
        ("host.name", cfg.node.as_bytes()),
        ("service.version", env!("CARGO_PKG_VERSION").as_bytes()),
    ];
    let len: usize = attrs
        .iter()
        .map(|(k, v)| attribute_len(1, k, Value::Str(v)))
        .sum();
    let mut resource = Vec::new();
    proto::len_header(&mut resource, 1, len);
    for (k, v) in attrs {
        attribute(&mut resource, 1, k, Value::Str(v));
    }
    let name = b"ringway";
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let mut scope = Vec::new();
    proto::len_header(
        &mut scope,
        1,
        field_len(1, name.len()) + field_len(2, version.len()),
    );
    proto::bytes(&mut scope, 1, name);
    proto::bytes(&mut scope, 2, version);
    Prefix { resource, scope }
}

/// `ExportTraceServiceRequest { resource_spans: [{ resource, scope_spans:
/// [{ scope, spans }] }] }`.
fn build_body(out: &mut Vec<u8>, p: &Prefix, batches: &[Batch]) {
    out.clear();
    let spans: usize = batches.iter().map(|b| b.bytes.len()).sum();
    let scope_spans = p.scope.len() + spans;
    let resource_spans = p.resource.len() + field_len(2, scope_spans);
    proto::len_header(out, 1, resource_spans);
    out.extend_from_slice(&p.resource);
    proto::len_header(out, 2, scope_spans);
    out.extend_from_slice(&p.scope);
    for b in batches {
        out.extend_from_slice(&b.bytes);
    }
}

/// POST `body`; Ok on a 2xx answer.
fn post(cfg: &OtlpConfig, body: &[u8]) -> Result<(), String> {
    let deadline = Instant::now() + cfg.timeout;
    let addr = cfg
        .endpoint
        .authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s = TcpStream::connect_timeout(&addr, cfg.timeout).map_err(|e| e.to_string())?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    s.set_write_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nUser-Agent: ringway/{}\r\nConnection: close\r\n\r\n",
        cfg.endpoint.path,
        cfg.endpoint.host,
        body.len(),
        env!("CARGO_PKG_VERSION"),
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    // The status line is enough; the rest is read off so the close is
    // clean, bounded in size.
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 || got.len() > 8192 {
            return Err("no status line".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    let status = got
        .get(9..12)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("bad status line")?;
    let mut drained = got.len();
    while drained < 1 << 20 && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("collector answered {status}"))
    }
}
