//! `type = "compress"` on a real ringway: gzip and brotli chosen by
//! Accept-Encoding and decoded byte for byte, `curl --compressed`, what is
//! never compressed, Vary and ETag, keep-alive after a compressed response,
//! and a large body streamed through the encoder under a memory bound.
//!
//! The origin here is scripted (a small thread server in this file): each
//! path names the response it gets (`/json/<n>`, `/chunked/<n>`, ...).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request, Response};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::Proxy;
use ringway_tests::setup::Setup;

/// Text that compresses like real JSON: records with varying numbers.
fn text(len: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(len + 96);
    let mut x: u32 = 12345;
    let mut i = 0u64;
    while s.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        s.extend_from_slice(
            format!(
                "{{\"id\":{i},\"score\":{},\"tag\":\"t{}\",\"ok\":{}}},\n",
                x >> 16,
                x % 97,
                x & 1 == 0
            )
            .as_bytes(),
        );
        i += 1;
    }
    s.truncate(len);
    s
}

/// The scripted origin: a thread per connection, keep-alive, request
/// bodies ignored (GET / HEAD only).
struct ScriptOrigin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl ScriptOrigin {
    fn start() -> ScriptOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(conn) = conn {
                    thread::spawn(move || {
                        let _ = serve(conn);
                    });
                }
            }
        });
        ScriptOrigin { addr, stop }
    }
}

impl Drop for ScriptOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
        }
        respond(&mut w, &method, &path)?;
    }
}

/// Paths: `/<kind>/<n>` with n bytes of [`text`].
fn respond(w: &mut TcpStream, method: &str, path: &str) -> io::Result<()> {
    let mut it = path.trim_start_matches('/').split('/');
    let kind = it.next().unwrap_or("");
    let n: usize = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let head_only = method == "HEAD";
    let fixed = |w: &mut TcpStream, status: &str, fields: &str, body: &[u8]| -> io::Result<()> {
        write!(
            w,
            "HTTP/1.1 {status}\r\n{fields}Content-Length: {}\r\n\r\n",
            body.len()
        )?;
        if !head_only {
            w.write_all(body)?;
        }
        w.flush()
    };
    match kind {
        "json" => fixed(
            w,
            "200 OK",
            "Content-Type: application/json; charset=utf-8\r\nETag: \"v1-abc\"\r\n",
            &text(n),
        ),
        "vary" => fixed(
            w,
            "200 OK",
            "Content-Type: text/html\r\nVary: Origin\r\n",
            &text(n),
        ),
        "png" => fixed(w, "200 OK", "Content-Type: image/png\r\n", &text(n)),
        "encoded" => fixed(
            w,
            "200 OK",
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            &text(n),
        ),
        "range" => fixed(
            w,
            "206 Partial Content",
            &format!(
                "Content-Type: text/plain\r\nContent-Range: bytes 0-{}/999999\r\n",
                n - 1
            ),
            &text(n),
        ),
        "chunked" | "stream" => {
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            )?;
            if head_only {
                return w.flush();
            }
            // `/chunked`: pieces of odd sizes; `/stream`: a large body made
            // by repeating one block (built once), 64 KiB chunks.
            let block = text(if kind == "stream" { 1 << 20 } else { n });
            let mut left = n;
            let mut off = 0;
            let mut sizes = [1usize, 700, 4096, 65_536, 13].iter().cycle();
            while left > 0 {
                let want = if kind == "stream" {
                    65_536
                } else {
                    *sizes.next().unwrap()
                };
                let take = want.min(left).min(block.len() - off);
                write!(w, "{take:x}\r\n")?;
                w.write_all(&block[off..off + take])?;
                w.write_all(b"\r\n")?;
                left -= take;
                off = (off + take) % block.len();
            }
            w.write_all(b"0\r\n\r\n")?;
            w.flush()
        }
        "slow" => {
            // A stream of small messages: one, a pause, another.
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            )?;
            for (i, pause) in [(1, 0), (2, 1500)] {
                thread::sleep(Duration::from_millis(pause));
                let msg = format!("message {i}\n");
                write!(w, "{:x}\r\n{msg}\r\n", msg.len())?;
                w.flush()?;
            }
            w.write_all(b"0\r\n\r\n")?;
            w.flush()
        }
        "close" => {
            // No framing: the body ends when the origin closes.
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nConnection: close\r\n\r\n"
            )?;
            if !head_only {
                for piece in text(n).chunks(10_000) {
                    w.write_all(piece)?;
                    w.flush()?;
                }
            }
            w.shutdown(std::net::Shutdown::Both)?;
            Err(io::Error::other("closed"))
        }
        _ => fixed(w, "404 Not Found", "Content-Type: text/plain\r\n", b"no\n"),
    }
}

