//! CIDEr-D as pycocoevalcap `Cider` computes it (metrics.md 1.2): n = 4, sigma = 6,
//! document frequencies over the references of the evaluated set, clipped tf-idf similarity,
//! Gaussian length penalty on bigram counts.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

/// Maximum n-gram order.
pub const N: usize = 4;
/// Gaussian penalty width.
pub const SIGMA: f64 = 6.0;

/// Python `str.split()` with no argument: runs of Unicode whitespace (as `str.isspace`, which
/// also counts U+001C..U+001F) separate words; leading/trailing whitespace gives no empty words.
pub fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

/// Python `str.isspace` for one character.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Fast hasher for integer keys (FxHash multiply-rotate).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(buf));
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Padding word id for n-grams shorter than 4.
const PAD: u32 = u32::MAX;

/// An n-gram of word ids packed into 128 bits (unused slots are `PAD`).
type Key = u128;

fn pack(ids: &[u32]) -> Key {
    let mut k: u128 = 0;
    for i in 0..N {
        k = (k << 32) | u128::from(ids.get(i).copied().unwrap_or(PAD));
    }
    k
}

/// Order (1..=4) of a packed n-gram.
fn order(k: Key) -> usize {
    (0..N).filter(|i| ((k >> (32 * (N - 1 - i))) as u32) != PAD).count()
}

/// One sentence after `precook`: sorted (n-gram, count) pairs and its bigram count.
struct Cooked {
    grams: Vec<(Key, u32)>,
    /// Sum of the 2-gram counts, `max(0, L - 1)` (the "length" of step 5).
    length: usize,
}

/// pycocoevalcap `precook`: counts of all 1..4-grams of the whitespace-split sentence.
fn precook(ids: &[u32]) -> Cooked {
    let mut keys = Vec::with_capacity(ids.len() * N);
    for k in 1..=N {
        for w in ids.windows(k) {
            keys.push(pack(w));
        }
    }
    keys.sort_unstable();
    let mut grams: Vec<(Key, u32)> = Vec::with_capacity(keys.len());
    for key in keys {
        match grams.last_mut() {
            Some((k, c)) if *k == key => *c += 1,
            _ => grams.push((key, 1)),
        }
    }
    Cooked { grams, length: ids.len().saturating_sub(1) }
}

/// A tf-idf vector (`counts2vec`): sorted (n-gram, weight) pairs, per-order norms, length.
struct Vector {
    weights: Vec<(Key, f64)>,
    norm: [f64; N],
    length: usize,
}

/// pycocoevalcap `CiderScorer.counts2vec`: `v[x] = tf(x) * (logN - ln(max(1, df(x))))`.
fn counts2vec(c: &Cooked, df: &FxMap<Key, u32>, log_n: f64) -> Vector {
    let mut norm = [0.0; N];
    let weights = c
        .grams
        .iter()
        .map(|&(key, tf)| {
            let d = df.get(&key).copied().unwrap_or(0).max(1);
            let w = f64::from(tf) * (log_n - f64::from(d).ln());
            norm[order(key) - 1] += w * w;
            (key, w)
        })
        .collect();
    Vector { weights, norm: norm.map(f64::sqrt), length: c.length }
}

/// pycocoevalcap `CiderScorer.simCIDEr`: clipped cosine per order times the length penalty.
fn sim(hyp: &Vector, reference: &Vector) -> [f64; N] {
    let mut val = [0.0; N];
    let r = &reference.weights;
    let mut j = 0;
    for &(key, wh) in &hyp.weights {
        while j < r.len() && r[j].0 < key {
            j += 1;
        }
        if j < r.len() && r[j].0 == key {
            let wr = r[j].1;
            val[order(key) - 1] += wh.min(wr) * wr;
        }
    }
    let delta = hyp.length as f64 - reference.length as f64;
    let penalty = (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp();
    for n in 0..N {
        if hyp.norm[n] != 0.0 && reference.norm[n] != 0.0 {
            val[n] /= hyp.norm[n] * reference.norm[n];
        }
        val[n] *= penalty;
    }
    val
}

/// Word ids for every sentence (candidates, then references), interned in one vocabulary.
fn intern(cands: &[String], refs: &[Vec<String>]) -> (Vec<Vec<u32>>, Vec<Vec<Vec<u32>>>) {
    let mut vocab: FxMap<&str, u32> = FxMap::default();
    let c: Vec<Vec<u32>> = cands.iter().map(|s| sentence_ids(s, &mut vocab)).collect();
    let r: Vec<Vec<Vec<u32>>> =
        refs.iter().map(|rs| rs.iter().map(|s| sentence_ids(s, &mut vocab)).collect()).collect();
    (c, r)
}

fn sentence_ids<'a>(s: &'a str, vocab: &mut FxMap<&'a str, u32>) -> Vec<u32> {
    words(s)
        .map(|w| {
            let next = vocab.len() as u32;
            *vocab.entry(w).or_insert(next)
        })
        .collect()
}

