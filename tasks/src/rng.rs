//! The one seeded PRNG of emu-eval: SplitMix64 (Steele, Lea, Flood 2014), fully specified, so
//! subsamples, support choices and sampled tokens are the same on every platform.

/// SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `next_u64() % n` (modulo bias below 2^-40 for any real `n`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice, by [`below`](Self::below).
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    /// Uniform in [0, 1) from the top 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The first `min(k, n)` positions of a seeded partial Fisher–Yates shuffle of `0..n`: position
/// `i` swaps with `i + next() % (n - i)` (modulo bias below 2^-40 for any real pool size).
pub fn sample_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let k = k.min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in 0..k {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

/// Deterministic subsample of `k` of `n` indices, sorted (all of them, in order, when `k >= n`).
/// Used for the 5,000-sample RICES pool and the 30,000 COCO t2i captions.
pub fn subsample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut v = sample_indices(n, k, seed);
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference outputs of SplitMix64 seeded with 0 (Vigna's `splitmix64.c`).
    #[test]
    fn reference_values() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn subsample_is_sorted_distinct_and_seeded() {
        let a = subsample(1000, 50, 7);
        assert_eq!(a, subsample(1000, 50, 7));
        assert_ne!(a, subsample(1000, 50, 8));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(subsample(5, 10, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn uniform_in_unit_interval() {
        let mut r = SplitMix64::new(3);
        assert!((0..1000).map(|_| r.uniform()).all(|u| (0.0..1.0).contains(&u)));
    }
}
