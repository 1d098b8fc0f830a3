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
pub fn words<'a>(s: &'a str) -> Words<'a> {
    if s.bytes().all(splits_like_ascii_whitespace) {
        Words::Ascii(s.split_ascii_whitespace())
    } else {
        Words::General(
            s.split(is_py_space as fn(char) -> bool).filter(non_empty as fn(&&'a str) -> bool),
        )
    }
}

fn non_empty(w: &&str) -> bool {
    !w.is_empty()
}

/// Whether byte `b` is ASCII and `str::split_ascii_whitespace` treats it as Python does: the two
/// differ only on U+000B and U+001C..U+001F (Python spaces, not ASCII whitespace to Rust).
fn splits_like_ascii_whitespace(b: u8) -> bool {
    b.is_ascii() && !matches!(b, 0x0b | 0x1c..=0x1f)
}

/// The general Unicode word split of [`words`].
type UnicodeWords<'a> =
    std::iter::Filter<std::str::Split<'a, fn(char) -> bool>, fn(&&'a str) -> bool>;

/// The words of [`words`]: an ASCII fast path or the general Unicode split.
pub enum Words<'a> {
    Ascii(std::str::SplitAsciiWhitespace<'a>),
    General(UnicodeWords<'a>),
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        match self {
            Words::Ascii(it) => it.next(),
            Words::General(it) => it.next(),
        }
    }
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
    /// The product's high bits depend on every input bit; rotate them down to the low bits that
    /// pick the bucket (as rustc-hash does).
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Dense ids for all n-grams (orders 1..=4) of a corpus: an n-gram is its (n-1)-gram prefix
/// extended by one word, so each id is found with one lookup keyed by `(prefix id, word id)`.
struct NgramTable<'a> {
    words: FxMap<&'a str, u32>,
    /// Unigram id of each word id.
    unigrams: Vec<u32>,
    extend: FxMap<u64, u32>,
    /// Order (1..=4) of each n-gram id.
    order: Vec<u8>,
}

impl<'a> NgramTable<'a> {
    fn new_id(&mut self, order: u8) -> u32 {
        self.order.push(order);
        (self.order.len() - 1) as u32
    }

    fn word(&mut self, w: &'a str) -> u32 {
        let next = self.words.len() as u32;
        let id = *self.words.entry(w).or_insert(next);
        if id == next {
            let g = self.new_id(1);
            self.unigrams.push(g);
        }
        id
    }

    fn extended(&mut self, prefix: u32, word: u32, order: u8) -> u32 {
        let key = (u64::from(prefix) << 32) | u64::from(word);
        let next = self.order.len() as u32;
        let id = *self.extend.entry(key).or_insert(next);
        if id == next {
            self.order.push(order);
        }
        id
    }

    /// A table sized for about `words` words in all (avoids rehashing while it fills).
    fn with_capacity(words: usize) -> Self {
        NgramTable {
            words: FxMap::with_capacity_and_hasher(words / 8, Default::default()),
            unigrams: Vec::with_capacity(words / 8),
            extend: FxMap::with_capacity_and_hasher(words * 2, Default::default()),
            order: Vec::with_capacity(words * 2),
        }
    }

    /// Ids of all 1..4-grams of the whitespace-split sentence (with repeats); `ws` is scratch.
    fn sentence(&mut self, s: &'a str, ws: &mut Vec<u32>) -> Vec<u32> {
        ws.clear();
        for w in words(s) {
            let id = self.word(w);
            ws.push(id);
        }
        let mut out = Vec::with_capacity(ws.len() * N);
        for start in 0..ws.len() {
            let mut g = self.unigrams[ws[start] as usize];
            out.push(g);
            for k in 1..N {
                let Some(&w) = ws.get(start + k) else { break };
                g = self.extended(g, w, k as u8 + 1);
                out.push(g);
            }
        }
        out
    }
}

/// One sentence after `precook`: sorted (n-gram id, count) pairs and its bigram count.
struct Cooked {
    grams: Vec<(u32, u32)>,
    /// Sum of the 2-gram counts, `max(0, L - 1)` (the "length" of step 5).
    length: usize,
}

