//! A listener's HTTP/2 settings (`protocols`, `[listener.http2]`).

use crate::config::Limits;

/// The protocols a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    pub http1: bool,
    pub h2: bool,
}

impl Default for Protocols {
    fn default() -> Self {
        Protocols {
            http1: true,
            h2: false,
        }
    }
}

impl Protocols {
    /// The ALPN list a TLS listener offers, in preference order.
    pub fn alpn(self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        if self.h2 {
            v.push(b"h2".to_vec());
        }
        if self.http1 {
            v.push(b"http/1.1".to_vec());
        }
        v
    }

    /// As written in the config (`/config`).
    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.http1 {
            v.push("http/1.1");
        }
        if self.h2 {
            v.push("h2");
        }
        v
    }
}

/// Limits of an HTTP/2 connection (advertised in SETTINGS and enforced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a stream may send
    /// ahead of the proxy reading them.
    pub initial_stream_window: u32,
    /// The connection's receive window (all streams together).
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            max_concurrent_streams: 128,
            initial_stream_window: 256 * 1024,
            connection_window: 1024 * 1024,
            max_frame_size: 16 * 1024,
        }
    }
}

impl Http2Settings {
    /// The h2 server builder with these settings; the header list limit is
    /// the listener's `limits.max_head_bytes`, as for HTTP/1.1 heads.
    pub fn builder(&self, limits: &Limits) -> h2::server::Builder {
        let mut b = h2::server::Builder::new();
        b.max_concurrent_streams(self.max_concurrent_streams)
            .initial_window_size(self.initial_stream_window)
            .initial_connection_window_size(self.connection_window)
            .max_frame_size(self.max_frame_size)
            .max_header_list_size(limits.max_head_bytes.min(u32::MAX as usize) as u32);
        b
    }
}
