//! `jwks_url`: a JWKS fetched over HTTPS by a small blocking thread, off
//! the request path.
//!
//! # Architecture
//! One thread per filter with a `jwks_url` (named `ringway-jwks`): it
//! fetches the document (rustls over `std::net::TcpStream`, HTTP/1.1 `GET`,
//! `Connection: close`, size-capped), parses it and publishes an
//! `Arc<KeySet>` through an [`ArcSwapOption`]; workers load it per request
//! (no lock). It refetches every `jwks_refresh`; after a failure it retries
//! with a doubling backoff (1 s, 2 s, … up to `jwks_refresh`) and keeps the
//! last good set meanwhile. A token whose `kid` is in no key set asks for
//! one early refetch, honoured at most once per `min(30 s, jwks_refresh / 4)`.
//!
//! Only a serving process fetches: `ringway run` calls
//! [`allow_fetching`] before it loads its configuration; `ringway check`
//! builds the same filters but starts no thread and sends nothing.
//!
//! The thread holds only a `Weak` reference: when the configuration
//! generation that built the filter goes away (a reload), the filter's drop
//! wakes the thread and it ends.
//!
//! # Errors
//! A failed fetch is logged (warn) with the URL and the reason; until the
//! first set arrives, tokens needing it are refused (401).

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::keys::{parse_jwks, KeySet};

/// The largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Connect, read and write timeout of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two early (unknown `kid`) refetches; shorter
/// with a short `jwks_refresh` (a quarter of it).
const MIN_REFETCH: Duration = Duration::from_secs(30);

/// System CA bundles, tried in order when `jwks_ca` is not given.
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Fetcher threads start only after this is set (by `ringway run`).
static FETCHING_ALLOWED: AtomicBool = AtomicBool::new(false);

/// Let filters built from now on fetch their `jwks_url` (a serving
/// process; a config check never calls it).
pub fn allow_fetching() {
    FETCHING_ALLOWED.store(true, Ordering::Release);
}

/// Where and how to fetch.
#[derive(Clone)]
pub struct FetchConfig {
    pub url: Box<str>,
    pub host: String,
    pub port: u16,
    /// Path and query sent in the request line.
    pub target: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub refresh: Duration,
}

