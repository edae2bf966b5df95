//! Parsing and printing of durations, sizes and core lists.

use std::time::Duration;

/// Parse a duration: `10s`, `500ms`, `250us`, `2m`, `1h`, `1.5s`, or a bare
/// number of seconds (`30`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "invalid duration '{text}' (expected e.g. 10s, 500ms, 2m)"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration '{text}' (expected e.g. 10s, 500ms, 2m)"))?;
    let seconds_per_unit = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit '{other}' in '{text}' (use ns, us, ms, s, m or h)"
            ))
        }
    };
    let secs = value * seconds_per_unit;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("duration '{text}' is too large"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse a byte size: `1024`, `4k`, `4KiB`, `1m`, `1MB`, `2g` (binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid size '{text}' (expected e.g. 512, 4k, 1m)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("invalid size unit '{other}' in '{text}'")),
    };
    value
        .checked_mul(mult)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// Parse a core list: `0,2,4-7`.
pub fn parse_cores(text: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid core list '{text}' (expected e.g. 0,2,4-7)");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cores.is_empty() {
        return Err(format!("empty core list '{text}'"));
    }
    Ok(cores)
}

/// A duration for humans: `812ns`, `35.20us`, `1.25ms`, `2.00s`.
pub fn format_duration(d: Duration) -> String {
    format_micros(d.as_secs_f64() * 1e6)
}

/// A latency given in microseconds, printed with an adaptive unit.
pub fn format_micros(us: f64) -> String {
    if us < 1.0 {
        format!("{:.0}ns", us * 1e3)
    } else if us < 1_000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// Bytes for humans, binary units like wrk: `512B`, `1.50KB`, `12.30MB`.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}{}", UNITS[0])
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e99").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert!(parse_size("x").is_err());
        assert!(parse_size("1q").is_err());
    }

    #[test]
    fn cores() {
        assert_eq!(parse_cores("0").unwrap(), vec![0]);
        assert_eq!(parse_cores("0,2,4-6").unwrap(), vec![0, 2, 4, 5, 6]);
        assert!(parse_cores("").is_err());
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("a").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_micros(0.5), "500ns");
        assert_eq!(format_micros(35.2), "35.20us");
        assert_eq!(format_micros(1250.0), "1.25ms");
        assert_eq!(format_micros(2_000_000.0), "2.00s");
        assert_eq!(format_bytes(512.0), "512B");
        assert_eq!(format_bytes(1536.0), "1.50KB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0), "3.00MB");
    }
}