/// `filter` is the inline TOML of one compress filter.
fn start(label: &str, filter: &str) -> (ScriptOrigin, Proxy, TestDir) {
    let dir = TestDir::new(label);
    let origin = ScriptOrigin::start();
    let config = Config::simple(origin.addr).all_routes("filters", &format!("[{filter}]"));
    let proxy = Proxy::start(&dir, &config);
    (origin, proxy, dir)
}

fn get(c: &mut Client, path: &str, accept: Option<&str>) -> Response {
    let mut req = Request::get(path);
    if let Some(a) = accept {
        req = req.header("Accept-Encoding", a);
    }
    c.request(&req)
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}

fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .expect("a valid brotli stream");
    out
}

const FILTER: &str = r#"{ type = "compress" }"#;

#[test]
fn compression_gzip_and_brotli_round_trip() {
    let (_o, proxy, _d) = start("compress-rt", FILTER);
    let mut c = Client::connect(proxy.addr("public"));
    for (path, size) in [("/json/300000", 300_000), ("/chunked/200000", 200_000)] {
        let want = text(size);
        let r = get(&mut c, path, Some("gzip"));
        assert_eq!(r.status(), 200, "{r}");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{r}");
        assert!(r.chunked.is_some(), "compressed bodies are chunked: {r}");
        assert!(r.header("content-length").is_none(), "{r}");
        assert!(r.has_token("vary", "accept-encoding"), "{r}");
        assert!(r.body.len() < size / 2, "{path}: {} bytes", r.body.len());
        assert!(gunzip(&r.body) == want, "{path}: gzip body differs");

        // Brotli preferred by the server on equal weights; the client's
        // weights first.
        let r = get(&mut c, path, Some("gzip, deflate, br"));
        assert_eq!(r.header("content-encoding"), Some("br"), "{r}");
        assert!(unbrotli(&r.body) == want, "{path}: brotli body differs");
        let r = get(&mut c, path, Some("br;q=0.5, gzip;q=0.9"));
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{r}");
        assert!(gunzip(&r.body) == want);
        // Nothing acceptable: as the origin sent it, with Vary.
        let r = get(&mut c, path, Some("br;q=0, gzip;q=0, deflate"));
        assert!(r.header("content-encoding").is_none(), "{r}");
        assert!(r.has_token("vary", "accept-encoding"), "{r}");
        assert!(r.body == want);
        // The connection served them all (keep-alive after compressed
        // responses).
    }
    // ETag made weak, charset kept.
    let r = get(&mut c, "/json/5000", Some("gzip"));
    assert_eq!(r.header("etag"), Some("W/\"v1-abc\""), "{r}");
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let r = get(&mut c, "/json/5000", None);
    assert_eq!(r.header("etag"), Some("\"v1-abc\""), "{r}");
    assert_eq!(r.header("content-length"), Some("5000"), "{r}");
    // An existing Vary is extended in one field line.
    let r = get(&mut c, "/vary/5000", Some("gzip"));
    assert_eq!(r.headers_all("vary"), ["Origin, Accept-Encoding"], "{r}");
}

