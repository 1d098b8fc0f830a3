//! Deterministic test inputs shared by the unit tests of the CPU kernels.

/// `n` values spread over [lo, hi) from an xorshift32 stream seeded by `seed`.
pub fn uniform(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            lo + (s >> 8) as f32 / (1u32 << 24) as f32 * (hi - lo)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_stay_in_range_and_repeat_per_seed() {
        let a = super::uniform(10_000, 3, -2.0, 4.0);
        assert!(a.iter().all(|v| (-2.0..4.0).contains(v)));
        assert_eq!(a, super::uniform(10_000, 3, -2.0, 4.0));
        assert_ne!(a, super::uniform(10_000, 4, -2.0, 4.0));
    }
}