/// pycocoevalcap `precook`: counts of all 1..4-grams of the sentence.
fn precook(ids: Vec<u32>, order: &[u8]) -> Cooked {
    let length = ids.iter().filter(|&&g| order[g as usize] == 2).count();
    Cooked { grams: counted(ids), length }
}

/// Sorts the keys and counts each distinct one: (key, count) pairs in key order.
pub(crate) fn counted<K: Ord + Copy>(mut keys: Vec<K>) -> Vec<(K, u32)> {
    keys.sort_unstable();
    let mut counts: Vec<(K, u32)> = Vec::with_capacity(keys.len());
    for key in keys {
        match counts.last_mut() {
            Some((last, c)) if *last == key => *c += 1,
            _ => counts.push((key, 1)),
        }
    }
    counts
}

/// A tf-idf vector (`counts2vec`): sorted (n-gram id, weight) pairs, per-order norms, length.
struct Vector {
    weights: Vec<(u32, f64)>,
    norm: [f64; N],
    length: usize,
}

/// pycocoevalcap `CiderScorer.counts2vec`: `v[x] = tf(x) * (logN - ln(max(1, df(x))))`.
fn counts2vec(c: &Cooked, idf: &[f64], order: &[u8]) -> Vector {
    let mut norm = [0.0; N];
    let weights = c
        .grams
        .iter()
        .map(|&(id, tf)| {
            let w = f64::from(tf) * idf[id as usize];
            norm[order[id as usize] as usize - 1] += w * w;
            (id, w)
        })
        .collect();
    Vector { weights, norm: norm.map(f64::sqrt), length: c.length }
}

