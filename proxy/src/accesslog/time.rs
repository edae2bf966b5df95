//! Wall-clock timestamps for log lines, formatted without allocation; the
//! date part is cached per second.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct ClockCache {
    second: u64,
    /// `YYYY-MM-DDTHH:MM:SS`
    iso: [u8; 19],
    /// `DD/Mon/YYYY:HH:MM:SS +0000`
    clf: [u8; 26],
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31) (Howard Hinnant's
/// civil_from_days).
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

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

impl ClockCache {
    fn refresh(&mut self, second: u64) {
        if second == self.second && self.iso[0] != 0 {
            return;
        }
        self.second = second;
        let days = (second / 86_400) as i64;
        let rem = (second % 86_400) as u32;
        let (y, m, d) = civil(days);
        let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
        let year = format!("{y:04}");
        let year = year.as_bytes();
        // ISO 8601
        self.iso[..4].copy_from_slice(&year[..4]);
        self.iso[4] = b'-';
        put2(&mut self.iso[5..], m);
        self.iso[7] = b'-';
        put2(&mut self.iso[8..], d);
        self.iso[10] = b'T';
        put2(&mut self.iso[11..], hh);
        self.iso[13] = b':';
        put2(&mut self.iso[14..], mm);
        self.iso[16] = b':';
        put2(&mut self.iso[17..], ss);
        // Common log format
        put2(&mut self.clf[0..], d);
        self.clf[2] = b'/';
        self.clf[3..6].copy_from_slice(MONTHS[(m - 1) as usize]);
        self.clf[6] = b'/';
        self.clf[7..11].copy_from_slice(&year[..4]);
        self.clf[11] = b':';
        put2(&mut self.clf[12..], hh);
        self.clf[14] = b':';
        put2(&mut self.clf[15..], mm);
        self.clf[17] = b':';
        put2(&mut self.clf[18..], ss);
        self.clf[20..].copy_from_slice(b" +0000");
    }

    /// `2026-11-27T20:15:48.823Z` (UTC, milliseconds).
    pub fn write_iso(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.refresh(d.as_secs());
        out.extend_from_slice(&self.iso);
        let ms = d.subsec_millis();
        out.extend_from_slice(&[
            b'.',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b'Z',
        ]);
    }

    /// `27/Nov/2026:20:15:48 +0000`.
    pub fn write_clf(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.refresh(d.as_secs());
        out.extend_from_slice(&self.clf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let mut c = ClockCache::default();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_810_548_823); // 2026-11-27T20:15:48.823Z
        let mut out = Vec::new();
        c.write_iso(&mut out, t);
        assert_eq!(out, b"2026-11-27T20:15:48.823Z");
        out.clear();
        c.write_clf(&mut out, t);
        assert_eq!(out, b"27/Nov/2026:20:15:48 +0000");
        out.clear();
        c.write_iso(&mut out, UNIX_EPOCH + Duration::from_secs(951_782_400)); // 2000-02-29
        assert_eq!(&out[..10], b"2000-02-29");
    }
}
