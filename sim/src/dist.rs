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

/// A sample of Exp(1) in millionths from 32 random bits: the top 6 pick
/// the bucket, the other 26 interpolate in it (accurate to the table's
/// linear interpolation: well under 1 % in every bucket but the tail,
/// which is exact in distribution). A draw in the top bucket takes 32 more
/// bits from `s`.
fn exp1_micro(mut bits: u32, s: &mut Stream) -> u64 {
    let mut base = 0;
    loop {
        let bucket = (bits >> 26) as usize;
        if bucket == 63 {
            base += LN_64_MICRO;
            bits = s.next_u32();
            continue;
        }
        let frac = (bits & ((1 << 26) - 1)) as u64;
        let lo = EXP_QUANTILES_MICRO[bucket];
        let hi = EXP_QUANTILES_MICRO[bucket + 1];
        return base + lo + (((hi - lo) * frac) >> 26);
    }
}

/// Two independent exponentials with the given mean from one 64-bit draw
/// (and more only in the tail): a message's latency and its duplicate's.
pub fn exponential_pair(s: &mut Stream, mean: u64) -> (u64, u64) {
    let x = s.next_u64();
    let first = exp1_micro((x >> 32) as u32, s);
    let second = exp1_micro(x as u32, s);
    (scale(first, mean), scale(second, mean))
}

/// `e` millionths of `mean`.
fn scale(e: u64, mean: u64) -> u64 {
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

    /// Each of a pair has the mean, and the two are independent.
    #[test]
    fn a_pair_is_two_independent_exponentials() {
        let mut s = Stream::new(42, Purpose::Latency);
        let n = 200_000u64;
        let (mut a, mut b, mut ab) = (0u128, 0u128, 0u128);
        for _ in 0..n {
            let (x, y) = exponential_pair(&mut s, 1_000);
            (a, b, ab) = (a + x as u128, b + y as u128, ab + (x * y) as u128);
        }
        let (ma, mb) = (a / n as u128, b / n as u128);
        assert!((980..1_020).contains(&ma) && (980..1_020).contains(&mb), "means {ma} {mb}");
        // Independent: E[xy] = E[x] E[y] (= 10^6 for mean 1,000).
        let mab = ab / n as u128;
        assert!((960_000..1_040_000).contains(&mab), "E[xy] {mab}");
    }

    /// The 64-bit path and the 128-bit one give the same quotient, and a
    /// product past 64 bits saturates as before.
    #[test]
    fn scaling_is_exact() {
        let mut s = Stream::new(7, Purpose::Latency);
        for mean in [1, 3_300, 1_000_000, u64::MAX / 2, u64::MAX] {
            for _ in 0..1_000 {
                let bits = s.next_u32();
                let e = exp1_micro(bits, &mut s);
                let want = (e as u128 * mean as u128 / 1_000_000).min(u64::MAX as u128) as u64;
                assert_eq!(scale(e, mean), want);
            }
        }
    }
}
