//! Integer-only distributions. Floating-point `ln` may differ in its last bit
//! between libm builds, and one rounding flip changes a latency, the event
//! order and so the trace digest; a fixed table keeps every machine identical.

use crate::seed::Stream;

/// `-ln(1 - i/64)` in millionths, for `i` in `0..64`: the inverse CDF of
/// Exp(1) at 64 evenly spaced points.
const EXP_QUANTILES_MICRO: [u64; 64] = [
    0, 15748, 31749, 48009, 64539, 81346, 98440, 115832, 133531, 151550, 169899, 188591, 207639,
    227057, 246860, 267063, 287682, 308735, 330242, 352221, 374693, 397683, 421213, 445311, 470004,
    495321, 521297, 547965, 575364, 603535, 632523, 662376, 693147, 724896, 757686, 791587, 826679,
    863046, 900787, 940007, 980829, 1023389, 1067841, 1114361, 1163151, 1214444, 1268511, 1325670,
    1386294, 1450833, 1519826, 1593934, 1673976, 1760988, 1856298, 1961659, 2079442, 2212973,
    2367124, 2549445, 2772589, 3060271, 3465736, 4158883,
];

/// ln(64) in millionths: the top bucket's lower edge. Exp is memoryless, so a
/// draw in the top bucket is ln(64) plus a fresh Exp(1) draw.
const LN_64_MICRO: u64 = 4_158_883;

/// A sample of Exp(1) in millionths, accurate to the table's linear
/// interpolation (well under 1 % in every bucket but the tail, which is exact
/// in distribution).
pub fn exp1_micro(s: &mut Stream) -> u64 {
    let mut base = 0;
    loop {
        let x = s.next_u64();
        let bucket = (x >> 58) as usize; // top 6 bits
        if bucket == 63 {
            base += LN_64_MICRO;
            continue;
        }
        let frac = (x >> 26) & 0xffff_ffff; // next 32 bits
        let lo = EXP_QUANTILES_MICRO[bucket];
        let hi = EXP_QUANTILES_MICRO[bucket + 1];
        return base + lo + (((hi - lo) * frac) >> 32);
    }
}

/// Exponential with the given mean (any unit).
pub fn exponential(s: &mut Stream, mean: u64) -> u64 {
    let e = exp1_micro(s);
    // The same quotient either way; 64-bit division by a constant is a
    // multiply, 128-bit division a library call, and latencies fit 64 bits.
    match e.checked_mul(mean) {
        Some(p) => p / 1_000_000,
        None => (e as u128 * mean as u128 / 1_000_000).min(u64::MAX as u128) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Purpose;

    #[test]
    fn exponential_mean_is_close() {
        let mut s = Stream::new(42, Purpose::Latency);
        let n = 200_000u64;
        let sum: u64 = (0..n).map(|_| exponential(&mut s, 1_000_000)).sum();
        let mean = sum / n;
        assert!((980_000..1_020_000).contains(&mean), "mean {mean}");
    }

    /// The 64-bit path and the 128-bit one give the same quotient, and a
    /// product past 64 bits saturates as before.
    #[test]
    fn exponential_scales_exactly() {
        let (mut a, mut b) = (Stream::new(7, Purpose::Latency), Stream::new(7, Purpose::Latency));
        for mean in [1, 3_300, 1_000_000, u64::MAX / 2, u64::MAX] {
            for _ in 0..1_000 {
                let want = (exp1_micro(&mut b) as u128 * mean as u128 / 1_000_000)
                    .min(u64::MAX as u128) as u64;
                assert_eq!(exponential(&mut a, mean), want);
            }
        }
    }
}