/// The published key set of one `jwks_url`, shared by the filter (every
/// worker reads it) and its fetcher thread (the only writer).
pub struct RemoteJwks {
    current: ArcSwapOption<KeySet>,
    /// Bumped each time a different set is published: cached tokens from an
    /// older set are checked again.
    generation: AtomicU64,
    refetch: AtomicBool,
    thread: OnceLock<Thread>,
    url: Box<str>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for RemoteJwks {
    fn drop(&mut self) {
        // Let the fetcher see that its filter is gone.
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

impl RemoteJwks {
    /// Start the fetcher thread for `cfg` (none before [`allow_fetching`]:
    /// the set stays empty).
    pub fn start(cfg: FetchConfig) -> Result<Arc<RemoteJwks>, String> {
        let state = Arc::new(RemoteJwks {
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            refetch: AtomicBool::new(false),
            thread: OnceLock::new(),
            url: cfg.url.clone(),
        });
        if !FETCHING_ALLOWED.load(Ordering::Acquire) {
            return Ok(state);
        }
        let weak = Arc::downgrade(&state);
        let handle = std::thread::Builder::new()
            .name("ringway-jwks".into())
            .spawn(move || run(weak, cfg))
            .map_err(|e| format!("cannot start the JWKS fetcher thread: {e}"))?;
        let _ = state.thread.set(handle.thread().clone());
        Ok(state)
    }

    /// A fetcher thread runs for this set.
    pub fn is_fetching(&self) -> bool {
        self.thread.get().is_some()
    }

    /// The last good set (`None` before the first successful fetch).
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A token named a `kid` no key has: ask for an early refetch (the
    /// fetcher rate-limits them).
    pub fn want_refetch(&self) {
        if !self.refetch.swap(true, Ordering::AcqRel) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }
}

/// The fetcher thread.
fn run(weak: Weak<RemoteJwks>, cfg: FetchConfig) {
    let min_refetch = MIN_REFETCH.min(cfg.refresh / 4);
    let mut failures: u32 = 0;
    let mut last_digest: Option<[u8; 32]> = None;
    loop {
        let fetched_at = Instant::now();
        {
            let Some(state) = weak.upgrade() else { return };
            state.refetch.store(false, Ordering::Release);
            match fetch(&cfg).and_then(|body| Ok((parse_usable(&body)?, body))) {
                Ok((set, body)) => {
                    failures = 0;
                    let digest = super::cache::digest(&body);
                    if last_digest != Some(digest) {
                        tracing::info!(url = %cfg.url, keys = set.keys.len(), "JWKS loaded");
                        state.current.store(Some(Arc::new(set)));
                        state.generation.fetch_add(1, Ordering::AcqRel);
                        last_digest = Some(digest);
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(url = %cfg.url, "JWKS fetch failed, keeping the last good set: {e}");
                }
            }
        }
        let wait = match failures {
            0 => cfg.refresh,
            n => Duration::from_secs(1u64 << (n - 1).min(16)).min(cfg.refresh),
        };
        let deadline = fetched_at + wait;
        let early = fetched_at + min_refetch;
        loop {
            let Some(state) = weak.upgrade() else { return };
            let wanted = state.refetch.load(Ordering::Acquire);
            drop(state);
            let now = Instant::now();
            if now >= deadline || (wanted && now >= early) {
                break;
            }
            let until = if wanted {
                early.min(deadline)
            } else {
                deadline
            };
            std::thread::park_timeout(until - now);
        }
    }
}

fn parse_usable(body: &[u8]) -> Result<KeySet, String> {
    let set = parse_jwks(body)?;
    if set.keys.is_empty() {
        return Err("the JWKS holds no usable signing key".into());
    }
    Ok(set)
}

/// `GET` the document; the body of a 200 response.
pub fn fetch(cfg: &FetchConfig) -> Result<Vec<u8>, String> {
    let addr = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", cfg.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", cfg.host))?;
    let tcp = TcpStream::connect_timeout(&addr, FETCH_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(FETCH_TIMEOUT))
        .and_then(|_| tcp.set_write_timeout(Some(FETCH_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from(cfg.host.clone())
        .map_err(|e| format!("server name {}: {e}", cfg.host))?;
    let conn = rustls::ClientConnection::new(cfg.tls.clone(), name).map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let host = if cfg.port == 443 {
        cfg.host.clone()
    } else if cfg.host.contains(':') {
        format!("[{}]:{}", cfg.host, cfg.port)
    } else {
        format!("{}:{}", cfg.host, cfg.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: ringway\r\nConnection: close\r\n\r\n",
        cfg.target
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;

    let started = Instant::now();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if started.elapsed() > 3 * FETCH_TIMEOUT {
            return Err("timed out".into());
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // A server that closes without close_notify: the framing below
            // still decides whether the body is whole.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("read: {e}")),
        }
        if raw.len() > MAX_JWKS_BYTES + 16 * 1024 {
            return Err(format!("response larger than {MAX_JWKS_BYTES} bytes"));
        }
        if complete(&raw) == Some(true) {
            break;
        }
    }
    body_of(&raw)
}

/// Whether `raw` holds a whole response (`None`: cannot tell yet).
fn complete(raw: &[u8]) -> Option<bool> {
    let (head_len, framing) = head(raw).ok()??;
    Some(match framing {
        Framing::Length(n) => raw.len() - head_len >= n,
        Framing::Chunked => dechunk(&raw[head_len..]).is_ok(),
        Framing::Close => false,
    })
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Parse the head: `Ok(None)` while incomplete.
fn head(raw: &[u8]) -> Result<Option<(usize, Framing)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response: {e}")),
    };
    if resp.code != Some(200) {
        return Err(format!("status {}", resp.code.unwrap_or(0)));
    }
    let mut framing = Framing::Close;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked)
        {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("bad Content-Length")?;
            if n > MAX_JWKS_BYTES {
                return Err(format!("response larger than {MAX_JWKS_BYTES} bytes"));
            }
            framing = Framing::Length(n);
        }
    }
    Ok(Some((head_len, framing)))
}

/// The body of a whole `200` response in `raw`.
pub(crate) fn body_of(raw: &[u8]) -> Result<Vec<u8>, String> {
    let (head_len, framing) = head(raw)?.ok_or("incomplete response head")?;
    let rest = &raw[head_len..];
    match framing {
        Framing::Length(n) if rest.len() >= n => Ok(rest[..n].to_vec()),
        Framing::Length(_) => Err("response body cut short".into()),
        Framing::Chunked => dechunk(rest),
        Framing::Close => Ok(rest.to_vec()),
    }
}

/// Decode a whole chunked body (extensions and trailers ignored).
fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = memchr::memmem::find(b, b"\r\n").ok_or("incomplete chunk")?;
        let size_text = std::str::from_utf8(&b[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 || out.len() + size > MAX_JWKS_BYTES {
            return Err("incomplete or oversized chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Split `https://host[:port]/path?query`.
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("must be an https:// URL")?;
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("needs a host (and no user name)".into());
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
        return Err("the path must not contain spaces, control characters or `#`".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or("unclosed `[`")?;
        let port = match &v6[end + 1..] {
            "" => 443,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or("bad port")?,
        };
        (v6[..end].to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| "bad port")?),
            None => (authority.to_owned(), 443),
        }
    };
    if host.is_empty() || port == 0 {
        return Err("needs a host and a port in 1-65535".into());
    }
    Ok((host.to_ascii_lowercase(), port, target.to_owned()))
}

/// A TLS client config trusting `ca` (a PEM file), or the system bundle.
pub fn client_tls(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use crate::config::tls::{load_certs, provider, PROTOCOL_VERSIONS};
    let path = match ca {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_CA_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .ok_or("no system CA bundle found: give `jwks_ca`")?
            .to_path_buf(),
    };
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(load_certs(&path)?);
    if added == 0 {
        return Err(format!("no usable CA certificate in {}", path.display()));
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