#[test]
fn compression_of_a_body_ended_by_close_and_accept_encoding_upstream() {
    let (_o, proxy, _d) = start("compress-close", FILTER);
    let want = text(123_456);
    for coding in ["gzip", "br"] {
        let mut c = Client::connect(proxy.addr("public"));
        let r = get(&mut c, "/close/123456", Some(coding));
        assert_eq!(r.header("content-encoding"), Some(coding), "{r}");
        assert!(r.chunked.is_some(), "{r}");
        let body = if coding == "gzip" {
            gunzip(&r.body)
        } else {
            unbrotli(&r.body)
        };
        assert!(body == want, "{coding}: the body differs");
    }

    // The client's Accept-Encoding goes upstream as it is (the recording
    // origin echoes it back).
    let s = Setup::new("compress-upstream-ae", |c| {
        c.all_routes("filters", &format!("[{FILTER}]"))
    });
    let mut c = s.client();
    let r = c.request(
        &Request::get("/echo")
            .header("Accept-Encoding", "br;q=0.9, gzip")
            .header("x-echo-headers", "accept-encoding"),
    );
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(
        s.origin.last_request().unwrap().header("accept-encoding"),
        Some("br;q=0.9, gzip")
    );
}

#[test]
fn compression_leaves_alone_what_it_must() {
    let (_o, proxy, _d) = start(
        "compress-not",
        r#"{ type = "compress", min_size = "2KiB" }"#,
    );
    let mut c = Client::connect(proxy.addr("public"));
    // Below min_size: untouched, no Vary (never compressed at this size).
    let r = get(&mut c, "/json/2047", Some("gzip, br"));
    assert!(r.header("content-encoding").is_none(), "{r}");
    assert_eq!(r.header("content-length"), Some("2047"));
    assert!(r.header("vary").is_none(), "{r}");
    assert!(r.body == text(2047));
    let r = get(&mut c, "/json/2048", Some("gzip, br"));
    assert_eq!(r.header("content-encoding"), Some("br"), "{r}");
    // Already encoded: passed through byte for byte.
    let r = get(&mut c, "/encoded/9000", Some("gzip, br"));
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{r}");
    assert_eq!(r.header("content-length"), Some("9000"), "{r}");
    assert!(r.body == text(9000));
    // A range.
    let r = get(&mut c, "/range/9000", Some("gzip, br"));
    assert_eq!(r.status(), 206);
    assert!(r.header("content-encoding").is_none(), "{r}");
    assert_eq!(r.header("content-length"), Some("9000"), "{r}");
    assert!(r.body == text(9000));
    // A type not in the list.
    let r = get(&mut c, "/png/9000", Some("gzip, br"));
    assert!(r.header("content-encoding").is_none(), "{r}");
    assert!(r.header("vary").is_none(), "{r}");
    assert!(r.body == text(9000));
    // HEAD: the head as for an uncompressed GET, with Vary.
    let r = c.request(&Request::new("HEAD", "/json/9000").header("Accept-Encoding", "gzip"));
    assert_eq!(r.status(), 200);
    assert!(r.header("content-encoding").is_none(), "{r}");
    assert_eq!(r.header("content-length"), Some("9000"), "{r}");
    assert!(r.has_token("vary", "accept-encoding"), "{r}");
    // HTTP/1.0 clients get the body as it is.
    let mut c10 = Client::connect(proxy.addr("public"));
    let r = c10.request(
        &Request::get("/json/9000")
            .http10()
            .header("Accept-Encoding", "gzip"),
    );
    assert!(r.header("content-encoding").is_none(), "{r}");
    assert!(r.body == text(9000));
    // Still one working connection after all that.
    let r = get(&mut c, "/chunked/9000", Some("gzip"));
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{r}");
    assert!(gunzip(&r.body) == text(9000));
}

