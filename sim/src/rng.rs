//! A tiny SplitMix64 generator of our own, so that a seed gives the same depot data and the same
//! fault decisions whatever version of any random-number crate is in the lock file.

/// SplitMix64 (Steele, Lea and Flood, 2014): 64 bits of state, full period, good enough mixing
/// for test data and fault coins. Not for anything secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one named stream derived from a seed, e.g. `("data", seed)` or
    /// `("fault/pod/0", seed)`: distinct streams never share a sequence.
    pub fn for_stream(seed: u64, stream: &str) -> Self {
        Self::new(derive_seed(seed, stream))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalize(self.state)
    }

    /// Uniform in `[0, 1)`, 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; 0 when `n == 0`. (Lemire's multiply-shift; the bias is below 2^-40
    /// for the small `n` used here.)
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[lo, hi]` (inclusive); `lo` when `hi <= lo`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` (`p <= 0` never, `p >= 1` always).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Uniform in `[-half_width, half_width)`.
    pub fn jitter(&mut self, half_width: f64) -> f64 {
        (self.next_f64() * 2.0 - 1.0) * half_width
    }

    /// One element of a slice, uniformly. Every table in this crate is a non-empty constant.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        debug_assert!(!items.is_empty());
        let i = self.below(items.len() as u64) as usize;
        items[i.min(items.len().saturating_sub(1))]
    }

    /// One value of `(value, weight)` pairs, chosen in proportion to the weights.
    pub fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        debug_assert!(!items.is_empty());
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (value, weight) in items {
            let w = u64::from(*weight);
            if roll < w {
                return *value;
            }
            roll -= w;
        }
        items[items.len() - 1].0
    }
}

/// The SplitMix64 output function: a strong 64-bit mixer.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes a seed with a stream name (FNV-1a of the name, then the SplitMix64 finaliser).
pub fn derive_seed(seed: u64, stream: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in stream.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    finalize(seed ^ finalize(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64_sequence() {
        // Reference values of SplitMix64 seeded with 0 (as in Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn ranges_and_floats_stay_in_bounds() {
        let mut r = SplitMix64::new(7);
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(6) < 6);
            let x = r.range(3, 5);
            assert!((3..=5).contains(&x));
            let j = r.jitter(0.5);
            assert!((-0.5..0.5).contains(&j));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.range(9, 2), 9);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }

    #[test]
    fn streams_are_distinct_and_stable() {
        assert_ne!(derive_seed(1, "data"), derive_seed(1, "fault"));
        assert_ne!(derive_seed(1, "data"), derive_seed(2, "data"));
        assert_eq!(derive_seed(1, "data"), derive_seed(1, "data"));
        let a: Vec<u64> = (0..4)
            .scan(SplitMix64::for_stream(5, "x"), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .scan(SplitMix64::for_stream(5, "x"), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn weighted_follows_the_weights() {
        let mut r = SplitMix64::new(3);
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            counts[r.weighted(&[(0usize, 1), (1, 0), (2, 3)])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(counts[2] > counts[0] * 2);
    }
}
