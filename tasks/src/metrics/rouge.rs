//! ROUGE-L as pycocoevalcap `Rouge` computes it (metrics.md 1.4): words split on the space
//! character only, P and R maximised separately over references, F with beta = 1.2.
use rayon::prelude::*;

use super::cider::FxMap;

/// pycocoevalcap `Rouge.beta`.
pub const BETA: f64 = 1.2;

/// pycocoevalcap `my_lcs`: length of the longest common subsequence of two token lists.
pub fn lcs<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let (long, short) = if a.len() < b.len() { (b, a) } else { (a, b) };
    // Two DP rows; on the stack for captions of usual length.
    const STACK: usize = 64;
    if short.len() < STACK {
        let (mut prev, mut cur) = ([0usize; STACK], [0usize; STACK]);
        return lcs_rows(long, short, &mut prev[..=short.len()], &mut cur[..=short.len()]);
    }
    lcs_rows(long, short, &mut vec![0usize; short.len() + 1], &mut vec![0usize; short.len() + 1])
}

/// The LCS dynamic programme over `long`, keeping two rows of `short.len() + 1` zeros.
fn lcs_rows<'a, T: PartialEq>(
    long: &[T],
    short: &[T],
    mut prev: &'a mut [usize],
    mut cur: &'a mut [usize],
) -> usize {
    for x in long {
        for (j, y) in short.iter().enumerate() {
            cur[j + 1] = if x == y { prev[j] + 1 } else { prev[j + 1].max(cur[j]) };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

/// `Rouge.calc_score` for one image: `(1 + b^2) P R / (R + b^2 P)` with P, R the separate maxima.
/// Words are compared through ids numbering the candidate's distinct words (a reference word
/// outside the candidate equals none of them).
pub fn rouge_l_image(cand: &str, refs: &[String]) -> f64 {
    // Python `str.split(" ")`: an empty string gives [""].
    let mut vocab: FxMap<&str, u32> = FxMap::default();
    let c: Vec<u32> = cand
        .split(' ')
        .map(|w| {
            let next = vocab.len() as u32;
            *vocab.entry(w).or_insert(next)
        })
        .collect();
    let mut p_max = f64::NEG_INFINITY;
    let mut r_max = f64::NEG_INFINITY;
    let mut rt = Vec::new();
    for r in refs {
        rt.clear();
        rt.extend(r.split(' ').map(|w| vocab.get(w).copied().unwrap_or(u32::MAX)));
        let l = lcs(&rt, &c) as f64;
        p_max = p_max.max(l / c.len() as f64);
        r_max = r_max.max(l / rt.len() as f64);
    }
    let b2 = BETA * BETA;
    if p_max != 0.0 && r_max != 0.0 {
        ((1.0 + b2) * p_max * r_max) / (r_max + b2 * p_max)
    } else {
        0.0
    }
}

/// Corpus ROUGE-L (mean of image scores) and per-image scores.
pub fn rouge_l(cands: &[String], refs: &[Vec<String>]) -> (f64, Vec<f64>) {
    assert_eq!(cands.len(), refs.len(), "rouge_l: one reference list per candidate");
    let per: Vec<f64> =
        cands.par_iter().zip(refs.par_iter()).map(|(c, r)| rouge_l_image(c, r)).collect();
    (per.iter().sum::<f64>() / per.len() as f64, per)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn lcs_basic() {
        assert_eq!(lcs(&["a", "b", "c", "d"], &["a", "c", "d"]), 3);
        assert_eq!(lcs(&["a"], &["b"]), 0);
        assert_eq!(lcs(&[], &["b"]), 0);
    }

    #[test]
    fn precision_and_recall_maximised_separately() {
        // ref1: P = 2/2, R = 2/4; ref2: P = 1/2, R = 1/1.
        let v = rouge_l_image("a b", &s(&["a b c d", "a"]));
        let (p, r) = (1.0, 1.0);
        let b2 = BETA * BETA;
        assert!((v - (1.0 + b2) * p * r / (r + b2 * p)).abs() < 1e-15);
    }

    #[test]
    fn empty_candidate_scores_zero_and_splits_on_space_only() {
        assert_eq!(rouge_l_image("", &s(&["a"])), 0.0);
        // U+00A0 is not a separator for ROUGE-L.
        assert_eq!(rouge_l_image("a\u{a0}b", &s(&["a b"])), 0.0);
    }
}
