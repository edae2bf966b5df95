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
//!
//! # per-plan rates (issue #11): the plan comes from a variable, by
//! # default `$var.api_key_plan` (set by an `api_key` filter before this
//! # one); `rate` / `burst` above are the default plan, for requests whose
//! # variable is unset or names no plan
//! plan_from = "api_key_plan"
//! plans = { gold = { rate = "1000/s", burst = 100 }, free = { rate = "10/s" } }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::filter::{Limiter, RateLimitFilter};
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
    /// The variable naming the request's plan (default `api_key_plan`
    /// when `plans` is set).
    #[serde(default)]
    pub plan_from: Option<String>,
    /// Per-plan rates, by plan name.
    #[serde(default)]
    pub plans: Option<BTreeMap<String, PlanFile>>,
}

/// One plan of `plans`: `{ rate = "1000/s", burst = 100 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub rate: String,
    #[serde(default)]
    pub burst: Option<u32>,
}

/// The variable `plan_from` names when it is not given.
pub const DEFAULT_PLAN_FROM: &str = "api_key_plan";

/// Longest plan name (as `api_key` accepts).
pub const MAX_PLAN_NAME: usize = 256;

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

/// A name in a `RateLimit` field (a quoted string there): 1–`max`
/// printable ASCII characters without `"` or `\`.
fn check_name(name: &str, max: usize) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: 1–{max} printable ASCII characters without `\"` or `\\`"
        ))
    }
}

/// Check `rate` and `burst` (reported under `at` + `rate` / `burst`).
fn check_rate(rate: &str, burst: Option<u32>, at: &str, p: &mut Problems) -> Option<(Rate, u32)> {
    let rate = Rate::parse(rate)
        .map_err(|m| p.push((format!("{at}rate"), m)))
        .ok();
    let burst = burst.unwrap_or(rate.map_or(1, |r| r.count));
    if burst == 0 {
        p.push((format!("{at}burst"), "must be at least 1".into()));
        return None;
    }
    let rate = rate?;
    if let Some(r) = rate.interval_us().checked_mul(u64::from(burst)) {
        // The table keeps 44 bits of µs (~203 days); keep far inside.
        if r > 30 * 24 * 3600 * 1_000_000 {
            p.push((
                format!("{at}burst"),
                "burst × interval must stay under 30 days".into(),
            ));
            return None;
        }
    }
    Some((rate, burst))
}

/// A variable name as `plan_from` takes it: `NAME`, `var:NAME` or `$var.NAME`.
fn parse_var_name(text: &str) -> Result<&str, String> {
    let t = text.trim();
    let name = t
        .strip_prefix("var:")
        .or_else(|| t.strip_prefix("$var."))
        .unwrap_or(t);
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "{text:?}: not a variable name (letters, digits, `_`, `-`)"
        ))
    }
}

impl RateLimitFile {
    /// Check and compile; each plan's table (the default plan's too) comes
    /// from [`LIMITERS`] under the identity `route` + key + plan + rate +
    /// burst + size (the same table as the previous generation's when
    /// those are unchanged).
    pub fn build(&self, route: &str, p: &mut Problems) -> Option<RateLimitFilter> {
        let before = p.len();
        let default = check_rate(&self.rate, self.burst, "", p);
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
        if let Err(m) = check_name(policy, 64) {
            p.push(("policy".into(), m));
        }
        let mut plans = Vec::new();
        if let Some(table) = &self.plans {
            if table.is_empty() {
                p.push((
                    "plans".into(),
                    "needs at least one plan (or leave `plans` out)".into(),
                ));
            }
            for (name, plan) in table {
                let at = format!("plans.{name}");
                if let Err(m) = check_name(name, MAX_PLAN_NAME) {
                    p.push((at.clone(), m));
                }
                if let Some(rb) = check_rate(&plan.rate, plan.burst, &format!("{at}."), p) {
                    plans.push((name.as_str(), rb));
                }
            }
        }
        let plan_from = match (&self.plan_from, &self.plans) {
            (Some(v), Some(_)) => match parse_var_name(v) {
                Ok(n) => Some(n),
                Err(m) => {
                    p.push(("plan_from".into(), m));
                    None
                }
            },
            (Some(_), None) => {
                p.push(("plan_from".into(), "has no effect without `plans`".into()));
                None
            }
            (None, Some(_)) => Some(DEFAULT_PLAN_FROM),
            (None, None) => None,
        };
        if p.len() != before {
            return None;
        }
        let (rate, burst) = default?;
        let key = KeySpec {
            parts: parts.into(),
        };
        let size = size.next_power_of_two();
        let limiter = |plan: Option<&str>, rate: Rate, burst: u32| {
            let gcra = Gcra::new(rate.interval_us(), burst);
            // Plan names are printable ASCII: no `\n`, so no clash between
            // the default plan and one named "default".
            let plan_id = plan.map_or(String::new(), |n| format!("plan={n}\n"));
            let identity = format!(
                "{route}\n{}\n{plan_id}{}\n{burst}\n{size}",
                key.canonical(),
                rate.canonical()
            );
            let table = LIMITERS.get_or_insert(identity, || Table::new(size, gcra));
            let name = plan.unwrap_or(policy);
            Limiter {
                table,
                policy_name: name.into(),
                policy_field: format!("\"{name}\";q={};w={}", rate.count, rate.period_s)
                    .into_bytes()
                    .into(),
                rate,
                burst,
            }
        };
        let default = limiter(None, rate, burst);
        // `plans` is a BTreeMap: sorted by name, for a binary search.
        let plans: Vec<(Box<[u8]>, Limiter)> = plans
            .into_iter()
            .map(|(name, (rate, burst))| (name.as_bytes().into(), limiter(Some(name), rate, burst)))
            .collect();
        Some(RateLimitFilter {
            key,
            default,
            plan_from: plan_from.map(Into::into),
            plans: plans.into(),
        })
    }
}
