//! Compression: negotiation, media types, encoders, config checks and the
//! two filter phases.

use std::io::Read;
use std::net::SocketAddr;

use super::negotiate::choose;
use super::types::TypeList;
use super::{Codec, Compressor, Plan};
use crate::http::head::parse_request_head;
use crate::http::response::parse_response_head;
use crate::http::{HeadLimits, RequestHead, ResponseFraming, ResponseHead};
use crate::pipeline::body::BodyFrame;
use crate::pipeline::filters::{
    CompressState, Filter, FilterFile, FilterState, Flow, RequestCx, ResponseCx,
};

const BOTH: [Codec; 2] = [Codec::Brotli, Codec::Gzip];
const GZIP_FIRST: [Codec; 2] = [Codec::Gzip, Codec::Brotli];

fn pick(header: &str, offered: &[Codec]) -> Option<Codec> {
    choose(std::iter::once(header.as_bytes()), offered)
}

#[test]
fn negotiation_weights_and_ties() {
    // Equal weights: server order.
    assert_eq!(pick("gzip, br", &BOTH), Some(Codec::Brotli));
    assert_eq!(pick("gzip, br", &GZIP_FIRST), Some(Codec::Gzip));
    assert_eq!(pick("gzip, deflate, br, zstd", &BOTH), Some(Codec::Brotli));
    // The client's weights win over server order.
    assert_eq!(pick("gzip;q=1.0, br;q=0.8", &BOTH), Some(Codec::Gzip));
    assert_eq!(pick("br;q=0.9, gzip;q=0.91", &BOTH), Some(Codec::Gzip));
    // Only what is offered.
    assert_eq!(pick("br", &[Codec::Gzip]), None);
    assert_eq!(pick("gzip", &[Codec::Brotli]), None);
    assert_eq!(pick("deflate, zstd", &BOTH), None);
    // x-gzip is gzip.
    assert_eq!(pick("x-gzip", &BOTH), Some(Codec::Gzip));
    // A coding listed twice: its higher weight.
    assert_eq!(
        pick("br;q=0.1, gzip;q=0.5, br;q=0.9", &GZIP_FIRST),
        Some(Codec::Brotli)
    );
}

#[test]
fn negotiation_zero_star_identity() {
    assert_eq!(pick("gzip;q=0", &BOTH), None);
    assert_eq!(pick("gzip;q=0.000, br;q=0", &BOTH), None);
    assert_eq!(pick("br;q=0, gzip", &BOTH), Some(Codec::Gzip));
    // `*` covers what is not named; a named q=0 still excludes.
    assert_eq!(pick("*", &BOTH), Some(Codec::Brotli));
    assert_eq!(pick("br;q=0, *", &BOTH), Some(Codec::Gzip));
    assert_eq!(pick("*;q=0", &BOTH), None);
    assert_eq!(pick("gzip, *;q=0", &BOTH), Some(Codec::Gzip));
    assert_eq!(pick("*;q=0.5, gzip;q=0.6", &BOTH), Some(Codec::Gzip));
    // Identity named with a higher weight: no compression.
    assert_eq!(pick("gzip;q=0.5, identity", &BOTH), None);
    assert_eq!(pick("gzip, identity;q=0.5", &BOTH), Some(Codec::Gzip));
    assert_eq!(pick("identity", &BOTH), None);
    assert_eq!(pick("gzip, identity;q=0", &BOTH), Some(Codec::Gzip));
    // Missing or empty header: identity only.
    assert_eq!(choose(std::iter::empty(), &BOTH), None);
    assert_eq!(pick("", &BOTH), None);
}

