//! Deterministic choices without features: the fixed random RICES pool subset and the fallback
//! support selection used when no image features are available. The fallback is NOT RICES: it picks
//! support examples uniformly at random, reproducibly from `(seed, query key)`; callers report it
//! as [`crate::Method::RandomFallback`].

pub use tasks::rng::{sample_indices, subsample as subsample_pool, SplitMix64};

/// 64-bit FNV-1a of a string (mixes the query key into the seed).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
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
