//! A small, reproducible random number generator.
//!
//! Everything random in the crate (queue initialisation, long-tailed subsampling, shuffling,
//! augmentation) draws from [`Rng`], so results do not depend on the backend, the platform or
//! the number of threads. [`Rng::from_key`] derives an independent stream from a tuple such as
//! `(seed, epoch, sample_index)`, which makes per-sample randomness a pure function of that
//! tuple.
//!
//! The generator is SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by a
//! Weyl increment and passed through a strong mixing function. Its whole state is one `u64`,
//! which makes it trivial to checkpoint.

use serde::{Deserialize, Serialize};

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 pseudo-random generator.
///
/// ```
/// use rescom::Rng;
/// let mut a = Rng::from_key(&[7, 0, 42]);
/// let mut b = Rng::from_key(&[7, 0, 42]);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let x = a.uniform(2.0, 3.0);
/// assert!((2.0..3.0).contains(&x));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: mix64(seed ^ 0x5851_F42D_4C95_7F2D),
        }
    }

    /// A generator whose stream is a pure function of `key` (e.g. `[seed, epoch, index]`).
    /// Different keys give statistically independent streams.
    pub fn from_key(key: &[u64]) -> Self {
        let mut h: u64 = 0x243F_6A88_85A3_08D3;
        for &k in key {
            h = mix64(h.wrapping_add(GOLDEN_GAMMA) ^ k);
        }
        Self::new(h)
    }

    /// The raw state, for checkpoints.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// A generator restored from [`Rng::state`].
    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    /// Next 64 uniformly random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// Uniform integer in `0..n` without modulo bias. Returns 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        // Lemire's nearly-divisionless method with rejection.
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform index in `0..n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// `true` with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A standard-normal sample (Box–Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_streams_are_pure_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| Rng::from_key(&[1, 2, 3]).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::from_key(&[1, 2, 3]).next_u64(),
            Rng::from_key(&[1, 2, 4]).next_u64()
        );
        assert_ne!(
            Rng::from_key(&[1, 2]).next_u64(),
            Rng::from_key(&[2, 1]).next_u64()
        );
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = Rng::new(3);
        let mut hist = [0usize; 7];
        for _ in 0..70_000 {
            hist[rng.below(7) as usize] += 1;
        }
        for h in hist {
            assert!((9_000..11_000).contains(&h), "{hist:?}");
        }
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = Rng::new(11);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn state_round_trips() {
        let mut a = Rng::new(5);
        a.next_u64();
        let mut b = Rng::from_state(a.state());
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