#[test]
fn negotiation_case_whitespace_garbage() {
    assert_eq!(pick("GZIP", &BOTH), Some(Codec::Gzip));
    assert_eq!(
        pick("Br ; Q=0.5 , gzip ; q=0.4", &BOTH),
        Some(Codec::Brotli)
    );
    assert_eq!(pick("\tgzip\t;\tq=1", &BOTH), Some(Codec::Gzip));
    assert_eq!(pick(" , ,gzip,, ", &BOTH), Some(Codec::Gzip));
    // Bad q-values drop their element only.
    assert_eq!(pick("br;q=2, gzip", &BOTH), Some(Codec::Gzip));
    assert_eq!(pick("br;q=0.1234, gzip;q=0.1", &BOTH), Some(Codec::Gzip));
    assert_eq!(pick("br;q=1.5", &BOTH), None);
    assert_eq!(pick("br;q=-1", &BOTH), None);
    assert_eq!(pick("br;q=", &BOTH), None);
    assert_eq!(pick("br;q", &BOTH), None);
    assert_eq!(pick("br;q=1.000", &BOTH), Some(Codec::Brotli));
    assert_eq!(pick("br;q=1.001", &BOTH), None);
    assert_eq!(pick("gz ip, b\"r", &BOTH), None);
    assert_eq!(pick("\u{e9}gzip", &BOTH), None);
    // Other parameters are ignored.
    assert_eq!(pick("gzip;level=9;q=0.2", &BOTH), Some(Codec::Gzip));
    // Several field lines make one list.
    assert_eq!(
        choose([&b"br;q=0"[..], b"gzip"].into_iter(), &BOTH),
        Some(Codec::Gzip)
    );
}

#[test]
fn media_types() {
    let d = TypeList::default_list();
    for yes in [
        "text/html",
        "text/html; charset=utf-8",
        "Text/HTML;charset=UTF-8",
        " application/json ",
        "application/problem+json",
        "application/vnd.api+JSON; v=1",
        "image/svg+xml",
        "application/atom+xml",
        "text/javascript",
        "application/javascript",
    ] {
        assert!(d.matches(yes.as_bytes()), "{yes}");
    }
    for no in [
        "",
        ";charset=utf-8",
        "image/png",
        "application/octet-stream",
        "text/htmlx",
        "text/event-stream",
        "+json",
        "application/jsonx",
        "video/mp4",
    ] {
        assert!(!d.matches(no.as_bytes()), "{no}");
    }
    let l = TypeList::parse(&["text/*", "application/wasm"]).unwrap();
    assert!(l.matches(b"text/anything"));
    assert!(l.matches(b"application/wasm"));
    assert!(!l.matches(b"text/"));
    assert!(!l.matches(b"application/json"));
    for star in ["*", "*/*"] {
        let any = TypeList::parse(&[star]).unwrap();
        assert!(any.matches(b"image/png"));
        assert!(!any.matches(b""));
    }
    for bad in [
        "text",
        "text/",
        "/html",
        "te xt/html",
        "+",
        "+j son",
        "*/*x",
        "*/html",
        "text/h*",
    ] {
        assert!(TypeList::parse(&[bad]).is_err(), "{bad}");
    }
}

/// Compress `body` fed in pieces of `step` bytes (through a Content-Length
/// framed `BodyFrame`), then parse the chunked output and decode it.
fn round_trip(plan: Plan, body: &[u8], step: usize) -> Vec<u8> {
    let mut c = Compressor::new(plan);
    let mut frame = BodyFrame::response(ResponseFraming::Length(body.len() as u64));
    let mut wire = Vec::new();
    let mut off = 0;
    while off < body.len() {
        let end = (off + step).min(body.len());
        let n = c.step(&mut frame, &body[off..end], &mut wire).unwrap();
        assert_eq!(n, end - off);
        off = end;
    }
    assert!(c.is_finished(), "the body end finishes the stream");
    decode(plan.codec, &dechunk(&wire))
}

fn dechunk(mut wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = wire.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&wire[..line_end]).unwrap(), 16).unwrap();
        wire = &wire[line_end + 2..];
        if size == 0 {
            assert_eq!(wire, b"\r\n", "last chunk, then nothing");
            return out;
        }
        assert!(size > 0);
        out.extend_from_slice(&wire[..size]);
        assert_eq!(&wire[size..size + 2], b"\r\n");
        wire = &wire[size + 2..];
    }
}

