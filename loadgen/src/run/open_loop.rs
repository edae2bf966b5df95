//! Open loop (`--rate`): connection `j` of `c` sends its `i`-th request at
//! `start + (i + j / c) * c / rate`, whatever the server is doing, and each
//! latency runs from that *intended* time (the wrk2 correction for
//! coordinated omission). When the server stalls, the requests that should
//! have gone out meanwhile are sent late and their latency includes the
//! wait, so the stall shows in the percentiles.
//!
//! One task per connection: it writes every due request (up to
//! `--pipeline` in flight) in one write, otherwise reads the next response,
//! otherwise sleeps until the next send time. HTTP/1.1 answers in order,
//! so a request sent while waiting for an earlier response could not be
//! answered sooner anyway.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::client::Conn;
use super::stats::ErrorKind;
use super::worker::Ctx;

/// Timer granularity: a request due within this is sent now (its latency
/// then runs from the actual send, which is earlier than intended).
const SLACK: Duration = Duration::from_millis(1);

/// A request in flight.
#[derive(Clone, Copy)]
struct InFlight {
    /// Latency is measured from here: min(intended, sent).
    from: Instant,
    /// Intended after the warm-up.
    measured: bool,
}

pub async fn run_connection(ctx: &Ctx, index: usize) {
    let cfg = &ctx.plan.cfg;
    let Some(rate) = cfg.rate else { return };
    let Some(deadline) = ctx.deadline else { return };
    let connections = cfg.connections as f64;
    let interval = Duration::from_secs_f64(connections / rate);
    let mut next = ctx.start + interval.mul_f64(index as f64 / connections);
    let pipeline = cfg.pipeline;
    let timeout = cfg.timeout;
    let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(pipeline);
    let mut conn: Option<Conn> = None;

    loop {
        let now = Instant::now();
        if inflight.len() < pipeline && next < deadline && next <= now + SLACK {
            let Some(c) = conn.as_mut() else {
                match ctx.connector.connect().await {
                    Ok(c) => {
                        ctx.stats.borrow_mut().record_connect(c.resumed);
                        conn = Some(c);
                    }
                    Err(kind) => {
                        // The due request fails; the next one tries again.
                        if next >= ctx.measure_start {
                            ctx.record_errors(kind, 1);
                        }
                        next += interval;
                    }
                }
                continue;
            };
            let mut count = 0;
            while inflight.len() < pipeline && next < deadline && next <= now + SLACK {
                inflight.push_back(InFlight {
                    from: next.min(now),
                    measured: next >= ctx.measure_start,
                });
                next += interval;
                count += 1;
            }
            let sent =
                monoio::time::timeout(timeout, c.send(&ctx.requests, count * ctx.request_len))
                    .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(kind)) => fail_all(ctx, &mut inflight, kind, &mut conn),
                Err(_) => fail_all(ctx, &mut inflight, ErrorKind::Timeout, &mut conn),
            }
            continue;
        }
        if inflight.is_empty() {
            if next >= deadline {
                break;
            }
            let wake = next.checked_sub(SLACK).unwrap_or(next);
            if wake > now {
                monoio::time::sleep(wake - now).await;
            }
            continue;
        }
        let Some(c) = conn.as_mut() else {
            // Unreachable: requests are only in flight on a connection.
            inflight.clear();
            continue;
        };
        let read = monoio::time::timeout(timeout, c.read_response(ctx.head)).await;
        let bytes = c.take_bytes();
        if Instant::now() >= ctx.measure_start {
            ctx.add_bytes(bytes);
        }
        match read {
            Ok(Ok(r)) => {
                let req = inflight.pop_front().expect("a request is in flight");
                if req.measured {
                    ctx.record_response(r.status, req.from.elapsed());
                }
                if !r.keep_alive || !cfg.keepalive {
                    fail_all(ctx, &mut inflight, ErrorKind::Closed, &mut conn);
                }
            }
            Ok(Err(kind)) => fail_all(ctx, &mut inflight, kind, &mut conn),
            Err(_) => fail_all(ctx, &mut inflight, ErrorKind::Timeout, &mut conn),
        }
    }
}

/// The connection is gone: every request still in flight failed.
fn fail_all(
    ctx: &Ctx,
    inflight: &mut VecDeque<InFlight>,
    kind: ErrorKind,
    conn: &mut Option<Conn>,
) {
    let measured = inflight.iter().filter(|r| r.measured).count();
    ctx.record_errors(kind, measured);
    inflight.clear();
    *conn = None;
}
