//! BLEU-1..4 as pycocoevalcap `Bleu(4)` computes it (metrics.md 1.3): `BleuScorer` with
//! option "closest", the `1e-15` / `1e-9` smoothing constants, corpus value from summed statistics.
use rayon::prelude::*;

use super::cider::{counted, words, FxMap};

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

/// Bits per word id in an n-gram key (ids number the candidate's distinct words: fewer than
/// 2^30); the order goes above the N ids.
const ID_BITS: u32 = 30;
const ORDER_SHIFT: u32 = ID_BITS * N as u32;
/// Id of a reference word that is not in the candidate: no n-gram containing it can match.
const NOT_IN_CANDIDATE: u32 = u32::MAX;

/// The key of one n-gram of word ids: the order k above the k ids, `ID_BITS` bits each; `None`
/// when a word is not in the candidate.
fn key(g: &[u32]) -> Option<u128> {
    let mut key = 0u128;
    for &w in g {
        if w == NOT_IN_CANDIDATE {
            return None;
        }
        key = (key << ID_BITS) | u128::from(w);
    }
    Some(((g.len() as u128) << ORDER_SHIFT) | key)
}

/// pycocoevalcap `bleu_scorer.precook` on word ids: every 1..=N-gram with its count, sorted by
/// key.
fn precook(ids: &[u32]) -> Vec<(u128, u32)> {
    counted((1..=N).flat_map(|k| ids.windows(k)).filter_map(key).collect())
}

/// `cook_refs` + `cook_test` + `_single_reflen(option="closest")` for one image. Words are
/// compared through ids numbering the candidate's distinct words; a reference n-gram counts only
/// where it is one of the candidate's (the clipped count `min(count, max over references)` needs
/// no other).
pub fn segment_stats(cand: &str, refs: &[String]) -> BleuStats {
    let mut vocab: FxMap<&str, u32> = FxMap::default();
    let cand_ids: Vec<u32> = words(cand)
        .map(|w| {
            let next = vocab.len() as u32;
            *vocab.entry(w).or_insert(next)
        })
        .collect();
    let testlen = cand_ids.len();
    let grams = precook(&cand_ids);
    // Each candidate n-gram's largest count in any one reference.
    let mut max_counts = vec![0u32; grams.len()];
    let mut counts = vec![0u32; grams.len()];
    let mut ref_ids = Vec::new();
    let mut ref_lens = Vec::with_capacity(refs.len());
    for r in refs {
        ref_ids.clear();
        ref_ids.extend(words(r).map(|w| vocab.get(w).copied().unwrap_or(NOT_IN_CANDIDATE)));
        ref_lens.push(ref_ids.len());
        counts.fill(0);
        for g in (1..=N).flat_map(|k| ref_ids.windows(k)) {
            if let Some(i) = key(g).and_then(|k| grams.binary_search_by_key(&k, |e| e.0).ok()) {
                counts[i] += 1;
            }
        }
        for (m, &c) in max_counts.iter_mut().zip(&counts) {
            *m = (*m).max(c);
        }
    }
    let mut st = BleuStats {
        testlen,
        reflen: closest_reflen(ref_lens.into_iter(), testlen),
        ..Default::default()
    };
    for k in 0..N {
        st.guess[k] = (testlen + 1).saturating_sub(k + 1);
    }
    for ((key, c), max) in grams.iter().zip(max_counts) {
        st.correct[(key >> ORDER_SHIFT) as usize - 1] += (*c).min(max) as usize;
    }
    st
}

/// `min((abs(l - testlen), l) for l in reflens)[1]`: closest length, ties to the shorter.
fn closest_reflen(ref_lens: impl Iterator<Item = usize>, testlen: usize) -> usize {
    ref_lens.map(|l| (l.abs_diff(testlen), l)).min().map_or(0, |m| m.1)
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
    let stats: Vec<BleuStats> =
        cands.par_iter().zip(refs.par_iter()).map(|(c, r)| segment_stats(c, r)).collect();
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
