//! `type = "rate_limit"`: the file form and its validation.
//!
//! ```toml
//! [[route.filters]]
//! type = "rate_limit"
//! rate = "100/s"                            # or "600/m", "10/h"
//! burst = 20                                # default: the rate's count
//! key = ["client_ip/24", "header:x-tenant"] # default: "client_ip"
//! table_size = 65536                        # slots (keys tracked at once)
//! policy = "default"                        # name in the RateLimit fields
//! ```

use serde::Deserialize;

use super::filter::RateLimitFilter;
use super::key::{KeyPart, KeySpec};
use super::registry::Registry;
use super::table::{Gcra, Table};
use crate::pipeline::filters::Problems;

/// Default `table_size`.
pub const DEFAULT_TABLE_SIZE: usize = 65_536;
/// Largest `table_size` (128 MiB of slots).
pub const MAX_TABLE_SIZE: usize = 1 << 24;

/// Tables of the limiters of the live generations, by identity.
pub static LIMITERS: Registry<Table> = Registry::new();

/// `key`: one part or a list of parts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, expecting = "a key part or a list of key parts")]
pub enum KeyFile {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub rate: String,
    #[serde(default)]
    pub burst: Option<u32>,
    #[serde(default)]
    pub key: Option<KeyFile>,
    #[serde(default)]
    pub table_size: Option<usize>,
    #[serde(default)]
    pub policy: Option<String>,
}

/// A parsed `rate`: `count` requests per `period_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period_s: u32,
}

impl Rate {
    /// `"100/s"`, `"600/m"`, `"10/h"` (also `second`, `minute`, `hour`).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let hint = "expected COUNT/UNIT such as \"100/s\", \"600/m\" or \"10/h\"";
        let (count, unit) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: {hint}"))?;
        let period_s = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(format!("{text:?}: unknown unit {unit:?}: {hint}")),
        };
        let count: u32 = match count.trim().parse() {
            Ok(n) if n >= 1 && !count.trim().starts_with('+') => n,
            _ => {
                return Err(format!(
                    "{text:?}: the count must be a whole number ≥ 1: {hint}"
                ))
            }
        };
        if u64::from(count) > u64::from(period_s) * 1_000_000 {
            return Err(format!(
                "{text:?}: at most one request per microsecond per key"
            ));
        }
        Ok(Rate { count, period_s })
    }

    /// The GCRA emission interval in µs (rounded to the nearest).
    pub fn interval_us(&self) -> u64 {
        let period = u64::from(self.period_s) * 1_000_000;
        let n = u64::from(self.count);
        ((period + n / 2) / n).max(1)
    }

    pub fn canonical(&self) -> String {
        let unit = match self.period_s {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        format!("{}/{unit}", self.count)
    }
}

impl RateLimitFile {
    /// Check and compile; the table comes from [`LIMITERS`] under the
    /// identity `route` + key + rate + burst + size (the same table as the
    /// previous generation's when those are unchanged).
    pub fn build(&self, route: &str, p: &mut Problems) -> Option<RateLimitFilter> {
        let before = p.len();
        let rate = Rate::parse(&self.rate)
            .map_err(|m| p.push(("rate".into(), m)))
            .ok();
        let burst = self.burst.unwrap_or(rate.map_or(1, |r| r.count));
        if burst == 0 {
            p.push(("burst".into(), "must be at least 1".into()));
        }
        let texts: Vec<&str> = match &self.key {
            None => vec!["client_ip"],
            Some(KeyFile::One(k)) => vec![k.as_str()],
            Some(KeyFile::Many(ks)) => ks.iter().map(String::as_str).collect(),
        };
        if texts.is_empty() {
            p.push((
                "key".into(),
                "needs at least one part (e.g. \"client_ip\")".into(),
            ));
        }
        let mut parts = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            match KeyPart::parse(t) {
                Ok(k) => parts.push(k),
                Err(m) => {
                    let at = match &self.key {
                        Some(KeyFile::Many(_)) => format!("key[{i}]"),
                        _ => "key".into(),
                    };
                    p.push((at, m));
                }
            }
        }
        let size = self.table_size.unwrap_or(DEFAULT_TABLE_SIZE);
        if !(64..=MAX_TABLE_SIZE).contains(&size) {
            p.push((
                "table_size".into(),
                format!("must be 64..={MAX_TABLE_SIZE} (found {size})"),
            ));
        }
        let policy = self.policy.as_deref().unwrap_or("default");
        let policy_ok = !policy.is_empty()
            && policy.len() <= 64
            && policy
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if !policy_ok {
            p.push((
                "policy".into(),
                format!("{policy:?}: 1–64 printable ASCII characters without `\"` or `\\`"),
            ));
        }
        let rate = rate?;
        if let Some(r) = rate.interval_us().checked_mul(u64::from(burst)) {
            // The table keeps 44 bits of µs (~203 days); keep far inside.
            if r > 30 * 24 * 3600 * 1_000_000 {
                p.push((
                    "burst".into(),
                    "burst × interval must stay under 30 days".into(),
                ));
            }
        }
        if p.len() != before {
            return None;
        }
        let key = KeySpec {
            parts: parts.into(),
        };
        let size = size.next_power_of_two();
        let gcra = Gcra::new(rate.interval_us(), burst);
        let identity = format!(
            "{route}\n{}\n{}\n{burst}\n{size}",
            key.canonical(),
            rate.canonical()
        );
        let table = LIMITERS.get_or_insert(identity, || Table::new(size, gcra));
        Some(RateLimitFilter {
            key,
            table,
            policy_name: policy.into(),
            policy_field: format!("\"{policy}\";q={};w={}", rate.count, rate.period_s)
                .into_bytes()
                .into(),
            rate,
            burst,
        })
    }
}
