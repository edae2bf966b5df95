//! Closed loop: each connection sends `--pipeline` requests in one write,
//! reads their responses, and sends again at once. Latency runs from the
//! write to each response. A server stall holds the connection back, so
//! the stall is measured once per connection, not per request it delayed
//! (coordinated omission; use `--rate` for the open loop).

use std::time::{Duration, Instant};

use super::client::Conn;
use super::stats::ErrorKind;
use super::worker::Ctx;

/// Pause after a failed connect in a timed run, so a dead target is not
/// hammered in a tight loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

pub async fn run_connection(ctx: &Ctx) {
    let pipeline = ctx.plan.cfg.pipeline;
    let keepalive = ctx.plan.cfg.keepalive;
    let mut conn: Option<Conn> = None;
    loop {
        let measuring = Instant::now() >= ctx.measure_start;
        let k = if measuring {
            ctx.claim(pipeline)
        } else {
            pipeline
        };
        if k == 0 {
            break;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match ctx.connector.connect().await {
                Ok(c) => {
                    ctx.stats.borrow_mut().record_connect(c.resumed);
                    conn.insert(c)
                }
                Err(kind) => {
                    if measuring {
                        ctx.record_errors(kind, k);
                    }
                    if !ctx.counted() {
                        monoio::time::sleep(CONNECT_BACKOFF).await;
                    }
                    continue;
                }
            },
        };
        let mut done = 0;
        let sent = Instant::now();
        let outcome = monoio::time::timeout(
            ctx.plan.cfg.timeout,
            exchange(ctx, c, k, sent, measuring, &mut done),
        )
        .await;
        let bytes = c.take_bytes();
        if measuring {
            ctx.add_bytes(bytes);
        }
        let keep = match outcome {
            Ok(Ok(keep_alive)) => keep_alive && keepalive,
            Ok(Err(kind)) => {
                if measuring {
                    ctx.record_errors(kind, k - done);
                }
                false
            }
            Err(_) => {
                if measuring {
                    ctx.record_errors(ErrorKind::Timeout, k - done);
                }
                false
            }
        };
        if !keep {
            conn = None;
        }
    }
}

/// Send `k` requests and read their responses. `done` counts the
/// responses recorded so far (it survives a timeout).
async fn exchange(
    ctx: &Ctx,
    c: &mut Conn,
    k: usize,
    sent: Instant,
    measuring: bool,
    done: &mut usize,
) -> Result<bool, ErrorKind> {
    c.send(&ctx.requests, k * ctx.request_len).await?;
    while *done < k {
        let r = c.read_response(ctx.head).await?;
        *done += 1;
        if measuring {
            ctx.record_response(r.status, sent.elapsed());
        }
        if !r.keep_alive {
            // Requests pipelined behind a closing response are lost.
            return if *done < k {
                Err(ErrorKind::Closed)
            } else {
                Ok(false)
            };
        }
    }
    Ok(true)
}