/// Corpus CIDEr-D and per-image scores (pycocoevalcap `Cider.compute_score`).
///
/// `cands[i]` is the tokenized candidate of image i, `refs[i]` its tokenized references
/// (non-empty; an image without references scores NaN as in the reference). Sentences are
/// split on whitespace. The corpus value is the mean of the per-image values.
pub fn cider_d(cands: &[String], refs: &[Vec<String>]) -> (f64, Vec<f64>) {
    assert_eq!(cands.len(), refs.len(), "cider_d: one reference list per candidate");
    if cands.is_empty() {
        return (f64::NAN, Vec::new());
    }
    let (cand_ids, ref_ids) = intern(cands, refs);
    let cooked: Vec<(Cooked, Vec<Cooked>)> = cand_ids
        .par_iter()
        .zip(ref_ids.par_iter())
        .map(|(c, rs)| (precook(c), rs.iter().map(|r| precook(r)).collect()))
        .collect();
    let df = document_frequency(cooked.iter().map(|(_, rs)| rs.as_slice()));
    let log_n = (cands.len() as f64).ln();
    let scores: Vec<f64> = cooked
        .par_iter()
        .map(|(c, rs)| {
            let vc = counts2vec(c, &df, log_n);
            let mut total = [0.0; N];
            for r in rs {
                let s = sim(&vc, &counts2vec(r, &df, log_n));
                for n in 0..N {
                    total[n] += s[n];
                }
            }
            let mean = total.iter().sum::<f64>() / N as f64;
            mean / rs.len() as f64 * 10.0
        })
        .collect();
    let corpus = scores.iter().sum::<f64>() / scores.len() as f64;
    (corpus, scores)
}

/// `CiderScorer.compute_doc_freq`: number of images whose references contain each n-gram.
fn document_frequency<'a>(images: impl Iterator<Item = &'a [Cooked]>) -> FxMap<Key, u32> {
    let mut df: FxMap<Key, u32> = FxMap::default();
    let mut seen: Vec<Key> = Vec::new();
    for rs in images {
        seen.clear();
        seen.extend(rs.iter().flat_map(|r| r.grams.iter().map(|g| g.0)));
        seen.sort_unstable();
        seen.dedup();
        for &k in &seen {
            *df.entry(k).or_insert(0) += 1;
        }
    }
    df
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn python_split_whitespace() {
        let w: Vec<&str> = words(" a\u{a0}b\tc\u{2028}d\u{1f}e  ").collect();
        assert_eq!(w, ["a", "b", "c", "d", "e"]);
        assert_eq!(words("").count(), 0);
    }

    #[test]
    fn single_image_scores_zero() {
        let (c, per) = cider_d(&s(&["a dog"]), &[s(&["a dog", "a cat"])]);
        assert_eq!(c, 0.0);
        assert_eq!(per, vec![0.0]);
    }

    #[test]
    fn packed_order() {
        assert_eq!(order(pack(&[1])), 1);
        assert_eq!(order(pack(&[1, 2, 3])), 3);
        assert_eq!(order(pack(&[0, 0, 0, 0])), 4);
    }

    #[test]
    fn length_is_bigram_count_and_identical_images_score_high() {
        let cands = s(&["a dog runs", "a cat sleeps", "x"]);
        let refs = vec![s(&["a dog runs"]), s(&["a cat sleeps"]), s(&["y"])];
        let (_, per) = cider_d(&cands, &refs);
        // Identical to its only reference: every order has cosine 1 except orders the sentence
        // lacks (3 words: no 4-grams -> 0), so the score is 10 * 3/4.
        assert!((per[0] - 7.5).abs() < 1e-12, "{per:?}");
        assert_eq!(per[2], 0.0);
    }
}
