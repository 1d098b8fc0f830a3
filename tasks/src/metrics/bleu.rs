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

/// Bits per word id in an n-gram key (ids are per image: fewer than 2^30 distinct words); the
/// order goes above the N ids.
const ID_BITS: u32 = 30;
const ORDER_SHIFT: u32 = ID_BITS * N as u32;

/// pycocoevalcap `bleu_scorer.precook` on word ids: every 1..=N-gram with its count, sorted by
/// key. A key holds the order k above the k ids, `ID_BITS` bits each.
fn precook(ids: &[u32]) -> Vec<(u128, usize)> {
    let mut keys: Vec<u128> = Vec::with_capacity(ids.len() * N);
    for k in 1..=N {
        let order = (k as u128) << ORDER_SHIFT;
        keys.extend(ids.windows(k).map(|g| order | g.iter().fold(0, |key, &w| (key << ID_BITS) | w as u128)));
    }
    keys.sort_unstable();
    let mut counts: Vec<(u128, usize)> = Vec::with_capacity(keys.len());
    for key in keys {
        match counts.last_mut() {
            Some((last, c)) if *last == key => *c += 1,
            _ => counts.push((key, 1)),
        }
    }
    counts
}

/// `cook_refs` + `cook_test` + `_single_reflen(option="closest")` for one image. Words are
/// compared through ids given per image (equal strings, equal ids).
pub fn segment_stats(cand: &str, refs: &[String]) -> BleuStats {
    let mut vocab = HashMap::new();
    let ref_ids: Vec<Vec<u32>> = refs.iter().map(|r| word_ids(r, &mut vocab)).collect();
    let cand_ids = word_ids(cand, &mut vocab);
    let testlen = cand_ids.len();
    let mut st = BleuStats { testlen, reflen: closest_reflen(ref_ids.iter().map(Vec::len), testlen), ..Default::default() };
    for k in 0..N {
        st.guess[k] = (testlen + 1).saturating_sub(k + 1);
    }
    // Each n-gram's largest count in any one reference (sorted by key, then count).
    let mut all: Vec<(u128, usize)> = ref_ids.iter().flat_map(|r| precook(r)).collect();
    all.sort_unstable();
    let mut maxcounts: Vec<(u128, usize)> = Vec::with_capacity(all.len());
    for (key, c) in all {
        match maxcounts.last_mut() {
            Some((last, m)) if *last == key => *m = c,
            _ => maxcounts.push((key, c)),
        }
    }
    for (key, c) in precook(&cand_ids) {
        let max = maxcounts.binary_search_by_key(&key, |e| e.0).map_or(0, |i| maxcounts[i].1);
        st.correct[(key >> ORDER_SHIFT) as usize - 1] += c.min(max);
    }
    st
}

/// The sentence's words as ids, new words numbered in order of appearance.
fn word_ids<'a>(s: &'a str, vocab: &mut HashMap<&'a str, u32>) -> Vec<u32> {
    words(s)
        .map(|w| {
            let next = vocab.len() as u32;
            *vocab.entry(w).or_insert(next)
        })
        .collect()
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
