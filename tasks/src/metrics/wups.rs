//! WUPS (NExT-OE `metrics.py`: `wup`, `wups`, `get_wups`) and NExT-QA aggregation
//! (`eval_oe.py`), spec section 5.
//!
//! Deviation (spec 5.1): NExT-OE first passes both strings through `remove_stop` (NLTK POS
//! tagging, pywsd lemmatisation, NExT-QA stopword removal). The tagger model is not available
//! offline, so inputs are taken as **already preprocessed** strings; the NExT-QA output says so in
//! its `"note"`.
use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::wordnet::{Synset, WordNet};
use crate::input::{index, read_json, InputError, Json};

mod tokenize;
pub use tokenize::word_tokenize;

/// The two thresholds reported: WUPS@0.0 and WUPS@0.9.
pub const ALPHAS: [f64; 2] = [0.0, 0.9];
/// Output keys for the two thresholds.
pub const KEYS: [&str; 2] = ["wups_0.0", "wups_0.9"];

/// NExT-QA question types in `eval_oe.py`'s `group_dict` order (TP is merged into TN).
pub const QTYPES: [&str; 8] = ["CW", "CH", "TN", "TC", "DL", "DB", "DC", "DO"];

/// The `"note"` of the NExT-QA output (spec 5.1 deviation).
pub const PREPROCESSING_NOTE: &str = "inputs are taken as already preprocessed: NExT-OE's remove_stop \
(NLTK POS tagging, pywsd lemmatisation, NExT-QA stopword removal) is not reproduced; \
DB/DC scores are exact matches of the given strings";

#[derive(Debug, Clone, PartialEq)]
pub struct WupsItem {
    pub prediction: String,
    pub answer: String,
    pub answer_add: Option<String>,
    /// NExT-QA question type (CW, CH, TN, TP, TC, DL, DB, DC, DO).
    pub qtype: Option<String>,
}

/// NExT-OE `wup(word1, word2, alpha)` before thresholding: 1.0 for identical strings, 0.0 when
/// either word has no synset, else `wup_similarity` of the two first synsets (None -> 0.0).
fn wup_raw(a: &str, b: &str, wn: &WordNet, memo: &mut Memo) -> f64 {
    if a == b {
        return 1.0;
    }
    let key = (a.to_owned(), b.to_owned());
    if let Some(&v) = memo.pairs.get(&key) {
        return v;
    }
    let v = match (memo.first_synset(a, wn), memo.first_synset(b, wn)) {
        (Some(sa), Some(sb)) => wn.wup_similarity(&sa, &sb).unwrap_or(0.0),
        _ => 0.0,
    };
    memo.pairs.insert(key, v);
    v
}

/// NExT-OE `wup` thresholding: a similarity below `alpha` is down-weighted by 0.1.
fn threshold(sim: f64, alpha: f64) -> f64 {
    if sim < alpha {
        0.1 * sim
    } else {
        sim
    }
}

/// NExT-OE `wup(word1, word2, alpha)`.
pub fn wup(a: &str, b: &str, alpha: f64, wn: &WordNet) -> f64 {
    threshold(wup_raw(a, b, wn, &mut Memo::default()), alpha)
}

/// `synsets(word)[0]` and raw word similarities, remembered within one scoring call (answers
/// share a small vocabulary).
#[derive(Default)]
struct Memo {
    first: HashMap<String, Option<Synset>>,
    pairs: HashMap<(String, String), f64>,
}

impl Memo {
    fn first_synset(&mut self, word: &str, wn: &WordNet) -> Option<Synset> {
        if let Some(s) = self.first.get(word) {
            return *s;
        }
        let s = wn.first_synset(word);
        self.first.insert(word.to_owned(), s);
        s
    }
}

/// NExT-OE `wups(words1, words2, alpha)` for both thresholds at once, from the raw
/// similarity matrix `sim[i][j] = wup_raw(words1[i], words2[j])`: for each word of `words1`
/// the best thresholded similarity against `words2` (from 0, strictly greater replaces);
/// a best of 0 is skipped; the product of the rest, or 0 if none contributed.
fn wups_directed(sim: &[Vec<f64>], alpha: f64) -> f64 {
    let mut product = 1.0;
    let mut any = false;
    for row in sim {
        let mut best = 0.0;
        for &s in row {
            let s = threshold(s, alpha);
            if s > best {
                best = s;
            }
        }
        if best == 0.0 {
            continue;
        }
        product *= best;
        any = true;
    }
    if any {
        product
    } else {
        0.0
    }
}

