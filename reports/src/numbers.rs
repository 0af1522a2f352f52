//! Number formatting for the compare reports, in one place so that a figure
//! reads the same in every format and every sentence. Anything that is not
//! a finite number renders as [`MISSING`], never as `NaN` or `inf`.

use crate::compare::{Estimate, Percentiles};

/// Stands in for a figure that does not exist: no data, or not finite.
pub const MISSING: &str = "–";

/// Digits grouped in threes with commas: `1234567` → `1,234,567`.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    let first = digits.len() % 3;
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 3 == first {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count, with grouped thousands.
pub fn count(n: u64) -> String {
    group(&n.to_string())
}

/// `x` with a fixed number of decimals and grouped thousands.
pub fn fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return MISSING.to_string();
    }
    let digits = format!("{:.*}", decimals, x.abs());
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits.as_str(), None),
    };
    // A negative number that rounds to zero would otherwise print as "-0".
    let rounds_to_zero = digits.chars().all(|c| c == '0' || c == '.');
    let sign = if x < 0.0 && !rounds_to_zero { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{}.{f}", group(int)),
        None => format!("{sign}{}", group(int)),
    }
}

/// A measured quantity with as many decimals as its size deserves: three
/// significant-ish figures for small values, none for large ones.
pub fn num(x: f64) -> String {
    let a = x.abs();
    let decimals = if a == 0.0 || a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    fixed(x, decimals)
}

/// A change, with its sign always shown: `+12.5`, `-3.00`, `0`.
pub fn signed(x: f64) -> String {
    if x > 0.0 && x.is_finite() {
        format!("+{}", num(x))
    } else {
        num(x)
    }
}

/// A 0..1 share as a percentage. Values near the ends get two decimals, so
/// that 99.96 % does not read as 100.0 % nor 0.04 % as 0.0 %.
pub fn pct(share: f64) -> String {
    let v = share * 100.0;
    if !v.is_finite() {
        return MISSING.to_string();
    }
    let decimals = if v == 0.0 || v == 100.0 {
        0
    } else if v.abs() < 1.0 || (99.95..100.0).contains(&v) {
        2
    } else {
        1
    };
    format!("{}%", fixed(v, decimals))
}

/// A share's mean with its 95 % interval, clamped to 0..1 because the
/// normal approximation can overshoot what a share can be.
pub fn pct_interval(e: &Estimate) -> String {
    let clamp = |x: f64| if x.is_finite() { x.clamp(0.0, 1.0) } else { x };
    format!("{} [{}, {}]", pct(e.mean), pct(clamp(e.lo)), pct(clamp(e.hi)))
}

/// One percentile of a pooled distribution, or [`MISSING`] if it pooled
/// nothing (its percentiles are then zeros, not measurements).
pub fn percentile(p: &Percentiles, value: f64) -> String {
    if p.count == 0 {
        MISSING.to_string()
    } else {
        num(value)
    }
}

/// A fault scale or bucket bound, without trailing zeros: `1`, `0.5`, `2.25`.
pub fn scale(x: f64) -> String {
    let s = fixed(x, 2);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A window histogram bucket by its upper bound; the last bucket is open.
pub fn bucket(upper_ms: f64, previous_ms: Option<f64>) -> String {
    // The last bucket is open-ended: its bound is infinite, or f64::MAX
    // once it has been through JSON.
    match (upper_ms.is_finite() && upper_ms < f64::MAX, previous_ms) {
        (true, _) => format!("≤{}", scale(upper_ms)),
        (false, Some(p)) if p.is_finite() => format!(">{}", scale(p)),
        (false, _) => "any".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_rounds() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(fixed(-1234.5, 1), "-1,234.5");
        assert_eq!(fixed(-0.001, 1), "0.0");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), MISSING);
        assert_eq!(num(f64::INFINITY), MISSING);
        assert_eq!(signed(12.5), "+12.5");
        assert_eq!(signed(-3.0), "-3.00");
    }

    #[test]
    fn shares_and_scales() {
        assert_eq!(pct(0.973), "97.3%");
        assert_eq!(pct(0.9996), "99.96%");
        assert_eq!(pct(1.0), "100%");
        assert_eq!(pct(0.0004), "0.04%");
        assert_eq!(pct(f64::NAN), MISSING);
        let e = Estimate { mean: 0.99, lo: 0.97, hi: 1.01 };
        assert_eq!(pct_interval(&e), "99.0% [97.0%, 100%]");
        assert_eq!(scale(1.0), "1");
        assert_eq!(scale(0.50), "0.5");
        assert_eq!(bucket(f64::INFINITY, Some(5000.0)), ">5,000");
        assert_eq!(bucket(0.5, None), "≤0.5");
    }
}
