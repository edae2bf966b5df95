//! The `log` stage: runs once per request, whatever the outcome.
//!
//! Today a `tracing` event at debug level (errors at info); the buffered
//! access log and the per-core stats hook in here.

use std::time::Duration;

use super::forward::Exchange;
use crate::error::ProxyError;

pub fn log_request(
    worker: usize,
    route: Option<&str>,
    ex: &Exchange,
    error: Option<&ProxyError>,
    elapsed: Duration,
) {
    match error {
        None => tracing::debug!(
            worker,
            route = route.unwrap_or("-"),
            status = ex.status,
            bytes_in = ex.bytes_in,
            bytes_out = ex.bytes_out,
            endpoint = ex.endpoint.map(|e| e as i64).unwrap_or(-1),
            reused = ex.reused_connection,
            us = elapsed.as_micros() as u64,
            "request"
        ),
        Some(e) => tracing::info!(
            worker,
            route = route.unwrap_or("-"),
            status = ex.status,
            error = %e,
            us = elapsed.as_micros() as u64,
            "request failed"
        ),
    }
}
