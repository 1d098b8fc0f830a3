//! Logits processors and warpers in the order the reference applies them (spec §3.3, §3.5).
use super::lm::Logits;
use super::trie::TokenTrie;

/// `torch.log_softmax` over one row in f32: `x − (max + ln Σ exp(x − max))`.
pub fn log_softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return; // all −∞ stays −∞
    }
    let sum: f64 = row.iter().map(|&x| ((x - max) as f64).exp()).sum();
    let shift = max + (sum.ln() as f32);
    for x in row.iter_mut() {
        *x -= shift;
    }
}

/// Row-wise log-softmax of a whole logits block.
pub fn log_softmax(logits: &mut Logits) {
    for r in 0..logits.rows {
        log_softmax_row(logits.row_mut(r));
    }
}

/// `MinLengthLogitsProcessor`: EOS gets −∞ while the tracked length (dummy BOS + generated
/// tokens) is below `min_length`.
pub fn apply_min_length(logits: &mut Logits, tracked_len: usize, min_length: usize, eos: u32) {
    if tracked_len < min_length {
        for r in 0..logits.rows {
            logits.row_mut(r)[eos as usize] = f32::NEG_INFINITY;
        }
    }
}

/// `PrefixConstrainedLogitsProcessor`: every token not allowed after the row's generated tokens
/// gets −∞ (scores + mask, so allowed entries are unchanged).
pub fn apply_prefix_constraint(logits: &mut Logits, generated: &[Vec<u32>], trie: &TokenTrie) {
    for (r, prefix) in generated.iter().enumerate() {
        let allowed = trie.allowed(prefix);
        let row = logits.row_mut(r);
        let keep: Vec<(usize, f32)> = allowed
            .iter()
            .filter(|&&t| (t as usize) < row.len())
            .map(|&t| (t as usize, row[t as usize]))
            .collect();
        row.fill(f32::NEG_INFINITY);
        for (t, v) in keep {
            row[t] = v;
        }
    }
}

/// First index of the maximum (`torch.argmax` on CPU returns the first maximal index).
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// `TemperatureLogitsWarper`: `x / T`. Where that overflows (a tiny `T`) the row is shifted
/// by its maximum first, `(x - max) / T`: every later step (top-p, sampling) reads only the
/// softmax, which the shift leaves unchanged, and the shifted values are `<= 0`, so they reach
/// at worst `-inf`, never `+inf` or NaN.
pub fn apply_temperature(row: &mut [f32], temperature: f32) {
    let overflows = row.iter().any(|&x| x.is_finite() && !(x / temperature).is_finite());
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let shift = if overflows && max.is_finite() { max } else { 0.0 };
    for x in row.iter_mut() {
        *x = (*x - shift) / temperature;
    }
}

/// `TopPLogitsWarper`: removes the low-probability tail whose cumulative probability is
/// `<= 1 − top_p` (the most probable token is always kept).
pub fn apply_top_p(row: &mut [f32], top_p: f32) {
    if top_p >= 1.0 {
        return;
    }
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[a].total_cmp(&row[b])); // ascending, like torch.sort(descending=False)
    let probs = softmax(&idx.iter().map(|&i| row[i]).collect::<Vec<_>>());
    let mut cum = 0.0f64;
    let n = idx.len();
    for (k, &i) in idx.iter().enumerate() {
        cum += probs[k];
        if cum <= (1.0 - top_p) as f64 && k + 1 < n {
            row[i] = f32::NEG_INFINITY;
        }
    }
}

fn softmax(xs: &[f32]) -> Vec<f64> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = xs.iter().map(|&x| (x as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Seeded SplitMix64 generator for reproducible sampling.
pub use crate::rng::SplitMix64 as Rng;

/// Draws one token from the softmax of `row` (`torch.multinomial(softmax(scores), 1)`).
pub fn sample(row: &[f32], rng: &mut Rng) -> u32 {
    let probs = softmax(row);
    let u = rng.uniform();
    let mut cum = 0.0;
    let mut last = 0;
    for (i, p) in probs.iter().enumerate() {
        if *p > 0.0 {
            last = i;
            cum += p;
            if u < cum {
                return i as u32;
            }
        }
    }
    last as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_matches_definition() {
        let mut r = vec![1.0f32, 2.0, 3.0];
        log_softmax_row(&mut r);
        let z = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        for (i, v) in r.iter().enumerate() {
            assert!((*v as f64 - ((i + 1) as f64 - z)).abs() < 1e-6);
        }
    }

    /// The temperature 1e-45: `x / T` overflows to inf and softmax gives NaN; the
    /// shifted form keeps the most probable token certain.
    #[test]
    fn tiny_temperature_cannot_overflow() {
        let mut row = vec![1.0f32, 3.0, 2.0, f32::NEG_INFINITY];
        apply_temperature(&mut row, 1e-45);
        assert_eq!(row[1], 0.0);
        assert!(row.iter().all(|x| !x.is_nan() && *x <= 0.0), "{row:?}");
        let probs = softmax(&row);
        assert_eq!(probs, vec![0.0, 1.0, 0.0, 0.0]);
        apply_top_p(&mut row, 0.9);
        let mut rng = Rng::new(7);
        assert!((0..20).all(|_| sample(&row, &mut rng) == 1));
        // An ordinary temperature is the plain division.
        let mut row = vec![1.0f32, -2.0];
        apply_temperature(&mut row, 0.5);
        assert_eq!(row, vec![2.0, -4.0]);
    }

    #[test]
    fn min_length_counts_dummy_bos() {
        let mut l = Logits::new(1, 4, vec![0.0; 4]);
        apply_min_length(&mut l, 1, 1, 2); // tracked [BOS] has length 1: not below 1
        assert_eq!(l.row(0)[2], 0.0);
        apply_min_length(&mut l, 1, 2, 2);
        assert_eq!(l.row(0)[2], f32::NEG_INFINITY);
    }

    #[test]
    fn prefix_constraint_masks_everything_else() {
        let trie = TokenTrie::new([vec![1, 3], vec![2]]);
        let mut l = Logits::new(2, 4, vec![0.5; 8]);
        apply_prefix_constraint(&mut l, &[vec![], vec![7]], &trie);
        assert_eq!(l.row(0), &[f32::NEG_INFINITY, 0.5, 0.5, f32::NEG_INFINITY]);
        assert!(l.row(1).iter().all(|v| *v == f32::NEG_INFINITY));
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // probs ≈ [0.643, 0.236, 0.087, 0.032]
        let mut r = vec![3.0f32, 2.0, 1.0, 0.0];
        apply_top_p(&mut r, 0.8);
        assert_eq!(r, vec![3.0, 2.0, f32::NEG_INFINITY, f32::NEG_INFINITY]);
        let mut r = vec![3.0f32, 2.0, 1.0, 0.0];
        apply_top_p(&mut r, 0.01);
        assert_eq!(r[0], 3.0);
        assert!(r[1..].iter().all(|v| *v == f32::NEG_INFINITY));
    }

    #[test]
    fn sampling_is_seeded() {
        let row = vec![0.0f32; 10];
        let a: Vec<u32> = {
            let mut g = Rng::new(7);
            (0..20).map(|_| sample(&row, &mut g)).collect()
        };
        let b: Vec<u32> = {
            let mut g = Rng::new(7);
            (0..20).map(|_| sample(&row, &mut g)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|&t| t != a[0]));
    }
}
