//! The in-flight count: admits up to `max`, 503 beyond, and every way a
//! request ends gives its slot back.

use std::path::Path;
use std::sync::Arc;

use super::config::ConcurrencyLimitFile;
use super::filter::{ConcurrencyLimitFilter, InFlight, Permit};
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::pipeline::filters::{
    run_request, run_response, Filter, FilterFile, FilterState, Flow, RequestCx, ResponseCx,
};

fn build(route: &str, max: u64) -> ConcurrencyLimitFilter {
    let mut p = Vec::new();
    let f = ConcurrencyLimitFile {
        max,
        retry_after: None,
    }
    .build(route, &mut p);
    assert!(p.is_empty(), "{p:?}");
    f.unwrap()
}

fn request(chain: &[Filter], state: &mut FilterState) -> (Flow, usize) {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut head = RequestHead::default();
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    assert!(parse_request_head(raw, &limits, &mut head).unwrap());
    state.clear();
    let mut cx = RequestCx {
        buf: raw,
        head: &head,
        client: "192.0.2.7:5555".parse().unwrap(),
        listener: "l",
        tls: None,
        route: "r",
        request_id: b"rid",
        state,
    };
    run_request(chain, &mut cx)
}

fn respond(chain: &[Filter], ran: usize, state: &mut FilterState) {
    let mut cx = ResponseCx {
        status: 200,
        upstream: None,
        client: "192.0.2.7:5555".parse().unwrap(),
        route: "r",
        state,
    };
    assert!(matches!(run_response(chain, ran, &mut cx), Flow::Continue));
}

#[test]
fn permits_count_up_to_max_and_back() {
    let c = Arc::new(InFlight::default());
    let a = Permit::acquire(&c, 2).unwrap();
    let b = Permit::acquire(&c, 2).unwrap();
    assert!(Permit::acquire(&c, 2).is_none());
    assert_eq!((c.count(), c.rejected_total()), (2, 1));
    drop(a);
    let again = Permit::acquire(&c, 2).unwrap();
    drop((b, again));
    assert_eq!(c.count(), 0);
}

#[test]
fn over_max_is_503_and_every_path_gives_the_slot_back() {
    let f = build("conc-paths", 2);
    let counter = Arc::clone(&f.in_flight);
    let chain = [Filter::ConcurrencyLimit(f.clone())];
    let (mut s1, mut s2, mut s3) = Default::default();

    // Two in flight (two connections), the third is refused.
    assert!(matches!(request(&chain, &mut s1).0, Flow::Continue));
    assert!(matches!(request(&chain, &mut s2).0, Flow::Continue));
    let (flow, ran) = request(&chain, &mut s3);
    let Flow::Respond(reply) = flow else {
        panic!("expected 503, got {flow:?}")
    };
    assert_eq!(reply.status, 503);
    assert_eq!(s3.response.get(b"retry-after"), Some(&b"1"[..]));
    // The 503's own response phase holds nothing to give back.
    respond(&chain, ran, &mut s3);
    assert_eq!(counter.count(), 2);
    assert_eq!(f.rejected_total(), 1);

    // Path 1: the response phase (upstream response or local reply).
    respond(&chain, 1, &mut s1);
    assert_eq!(counter.count(), 1);
    // Path 2: no response phase (an error, a client gone): the next
    // request's clear() on that connection.
    s2.clear();
    assert_eq!(counter.count(), 0);
    // Path 3: the connection's state dropped mid-request.
    assert!(matches!(request(&chain, &mut s3).0, Flow::Continue));
    assert_eq!(counter.count(), 1);
    drop(s3);
    assert_eq!(counter.count(), 0);
    // Path 4: a filter after it answers locally; the response phase of the
    // chain runs for that reply and gives the slot back.
    let mut p = Vec::new();
    let answer: FilterFile = toml::from_str("type = \"direct_response\"\nstatus = 200").unwrap();
    let chain = [Filter::ConcurrencyLimit(f), answer.build(&mut p).unwrap()];
    let (flow, ran) = request(&chain, &mut s1);
    assert!(matches!(flow, Flow::Respond(_)));
    assert_eq!((ran, counter.count()), (2, 1));
    respond(&chain, ran, &mut s1);
    assert_eq!(counter.count(), 0);
    // A request that keeps its connection and comes back: still 0 after.
    assert!(matches!(request(&chain[..1], &mut s1).0, Flow::Continue));
    respond(&chain[..1], 1, &mut s1);
    s1.clear();
    assert_eq!(counter.count(), 0);
}

#[test]
fn the_count_is_kept_across_builds_of_the_route() {
    let a = build("conc-reload", 5);
    let b = build("conc-reload", 7);
    assert!(Arc::ptr_eq(&a.in_flight, &b.in_flight));
    let c = build("conc-other", 5);
    assert!(!Arc::ptr_eq(&a.in_flight, &c.in_flight));
    let mut p = Vec::new();
    let via_enum: FilterFile = toml::from_str("type = \"concurrency_limit\"\nmax = 3").unwrap();
    let Some(Filter::ConcurrencyLimit(d)) =
        via_enum.build_on_route("conc-reload", Path::new(""), &mut p)
    else {
        panic!("{p:?}")
    };
    assert!(Arc::ptr_eq(&a.in_flight, &d.in_flight));
}

#[test]
fn bad_values_are_reported_by_name() {
    let mut p = Vec::new();
    let f = ConcurrencyLimitFile {
        max: 0,
        retry_after: Some(0),
    };
    assert!(f.build("conc-bad", &mut p).is_none());
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["max", "retry_after"]);
    assert!(toml::from_str::<FilterFile>("type = \"concurrency_limit\"").is_err());
}

#[test]
fn many_threads_never_exceed_max() {
    let c = Arc::new(InFlight::default());
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (c, peak) = (Arc::clone(&c), Arc::clone(&peak));
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    if let Some(p) = Permit::acquire(&c, 3) {
                        peak.fetch_max(c.count(), std::sync::atomic::Ordering::Relaxed);
                        drop(p);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.count(), 0);
    // The count may read one over max for a moment (a refused request's
    // take-and-give-back), never more.
    assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 3 + 4);
}