/// pycocoevalcap `CiderScorer.simCIDEr`: clipped cosine per order times the length penalty.
fn sim(hyp: &Vector, reference: &Vector, order: &[u8]) -> [f64; N] {
    let mut val = [0.0; N];
    let r = &reference.weights;
    let mut j = 0;
    for &(id, wh) in &hyp.weights {
        while j < r.len() && r[j].0 < id {
            j += 1;
        }
        if j < r.len() && r[j].0 == id {
            let wr = r[j].1;
            val[order[id as usize] as usize - 1] += wh.min(wr) * wr;
        }
    }
    let delta = hyp.length as f64 - reference.length as f64;
    let penalty = (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp();
    for (n, v) in val.iter_mut().enumerate() {
        if hyp.norm[n] != 0.0 && reference.norm[n] != 0.0 {
            *v /= hyp.norm[n] * reference.norm[n];
        }
        *v *= penalty;
    }
    val
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
    // Word count estimated from bytes (about 5 per word).
    let bytes: usize = cands.iter().chain(refs.iter().flatten()).map(String::len).sum();
    let mut table = NgramTable::with_capacity(bytes / 5);
    let mut ws = Vec::new();
    let raw: Vec<(Vec<u32>, Vec<Vec<u32>>)> = cands
        .iter()
        .zip(refs)
        .map(|(c, rs)| {
            (table.sentence(c, &mut ws), rs.iter().map(|r| table.sentence(r, &mut ws)).collect())
        })
        .collect();
    let order = table.order;
    let cooked: Vec<(Cooked, Vec<Cooked>)> = raw
        .into_par_iter()
        .map(|(c, rs)| (precook(c, &order), rs.into_iter().map(|r| precook(r, &order)).collect()))
        .collect();
    let df = document_frequency(cooked.iter().map(|(_, rs)| rs.as_slice()), order.len());
    let log_n = (cands.len() as f64).ln();
    let idf: Vec<f64> = df.iter().map(|&d| log_n - f64::from(d.max(1)).ln()).collect();
    let scores: Vec<f64> = cooked
        .par_iter()
        .map(|(c, rs)| {
            let vc = counts2vec(c, &idf, &order);
            let mut total = [0.0; N];
            for r in rs {
                let s = sim(&vc, &counts2vec(r, &idf, &order), &order);
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
fn document_frequency<'a>(images: impl Iterator<Item = &'a [Cooked]>, n_grams: usize) -> Vec<u32> {
    let mut df = vec![0u32; n_grams];
    let mut last = vec![0usize; n_grams]; // 1 + index of the last image that counted the n-gram
    for (img, rs) in images.enumerate() {
        for r in rs {
            for &(id, _) in &r.grams {
                let id = id as usize;
                if last[id] != img + 1 {
                    last[id] = img + 1;
                    df[id] += 1;
                }
            }
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
        // ASCII-only text (the fast path), Python's ASCII spaces included.
        let w: Vec<&str> = words(" a\x0bb\x0cc\rd\x1ce\x1df\x1eg\x1fh\ni\tj  k ").collect();
        assert_eq!(w, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]);
        assert!(
            matches!(words("a b"), Words::Ascii(_)) && matches!(words("a\x1fb"), Words::General(_))
        );
        assert_eq!(words(" \t ").count(), 0);
    }

    #[test]
    fn single_image_scores_zero() {
        let (c, per) = cider_d(&s(&["a dog"]), &[s(&["a dog", "a cat"])]);
        assert_eq!(c, 0.0);
        assert_eq!(per, vec![0.0]);
    }

    /// Per-order tf-idf maps, norms and bigram length of one sentence.
    type TfIdf<'s> = (Vec<std::collections::HashMap<Vec<&'s str>, f64>>, [f64; N], f64);

    /// Direct transcription of `cider_scorer.py` with string n-gram keys.
    fn naive(cands: &[String], refs: &[Vec<String>]) -> Vec<f64> {
        use std::collections::{HashMap, HashSet};
        fn cook(s: &str) -> std::collections::HashMap<Vec<&str>, f64> {
            let w: Vec<&str> = words(s).collect();
            let mut m = std::collections::HashMap::new();
            for k in 1..=N {
                for g in w.windows(k) {
                    *m.entry(g.to_vec()).or_insert(0.0) += 1.0;
                }
            }
            m
        }
        let mut df: HashMap<Vec<&str>, f64> = HashMap::new();
        for rs in refs {
            let set: HashSet<Vec<&str>> = rs.iter().flat_map(|r| cook(r).into_keys()).collect();
            for g in set {
                *df.entry(g).or_insert(0.0) += 1.0;
            }
        }
        let log_n = (cands.len() as f64).ln();
        fn vec<'s>(
            s: &'s str,
            df: &std::collections::HashMap<Vec<&str>, f64>,
            log_n: f64,
        ) -> TfIdf<'s> {
            let mut v: Vec<std::collections::HashMap<Vec<&str>, f64>> = vec![Default::default(); N];
            let mut norm = [0.0; N];
            let mut len = 0.0;
            for (g, tf) in cook(s) {
                let n = g.len() - 1;
                let w = tf * (log_n - df.get(&g).copied().unwrap_or(0.0).max(1.0).ln());
                norm[n] += w * w;
                if n == 1 {
                    len += tf;
                }
                v[n].insert(g, w);
            }
            (v, norm.map(f64::sqrt), len)
        }
        cands
            .iter()
            .zip(refs)
            .map(|(c, rs)| {
                let (vc, nc, lc) = vec(c, &df, log_n);
                let mut score = [0.0; N];
                for r in rs {
                    let (vr, nr, lr) = vec(r, &df, log_n);
                    let delta: f64 = lc - lr;
                    for n in 0..N {
                        let mut val = 0.0;
                        for (g, w) in &vc[n] {
                            let wr = vr[n].get(g).copied().unwrap_or(0.0);
                            val += w.min(wr) * wr;
                        }
                        if nc[n] != 0.0 && nr[n] != 0.0 {
                            val /= nc[n] * nr[n];
                        }
                        score[n] += val * (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp();
                    }
                }
                score.iter().sum::<f64>() / N as f64 / rs.len() as f64 * 10.0
            })
            .collect()
    }

    #[test]
    fn matches_direct_transcription() {
        let cands =
            s(&["foo bar foo bar", "a dog runs on grass", "", "grass", "a dog a dog a dog"]);
        let refs = vec![
            s(&["a foo bar", "bar foo"]),
            s(&["a dog runs", "the dog runs on the grass", "a dog runs on grass"]),
            s(&["a cat"]),
            s(&["grass grass", "a dog"]),
            s(&["a dog", "a dog"]),
        ];
        let (corpus, per) = cider_d(&cands, &refs);
        let want = naive(&cands, &refs);
        for (g, w) in per.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{per:?} vs {want:?}");
        }
        assert!((corpus - want.iter().sum::<f64>() / 5.0).abs() < 1e-12);
        assert!(per[0] > 0.0 && per[1] > 0.0);
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
