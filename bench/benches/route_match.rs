//! `RouteTable::find`: host + path-prefix matching, first match wins, on
//! tables of 10 and 1,000 routes compiled from a generated config
//! (`Config::parse` + `RouteTable::build(&config, 0)`). Inputs: the first
//! route, the last route (a linear scan's worst case), and a miss (404).
//! `route_match_paths`: 1,000 host-less routes that differ only in the path
//! prefix (one path trie with 1,000 prefixes instead of 1,000 host groups).
//! `route_match_mixed`: 1,000 routes mixing every matcher (exact hosts,
//! wildcards, exact paths, segment prefixes, regex paths, methods, header and
//! query conditions), requests with a realistic set of headers: hit the
//! first and the last route, a regex route, a miss (404) and a near miss
//! (host and path of a route whose method and header conditions fail).
//! Also the table build itself.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ringway::config::{Config, PathMatch};
use ringway::http::{HeaderSpan, Span};
use ringway::pipeline::route::{
    target_path, target_query, RequestHeaders, RouteInput, RouteMatch, RouteTable,
};

/// A config with `n` routes: `svcI.example.com` + `/svcI/`, the last one a
/// wildcard host, all to one cluster.
fn config(n: usize) -> Config {
    config_with(n, |i| {
        if i + 1 == n {
            "host = \"*.example.com\"\n".to_string()
        } else {
            format!("host = \"svc{i}.example.com\"\n")
        }
    })
}

/// A config with `n` routes `/svcI/` without a host, all to one cluster.
fn config_paths(n: usize) -> Config {
    config_with(n, |_| String::new())
}

/// `n` routes with path prefix `/svcI/` and the host line `host(i)`, or
/// whatever matcher lines `host(i)` gives when they include a path key.
fn config_with(n: usize, host: impl Fn(usize) -> String) -> Config {
    let mut t = String::from(
        "[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n\
         [[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9000\"]\n\n",
    );
    for i in 0..n {
        let lines = host(i);
        let path = if lines.contains("path") {
            String::new()
        } else {
            format!("path_prefix = \"/svc{i}/\"\n")
        };
        t.push_str(&format!(
            "[[route]]\nlistener = \"public\"\n{lines}{path}cluster = \"app\"\n\n"
        ));
    }
    Config::parse(&t, None).unwrap_or_else(|e| panic!("generated config rejected: {e}"))
}

fn find(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match");
    for n in [10usize, 1000] {
        let cfg = config(n);
        let table = RouteTable::build(&cfg, 0);
        assert_eq!(table.len(), n);
        let last_path = format!("/svc{}/items/42", n - 1);
        let cases: [(&str, RouteInput<'_>, bool); 3] = [
            (
                "first",
                RouteInput::get(Some(b"svc0.example.com"), b"/svc0/items/42"),
                true,
            ),
            (
                "last",
                RouteInput::get(Some(b"api.example.com:8080"), last_path.as_bytes()),
                true,
            ),
            (
                "miss",
                RouteInput::get(Some(b"other.test"), b"/nothing/here"),
                false,
            ),
        ];
        for (name, input, hit) in cases {
            assert_eq!(table.find(&input).is_some(), hit, "{name} with {n} routes");
            g.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| {
                b.iter(|| black_box(table.find(black_box(input)).map(|r| r.index)))
            });
        }
    }
    g.finish();
}

fn find_paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match_paths");
    let n = 1000;
    let table = RouteTable::build(&config_paths(n), 0);
    assert_eq!(table.len(), n);
    let last_path = format!("/svc{}/items/42", n - 1);
    let cases: [(&str, RouteInput<'_>, Option<usize>); 2] = [
        (
            "last",
            RouteInput::get(Some(b"api.example.com:8080"), last_path.as_bytes()),
            Some(n - 1),
        ),
        (
            "miss",
            RouteInput::get(Some(b"other.test"), b"/svc12x/nothing"),
            None,
        ),
    ];
    for (name, input, want) in cases {
        assert_eq!(table.find(&input).map(|r| r.index), want, "{name}");
        g.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| {
            b.iter(|| black_box(table.find(black_box(input)).map(|r| r.index)))
        });
    }
    g.finish();
}

fn single_matcher(c: &mut Criterion) {
    let m = RouteMatch {
        host: Some(ringway::config::HostMatch::Suffix(".example.com".into())),
        path: PathMatch::Prefix("/api/".into()),
        ..RouteMatch::default()
    };
    let input = RouteInput::get(Some(b"Svc.Example.COM:443"), b"/api/v1/users");
    assert!(m.matches(&input));
    c.bench_function("route_match/one_wildcard_matcher", |b| {
        b.iter(|| black_box(m.matches(black_box(&input))))
    });
}