#[test]
fn compression_streams_small_messages_without_holding_them_back() {
    // A chunked stream of small messages: each one reaches the client as
    // it arrives (the encoder is flushed when the upstream pauses), not
    // when the body ends 1.5 s later.
    let (_origin, proxy, _dir) = start("compress-stream", FILTER);
    let mut s = TcpStream::connect(proxy.addr("public")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut decoded = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_millis(1000) && decoded.is_empty() {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        // Head, then the chunks so far: decode what they hold.
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        assert!(head.contains("content-encoding: gzip"), "{head}");
        let mut rest = &got[end + 4..];
        let mut wire = Vec::new();
        while let Some(le) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..le]).unwrap(), 16).unwrap();
            if rest.len() < le + 4 + size || size == 0 {
                break;
            }
            wire.extend_from_slice(&rest[le + 2..le + 2 + size]);
            rest = &rest[le + 4 + size..];
        }
        let mut d = flate2::write::GzDecoder::new(Vec::new());
        d.write_all(&wire).unwrap();
        d.flush().unwrap();
        decoded = d.get_ref().clone();
    }
    assert_eq!(
        decoded,
        b"message 1\n",
        "the first message was held back ({:?} in)",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_millis(1200));
}

#[test]
fn compression_config_is_checked() {
    let (_o, proxy, _d) = start(
        "compress-gzip-only",
        r#"{ type = "compress", algorithms = ["gzip"], gzip_level = 1, content_types = ["image/*"] }"#,
    );
    let mut c = Client::connect(proxy.addr("public"));
    let r = get(&mut c, "/png/50000", Some("br, gzip"));
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{r}");
    assert!(gunzip(&r.body) == text(50_000));
    let r = get(&mut c, "/json/50000", Some("br, gzip"));
    assert!(r.header("content-encoding").is_none(), "{r}");

    let dir = TestDir::new("compress-bad");
    let toml = Config::simple("127.0.0.1:9".parse().unwrap())
        .all_routes(
            "filters",
            r#"[{ type = "compress", algorithms = ["zstd"], gzip_level = 12 }]"#,
        )
        .to_toml();
    let err = Proxy::try_start(&dir, &toml, &[])
        .err()
        .expect("a bad compress filter is refused");
    assert!(err.contains("algorithms[0]"), "{err}");
    assert!(err.contains("gzip_level"), "{err}");
}

/// curl decodes what ringway sent; the body must be the origin's.
#[test]
fn compression_curl_compressed_round_trip() {
    let version = match Command::new("curl").arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            println!("SKIP compression_curl_compressed_round_trip: curl is not installed");
            return;
        }
    };
    let features = version
        .lines()
        .find(|l| l.starts_with("Features:"))
        .unwrap_or("")
        .to_ascii_lowercase();
    let (_o, proxy, dir) = start("compress-curl", FILTER);
    let addr = proxy.addr("public");
    let mut codings = vec!["gzip"];
    if features.contains("brotli") {
        codings.push("br");
    } else {
        println!("SKIP the brotli case of compression_curl_compressed_round_trip: this curl has no brotli");
    }
    for coding in codings {
        for path in ["/json/300000", "/chunked/150000"] {
            let out = dir.join("body");
            let headers = dir.join("headers");
            let status = Command::new("curl")
                .args(["-sS", "--compressed", "-H"])
                .arg(format!("Accept-Encoding: {coding}"))
                .arg("-o")
                .arg(&out)
                .arg("-D")
                .arg(&headers)
                .arg(format!("http://{addr}{path}"))
                .status()
                .expect("run curl");
            assert!(status.success(), "curl {path} failed");
            let headers = std::fs::read_to_string(&headers)
                .unwrap()
                .to_ascii_lowercase();
            assert!(
                headers.contains(&format!("content-encoding: {coding}\r\n")),
                "{headers}"
            );
            let size: usize = path.rsplit('/').next().unwrap().parse().unwrap();
            let body = std::fs::read(&out).unwrap();
            assert!(
                body == text(size),
                "{coding} {path}: curl decoded {} bytes that differ from the origin's",
                body.len()
            );
        }
    }
}

