//! GCRA math, the table (probing, eviction, a flood of keys, threads), key
//! specs, address grouping, the registry, and the filter's 429.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::config::{Rate, RateLimitFile};
use super::filter::{retry_seconds, RateLimitFilter};
use super::key::{group, Group, KeyPart};
use super::table::{now_us, Decision, Gcra, Table, PROBES};
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{Filter, FilterFile, FilterState, Flow, RequestCx};

const S: u64 = 1_000_000;

fn allowed(d: Decision) -> bool {
    matches!(d, Decision::Allow { .. })
}

#[test]
fn gcra_burst_then_steady_rate() {
    // 10/s, burst 3: three at once, then one per 100 ms.
    let t = Table::new(64, Gcra::new(100_000, 3));
    let k = 0xdead_beef_u64;
    let t0 = 5 * S;
    assert_eq!(t.check(k, t0), Decision::Allow { remaining: 2 });
    assert_eq!(t.check(k, t0), Decision::Allow { remaining: 1 });
    assert_eq!(t.check(k, t0), Decision::Allow { remaining: 0 });
    assert_eq!(t.check(k, t0), Decision::Limit { retry_us: 100_000 });
    assert_eq!(
        t.check(k, t0 + 40_000),
        Decision::Limit { retry_us: 60_000 }
    );
    assert!(allowed(t.check(k, t0 + 100_000)));
    assert!(!allowed(t.check(k, t0 + 100_001)));
    // Steady: exactly one per interval over a second.
    let mut n = 0;
    for ms in 101..=1_100 {
        if allowed(t.check(k, t0 + ms * 1000)) {
            n += 1;
        }
    }
    assert_eq!(n, 10);
    // Idle for a long time: the whole burst again.
    let later = t0 + 10 * S;
    for left in [2, 1, 0] {
        assert_eq!(t.check(k, later), Decision::Allow { remaining: left });
    }
    // 3 before the loop, 990 in it.
    assert_eq!(t.limited_total(), 3 + 990);
}

#[test]
fn burst_one_spaces_requests_evenly() {
    let t = Table::new(64, Gcra::new(2_000, 1));
    let k = 42;
    assert_eq!(t.check(k, S), Decision::Allow { remaining: 0 });
    assert_eq!(t.check(k, S + 1_999), Decision::Limit { retry_us: 1 });
    assert!(allowed(t.check(k, S + 2_000)));
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    assert_eq!(retry_seconds(1), 1);
    assert_eq!(retry_seconds(999_999), 1);
    assert_eq!(retry_seconds(1_000_000), 1);
    assert_eq!(retry_seconds(1_000_001), 2);
    assert_eq!(retry_seconds(59_500_000), 60);
    // 600/m, burst 1: the second request waits 100 ms → 1 s.
    let t = Table::new(
        64,
        Gcra::new(Rate::parse("600/m").unwrap().interval_us(), 1),
    );
    assert!(allowed(t.check(7, S)));
    let Decision::Limit { retry_us } = t.check(7, S) else {
        panic!("limited")
    };
    assert_eq!(retry_seconds(retry_us), 1);
    // 1/h: an hour.
    let t = Table::new(64, Gcra::new(Rate::parse("1/h").unwrap().interval_us(), 1));
    assert!(allowed(t.check(7, S)));
    assert_eq!(
        t.check(7, S + 1),
        Decision::Limit {
            retry_us: 3600 * S - 1
        }
    );
}

