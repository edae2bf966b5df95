//! Durations, byte sizes and other "integer or string" values.
//!
//! The file layer ([`super::file`]) keeps these as written ([`DurationValue`],
//! [`SizeValue`], [`WorkersValue`]): the deserialiser accepts both integers and
//! strings so that a value with a wrong *form* (`timeout = 30`, `"10 seconds"`)
//! is reported by the build step — with every other problem, and a message
//! that shows the accepted forms — rather than as a terse serde type error.
//!
//! * Durations: a non-negative integer followed by a unit: `ms`, `s`, `m`, `h`
//!   (`"250ms"`, `"10s"`, `"5m"`, `"1h"`). A bare number is an error: the
//!   unit is required.
//! * Byte sizes: an integer number of bytes (`65536`) or an integer with a
//!   binary unit: `B`, `KiB`, `MiB`, `GiB` (`"512B"`, `"64KiB"`, `"16MiB"`,
//!   `"1GiB"`). Units are case-insensitive; a space between number and unit is
//!   allowed.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The accepted duration forms, for error messages.
pub const DURATION_FORMS: &str = "an integer with a unit: \"250ms\", \"10s\", \"5m\" or \"1h\"";

/// The accepted size forms, for error messages.
pub const SIZE_FORMS: &str =
    "an integer number of bytes or a string such as \"512B\", \"64KiB\", \"16MiB\" or \"1GiB\"";

/// Parse a duration such as `"250ms"`, `"10s"`, `"5m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected {DURATION_FORMS}");
    let (number, unit) = split_number(text.trim()).ok_or_else(bad)?;
    if unit.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: the unit is required, write e.g. \"{number}ms\" or \"{number}s\" ({DURATION_FORMS})"
        ));
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
    let ms = n
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("invalid duration {text:?}: number too large"))?;
    Ok(Duration::from_millis(ms))
}

/// Parse a byte size given as a string such as `"512B"`, `"64KiB"`,
/// `"16MiB"`, `"1GiB"` (or a plain digit string, meaning bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {text:?}: expected {SIZE_FORMS}");
    let (number, unit) = split_number(text.trim()).ok_or_else(bad)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" | "mb" | "gb" | "k" | "m" | "g" => {
            return Err(format!(
                "invalid size {text:?}: only binary units are accepted (B, KiB, MiB, GiB); expected {SIZE_FORMS}"
            ))
        }
        _ => return Err(bad()),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: number too large"))?;
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: number too large"))
}

/// Split `"64 KiB"` into `("64", "KiB")`; `None` when there is no leading
/// digit.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    Some((&text[..end], text[end..].trim_start()))
}

/// Format a byte count the way the config accepts it (`65536` → `"64KiB"`).
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{}", bytes >> shift, unit);
        }
    }
    format!("{bytes}B")
}

/// An integer or a string, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrText {
    Int(i64),
    Text(String),
}

impl fmt::Display for IntOrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrText::Int(n) => write!(f, "{n}"),
            IntOrText::Text(s) => write!(f, "{s:?}"),
        }
    }
}

struct IntOrTextVisitor(&'static str);

impl Visitor<'_> for IntOrTextVisitor {
    type Value = IntOrText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrText, E> {
        Ok(IntOrText::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrText, E> {
        i64::try_from(v)
            .map(IntOrText::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrText, E> {
        Ok(IntOrText::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<IntOrText, E> {
        Ok(IntOrText::Text(v))
    }
}

macro_rules! int_or_text_newtype {
    ($(#[$doc:meta])* $name:ident, $expecting:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub IntOrText);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(IntOrTextVisitor($expecting)).map($name)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(IntOrText::Text(s.to_owned()))
            }
        }

        impl From<i64> for $name {
            fn from(n: i64) -> Self {
                $name(IntOrText::Int(n))
            }
        }
    };
}

int_or_text_newtype!(
    /// A duration as written (`"10s"`); see [`DurationValue::parse`].
    DurationValue,
    "a duration string such as \"250ms\", \"10s\", \"5m\" or \"1h\""
);
int_or_text_newtype!(
    /// A byte size as written (`65536` or `"64KiB"`); see [`SizeValue::parse`].
    SizeValue,
    "a byte size: an integer or a string such as \"64KiB\""
);
int_or_text_newtype!(
    /// `workers`: an integer or `"auto"`.
    WorkersValue,
    "a positive integer or \"auto\""
);

impl DurationValue {
    pub fn parse(&self) -> Result<Duration, String> {
        match &self.0 {
            IntOrText::Text(s) => parse_duration(s),
            IntOrText::Int(n) => Err(format!(
                "a duration needs a unit: write \"{n}ms\" or \"{n}s\" ({DURATION_FORMS})"
            )),
        }
    }
}

impl SizeValue {
    pub fn parse(&self) -> Result<u64, String> {
        match &self.0 {
            IntOrText::Text(s) => parse_size(s),
            IntOrText::Int(n) => {
                u64::try_from(*n).map_err(|_| format!("invalid size {n}: must not be negative"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2 s"), Ok(Duration::from_secs(2)));
        for bad in [
            "",
            "s",
            "10",
            "10sec",
            "1.5s",
            "-1s",
            "10d",
            "99999999999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
        assert!(parse_duration("10").unwrap_err().contains("\"10s\""));
        assert!(parse_duration("x").unwrap_err().contains("\"250ms\""));
        let e = DurationValue::from(30).parse().unwrap_err();
        assert!(e.contains("needs a unit") && e.contains("\"30s\""), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64 kib"), Ok(64 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("64KB").unwrap_err().contains("binary units"));
        assert!(parse_size("lots").unwrap_err().contains("\"64KiB\""));
        assert!(parse_size("99999999999GiB")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(SizeValue::from(4096).parse(), Ok(4096));
        assert!(SizeValue::from(-1).parse().is_err());
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(1000), "1000B");
    }
}
