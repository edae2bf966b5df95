//! Small statistics over repetitions: median, min–max spread, ratios.

use serde::Serialize;

/// Median of the values (mean of the middle two for an even count); `None`
/// when empty. NaNs are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Smallest and largest value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut it = values.iter().copied().filter(|x| !x.is_nan());
        let first = it.next()?;
        let (min, max) = it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x)));
        Some(Spread { min, max })
    }
}

/// Median and spread of one metric over repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Summary> {
        let m = median(values)?;
        let s = Spread::of(values)?;
        Some(Summary {
            median: m,
            min: s.min,
            max: s.max,
            n: values.iter().filter(|x| !x.is_nan()).count(),
        })
    }
}

/// `a / b`, `None` when either is missing or `b` is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}

/// Round to `digits` decimals (for JSON that people read).
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0, 1.0]), Some(3.0));
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn spreads() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[10.0, 8.0, 12.0]).unwrap();
        assert_eq!((s.min, s.max), (8.0, 12.0));
        let one = Spread::of(&[7.0]).unwrap();
        assert_eq!((one.min, one.max), (7.0, 7.0));
    }

    #[test]
    fn summaries() {
        let s = Summary::of(&[100.0, 300.0, 200.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (200.0, 100.0, 300.0, 3));
        assert_eq!(Summary::of(&[f64::NAN, 1.0, 3.0]).unwrap().n, 2);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(Some(30.0), Some(20.0)), Some(1.5));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(ratio(Some(1.0), None), None);
        assert_eq!(ratio(Some(f64::INFINITY), Some(1.0)), None);
    }

    #[test]
    fn rounding() {
        assert_eq!(round(1.23456, 2), 1.23);
        assert_eq!(round(1.235001, 2), 1.24);
        assert_eq!(round(12345.678, 0), 12346.0);
    }
}
