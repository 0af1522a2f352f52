//! Seed streams: one independent ChaCha stream per purpose, all derived from
//! the run's seed.
//!
//! Separate streams give common random numbers: the workload of seed N does not
//! depend on how many network or fault draws a strategy happened to make, so
//! strategies are compared on the same orders and shrinking stays stable.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a stream is for. The discriminant is the ChaCha stream number, so it
/// must never be reused or renumbered: that would change every recorded seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// Users, products, orders and arrival times.
    Workload = 1,
    /// Scheduled faults: crashes, restarts, partitions.
    Faults = 2,
    /// Per-message decisions: loss, duplication, reordering.
    Network = 3,
    /// Message latencies.
    Latency = 4,
    /// Tie-breaks between events at the same simulated time.
    Schedule = 5,
    /// Randomness the application itself asks for (retry jitter).
    App = 6,
    /// Swarm testing: which fault kinds a seed enables.
    Swarm = 7,
    /// The PCT scheduler's node priorities and change points.
    Priority = 8,
}

/// A seeded random stream for one purpose.
#[derive(Clone, Debug)]
pub struct Stream {
    rng: ChaCha8Rng,
}

impl Stream {
    pub fn new(seed: u64, purpose: Purpose) -> Stream {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(purpose as u64);
        Stream { rng }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// 32 random bits: half the stream a `next_u64` takes.
    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// Uniform in `lo..=hi`. Uses a 128-bit multiply, not `%`, so small
    /// ranges carry no modulo bias worth speaking of.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        let x = self.next_u64() as u128 * (span as u128 + 1);
        lo + (x >> 64) as u64
    }

    /// True with probability `ppm` parts per million.
    pub fn chance(&mut self, ppm: u32) -> bool {
        if ppm == 0 {
            return false;
        }
        self.range(0, 999_999) < ppm as u64
    }

    /// Three independent chances, each true with probability `ppm[i]`
    /// parts per million, from one draw: 21 bits each (2^21 > 10^6, so
    /// each rate keeps its resolution), and no draw when every rate is zero.
    pub fn chances3(&mut self, ppm: [u32; 3]) -> [bool; 3] {
        if ppm == [0; 3] {
            return [false; 3];
        }
        let x = self.next_u64();
        std::array::from_fn(|i| {
            let bits = (x >> (21 * i)) & ((1 << 21) - 1);
            (bits * 1_000_000) >> 21 < ppm[i] as u64
        })
    }
}

/// All streams of one run.
#[derive(Clone, Debug)]
pub struct Streams {
    pub seed: u64,
    pub faults: Stream,
    pub network: Stream,
    pub latency: Stream,
    pub schedule: Stream,
    pub app: Stream,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        Streams {
            seed,
            faults: Stream::new(seed, Purpose::Faults),
            network: Stream::new(seed, Purpose::Network),
            latency: Stream::new(seed, Purpose::Latency),
            schedule: Stream::new(seed, Purpose::Schedule),
            app: Stream::new(seed, Purpose::App),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_seed_are_independent_and_reproducible() {
        let mut a = Stream::new(7, Purpose::Workload);
        let mut b = Stream::new(7, Purpose::Workload);
        let mut c = Stream::new(7, Purpose::Network);
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn range_stays_inside_bounds() {
        let mut s = Stream::new(1, Purpose::App);
        for _ in 0..10_000 {
            let x = s.range(3, 9);
            assert!((3..=9).contains(&x));
        }
        assert_eq!(s.range(5, 5), 5);
    }

    /// Each of the three chances drawn together hits at its own rate, and
    /// independently of the others.
    #[test]
    fn three_chances_from_one_draw_keep_their_rates() {
        let mut s = Stream::new(3, Purpose::Network);
        let n = 200_000;
        let (mut hits, mut both) = ([0u32; 3], 0u32);
        for _ in 0..n {
            let c = s.chances3([100_000, 500_000, 0]);
            for i in 0..3 {
                hits[i] += c[i] as u32;
            }
            both += (c[0] && c[1]) as u32;
        }
        assert!((19_000..21_000).contains(&hits[0]), "{hits:?}");
        assert!((99_000..101_000).contains(&hits[1]), "{hits:?}");
        assert_eq!(hits[2], 0, "a zero rate never hits");
        assert!((9_500..10_500).contains(&both), "independent: {both}");
        assert_eq!(s.chances3([0; 3]), [false; 3]);
    }
}