fn decode(codec: Codec, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match codec {
        Codec::Gzip => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        Codec::Brotli => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
    }
    out
}

fn sample(len: usize) -> Vec<u8> {
    // Text-like and not trivially repetitive: a counter in words.
    let mut s = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while s.len() < len {
        s.extend_from_slice(
            format!("{{\"id\":{i},\"name\":\"item-{}\"}},\n", i * 7919 % 1000).as_bytes(),
        );
        i += 1;
    }
    s.truncate(len);
    s
}

#[test]
fn encoders_round_trip_for_any_chunking() {
    let plans = [
        Plan {
            codec: Codec::Gzip,
            level: 1,
            window: 15,
        },
        Plan {
            codec: Codec::Gzip,
            level: 9,
            window: 15,
        },
        Plan {
            codec: Codec::Brotli,
            level: 4,
            window: 18,
        },
        Plan {
            codec: Codec::Brotli,
            level: 0,
            window: 10,
        },
    ];
    let body = sample(300_000);
    for plan in plans {
        for step in [1usize, 7, 4096, 65_536, 300_000] {
            let input = if step == 1 { &body[..5000] } else { &body[..] };
            assert_eq!(round_trip(plan, input, step), input, "{plan:?} step {step}");
        }
        // An empty body still makes a valid (empty) stream.
        let mut c = Compressor::new(plan);
        let mut wire = Vec::new();
        c.finish(&mut wire).unwrap();
        assert!(wire.ends_with(b"0\r\n\r\n"));
        assert!(decode(plan.codec, &dechunk(&wire)).is_empty());
        // Compressible text shrinks.
        let mut c = Compressor::new(plan);
        let mut wire = Vec::new();
        c.push(&body, &mut wire).unwrap();
        c.finish(&mut wire).unwrap();
        assert!(wire.len() < body.len() / 3, "{plan:?}: {}", wire.len());
    }
}

#[test]
fn chunked_upstream_body_is_decoded_before_compression() {
    let plan = Plan {
        codec: Codec::Gzip,
        level: 6,
        window: 15,
    };
    let body = sample(10_000);
    let mut upstream = Vec::new();
    for piece in body.chunks(3000) {
        upstream.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        upstream.extend_from_slice(piece);
        upstream.extend_from_slice(b"\r\n");
    }
    upstream.extend_from_slice(b"0\r\n\r\n");
    let mut c = Compressor::new(plan);
    let mut frame = BodyFrame::response(ResponseFraming::Chunked);
    let mut wire = Vec::new();
    // Reads of 777 bytes split the framing anywhere; what a step leaves
    // (a partial size line) is offered again with the next read.
    let (mut off, mut avail) = (0, 0);
    while !frame.is_done() {
        avail = (avail + 777).min(upstream.len());
        off += c
            .step(&mut frame, &upstream[off..avail], &mut wire)
            .unwrap();
    }
    assert_eq!(off, upstream.len());
    assert!(frame.is_done() && c.is_finished());
    assert_eq!(decode(Codec::Gzip, &dechunk(&wire)), body);
}

fn build(toml_filter: &str) -> Result<Filter, Vec<(String, String)>> {
    #[derive(serde::Deserialize)]
    struct F {
        filters: Vec<FilterFile>,
    }
    let f: F = toml::from_str(&format!("[[filters]]\ntype = \"compress\"\n{toml_filter}"))
        .map_err(|e| vec![(String::from("toml"), e.to_string())])?;
    let mut p = Vec::new();
    let built = f.filters[0].build(&mut p);
    match built {
        Some(b) if p.is_empty() => Ok(b),
        _ => Err(p),
    }
}

fn problem_keys(toml_filter: &str) -> Vec<String> {
    build(toml_filter)
        .err()
        .unwrap_or_else(|| panic!("{toml_filter} should be refused"))
        .into_iter()
        .map(|(k, m)| {
            assert!(!m.is_empty());
            k
        })
        .collect()
}

