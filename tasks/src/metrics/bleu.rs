//! BLEU-1..4 as pycocoevalcap `Bleu(4)` computes it (metrics.md 1.3): `BleuScorer` with
//! option "closest", the `1e-15` / `1e-9` smoothing constants, corpus value from summed statistics.
use std::collections::HashMap;

use rayon::prelude::*;

use super::cider::words;

/// Maximum n-gram order.
pub const N: usize = 4;
const TINY: f64 = 1e-15;
const SMALL: f64 = 1e-9;

/// Sufficient statistics of one segment (`cook_test` output with the reference length chosen).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BleuStats {
    /// Candidate word count.
    pub testlen: usize,
    /// Effective reference length: the closest to `testlen`, ties to the shorter.
    pub reflen: usize,
    /// Candidate n-gram totals per order, `max(0, testlen - k + 1)`.
    pub guess: [usize; N],
    /// Clipped n-gram matches per order.
    pub correct: [usize; N],
}

/// pycocoevalcap `bleu_scorer.precook`: n-gram counts of the whitespace-split sentence.
fn precook<'s, 'a>(ws: &'s [&'a str]) -> HashMap<&'s [&'a str], usize> {
    let mut counts = HashMap::new();
    for k in 1..=N {
        for g in ws.windows(k) {
            *counts.entry(g).or_insert(0) += 1;
        }
    }
    counts
}

/// `cook_refs` + `cook_test` + `_single_reflen(option="closest")` for one image.
pub fn segment_stats(cand: &str, refs: &[String]) -> BleuStats {
    let ref_words: Vec<Vec<&str>> = refs.iter().map(|r| words(r).collect()).collect();
    let mut maxcounts: HashMap<&[&str], usize> = HashMap::new();
    for rw in &ref_words {
        for (g, c) in precook(rw) {
            let m = maxcounts.entry(g).or_insert(0);
            *m = (*m).max(c);
        }
    }
    let cw: Vec<&str> = words(cand).collect();
    let testlen = cw.len();
    let mut st = BleuStats { testlen, reflen: closest_reflen(&ref_words, testlen), ..Default::default() };
    for k in 0..N {
        st.guess[k] = (testlen + 1).saturating_sub(k + 1);
    }
    for (g, c) in precook(&cw) {
        st.correct[g.len() - 1] += c.min(maxcounts.get(g).copied().unwrap_or(0));
    }
    st
}

/// `min((abs(l - testlen), l) for l in reflens)[1]`: closest length, ties to the shorter.
fn closest_reflen(ref_words: &[Vec<&str>], testlen: usize) -> usize {
    ref_words.iter().map(|r| (r.len().abs_diff(testlen), r.len())).min().map_or(0, |m| m.1)
}

/// BLEU-1..4 from (possibly summed) statistics: cumulative precision product, N-th root,
/// brevity penalty `exp(1 - 1/ratio)` when `ratio < 1`.
pub fn bleu_from_stats(st: &BleuStats) -> [f64; N] {
    let mut out = [0.0; N];
    let mut prod = 1.0;
    for (k, o) in out.iter_mut().enumerate() {
        prod *= (st.correct[k] as f64 + TINY) / (st.guess[k] as f64 + SMALL);
        *o = prod.powf(1.0 / (k as f64 + 1.0));
    }
    let ratio = (st.testlen as f64 + TINY) / (st.reflen as f64 + SMALL);
    if ratio < 1.0 {
        let bp = (1.0 - 1.0 / ratio).exp();
        for v in &mut out {
            *v *= bp;
        }
    }
    out
}

/// Corpus BLEU-1..4 (from summed statistics) and per-image BLEU-1..4.
pub fn bleu(cands: &[String], refs: &[Vec<String>]) -> ([f64; N], Vec<[f64; N]>) {
    assert_eq!(cands.len(), refs.len(), "bleu: one reference list per candidate");
    let stats: Vec<BleuStats> = cands.par_iter().zip(refs.par_iter()).map(|(c, r)| segment_stats(c, r)).collect();
    let mut total = BleuStats::default();
    for st in &stats {
        total.testlen += st.testlen;
        total.reflen += st.reflen;
        for k in 0..N {
            total.guess[k] += st.guess[k];
            total.correct[k] += st.correct[k];
        }
    }
    (bleu_from_stats(&total), stats.iter().map(bleu_from_stats).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn clipping_and_closest_length() {
        let st = segment_stats("the the the cat", &s(&["the cat", "the the cat sat on it"]));
        assert_eq!(st.testlen, 4);
        // |2-4| = 2 = |6-4|: tie goes to the shorter reference.
        assert_eq!(st.reflen, 2);
        assert_eq!(st.guess, [4, 3, 2, 1]);
        // "the" clipped to 2, "cat" 1; bigrams "the the" 1, "the cat" 1; trigram "the the cat" 1.
        assert_eq!(st.correct, [3, 2, 1, 0]);
    }

    #[test]
    fn exact_match_and_empty_candidate() {
        let b = bleu_from_stats(&segment_stats("a b c d", &s(&["a b c d"])));
        for v in b {
            assert!((v - 1.0).abs() < 1e-8);
        }
        let b = bleu_from_stats(&segment_stats("", &s(&["a b"])));
        assert_eq!(b, [0.0; N]);
    }

    #[test]
    fn corpus_sums_statistics() {
        let cands = s(&["a b", "c d e f"]);
        let refs = vec![s(&["a b"]), s(&["c d x f"])];
        let (corpus, per) = bleu(&cands, &refs);
        let st = BleuStats { testlen: 6, reflen: 6, guess: [6, 4, 2, 1], correct: [5, 2, 0, 0] };
        assert_eq!(corpus, bleu_from_stats(&st));
        assert_ne!(corpus[0], (per[0][0] + per[1][0]) / 2.0);
    }
}