/// Tokenizes both strings (NLTK `word_tokenize`) and returns the raw similarity matrices
/// pred x truth and truth x pred.
fn similarity_matrices(pred: &str, truth: &str, wn: &WordNet, memo: &mut Memo) -> [Vec<Vec<f64>>; 2] {
    let p = word_tokenize(pred);
    let t = word_tokenize(truth);
    let mut matrix = |x: &[String], y: &[String]| -> Vec<Vec<f64>> {
        x.iter().map(|a| y.iter().map(|b| wup_raw(a, b, wn, memo)).collect()).collect()
    };
    [matrix(&p, &t), matrix(&t, &p)]
}

/// NExT-OE `get_wups`: `min(wups(pred, truth), wups(truth, pred))`.
fn wups_from_matrices(m: &[Vec<Vec<f64>>; 2], alpha: f64) -> f64 {
    wups_directed(&m[0], alpha).min(wups_directed(&m[1], alpha))
}

/// WUPS at both [`ALPHAS`] (one tokenization and similarity pass).
fn get_wups_both(pred: &str, truth: &str, wn: &WordNet, memo: &mut Memo) -> [f64; 2] {
    let m = similarity_matrices(pred, truth, wn, memo);
    ALPHAS.map(|alpha| wups_from_matrices(&m, alpha))
}

/// NExT-OE `get_wups(pred, truth, alpha)`.
pub fn get_wups(pred: &str, truth: &str, alpha: f64, wn: &WordNet) -> f64 {
    wups_from_matrices(&similarity_matrices(pred, truth, wn, &mut Memo::default()), alpha)
}

/// `eval_oe.py`: TP is counted as TN.
fn merged_type(qtype: &str) -> &str {
    if qtype == "TP" {
        "TN"
    } else {
        qtype
    }
}

/// Scores of one item at both thresholds. Plain WUPS (max over `answer` and `answer_add`),
/// or with `nextqa` and type DB/DC an exact string match (`eval_oe.py`).
fn item_scores(item: &WupsItem, nextqa: bool, wn: &WordNet, memo: &mut Memo) -> [f64; 2] {
    let refs: Vec<&str> = std::iter::once(item.answer.as_str()).chain(item.answer_add.as_deref()).collect();
    let exact = nextqa && matches!(item.qtype.as_deref().map(merged_type), Some("DB" | "DC"));
    if exact {
        let hit = refs.iter().any(|r| *r == item.prediction);
        let v = if hit { 1.0 } else { 0.0 };
        return [v, v];
    }
    let mut best: Option<[f64; 2]> = None;
    for r in refs {
        let s = get_wups_both(&item.prediction, r, wn, memo);
        best = Some(match best {
            None => s,
            Some(b) => [b[0].max(s[0]), b[1].max(s[1])],
        });
    }
    best.unwrap_or([0.0, 0.0])
}

fn all_scores(items: &[WupsItem], nextqa: bool, wn: &WordNet) -> Vec<[f64; 2]> {
    items
        .par_iter()
        .map_init(Memo::default, |memo, item| item_scores(item, nextqa, wn, memo))
        .collect()
}

/// `eval_oe.py` aggregation (spec 5.4), summing in its order: per type (group_dict order,
/// questions in input order) mean x 100; WUPS_C/T/D = sum over types with that first letter /
/// their count x 100; overall = sum of type sums / count x 100. Types without questions give
/// null (the reference divides by zero). Items must have a valid `qtype`.
pub fn aggregate(items: &[WupsItem], scores: &[[f64; 2]]) -> Value {
    let mut sums = [[0.0f64; 2]; 8];
    let mut counts = [0usize; 8];
    for (t, qt) in QTYPES.iter().enumerate() {
        for (item, s) in items.iter().zip(scores) {
            if item.qtype.as_deref().map(merged_type) == Some(*qt) {
                sums[t][0] += s[0];
                sums[t][1] += s[1];
                counts[t] += 1;
            }
        }
    }
    let pct = |sum: f64, n: usize| if n == 0 { Value::Null } else { json!(sum / n as f64 * 100.0) };
    let per_type = |a: usize| -> Value {
        let m: Map<String, Value> =
            QTYPES.iter().enumerate().map(|(t, q)| (q.to_string(), pct(sums[t][a], counts[t]))).collect();
        Value::Object(m)
    };
    let letter = |c: char, a: usize| -> Value {
        let (mut sum, mut n) = (0.0, 0);
        for (t, q) in QTYPES.iter().enumerate() {
            if q.starts_with(c) {
                sum += sums[t][a];
                n += counts[t];
            }
        }
        pct(sum, n)
    };
    let all = |a: usize| -> Value {
        let mut sum = 0.0;
        for s in &sums {
            sum += s[a];
        }
        pct(sum, counts.iter().sum())
    };
    let num: Map<String, Value> = QTYPES.iter().enumerate().map(|(t, q)| (q.to_string(), json!(counts[t]))).collect();
    json!({
        "per_type_wups_0.0": per_type(0),
        "per_type_wups_0.9": per_type(1),
        "WUPS_C_0.0": letter('C', 0),
        "WUPS_T_0.0": letter('T', 0),
        "WUPS_D_0.0": letter('D', 0),
        "WUPS_all_0.0": all(0),
        "WUPS_all_0.9": all(1),
        "WUPS_C_0.9": letter('C', 1),
        "WUPS_T_0.9": letter('T', 1),
        "WUPS_D_0.9": letter('D', 1),
        "num_questions": Value::Object(num),
    })
}