#[test]
fn config_defaults_and_errors() {
    let Filter::Compress(f) = build("").unwrap() else {
        panic!("not a compress filter")
    };
    assert_eq!(&*f.algorithms, &BOTH);
    assert_eq!(
        (f.gzip_level, f.brotli_quality, f.brotli_window, f.min_size),
        (6, 4, 18, 1024)
    );
    assert!(build(
        r#"algorithms = ["gzip"]
gzip_level = 1
brotli_quality = 11
brotli_window = 22
min_size = "4KiB"
content_types = ["text/*", "+json"]"#
    )
    .is_ok());
    assert_eq!(problem_keys("gzip_level = 0"), ["gzip_level"]);
    assert_eq!(problem_keys("gzip_level = 10"), ["gzip_level"]);
    assert_eq!(problem_keys("brotli_quality = 12"), ["brotli_quality"]);
    assert_eq!(problem_keys("brotli_window = 9"), ["brotli_window"]);
    assert_eq!(problem_keys("brotli_window = 23"), ["brotli_window"]);
    assert_eq!(
        problem_keys(r#"algorithms = ["gzip", "zstd"]"#),
        ["algorithms[1]"]
    );
    assert_eq!(
        problem_keys(r#"algorithms = ["br", "br"]"#),
        ["algorithms[1]"]
    );
    assert_eq!(problem_keys("algorithms = []"), ["algorithms"]);
    assert_eq!(problem_keys(r#"min_size = "1KB""#), ["min_size"]);
    assert_eq!(
        problem_keys(r#"content_types = ["text/html", "html"]"#),
        ["content_types[1]"]
    );
    assert_eq!(problem_keys("content_types = []"), ["content_types"]);
    let e = build("level = 3").unwrap_err();
    assert!(e[0].1.contains("unknown field"), "{e:?}");
}

/// Run both phases: the request `raw_req` and the upstream response head
/// `raw_resp`. Returns the final state and the response edits as lines.
fn phases(filter: &Filter, raw_req: &str, raw_resp: &str) -> (CompressState, Vec<String>) {
    let raw_req = raw_req.replace('\n', "\r\n") + "\r\n\r\n";
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    let mut h = RequestHead::default();
    assert!(parse_request_head(raw_req.as_bytes(), &limits, &mut h).unwrap());
    let mut state = FilterState::default();
    let client: SocketAddr = "192.0.2.7:5555".parse().unwrap();
    let mut cx = RequestCx {
        buf: raw_req.as_bytes(),
        head: &h,
        client,
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"rid",
        state: &mut state,
    };
    assert!(matches!(filter.on_request(&mut cx), Flow::Continue));
    let raw_resp = raw_resp.replace('\n', "\r\n") + "\r\n\r\n";
    let mut rh = ResponseHead::default();
    let was_head = raw_req.starts_with("HEAD ");
    assert!(parse_response_head(raw_resp.as_bytes(), &limits, was_head, &mut rh).unwrap());
    let mut rcx = ResponseCx {
        status: rh.status,
        upstream: Some((raw_resp.as_bytes(), &rh)),
        client,
        route: "r",
        state: &mut state,
    };
    assert!(matches!(filter.on_response(&mut rcx), Flow::Continue));
    let edits = state
        .response
        .fields()
        .map(|(n, v)| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    (state.compress, edits)
}

const GET_GZIP: &str = "GET / HTTP/1.1\nHost: a\nAccept-Encoding: gzip";
const OK_JSON: &str = "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 5000";

fn chosen(s: CompressState) -> Option<Codec> {
    s.chosen().map(|p| p.codec)
}

#[test]
fn phases_choose_and_vary() {
    let f = build("").unwrap();
    let (s, e) = phases(&f, GET_GZIP, OK_JSON);
    assert_eq!(chosen(s), Some(Codec::Gzip));
    assert_eq!(e, ["Vary: Accept-Encoding"]);
    // Brotli preferred on equal weights; level plan carried.
    let (s, _) = phases(
        &f,
        "GET / HTTP/1.1\nHost: a\nAccept-Encoding: gzip, br",
        OK_JSON,
    );
    assert_eq!(
        s.chosen(),
        Some(Plan {
            codec: Codec::Brotli,
            level: 4,
            window: 18
        })
    );
    // Eligible but not accepted: Vary all the same.
    let (s, e) = phases(&f, "GET / HTTP/1.1\nHost: a", OK_JSON);
    assert_eq!(chosen(s), None);
    assert_eq!(e, ["Vary: Accept-Encoding"]);
    // HEAD and HTTP/1.0: Vary, no compression.
    let (s, e) = phases(
        &f,
        "HEAD / HTTP/1.1\nHost: a\nAccept-Encoding: gzip",
        OK_JSON,
    );
    assert_eq!((chosen(s), e.len()), (None, 1));
    let (s, e) = phases(&f, "GET / HTTP/1.0\nAccept-Encoding: gzip", OK_JSON);
    assert_eq!((chosen(s), e.len()), (None, 1));
    // Existing Vary: appended in one line, or left alone.
    let (_, e) = phases(
        &f,
        GET_GZIP,
        "HTTP/1.1 200 OK\nContent-Type: text/html\nVary: Origin\nVary: Cookie\nTransfer-Encoding: chunked",
    );
    assert_eq!(e, ["Vary: Origin, Cookie, Accept-Encoding"]);
    for v in ["accept-encoding", "Origin, Accept-Encoding", "*"] {
        let (s, e) = phases(
            &f,
            GET_GZIP,
            &format!("HTTP/1.1 200 OK\nContent-Type: text/html\nVary: {v}\nContent-Length: 2000"),
        );
        assert_eq!(chosen(s), Some(Codec::Gzip));
        assert!(e.is_empty(), "{v}: {e:?}");
    }
    // Unknown length (chunked, until close) is compressed; other statuses
    // with bodies too.
    let (s, _) = phases(
        &f,
        GET_GZIP,
        "HTTP/1.1 404 Not Found\nContent-Type: text/html\nTransfer-Encoding: chunked",
    );
    assert_eq!(chosen(s), Some(Codec::Gzip));
    let (s, _) = phases(
        &f,
        GET_GZIP,
        "HTTP/1.1 200 OK\nContent-Type: text/plain\nConnection: close",
    );
    assert_eq!(chosen(s), Some(Codec::Gzip));
}

#[test]
fn phases_refuse_what_must_not_be_compressed() {
    let f = build(r#"min_size = "1KiB""#).unwrap();
    for resp in [
        // Below min_size.
        "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 1023",
        // Already encoded.
        "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Encoding: gzip\nContent-Length: 5000",
        // A range.
        "HTTP/1.1 206 Partial Content\nContent-Type: text/html\nContent-Range: bytes 0-4999/9000\nContent-Length: 5000",
        "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Range: bytes 0-4999/9000\nContent-Length: 5000",
        // A transfer coding besides chunked.
        "HTTP/1.1 200 OK\nContent-Type: text/html\nTransfer-Encoding: gzip, chunked",
        // no-transform.
        "HTTP/1.1 200 OK\nContent-Type: text/html\nCache-Control: public, No-Transform\nContent-Length: 5000",
        // Type not listed or absent.
        "HTTP/1.1 200 OK\nContent-Type: image/png\nContent-Length: 5000",
        "HTTP/1.1 200 OK\nContent-Length: 5000",
        // Statuses without a body to compress.
        "HTTP/1.1 204 No Content\nContent-Type: text/html",
        "HTTP/1.1 304 Not Modified\nContent-Type: text/html\nETag: \"x\"",
    ] {
        let (s, e) = phases(&f, GET_GZIP, resp);
        assert_eq!(chosen(s), None, "{resp}");
        assert!(e.is_empty(), "{resp}: {e:?}");
    }
    // identity is no encoding; min_size is inclusive.
    let (s, _) = phases(
        &f,
        GET_GZIP,
        "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Encoding: identity\nContent-Length: 1024",
    );
    assert_eq!(chosen(s), Some(Codec::Gzip));
    // Content-Length: 0 has no body: eligible (Vary) but nothing to compress.
    let f0 = build("min_size = 0").unwrap();
    let (s, e) = phases(
        &f0,
        GET_GZIP,
        "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Length: 0",
    );
    assert_eq!((chosen(s), e.len()), (None, 1));
}

#[test]
fn event_streams_and_the_stream_limit() {
    // Server-sent events are never compressed, even when the type list
    // covers them.
    let all = build(r#"content_types = ["*"]"#).unwrap();
    let (s, _) = phases(
        &all,
        GET_GZIP,
        "HTTP/1.1 200 OK\nContent-Type: text/event-stream; charset=utf-8\nTransfer-Encoding: chunked",
    );
    assert_eq!(chosen(s), None);
    // At most max_streams_per_worker live compressors on this thread: the
    // next eligible response goes out as it is, still with Vary.
    let f = build("max_streams_per_worker = 2").unwrap();
    let resp = "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Length: 5000";
    let base = super::encoder::live_streams();
    let plan = Plan {
        codec: Codec::Gzip,
        level: 1,
        window: 15,
    };
    let held: Vec<_> = (0..2).map(|_| super::Compressor::new(plan)).collect();
    assert_eq!(super::encoder::live_streams(), base + 2);
    if base == 0 {
        let (s, e) = phases(&f, GET_GZIP, resp);
        assert_eq!(chosen(s), None);
        assert_eq!(e.len(), 1, "Vary is still added: {e:?}");
    }
    drop(held);
    assert_eq!(super::encoder::live_streams(), base);
    if base == 0 {
        let (s, _) = phases(&f, GET_GZIP, resp);
        assert_eq!(chosen(s), Some(Codec::Gzip));
    }
    assert_eq!(
        problem_keys("max_streams_per_worker = 0"),
        ["max_streams_per_worker"]
    );
}

#[test]
fn flush_hands_over_what_the_encoder_holds() {
    for codec in [Codec::Gzip, Codec::Brotli] {
        let plan = Plan {
            codec,
            level: if codec == Codec::Gzip { 6 } else { 4 },
            window: if codec == Codec::Gzip { 15 } else { 18 },
        };
        let mut c = super::Compressor::new(plan);
        let mut out = Vec::new();
        c.push(b"data: first event\n\n", &mut out).unwrap();
        c.flush(&mut out).unwrap();
        // What was flushed decodes to the event already (a sync flush).
        let mut wire = Vec::new();
        let mut rest = &out[..];
        while !rest.is_empty() {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            assert!(size > 0, "a flush never writes the last chunk");
            wire.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 4 + size..];
        }
        let mut partial = Vec::new();
        match codec {
            Codec::Gzip => {
                let mut d = flate2::write::GzDecoder::new(&mut partial);
                std::io::Write::write_all(&mut d, &wire).unwrap();
                std::io::Write::flush(&mut d).unwrap();
            }
            Codec::Brotli => {
                let mut d = brotli::DecompressorWriter::new(&mut partial, 4096);
                std::io::Write::write_all(&mut d, &wire).unwrap();
                std::io::Write::flush(&mut d).unwrap();
            }
        }
        assert_eq!(partial, b"data: first event\n\n", "{codec:?}");
        // Nothing new: a second flush writes nothing.
        let before = out.len();
        c.flush(&mut out).unwrap();
        assert_eq!(out.len(), before);
    }
}

#[test]
fn local_replies_are_left_alone() {
    let f = build("").unwrap();
    let mut state = FilterState::default();
    state.compress = CompressState::Accepted(Plan {
        codec: Codec::Gzip,
        level: 6,
        window: 15,
    });
    let mut rcx = ResponseCx {
        status: 200,
        upstream: None,
        client: "192.0.2.7:5555".parse().unwrap(),
        route: "r",
        state: &mut state,
    };
    assert!(matches!(f.on_response(&mut rcx), Flow::Continue));
    assert_eq!(state.compress, CompressState::Off);
    assert!(state.response.is_empty());
}