#[test]
fn rates_parse_and_bad_ones_are_refused() {
    assert_eq!(
        Rate::parse("100/s").unwrap(),
        Rate {
            count: 100,
            period_s: 1
        }
    );
    assert_eq!(Rate::parse("600/m").unwrap().interval_us(), 100_000);
    assert_eq!(Rate::parse(" 10 / hour ").unwrap().interval_us(), 360 * S);
    assert_eq!(Rate::parse("3/s").unwrap().interval_us(), 333_333);
    for bad in ["100", "0/s", "-1/s", "+5/s", "10/d", "x/s", "2000000/s", ""] {
        assert!(Rate::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn keys_in_one_region_probe_and_expired_slots_are_reused() {
    // 64 slots; keys with the same home (low bits) and different tags.
    let t = Table::new(64, Gcra::new(S, 1));
    let key = |i: u64| (i << 44) | 5;
    let now = 10 * S;
    for i in 1..=PROBES as u64 {
        assert!(allowed(t.check(key(i), now)), "key {i}");
    }
    // Each is limited now (its slot is live), and found again.
    for i in 1..=PROBES as u64 {
        assert!(!allowed(t.check(key(i), now)), "key {i}");
    }
    // A ninth key of the same region finds no slot: allowed, counted.
    assert_eq!(t.check(key(100), now), Decision::Full);
    assert_eq!(t.full_total(), 1);
    assert_eq!(t.live_slots(now), PROBES);
    // A second later the slots have expired: the ninth key takes one.
    assert!(allowed(t.check(key(100), now + S)));
    assert!(!allowed(t.check(key(100), now + S)));
    assert_eq!(t.full_total(), 1);
    // Another region is unaffected.
    assert!(allowed(t.check(key(1) + 20, now)));
}

#[test]
fn a_flood_of_a_million_keys_keeps_memory_and_the_busy_key_limited() {
    // 100/s burst 10: a flood key lives 10 ms after its one request.
    let t = Table::new(65_536, Gcra::new(10_000, 10));
    let h = std::collections::hash_map::RandomState::new();
    use std::hash::BuildHasher;
    let victim = h.hash_one("victim");
    let start = 100 * S;
    // The busy client has used its burst.
    for _ in 0..10 {
        assert!(allowed(t.check(victim, start)));
    }
    // A million distinct keys within 1 s (one per µs), while the busy
    // client goes on at 1000/s, ten times its rate.
    let mut full = 0;
    let mut victim_ok = 0;
    for i in 0..1_000_000u64 {
        let now = start + i;
        if t.check(h.hash_one(i), now) == Decision::Full {
            full += 1;
        }
        if i % 1_000 == 0 && allowed(t.check(victim, now)) {
            victim_ok += 1;
        }
    }
    // Never evicted (that would give it a fresh burst of 10): 100/s, its
    // burst already spent.
    assert!(
        (95..=105).contains(&victim_ok),
        "the busy key got {victim_ok} in 1 s"
    );
    assert_eq!(t.len(), 65_536, "the table does not grow");
    // ~10 ms × 1000 keys/ms = 10 000 live keys in 65 536 slots: rarely full.
    assert!(full < 1_000, "{full} requests found no slot");
    assert_eq!(t.full_total(), full);
    assert!(t.live_slots(start + 1_000_000) < 20_000);
}

#[test]
fn two_threads_on_one_key_stay_within_five_percent() {
    // 1000/s, burst 50, 2 threads for 2 s at ~3× the rate between them.
    let table = Arc::new(Table::new(1024, Gcra::new(1_000, 50)));
    let key = 0x1234_5678_9abc_def0;
    let secs = 2.0;
    let begin = std::time::Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let table = Arc::clone(&table);
            std::thread::spawn(move || {
                let mut ok = 0u64;
                let mut sent = 0u64;
                // 1500/s per thread: one every 666 µs (a busy spin between).
                while begin.elapsed().as_secs_f64() < secs {
                    let due = std::time::Duration::from_micros(sent * 666);
                    if begin.elapsed() < due {
                        std::hint::spin_loop();
                        continue;
                    }
                    sent += 1;
                    if allowed(table.check(key, now_us())) {
                        ok += 1;
                    }
                }
                (ok, sent)
            })
        })
        .collect();
    let (ok, sent) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let expected = 1000.0 * secs + 50.0;
    let ratio = ok as f64 / expected;
    eprintln!("accepted {ok} of {sent}, expected {expected}: {ratio:.4}");
    assert!(
        sent as f64 > 2.5 * expected,
        "the threads did not drive 3×: {sent}"
    );
    assert!(
        (0.95..=1.05).contains(&ratio),
        "accepted {ok}, expected {expected}"
    );
    assert_eq!(table.limited_total(), sent - ok);
}

#[test]
fn key_parts_parse_and_canonicalise() {
    let ok = |t: &str| KeyPart::parse(t).unwrap();
    assert_eq!(ok("client_ip"), KeyPart::ClientIp { v4: 32, v6: 128 });
    assert_eq!(ok("client_ip/24"), KeyPart::ClientIp { v4: 24, v6: 64 });
    assert_eq!(ok("client_ip/16/48"), KeyPart::ClientIp { v4: 16, v6: 48 });
    assert_eq!(ok("client_ip/32/64"), KeyPart::ClientIp { v4: 32, v6: 64 });
    assert_eq!(
        ok("header:X-Tenant"),
        KeyPart::Header((*b"x-tenant").into())
    );
    assert_eq!(ok("var:api_key_id"), KeyPart::Var("api_key_id".into()));
    assert_eq!(ok("$var.sub"), KeyPart::Var("sub".into()));
    assert_eq!(ok("route"), KeyPart::Route);
    assert_eq!(ok("client_ip/24").canonical(), "client_ip/24/64");
    assert_eq!(ok("$var.sub").canonical(), "var:sub");
    for bad in [
        "client_ip/33",
        "client_ip/24/129",
        "client_ip/",
        "client_ip/1/2/3",
        "client_ipx",
        "header:bad name",
        "var:",
        "var:a.b",
        "cookie:x",
        "",
    ] {
        assert!(KeyPart::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn ipv4_blocks_of_24_and_ipv6_blocks_of_64() {
    let g = |s: &str, v4, v6| group(s.parse::<IpAddr>().unwrap(), v4, v6);
    assert_eq!(g("192.0.2.7", 24, 64), g("192.0.2.200", 24, 64));
    assert_ne!(g("192.0.2.7", 24, 64), g("192.0.3.7", 24, 64));
    assert_eq!(g("192.0.2.7", 24, 64), Group::V4(0xc000_0200));
    assert_ne!(g("192.0.2.7", 32, 128), g("192.0.2.8", 32, 128));
    // IPv4-mapped IPv6 is the IPv4 address.
    assert_eq!(g("::ffff:192.0.2.9", 24, 64), g("192.0.2.1", 24, 64));
    assert_eq!(
        g("2001:db8:1:2:aaaa::1", 24, 64),
        g("2001:db8:1:2:ffff:1:2:3", 24, 64)
    );
    assert_ne!(g("2001:db8:1:2::1", 24, 64), g("2001:db8:1:3::1", 24, 64));
    assert_eq!(g("2001:db8:1:2::1", 24, 0), Group::V6(0));
}

fn file(toml_text: &str) -> RateLimitFile {
    match toml::from_str::<FilterFile>(toml_text).expect("filter parses") {
        FilterFile::RateLimit(f) => f,
        other => panic!("{other:?}"),
    }
}

fn build(route: &str, toml_text: &str) -> RateLimitFilter {
    let mut p = Vec::new();
    let f = file(toml_text).build(route, &mut p);
    assert!(p.is_empty(), "{p:?}");
    f.unwrap()
}

#[test]
fn the_registry_keeps_an_unchanged_limiter_across_builds() {
    let a = build(
        "reg-a",
        r#"type = "rate_limit"
rate = "100/s""#,
    );
    let again = build(
        "reg-a",
        r#"type = "rate_limit"
rate = "100/s"
key = "client_ip""#,
    );
    assert!(
        Arc::ptr_eq(&a.default.table, &again.default.table),
        "same identity, same table"
    );
    for other in [
        r#"type = "rate_limit"
rate = "101/s""#,
        r#"type = "rate_limit"
rate = "100/s"
burst = 5"#,
        r#"type = "rate_limit"
rate = "100/s"
key = "client_ip/24""#,
    ] {
        assert!(
            !Arc::ptr_eq(&a.default.table, &build("reg-a", other).default.table),
            "{other}"
        );
    }
    let b = build(
        "reg-b",
        r#"type = "rate_limit"
rate = "100/s""#,
    );
    assert!(
        !Arc::ptr_eq(&a.default.table, &b.default.table),
        "another route"
    );
    // Dropped by every generation: the next build starts afresh.
    let weak = Arc::downgrade(&a.default.table);
    drop((a, again));
    assert!(weak.upgrade().is_none());
    let fresh = build(
        "reg-a",
        r#"type = "rate_limit"
rate = "100/s""#,
    );
    assert_eq!(fresh.limited_total(), 0);
}

#[test]
fn bad_keys_are_reported_by_name() {
    let mut p = Vec::new();
    let f = file(
        r#"type = "rate_limit"
rate = "100/x"
burst = 0
key = ["client_ip/24", "header:a b", "nope"]
table_size = 10
policy = "a\"b""#,
    );
    assert!(f.build("bad", &mut p).is_none());
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["rate", "burst", "key[1]", "key[2]", "table_size", "policy"]
    );
    assert!(
        toml::from_str::<FilterFile>("type = \"rate_limit\"\nrate = \"1/s\"\nbrust = 1").is_err()
    );
    assert!(toml::from_str::<FilterFile>("type = \"rate_limit\"").is_err());
}

fn run(raw: &[u8], client: &str, f: &Filter, state: &mut FilterState) -> Flow {
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut head).unwrap());
    state.clear();
    state.vars.set("sub", b"alice");
    let mut cx = RequestCx {
        buf: raw,
        head: &head,
        client: client.parse().unwrap(),
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"rid",
        state,
    };
    f.on_request(&mut cx)
}

#[test]
fn the_filter_answers_429_with_retry_after_and_ratelimit_fields() {
    let mut p = Vec::new();
    let f = file(
        r#"type = "rate_limit"
rate = "2/m"
key = ["client_ip/24", "header:x-tenant", "$var.sub"]"#,
    )
    .build("filter-429", &mut p)
    .map(Filter::RateLimit)
    .unwrap();
    let mut state = FilterState::default();
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Tenant: acme\r\n\r\n";
    // Burst 2 (the count): two pass, from the same /24.
    assert!(matches!(
        run(raw, "192.0.2.1:1", &f, &mut state),
        Flow::Continue
    ));
    assert!(matches!(
        run(raw, "192.0.2.99:2", &f, &mut state),
        Flow::Continue
    ));
    let flow = run(raw, "192.0.2.3:3", &f, &mut state);
    let Flow::Respond(reply) = flow else {
        panic!("expected 429, got {flow:?}")
    };
    assert_eq!(reply.status, 429);
    let get = |n: &[u8]| String::from_utf8(state.response.get(n).unwrap().to_vec()).unwrap();
    let retry: u64 = get(b"retry-after").parse().unwrap();
    assert!((29..=30).contains(&retry), "{retry}");
    assert_eq!(get(b"ratelimit-policy"), "\"default\";q=2;w=60");
    assert_eq!(get(b"ratelimit"), format!("\"default\";r=0;t={retry}"));
    // Another tenant, or another /24: another bucket.
    let other = b"GET / HTTP/1.1\r\nHost: a\r\nX-Tenant: zeta\r\n\r\n";
    assert!(matches!(
        run(other, "192.0.2.3:3", &f, &mut state),
        Flow::Continue
    ));
    assert!(matches!(
        run(raw, "192.0.3.3:3", &f, &mut state),
        Flow::Continue
    ));
    assert!(state.response.is_empty());
    let Filter::RateLimit(rl) = &f else {
        unreachable!()
    };
    assert_eq!(rl.limited_total(), 1);
    assert_eq!(f.kind(), "rate_limit");
}

#[test]
fn a_route_built_by_the_config_builder_reuses_its_table() {
    let _ = Path::new("");
    let f = || -> FilterFile { toml::from_str("type = \"rate_limit\"\nrate = \"5/s\"").unwrap() };
    let mut p = Vec::new();
    let a = f()
        .build_on_route("builder-r", Path::new(""), &mut p)
        .unwrap();
    let b = f()
        .build_on_route("builder-r", Path::new(""), &mut p)
        .unwrap();
    let (Filter::RateLimit(a), Filter::RateLimit(b)) = (a, b) else {
        panic!("rate_limit filters")
    };
    assert!(Arc::ptr_eq(&a.default.table, &b.default.table));
}

const PLANS: &str = r#"type = "rate_limit"
key = "var:api_key_id"
plans = { gold = { rate = "1000/s", burst = 100 }, free = { rate = "10/s", burst = 5 }, slow = { rate = "6/m" } }
rate = "5/s""#;

/// The first `n` requests of `id` (plan `plan`, unset when `None`) at
/// once: how many pass, and the last 429's `RateLimit-Policy`.
fn burst_of(f: &Filter, id: &str, plan: Option<&str>, n: usize) -> (usize, Option<String>) {
    let mut state = FilterState::default();
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut head).unwrap());
    let (mut ok, mut policy) = (0, None);
    for _ in 0..n {
        state.clear();
        state.vars.set("api_key_id", id.as_bytes());
        if let Some(plan) = plan {
            state.vars.set("api_key_plan", plan.as_bytes());
        }
        let mut cx = RequestCx {
            buf: raw,
            head: &head,
            client: "192.0.2.1:1".parse().unwrap(),
            listener: "l",
            tls: None,
            route: "r",
            request_id: b"rid",
            state: &mut state,
        };
        match f.on_request(&mut cx) {
            Flow::Continue => ok += 1,
            Flow::Respond(r) => {
                assert_eq!(r.status, 429);
                policy = state
                    .response
                    .get(b"ratelimit-policy")
                    .map(|v| String::from_utf8(v.to_vec()).unwrap());
            }
            other => panic!("{other:?}"),
        }
    }
    (ok, policy)
}