/// Adds the two score keys to a question object.
fn with_scores(mut obj: Map<String, Value>, s: [f64; 2]) -> Value {
    obj.insert(KEYS[0].into(), json!(s[0]));
    obj.insert(KEYS[1].into(), json!(s[1]));
    Value::Object(obj)
}

fn item_object(item: &WupsItem) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("prediction".into(), json!(item.prediction));
    m.insert("answer".into(), json!(item.answer));
    if let Some(a) = &item.answer_add {
        m.insert("answer_add".into(), json!(a));
    }
    if let Some(t) = &item.qtype {
        m.insert("type".into(), json!(t));
    }
    m
}

fn assemble(objects: Vec<Map<String, Value>>, items: &[WupsItem], nextqa: bool, wn: &WordNet) -> Value {
    let scores = all_scores(items, nextqa, wn);
    let questions: Vec<Value> = objects.into_iter().zip(&scores).map(|(o, &s)| with_scores(o, s)).collect();
    if !nextqa {
        return Value::Array(questions);
    }
    json!({
        "questions": questions,
        "aggregate": aggregate(items, &scores),
        "note": PREPROCESSING_NOTE,
    })
}

/// Scores items; with `nextqa` returns `{"questions","aggregate","note"}`, else the list with
/// `wups_0.0`/`wups_0.9` added. With `nextqa`, items without a known type count in no group.
pub fn score(items: &[WupsItem], nextqa: bool, wordnet: &WordNet) -> Value {
    let objects = items.iter().map(item_object).collect();
    assemble(objects, items, nextqa, wordnet)
}

/// Scores `[{"prediction","answer","answer_add"?,"type"?}]` (other fields are kept in the
/// output). With `nextqa` every item needs a `type` among CW CH TN TP TC DL DB DC DO.
pub fn score_file(path: &Path, nextqa: bool, wordnet: &WordNet) -> Result<Value, InputError> {
    let root = read_json(path)?;
    let j = Json::new(path);
    let list = j.array(&root, "(root)")?;
    let mut items = Vec::with_capacity(list.len());
    let mut objects = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let field = index("", i);
        let prediction = j.str(j.get(v, &field, "prediction")?, &format!("{field}.prediction"))?.to_owned();
        let answer = j.str(j.get(v, &field, "answer")?, &format!("{field}.answer"))?.to_owned();
        let answer_add = match j.opt(v, &field, "answer_add")? {
            Some(a) => Some(j.str(a, &format!("{field}.answer_add"))?.to_owned()),
            None => None,
        };
        let qtype = match j.opt(v, &field, "type")? {
            Some(t) => Some(j.str(t, &format!("{field}.type"))?.to_owned()),
            None => None,
        };
        if nextqa {
            let tfield = format!("{field}.type");
            match qtype.as_deref() {
                None => return Err(j.err(&tfield, "missing field (needed for NExT-QA aggregation)")),
                Some(t) if !QTYPES.contains(&merged_type(t)) => {
                    return Err(j.err(&tfield, format!("unknown question type {t:?} (expected one of CW CH TN TP TC DL DB DC DO)")))
                }
                Some(_) => {}
            }
        }
        objects.push(v.as_object().cloned().unwrap_or_default());
        items.push(WupsItem { prediction, answer, answer_add, qtype });
    }
    Ok(assemble(objects, &items, nextqa, wordnet))
}

#[cfg(test)]
mod tests;
