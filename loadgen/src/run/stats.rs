//! What one worker measured: latency histogram, status counts, errors by
//! kind, bytes. Each worker owns one (no locks); `Totals::merge` adds them
//! up at the end.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histograms track (longer ones are clamped).
const MAX_LATENCY_US: u64 = 3_600 * 1_000_000;

/// Latency histograms count microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Kinds of failed requests, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// TCP connect failed (refused, unreachable, connect timeout).
    Connect,
    /// No complete response within --timeout.
    Timeout,
    /// The peer reset the connection.
    Reset,
    /// The peer closed the connection before sending a response.
    Closed,
    /// A response that could not be parsed or framed (truncated included).
    Malformed,
    /// TLS handshake or record failure.
    Tls,
    /// Any other socket error.
    Io,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Malformed,
        ErrorKind::Tls,
        ErrorKind::Io,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Tls => "tls",
            ErrorKind::Io => "io",
        }
    }

    /// Classify a socket error.
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
            K::TimedOut => ErrorKind::Timeout,
            K::UnexpectedEof => ErrorKind::Closed,
            K::InvalidData => ErrorKind::Tls,
            _ => ErrorKind::Io,
        }
    }
}

/// Status codes are three digits; index by code.
const STATUS_SLOTS: usize = 1000;

/// One worker's counters.
#[derive(Debug, Clone)]
pub struct WorkerStats {
    pub latency: Histogram<u64>,
    /// Responses by status code.
    pub status: Box<[u64; STATUS_SLOTS]>,
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Complete responses.
    pub responses: u64,
    /// Bytes read from the sockets while measuring.
    pub bytes: u64,
    /// Connections opened (including reconnects).
    pub connects: u64,
    /// TLS connections whose handshake resumed an earlier session.
    pub tls_resumed: u64,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            latency: new_histogram(),
            status: Box::new([0; STATUS_SLOTS]),
            errors: [0; ErrorKind::ALL.len()],
            responses: 0,
            bytes: 0,
            connects: 0,
            tls_resumed: 0,
        }
    }
}

impl WorkerStats {
    #[inline]
    pub fn record_response(&mut self, status: u16, latency: Duration) {
        self.responses += 1;
        self.status[status as usize % STATUS_SLOTS] += 1;
        self.latency
            .saturating_record((latency.as_nanos() as u64 / 1_000).max(1));
    }

    /// A connection opened (`resumed`: its TLS handshake resumed a session).
    #[inline]
    pub fn record_connect(&mut self, resumed: bool) {
        self.connects += 1;
        self.tls_resumed += resumed as u64;
    }

    #[inline]
    pub fn record_error(&mut self, kind: ErrorKind) {
        self.errors[kind as usize] += 1;
    }

    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Add `other` into `self`.
    pub fn merge(&mut self, other: &WorkerStats) {
        self.latency
            .add(&other.latency)
            .expect("histograms with equal bounds merge");
        for (a, b) in self.status.iter_mut().zip(other.status.iter()) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors.iter()) {
            *a += b;
        }
        self.responses += other.responses;
        self.bytes += other.bytes;
        self.connects += other.connects;
        self.tls_resumed += other.tls_resumed;
    }

    /// `(code, count)` for every code seen, ascending.
    pub fn status_counts(&self) -> Vec<(u16, u64)> {
        self.status
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(code, &n)| (code as u16, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_everything() {
        let mut a = WorkerStats::default();
        a.record_response(200, Duration::from_micros(100));
        a.record_error(ErrorKind::Timeout);
        a.bytes = 10;
        let mut b = WorkerStats::default();
        b.record_response(200, Duration::from_micros(300));
        b.record_response(503, Duration::from_millis(2));
        b.record_error(ErrorKind::Timeout);
        b.record_error(ErrorKind::Reset);
        b.bytes = 5;
        a.merge(&b);
        assert_eq!(a.responses, 3);
        assert_eq!(a.status_counts(), vec![(200, 2), (503, 1)]);
        assert_eq!(a.errors[ErrorKind::Timeout as usize], 2);
        assert_eq!(a.errors[ErrorKind::Reset as usize], 1);
        assert_eq!(a.error_total(), 3);
        assert_eq!(a.bytes, 15);
        assert_eq!(a.latency.len(), 3);
        assert!(a.latency.max() >= 1990 && a.latency.max() <= 2010);
    }

    #[test]
    fn kinds_have_distinct_names() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn io_errors_are_classified() {
        use std::io::{Error, ErrorKind as K};
        assert_eq!(
            ErrorKind::of_io(&Error::from(K::ConnectionReset)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of_io(&Error::from(K::BrokenPipe)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of_io(&Error::from(K::UnexpectedEof)),
            ErrorKind::Closed
        );
        assert_eq!(ErrorKind::of_io(&Error::from(K::Other)), ErrorKind::Io);
    }
}