#[test]
fn plans_are_selected_by_the_plan_variable() {
    let f = build("plans-select", PLANS);
    assert_eq!(f.plan_from.as_deref(), Some("api_key_plan"));
    let names: Vec<&[u8]> = f.plans.iter().map(|(n, _)| n.as_ref()).collect();
    assert_eq!(names, [&b"free"[..], b"gold", b"slow"], "sorted");
    assert_eq!(f.plan(Some(b"gold")).burst, 100);
    assert_eq!(f.plan(Some(b"gold")).rate.count, 1000);
    assert_eq!(f.plan(Some(b"free")).burst, 5);
    // A plan's burst defaults to its rate's count.
    assert_eq!(f.plan(Some(b"slow")).burst, 6);
    assert_eq!(&*f.plan(Some(b"slow")).policy_field, b"\"slow\";q=6;w=60");
    // No plan, an unknown plan, a prefix of a plan: the default.
    for p in [None, Some(&b"platinum"[..]), Some(b"gol"), Some(b"")] {
        let l = f.plan(p);
        assert!(Arc::ptr_eq(&l.table, &f.default.table), "{p:?}");
        assert_eq!((l.rate.count, l.burst), (5, 5));
        assert_eq!(&*l.policy_name, "default");
    }
    // Every plan has a table of its own, `table_size` slots each.
    let tables: Vec<_> = f.limiters().map(|l| Arc::as_ptr(&l.table)).collect();
    assert_eq!(tables.len(), 4);
    for (i, a) in tables.iter().enumerate() {
        assert!(tables[i + 1..].iter().all(|b| a != b));
    }
    assert!(f.limiters().all(|l| l.table.len() == 65_536));
}

