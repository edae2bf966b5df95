//! A small blocking client for etcd v3's HTTP/JSON gateway (`/v3/...`):
//! HTTP/1.1 over `std::net::TcpStream`, `http://` only, one connection per
//! call (`Connection: close`) and one long-lived connection per watch.
//! Keys and values travel base64-encoded; 64-bit integers as JSON strings.
//!
//! Used by the configuration build (the first range of a prefix) and the
//! `ringway-etcd` threads (`server::etcd`), never by a worker.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ringway_http::chunked::ChunkedDecoder;
use serde_json::{json, Value};

/// The largest response body read from a unary call.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The largest watch message (one JSON object) held while it arrives.
const MAX_WATCH_MESSAGE: usize = 64 * 1024 * 1024;

/// `http://host:port` of one etcd member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdUrl {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for EtcdUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

impl EtcdUrl {
    /// `http://host:port` (a trailing `/` allowed; port default 2379).
    pub fn parse(text: &str) -> Result<EtcdUrl, String> {
        let t = text.trim();
        let rest = match t.strip_prefix("http://") {
            Some(r) => r,
            None if t.starts_with("https://") => {
                return Err(format!(
                    "{t:?}: https is not supported (the etcd client speaks http:// only)"
                ))
            }
            None => return Err(format!("{t:?}: expected \"http://host:port\"")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(format!("{t:?}: expected \"http://host:port\""));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{t:?}: unclosed ["))?;
            (h.to_owned(), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            }
        };
        let port = match port {
            None => 2379,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{t:?}: bad port {p:?}"))?,
        };
        if host.is_empty() {
            return Err(format!("{t:?}: no host"));
        }
        Ok(EtcdUrl { host, port })
    }
}

/// Where etcd is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdClient {
    /// Tried in order until one answers.
    pub endpoints: Vec<EtcdUrl>,
    /// Connect timeout.
    pub dial_timeout: Duration,
    /// Whole-call timeout (write, then read the answer).
    pub timeout: Duration,
}

/// One key-value pair of a range or a watch event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
}

/// A range answer: the pairs and the store revision it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(KeyValue),
    Delete(String),
}

/// One message of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchMessage {
    /// The store revision when the message was sent.
    pub revision: i64,
    pub created: bool,
    pub canceled: bool,
    /// Set when the start revision was compacted away: read again.
    pub compact_revision: i64,
    pub cancel_reason: String,
    /// The highest `mod_revision` among the events (0 without events).
    pub last_event_revision: i64,
    pub events: Vec<Event>,
}

impl EtcdClient {
    /// Every key under `prefix`.
    pub fn range_prefix(&self, prefix: &str) -> Result<Range, String> {
        let body = json!({
            "key": B64.encode(prefix),
            "range_end": B64.encode(range_end(prefix.as_bytes())),
        });
        let v = self.call("/v3/kv/range", &body)?;
        parse_range(&v)
    }