/// A large streamed body: compressed while it is read, decoded and compared
/// on the fly, ringway's resident memory bounded: its peak may not grow by
/// more than a fraction of the body (input or output buffered would show).
/// gzip over 256 MiB, then brotli over 24 MiB on the same connection (in
/// debug builds brotli's generic encoder is compiled unoptimised into
/// ringway: a few MB/s; release builds are fast).
#[test]
fn compression_large_streamed_body_memory_is_bounded() {
    let (_o, proxy, _d) = start("compress-large", r#"{ type = "compress", gzip_level = 1 }"#);
    let mut c = Client::connect(proxy.addr("public"));
    // Warm up (the worker's buffers, one encoder of each kind).
    let r = get(&mut c, "/stream/100000", Some("gzip"));
    assert!(gunzip(&r.body) == text(100_000));
    let r = get(&mut c, "/stream/100000", Some("br"));
    assert!(unbrotli(&r.body) == text(100_000));
    let before = proxy.memory();
    let block = text(1 << 20);
    for (coding, size, limit_kib) in [
        ("gzip", 256usize << 20, 32u64 << 10),
        ("br", 24 << 20, 12 << 10),
    ] {
        let t = Instant::now();
        c.send(
            &Request::get(&format!("/stream/{size}"))
                .header("Accept-Encoding", coding)
                .to_bytes(),
        );
        let head = c.read_head().expect("response head");
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-encoding"), Some(coding));
        // Decode while reading; compare with the origin's stream.
        let mut checker = Compare {
            block: &block,
            pos: 0,
            ok: true,
        };
        let mut wire_bytes = 0u64;
        let mut peak_rss = 0u64;
        let mut last_sample = Instant::now();
        {
            let mut decoder: Box<dyn Write> = if coding == "gzip" {
                Box::new(flate2::write::GzDecoder::new(&mut checker))
            } else {
                Box::new(brotli::DecompressorWriter::new(&mut checker, 65_536))
            };
            c.read_body_with(&head, "GET", &mut |piece| {
                wire_bytes += piece.len() as u64;
                if last_sample.elapsed() > Duration::from_millis(50) {
                    peak_rss = peak_rss.max(proxy.memory().rss_kib);
                    last_sample = Instant::now();
                }
                decoder.write_all(piece)
            })
            .expect("read the compressed body");
            decoder.flush().expect("a complete stream");
        }
        let secs = t.elapsed().as_secs_f64();
        let after = proxy.memory();
        println!(
            "{coding}: {} MiB compressed to {:.1} MiB in {secs:.1} s; proxy RSS before {:.1} MiB, peak sampled {:.1} MiB, VmHWM {:.1} MiB",
            size >> 20,
            wire_bytes as f64 / 1048576.0,
            before.rss_kib as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
            after.hwm_kib as f64 / 1024.0
        );
        assert!(
            checker.ok,
            "{coding}: the decoded body differs from the origin's"
        );
        assert_eq!(checker.pos, size, "{coding}: decoded length");
        assert!(
            (wire_bytes as usize) < size / 2,
            "{coding}: not compressed: {wire_bytes}"
        );
        assert!(
            after.hwm_kib < before.rss_kib + limit_kib,
            "{coding}: proxy VmHWM {} KiB is more than {limit_kib} KiB over its RSS before ({} KiB): the body is being buffered",
            after.hwm_kib,
            before.rss_kib
        );
    }
    // The connection is still good.
    let r = get(&mut c, "/json/5000", Some("gzip"));
    assert!(gunzip(&r.body) == text(5000));
}

/// Compares what is written with the `/stream` body.
struct Compare<'a> {
    block: &'a [u8],
    pos: usize,
    ok: bool,
}

impl Write for Compare<'_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let off = self.pos % self.block.len();
            let take = data.len().min(self.block.len() - off);
            if data[..take] != self.block[off..off + take] {
                self.ok = false;
            }
            self.pos += take;
            data = &data[take..];
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