#[test]
fn each_plan_has_its_own_rate_and_the_default_covers_the_rest() {
    let f = Filter::RateLimit(build("plans-rates", PLANS));
    // gold: burst 100; free: burst 5; no plan or an unknown one: 5 (`rate`).
    // gold refills 1,000 tokens a second: on a busy machine the 150 tries
    // take long enough for a few to come back, counted from the time taken.
    let t = std::time::Instant::now();
    let gold = burst_of(&f, "team-a", Some("gold"), 150).0;
    let refilled = (t.elapsed().as_secs_f64() * 1000.0).ceil() as usize;
    assert!(
        (100..=100 + refilled).contains(&gold),
        "{gold} of 150 allowed, burst 100 + {refilled} refilled"
    );
    let (ok, policy) = burst_of(&f, "team-b", Some("free"), 20);
    assert_eq!(ok, 5);
    assert_eq!(policy.as_deref(), Some("\"free\";q=10;w=1"));
    let (ok, policy) = burst_of(&f, "team-c", None, 20);
    assert_eq!(ok, 5);
    assert_eq!(policy.as_deref(), Some("\"default\";q=5;w=1"));
    let (ok, policy) = burst_of(&f, "team-d", Some("platinum"), 20);
    assert_eq!(ok, 5);
    assert_eq!(policy.as_deref(), Some("\"default\";q=5;w=1"));
    // The gold key is limited too, past its burst: "gold";q=1000;w=1.
    let (ok, policy) = burst_of(&f, "team-a", Some("gold"), 5);
    assert!(ok <= 1, "{ok}");
    assert_eq!(policy.as_deref(), Some("\"gold\";q=1000;w=1"));
    let Filter::RateLimit(rl) = &f else {
        unreachable!()
    };
    // Each plan counts in its own table; the filter sums them.
    assert_eq!(rl.plan(Some(b"free")).table.limited_total(), 15);
    assert!(rl.limited_total() >= 50 + 15 + 15 + 15 + 4);
}

