//! `type = "compress"`: the file form and its validation.
//!
//! ```toml
//! [[route.filters]]
//! type = "compress"
//! algorithms = ["br", "gzip"]   # server preference on equal client weights
//! gzip_level = 6                 # 1-9
//! brotli_quality = 4             # 0-11
//! brotli_window = 18             # 10-22: 2^N bytes of history
//! min_size = "1KiB"              # smaller Content-Length: sent as it is
//! content_types = ["text/html", "+json", "text/*"]
//! ```
//!
//! Every key is optional; the defaults are the values above, and
//! `content_types` defaults to [`super::types::DEFAULT_TYPES`].

use serde::Deserialize;

use super::filter::CompressFilter;
use super::types::TypeList;
use super::Codec;
use crate::config::units::SizeValue;
use crate::pipeline::filters::Problems;

pub const DEFAULT_GZIP_LEVEL: u8 = 6;
pub const DEFAULT_BROTLI_QUALITY: u8 = 4;
pub const DEFAULT_BROTLI_WINDOW: u8 = 18;
pub const DEFAULT_MIN_SIZE: u64 = 1024;
/// Compressors alive at once per worker (memory: 0.3 – 2 MiB each).
pub const DEFAULT_MAX_STREAMS: usize = 128;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressFile {
    /// `"br"`, `"gzip"`, in server preference order. Default `["br", "gzip"]`.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub gzip_level: Option<i64>,
    #[serde(default)]
    pub brotli_quality: Option<i64>,
    #[serde(default)]
    pub brotli_window: Option<i64>,
    #[serde(default)]
    pub min_size: Option<SizeValue>,
    #[serde(default)]
    pub content_types: Option<Vec<String>>,
    /// Responses compressed at once per worker; past it, identity (with
    /// `Vary`). Default 128.
    #[serde(default)]
    pub max_streams_per_worker: Option<i64>,
}

impl CompressFile {
    pub fn build(&self, p: &mut Problems) -> Option<CompressFilter> {
        let before = p.len();
        let algorithms = match &self.algorithms {
            None => vec![Codec::Brotli, Codec::Gzip],
            Some(list) => {
                if list.is_empty() {
                    p.push((
                        "algorithms".into(),
                        "must list at least one of \"br\", \"gzip\"".into(),
                    ));
                }
                let mut out = Vec::new();
                for (i, name) in list.iter().enumerate() {
                    let codec = match name.to_ascii_lowercase().as_str() {
                        "gzip" => Codec::Gzip,
                        "br" | "brotli" => Codec::Brotli,
                        _ => {
                            p.push((
                                format!("algorithms[{i}]"),
                                format!("unknown algorithm {name:?}: expected \"br\" or \"gzip\""),
                            ));
                            continue;
                        }
                    };
                    if out.contains(&codec) {
                        p.push((
                            format!("algorithms[{i}]"),
                            format!("{name:?} is listed twice"),
                        ));
                    }
                    out.push(codec);
                }
                out
            }
        };
        let gzip_level = int_in(p, "gzip_level", self.gzip_level, DEFAULT_GZIP_LEVEL, 1, 9);
        let brotli_quality = int_in(
            p,
            "brotli_quality",
            self.brotli_quality,
            DEFAULT_BROTLI_QUALITY,
            0,
            11,
        );
        let brotli_window = int_in(
            p,
            "brotli_window",
            self.brotli_window,
            DEFAULT_BROTLI_WINDOW,
            10,
            22,
        );
        let min_size = match &self.min_size {
            None => DEFAULT_MIN_SIZE,
            Some(v) => v.parse().unwrap_or_else(|m| {
                p.push(("min_size".into(), m));
                0
            }),
        };
        let types = match &self.content_types {
            None => TypeList::default_list(),
            Some(list) if list.is_empty() => {
                p.push((
                    "content_types".into(),
                    "must list at least one media type (or leave the key out for the default list)"
                        .into(),
                ));
                TypeList::default_list()
            }
            Some(list) => TypeList::parse(list).unwrap_or_else(|(i, m)| {
                p.push((format!("content_types[{i}]"), m));
                TypeList::default_list()
            }),
        };
        let max_streams = match self.max_streams_per_worker {
            None => DEFAULT_MAX_STREAMS,
            Some(n) if (1..=65_536).contains(&n) => n as usize,
            Some(n) => {
                p.push((
                    "max_streams_per_worker".into(),
                    format!("{n} is out of range: 1 to 65536"),
                ));
                DEFAULT_MAX_STREAMS
            }
        };
        (p.len() == before).then(|| CompressFilter {
            max_streams,
            algorithms: algorithms.into(),
            gzip_level,
            brotli_quality,
            brotli_window,
            min_size,
            types,
        })
    }
}

/// An integer key in `min..=max` (default when absent).
fn int_in(p: &mut Problems, key: &str, value: Option<i64>, default: u8, min: u8, max: u8) -> u8 {
    match value {
        None => default,
        Some(v) if (i64::from(min)..=i64::from(max)).contains(&v) => v as u8,
        Some(v) => {
            p.push((key.into(), format!("{v} is out of range: {min} to {max}")));
            default
        }
    }
}