    /// A lease of `ttl` seconds: its id.
    pub fn grant(&self, ttl: u64) -> Result<i64, String> {
        let v = self.call("/v3/lease/grant", &json!({ "TTL": ttl.to_string() }))?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            return Err(e.to_owned());
        }
        match int(&v["ID"]) {
            0 => Err(format!("lease grant: no ID in {v}")),
            id => Ok(id),
        }
    }

    /// Put `key` = `value`, attached to `lease` (0 = none).
    pub fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<(), String> {
        let mut body = json!({ "key": B64.encode(key), "value": B64.encode(value) });
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        self.call("/v3/kv/put", &body).map(drop)
    }

    /// Delete `key`.
    pub fn delete(&self, key: &str) -> Result<(), String> {
        self.call("/v3/kv/deleterange", &json!({ "key": B64.encode(key) }))
            .map(drop)
    }

    /// Renew `lease` once: `Ok(false)` when etcd no longer knows it.
    pub fn keepalive(&self, lease: i64) -> Result<bool, String> {
        let v = self.call("/v3/lease/keepalive", &json!({ "ID": lease.to_string() }))?;
        if let Some(e) = v.get("error") {
            return Err(format!("keepalive: {e}"));
        }
        Ok(int(&v["result"]["TTL"]) > 0)
    }

    /// End `lease` now (its keys are deleted). An unknown lease is fine.
    pub fn revoke(&self, lease: i64) -> Result<(), String> {
        match self.call("/v3/lease/revoke", &json!({ "ID": lease.to_string() })) {
            Err(e) if e.contains("lease not found") => Ok(()),
            r => r.map(drop),
        }
    }

    /// Connect to the first member that accepts.
    fn connect(&self) -> Result<(TcpStream, &EtcdUrl), String> {
        let mut problems = Vec::new();
        for url in &self.endpoints {
            let addrs = match (url.host.as_str(), url.port).to_socket_addrs() {
                Ok(a) => a,
                Err(e) => {
                    problems.push(format!("{url}: {e}"));
                    continue;
                }
            };
            for a in addrs {
                match TcpStream::connect_timeout(&a, self.dial_timeout) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok((s, url));
                    }
                    Err(e) => problems.push(format!("{url}: {e}")),
                }
            }
        }
        Err(format!("etcd unreachable ({})", problems.join("; ")))
    }

    /// POST `body` to `path` and return the JSON answer (an error status
    /// becomes the gateway's `message`).
    pub fn call(&self, path: &str, body: &Value) -> Result<Value, String> {
        let deadline = Instant::now() + self.timeout;
        let (mut s, url) = self.connect()?;
        let fail = |e: String| format!("etcd {url}{path}: {e}");
        send(&mut s, url, path, body, true, deadline).map_err(fail)?;
        let mut buf = Vec::new();
        let head = read_head(&mut s, &mut buf, deadline).map_err(fail)?;
        let body = read_body(&mut s, buf, &head, deadline).map_err(fail)?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("status {}: not JSON: {e}", head.status)))?;
        if head.status != 200 {
            let msg = v
                .get("message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map_or_else(|| v.to_string(), str::to_owned);
            return Err(fail(format!("status {}: {msg}", head.status)));
        }
        Ok(v)
    }

    /// Open a watch on every key under `prefix`, from `start_revision`.
    pub fn watch(&self, prefix: &str, start_revision: i64) -> Result<Watch, String> {
        let deadline = Instant::now() + self.timeout;
        let (mut s, url) = self.connect()?;
        let url = url.clone();
        let fail = |e: String| format!("etcd {url}/v3/watch: {e}");
        let body = json!({ "create_request": {
            "key": B64.encode(prefix),
            "range_end": B64.encode(range_end(prefix.as_bytes())),
            "start_revision": start_revision.to_string(),
        }});
        send(&mut s, &url, "/v3/watch", &body, false, deadline).map_err(fail)?;
        let mut buf = Vec::new();
        let head = read_head(&mut s, &mut buf, deadline).map_err(fail)?;
        if head.status != 200 || !head.chunked {
            return Err(fail(format!(
                "status {} (chunked: {})",
                head.status, head.chunked
            )));
        }
        Ok(Watch {
            stream: s,
            url,
            chunks: ChunkDecoder::default(),
            raw: buf,
            body: Vec::new(),
        })
    }
}

/// A watch stream: messages as they arrive.
pub struct Watch {
    stream: TcpStream,
    url: EtcdUrl,
    chunks: ChunkDecoder,
    /// Bytes read and not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked bytes not yet parsed as a whole JSON object.
    body: Vec<u8>,
}

impl Watch {
    /// The next message, waiting at most `wait`: `Ok(None)` when none came
    /// in time; an error when the stream broke or etcd sent an error.
    pub fn next(&mut self, wait: Duration) -> Result<Option<WatchMessage>, String> {
        let deadline = Instant::now() + wait;
        loop {
            self.chunks
                .decode(&mut self.raw, &mut self.body)
                .map_err(|e| format!("etcd {}/v3/watch: {e}", self.url))?;
            if let Some(v) =
                next_json(&mut self.body).map_err(|e| format!("etcd {}/v3/watch: {e}", self.url))?
            {
                return parse_watch_message(&v)
                    .map(Some)
                    .map_err(|e| format!("etcd {}/v3/watch: {e}", self.url));
            }
            if self.chunks.done {
                return Err(format!("etcd {}/v3/watch: stream ended", self.url));
            }
            if self.body.len() > MAX_WATCH_MESSAGE {
                return Err(format!("etcd {}/v3/watch: message too large", self.url));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(format!("etcd {}/v3/watch: connection closed", self.url)),
                Ok(n) => self.raw.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("etcd {}/v3/watch: {e}", self.url)),
            }
        }
    }
}

/// The end of the range holding every key that starts with `prefix`: the
/// prefix with its last byte below 0xff incremented (and what follows it
/// dropped); `"\0"` (every key) when there is no such byte.
pub fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

/// An int64 as etcd's gateway writes it (a string), or a number; 0 when
/// absent.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn b64(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => B64.decode(s).map_err(|e| format!("bad base64 {s:?}: {e}")),
        other => Err(format!("expected base64, found {other}")),
    }
}

fn key_value(v: &Value) -> Result<KeyValue, String> {
    let key = b64(&v["key"])?;
    let key = String::from_utf8(key).map_err(|_| "a key that is not UTF-8".to_owned())?;
    Ok(KeyValue {
        key,
        value: b64(&v["value"])?,
    })
}

/// A `/v3/kv/range` answer.
pub fn parse_range(v: &Value) -> Result<Range, String> {
    let revision = int(&v["header"]["revision"]);
    if revision == 0 {
        return Err(format!("range: no header revision in {v}"));
    }
    let kvs = match v.get("kvs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(key_value).collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("range: kvs is {other}")),
    };
    Ok(Range { revision, kvs })
}