#[test]
fn plan_from_names_another_variable() {
    let f = Filter::RateLimit(build(
        "plans-var",
        r#"type = "rate_limit"
key = "var:api_key_id"
plan_from = "$var.tier"
plans = { gold = { rate = "100/s", burst = 10 } }
rate = "2/s""#,
    ));
    let Filter::RateLimit(rl) = &f else {
        unreachable!()
    };
    assert_eq!(rl.plan_from.as_deref(), Some("tier"));
    // `api_key_plan` is now just a variable: "gold" there is the default.
    assert_eq!(burst_of(&f, "k", Some("gold"), 20).0, 2);
    // Without `plans`: no plan variable, one limiter.
    let plain = build("plans-none", "type = \"rate_limit\"\nrate = \"2/s\"");
    assert_eq!(plain.plan_from, None);
    assert_eq!(plain.limiters().count(), 1);
}

#[test]
fn plan_tables_are_kept_across_builds_by_plan() {
    let a = build("plans-reg", PLANS);
    let b = build("plans-reg", PLANS);
    for (x, y) in a.limiters().zip(b.limiters()) {
        assert!(Arc::ptr_eq(&x.table, &y.table));
    }
    // gold changed: a new gold table; free and the default are kept.
    let c = build(
        "plans-reg",
        &PLANS.replace(
            "rate = \"1000/s\", burst = 100",
            "rate = \"999/s\", burst = 100",
        ),
    );
    assert!(!Arc::ptr_eq(
        &a.plan(Some(b"gold")).table,
        &c.plan(Some(b"gold")).table
    ));
    assert!(Arc::ptr_eq(
        &a.plan(Some(b"free")).table,
        &c.plan(Some(b"free")).table
    ));
    assert!(Arc::ptr_eq(&a.default.table, &c.default.table));
    // A plan named like the default policy, with the default's rate, is
    // still a table of its own.
    let d = build(
        "plans-reg",
        &PLANS.replace("slow = { rate = \"6/m\" }", "default = { rate = \"5/s\" }"),
    );
    assert!(!Arc::ptr_eq(
        &d.default.table,
        &d.plan(Some(b"default")).table
    ));
    assert!(Arc::ptr_eq(&d.default.table, &a.default.table));
}