/// Route `i` of the mixed table: one of ten shapes, by `i % 10`.
fn mixed_route(i: usize) -> String {
    match i % 10 {
        0..3 => format!("host = \"svc{i}.example.com\"\npath_prefix = \"/svc{i}/\"\n"),
        3 => format!("host = \"svc{i}.example.com\"\npath = \"/svc{i}/health\"\n"),
        4 => format!("path_segment_prefix = \"/seg{i}\"\n"),
        5 => format!("path_regex = \"/re{i}/[0-9]+\"\n"),
        6 => format!(
            "host = \"*.w{i}.example.com\"\npath_segment_prefix = \"/api\"\nmethods = [\"GET\", \"POST\"]\n"
        ),
        7 => format!(
            "path_prefix = \"/h{i}/\"\nheaders = [{{ name = \"x-canary\", exact = \"1\" }}]\n"
        ),
        8 => format!(
            "path_prefix = \"/q{i}/\"\nquery = [{{ name = \"v\", regex = \"^[0-9]+$\" }}]\n"
        ),
        _ => format!(
            "host = \"svc{i}.example.com\"\npath_segment_prefix = \"/svc{i}\"\nmethods = [\"POST\"]\nheaders = [{{ name = \"x-env\", prefix = \"stag\" }}]\n"
        ),
    }
}

/// A request head's header fields: (buffer, spans).
fn header_fields(fields: &[(&str, &str)]) -> (Vec<u8>, Vec<HeaderSpan>) {
    let mut buf = Vec::new();
    let mut spans = Vec::new();
    for (n, v) in fields {
        let mut span = |s: &str| {
            let start = buf.len() as u32;
            buf.extend_from_slice(s.as_bytes());
            Span {
                start,
                end: buf.len() as u32,
            }
        };
        let name = span(n);
        let value = span(v);
        spans.push(HeaderSpan { name, value });
    }
    (buf, spans)
}

/// A request with this target (path and query).
fn request<'a>(
    host: &'a [u8],
    method: &'a [u8],
    target: &'a [u8],
    headers: RequestHeaders<'a>,
) -> RouteInput<'a> {
    RouteInput {
        host: Some(host),
        path: target_path(target),
        method,
        query: target_query(target),
        headers,
    }
}

fn find_mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match_mixed");
    let n = 1000;
    let cfg = config_with(n, mixed_route);
    let table = RouteTable::build(&cfg, 0);
    assert_eq!(table.len(), n);
    assert!(table.is_indexed());
    let typical = [
        ("User-Agent", "curl/8.5.0"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, br"),
        ("X-Request-Id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("Cookie", "session=abc123; theme=dark"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all: Vec<(&str, &str)> = typical.to_vec();
        all.extend_from_slice(extra);
        header_fields(&all)
    };
    let (plain_buf, plain) = with(&[]);
    let (staging_buf, staging) = with(&[("X-Env", "staging-eu")]);
    let last = n - 1;
    let last_host = format!("svc{last}.example.com");
    let last_target = format!("/svc{last}/items/42?page=2");
    let regex_target = format!("/re{}/12345?v=1", n - 5);
    let cases: [(&str, RouteInput<'_>, Option<usize>); 5] = [
        (
            "first",
            request(
                b"svc0.example.com",
                b"GET",
                b"/svc0/items/42",
                RequestHeaders::new(&plain_buf, &plain),
            ),
            Some(0),
        ),
        (
            "last",
            request(
                last_host.as_bytes(),
                b"POST",
                last_target.as_bytes(),
                RequestHeaders::new(&staging_buf, &staging),
            ),
            Some(last),
        ),
        (
            "regex",
            request(
                b"api.example.com",
                b"GET",
                regex_target.as_bytes(),
                RequestHeaders::new(&plain_buf, &plain),
            ),
            Some(n - 5),
        ),
        (
            "miss",
            request(
                b"other.test",
                b"GET",
                b"/nothing/here?x=1",
                RequestHeaders::new(&plain_buf, &plain),
            ),
            None,
        ),
        (
            "conditions_fail",
            request(
                last_host.as_bytes(),
                b"GET",
                last_target.as_bytes(),
                RequestHeaders::new(&plain_buf, &plain),
            ),
            None,
        ),
    ];
    for (name, input, want) in cases {
        assert_eq!(table.find(&input).map(|r| r.index), want, "{name}");
        g.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| {
            b.iter(|| black_box(table.find(black_box(input)).map(|r| r.index)))
        });
    }
    g.finish();
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_table_build");
    for n in [10usize, 1000] {
        let cfg = config(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &cfg, |b, cfg| {
            b.iter(|| black_box(RouteTable::build(cfg, 0).len()))
        });
    }
    g.finish();
}

criterion_group!(benches, find, find_paths, find_mixed, single_matcher, build);
criterion_main!(benches);
