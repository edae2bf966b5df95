//! `RouteTable::find`: host + path-prefix matching, first match wins, on
//! tables of 10 and 1,000 routes compiled from a generated config
//! (`Config::parse` + `RouteTable::build(&config, 0)`). Inputs: the first
//! route, the last route (a linear scan's worst case), and a miss (404).
//! `route_match_paths`: 1,000 host-less routes that differ only in the path
//! prefix (one path trie with 1,000 prefixes instead of 1,000 host groups).
//! Also the table build itself.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ringway::config::Config;
use ringway::pipeline::route::{RouteInput, RouteMatch, RouteTable};

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

/// `n` routes with path prefix `/svcI/` and the host line `host(i)`.
fn config_with(n: usize, host: impl Fn(usize) -> String) -> Config {
    let mut t = String::from(
        "[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n\
         [[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9000\"]\n\n",
    );
    for i in 0..n {
        t.push_str(&format!(
            "[[route]]\nlistener = \"public\"\n{}path_prefix = \"/svc{i}/\"\ncluster = \"app\"\n\n",
            host(i)
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
                RouteInput {
                    host: Some(b"svc0.example.com"),
                    path: b"/svc0/items/42",
                },
                true,
            ),
            (
                "last",
                RouteInput {
                    host: Some(b"api.example.com:8080"),
                    path: last_path.as_bytes(),
                },
                true,
            ),
            (
                "miss",
                RouteInput {
                    host: Some(b"other.test"),
                    path: b"/nothing/here",
                },
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
            RouteInput {
                host: Some(b"api.example.com:8080"),
                path: last_path.as_bytes(),
            },
            Some(n - 1),
        ),
        (
            "miss",
            RouteInput {
                host: Some(b"other.test"),
                path: b"/svc12x/nothing",
            },
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
        path_prefix: b"/api/".to_vec(),
    };
    let input = RouteInput {
        host: Some(b"Svc.Example.COM:443"),
        path: b"/api/v1/users",
    };
    assert!(m.matches(&input));
    c.bench_function("route_match/one_wildcard_matcher", |b| {
        b.iter(|| black_box(m.matches(black_box(&input))))
    });
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

criterion_group!(benches, find, find_paths, single_matcher, build);
criterion_main!(benches);