/// One object of a `/v3/watch` stream: `{"result": {...}}` or
/// `{"error": {...}}`.
pub fn parse_watch_message(v: &Value) -> Result<WatchMessage, String> {
    if let Some(e) = v.get("error") {
        return Err(e
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| e.to_string(), str::to_owned));
    }
    let r = v
        .get("result")
        .ok_or_else(|| format!("no \"result\" in {v}"))?;
    let mut m = WatchMessage {
        revision: int(&r["header"]["revision"]),
        created: r["created"].as_bool().unwrap_or(false),
        canceled: r["canceled"].as_bool().unwrap_or(false),
        compact_revision: int(&r["compact_revision"]),
        cancel_reason: r["cancel_reason"].as_str().unwrap_or("").to_owned(),
        ..WatchMessage::default()
    };
    if let Some(events) = r.get("events").and_then(Value::as_array) {
        for e in events {
            let kv = &e["kv"];
            m.last_event_revision = m.last_event_revision.max(int(&kv["mod_revision"]));
            // `type` is left out for PUT (the enum's zero value).
            match e.get("type").and_then(Value::as_str) {
                None | Some("PUT") => m.events.push(Event::Put(key_value(kv)?)),
                Some("DELETE") => m.events.push(Event::Delete(key_value(kv)?.key)),
                Some(other) => return Err(format!("unknown event type {other:?}")),
            }
        }
    }
    Ok(m)
}

/// Take the first complete JSON value off `buf` (whitespace between values
/// is skipped); `None` while it is incomplete.
pub fn next_json(buf: &mut Vec<u8>) -> Result<Option<Value>, String> {
    let start = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    if start == buf.len() {
        buf.clear();
        return Ok(None);
    }
    let mut it = serde_json::Deserializer::from_slice(&buf[start..]).into_iter::<Value>();
    match it.next() {
        Some(Ok(v)) => {
            let used = start + it.byte_offset();
            buf.drain(..used);
            Ok(Some(v))
        }
        Some(Err(e)) if e.is_eof() => Ok(None),
        Some(Err(e)) => Err(format!("bad JSON in watch stream: {e}")),
        None => Ok(None),
    }
}

/// `Transfer-Encoding: chunked`, decoded as bytes arrive (the proxy's own
/// decoder, `ringway_http::chunked`, over a growing buffer).
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    inner: ChunkedDecoder,
    /// The last (0-size) chunk and its trailers were read.
    pub done: bool,
}

impl ChunkDecoder {
    /// Move the data of `raw` into `out`, as far as it goes; `raw` keeps
    /// what follows the end of the body, if anything.
    pub fn decode(&mut self, raw: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        let mut pos = 0;
        while pos < raw.len() && !self.done {
            let rest = &raw[pos..];
            let p = self.inner.decode(rest).map_err(|e| e.to_string())?;
            out.extend_from_slice(&rest[p.data.clone()]);
            pos += p.consumed;
            self.done = p.done;
            if p.consumed == 0 {
                break;
            }
        }
        raw.drain(..pos);
        Ok(())
    }
}

/// The parts of a response head used here.
#[derive(Debug)]
struct Head {
    status: u16,
    chunked: bool,
    length: Option<usize>,
}

fn send(
    s: &mut TcpStream,
    url: &EtcdUrl,
    path: &str,
    body: &Value,
    close: bool,
    deadline: Instant,
) -> Result<(), String> {
    let body = body.to_string();
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    let left = deadline.saturating_duration_since(Instant::now());
    s.set_write_timeout(Some(left.max(Duration::from_millis(1))))
        .map_err(|e| e.to_string())?;
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())
}

/// Read until the end of the head; the bytes after it stay in `buf`.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<Head, String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return parse_head(&text);
        }
        if buf.len() > 64 * 1024 {
            return Err("response head too large".into());
        }
        read_some(s, buf, deadline)?;
    }
}

fn parse_head(text: &str) -> Result<Head, String> {
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
    let mut head = Head {
        status,
        chunked: false,
        length: None,
    };
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            head.length = value.parse().ok();
        }
    }
    Ok(head)
}

fn read_body(
    s: &mut TcpStream,
    mut raw: Vec<u8>,
    head: &Head,
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    if head.chunked {
        let mut dec = ChunkDecoder::default();
        let mut out = Vec::new();
        loop {
            dec.decode(&mut raw, &mut out)?;
            if dec.done {
                return Ok(out);
            }
            if out.len() > MAX_BODY {
                return Err("response too large".into());
            }
            if read_some(s, &mut raw, deadline)? == 0 {
                return Err("connection closed in the middle of the response".into());
            }
        }
    }
    match head.length {
        Some(n) if n > MAX_BODY => Err("response too large".into()),
        Some(n) => {
            while raw.len() < n {
                if read_some(s, &mut raw, deadline)? == 0 {
                    return Err("connection closed in the middle of the response".into());
                }
            }
            raw.truncate(n);
            Ok(raw)
        }
        None => {
            while read_some(s, &mut raw, deadline)? > 0 {
                if raw.len() > MAX_BODY {
                    return Err("response too large".into());
                }
            }
            Ok(raw)
        }
    }
}

/// One read before `deadline`: the byte count (0 = closed).
fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<usize, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("no answer in time".into());
    }
    s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no answer in time".into())
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
