//! The dates of `deprecated`: RFC 3339 text → unix seconds, and unix
//! seconds → IMF-fixdate (the HTTP-date of `Sunset`).

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's
/// days_from_civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01 (civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn num(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `2027-06-30T00:00:00Z` (or with a `±HH:MM` offset, fractional seconds
/// dropped), or a plain date `2027-06-30` (midnight UTC) → unix seconds.
/// Dates before 1970 are refused.
pub(super) fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad =
        || format!("expected an RFC 3339 date such as \"2027-06-30T00:00:00Z\" (found {text:?})");
    let t = text.trim();
    let (date, time) = match t.split_once(['T', 't']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let mut dp = date.split('-');
    let (y, m, d) = match (dp.next(), dp.next(), dp.next(), dp.next()) {
        (Some(y), Some(m), Some(d), None) if y.len() == 4 && m.len() == 2 && d.len() == 2 => (
            num(y).ok_or_else(bad)?,
            num(m).ok_or_else(bad)?,
            num(d).ok_or_else(bad)?,
        ),
        _ => return Err(bad()),
    };
    let month_days = [
        31,
        28 + u32::from(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[(m - 1) as usize] {
        return Err(bad());
    }
    let mut secs = days_from_civil(i64::from(y), m, d) * 86_400;
    if let Some(time) = time {
        let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
            (c, 0i64)
        } else {
            let i = time.rfind(['+', '-']).ok_or_else(bad)?;
            let (c, off) = time.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':').ok_or_else(bad)?;
            let (oh, om) = (num(oh).ok_or_else(bad)?, num(om).ok_or_else(bad)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            (c, sign * i64::from(oh * 3600 + om * 60))
        };
        let clock = clock.split_once('.').map_or(clock, |(c, _)| c);
        let mut cp = clock.split(':');
        let (h, mi, s) = match (cp.next(), cp.next(), cp.next(), cp.next()) {
            (Some(h), Some(mi), Some(s), None) if h.len() == 2 && mi.len() == 2 && s.len() == 2 => {
                (
                    num(h).ok_or_else(bad)?,
                    num(mi).ok_or_else(bad)?,
                    num(s).ok_or_else(bad)?,
                )
            }
            _ => return Err(bad()),
        };
        if h > 23 || mi > 59 || s > 60 {
            return Err(bad());
        }
        secs += i64::from(h * 3600 + mi * 60 + s.min(59)) - offset;
    }
    u64::try_from(secs).map_err(|_| format!("must not be before 1970 (found {text:?})"))
}

/// Unix seconds → `Wed, 30 Jun 2027 00:00:00 GMT`.
pub(super) fn http_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
