//! Deterministic choices without features: the fixed random RICES pool subset and the fallback
//! support selection used when no image features are available. The fallback is NOT RICES: it picks
//! support examples uniformly at random, reproducibly from `(seed, query key)`; callers report it
//! as [`crate::Method::RandomFallback`].

/// SplitMix64 (Steele, Lea, Flood 2014): a small, fully specified PRNG, so choices are the same on
/// every platform and Rust version.
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
}

/// 64-bit FNV-1a of a string (mixes the query key into the seed).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
}

/// The first `k` positions of a seeded partial Fisher–Yates shuffle of `0..n` (distinct indices).
/// Position `i` swaps with `i + next() % (n - i)`: the same draw as `tasks::datasets::subsample`, so
/// both give the same subsets (the modulo bias is below 2^-40 for any real pool size).
pub fn sample_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let k = k.min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in 0..k {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

/// The fixed random subset of the training pool that RICES searches (`n` = 5,000 in the paper's
/// protocol; the whole pool, in order, when it is smaller), sorted ascending. Same `seed` → same
/// subset.
pub fn subsample_pool(pool_len: usize, n: usize, seed: u64) -> Vec<usize> {
    if n >= pool_len {
        return (0..pool_len).collect();
    }
    let mut v = sample_indices(pool_len, n, seed);
    v.sort_unstable();
    v
}

/// Fallback support selection without features: `k` distinct pool indices, uniformly random,
/// determined by `seed` and the query's key (sample id). Not RICES.
pub fn fallback_select(query_key: &str, pool_len: usize, k: usize, seed: u64) -> Vec<usize> {
    sample_indices(pool_len, k, seed ^ fnv1a(query_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 from the reference C implementation (splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn fallback_is_deterministic_distinct_and_keyed() {
        let a = fallback_select("q1", 100, 8, 42);
        assert_eq!(a, fallback_select("q1", 100, 8, 42));
        assert_ne!(a, fallback_select("q2", 100, 8, 42));
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 8);
        assert!(a.iter().all(|&i| i < 100));
    }

    #[test]
    fn subsample_returns_whole_small_pool() {
        assert_eq!(subsample_pool(9, 5000, 1), (0..9).collect::<Vec<_>>());
        let s = subsample_pool(10_000, 5000, 1);
        assert_eq!(s.len(), 5000);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, subsample_pool(10_000, 5000, 1));
    }
}