#[test]
fn bad_plans_are_reported_by_name() {
    let mut p = Vec::new();
    let f = file(
        r#"type = "rate_limit"
rate = "5/s"
plan_from = "a.b"
plans = { gold = { rate = "1000/x" }, free = { rate = "10/s", burst = 0 }, "a\"b" = { rate = "1/s" } }"#,
    );
    assert!(f.build("bad-plans", &mut p).is_none());
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "plans.a\"b",
            "plans.free.burst",
            "plans.gold.rate",
            "plan_from"
        ],
        "{p:?}"
    );
    let mut p = Vec::new();
    let f = file("type = \"rate_limit\"\nrate = \"5/s\"\nplan_from = \"tier\"");
    assert!(f.build("bad-plans", &mut p).is_none());
    assert_eq!(p[0].0, "plan_from");
    let mut p = Vec::new();
    let f = file("type = \"rate_limit\"\nrate = \"5/s\"\nplans = {}");
    assert!(f.build("bad-plans", &mut p).is_none());
    assert_eq!(p[0].0, "plans");
    // Unknown fields in a plan are refused.
    assert!(toml::from_str::<FilterFile>(
        "type = \"rate_limit\"\nrate = \"5/s\"\nplans = { gold = { rate = \"1/s\", brust = 1 } }"
    )
    .is_err());
}
