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
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::result::{Detail, Headline, MetricResult};
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
pub const PREPROCESSING_NOTE: &str =
    "inputs are taken as already preprocessed: NExT-OE's remove_stop \
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
fn similarity_matrices(
    pred: &str,
    truth: &str,
    wn: &WordNet,
    memo: &mut Memo,
) -> [Vec<Vec<f64>>; 2] {
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
    let refs: Vec<&str> =
        std::iter::once(item.answer.as_str()).chain(item.answer_add.as_deref()).collect();
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

/// One value per NExT-QA question type, in [`QTYPES`] order (TP counted as TN).
#[allow(non_snake_case)]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerType<T> {
    pub CW: T,
    pub CH: T,
    pub TN: T,
    pub TC: T,
    pub DL: T,
    pub DB: T,
    pub DC: T,
    pub DO: T,
}

impl<T> PerType<T> {
    /// `f(t)` for each index `t` into [`QTYPES`].
    fn from_fn(f: impl Fn(usize) -> T) -> Self {
        PerType { CW: f(0), CH: f(1), TN: f(2), TC: f(3), DL: f(4), DB: f(5), DC: f(6), DO: f(7) }
    }
}

/// `eval_oe.py`'s numbers (x 100) at both thresholds; `None` for a group without questions
/// (the reference divides by zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextQaAggregate {
    #[serde(rename = "per_type_wups_0.0")]
    pub per_type_wups_0_0: PerType<Option<f64>>,
    #[serde(rename = "per_type_wups_0.9")]
    pub per_type_wups_0_9: PerType<Option<f64>>,
    #[serde(rename = "WUPS_C_0.0")]
    pub wups_c_0_0: Option<f64>,
    #[serde(rename = "WUPS_T_0.0")]
    pub wups_t_0_0: Option<f64>,
    #[serde(rename = "WUPS_D_0.0")]
    pub wups_d_0_0: Option<f64>,
    #[serde(rename = "WUPS_all_0.0")]
    pub wups_all_0_0: Option<f64>,
    #[serde(rename = "WUPS_all_0.9")]
    pub wups_all_0_9: Option<f64>,
    #[serde(rename = "WUPS_C_0.9")]
    pub wups_c_0_9: Option<f64>,
    #[serde(rename = "WUPS_T_0.9")]
    pub wups_t_0_9: Option<f64>,
    #[serde(rename = "WUPS_D_0.9")]
    pub wups_d_0_9: Option<f64>,
    pub num_questions: PerType<usize>,
}

/// `eval_oe.py` aggregation (spec 5.4), summing in its order: per type (group_dict order,
/// questions in input order) mean x 100; WUPS_C/T/D = sum over types with that first letter /
/// their count x 100; overall = sum of type sums / count x 100. Items must have a valid `qtype`.
pub fn aggregate(items: &[WupsItem], scores: &[[f64; 2]]) -> NextQaAggregate {
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
    let pct = |sum: f64, n: usize| (n > 0).then(|| sum / n as f64 * 100.0);
    let per_type = |a: usize| PerType::from_fn(|t| pct(sums[t][a], counts[t]));
    let letter = |c: char, a: usize| {
        let (mut sum, mut n) = (0.0, 0);
        for (t, q) in QTYPES.iter().enumerate() {
            if q.starts_with(c) {
                sum += sums[t][a];
                n += counts[t];
            }
        }
        pct(sum, n)
    };
    let all = |a: usize| {
        let mut sum = 0.0;
        for s in &sums {
            sum += s[a];
        }
        pct(sum, counts.iter().sum())
    };
    NextQaAggregate {
        per_type_wups_0_0: per_type(0),
        per_type_wups_0_9: per_type(1),
        wups_c_0_0: letter('C', 0),
        wups_t_0_0: letter('T', 0),
        wups_d_0_0: letter('D', 0),
        wups_all_0_0: all(0),
        wups_all_0_9: all(1),
        wups_c_0_9: letter('C', 1),
        wups_t_0_9: letter('T', 1),
        wups_d_0_9: letter('D', 1),
        num_questions: PerType::from_fn(|t| counts[t]),
    }
}

/// One scored question: the input's fields, then its two scores (0–1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WupsQuestion {
    #[serde(flatten)]
    pub fields: Map<String, Value>,
    #[serde(rename = "wups_0.0")]
    pub wups_0_0: f64,
    #[serde(rename = "wups_0.9")]
    pub wups_0_9: f64,
}

/// The NExT-QA form of a [`WupsResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextQaResult {
    /// Per question, in input order (with [`Detail::PerSample`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<Vec<WupsQuestion>>,
    pub aggregate: NextQaAggregate,
    /// [`PREPROCESSING_NOTE`].
    pub note: String,
}

/// `emu-eval metric wups`'s output: the scored list, or with `--nextqa` the NExT-QA aggregation.
#[allow(clippy::large_enum_variant)] // one value per scoring
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WupsResult {
    /// Plain WUPS has no aggregate in the reference: its list is the result, whatever the
    /// [`Detail`].
    Questions(Vec<WupsQuestion>),
    NextQa(NextQaResult),
}

impl MetricResult for WupsResult {
    /// WUPS@0.0 x 100: NExT-QA's `WUPS_all_0.0` (the paper's NExT-QA column), or the mean over
    /// the list.
    fn headline(&self) -> Headline {
        let value = match self {
            WupsResult::Questions(qs) => (!qs.is_empty())
                .then(|| 100.0 * qs.iter().map(|q| q.wups_0_0).sum::<f64>() / qs.len() as f64),
            WupsResult::NextQa(r) => r.aggregate.wups_all_0_0,
        };
        Headline { name: "WUPS", value }
    }

    /// WUPS@0.0 x 100 per question (for NExT-QA DB/DC: exact match, 100 or 0).
    fn per_sample(&self) -> Option<Vec<Option<f64>>> {
        let qs = match self {
            WupsResult::Questions(qs) => qs,
            WupsResult::NextQa(r) => r.questions.as_ref()?,
        };
        Some(qs.iter().map(|q| Some(100.0 * q.wups_0_0)).collect())
    }

    /// Plain WUPS keeps its list: it is the whole result.
    fn clear_per_sample(&mut self) {
        if let WupsResult::NextQa(r) = self {
            r.questions = None;
        }
    }
}

fn item_object(item: &WupsItem) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("prediction".into(), item.prediction.clone().into());
    m.insert("answer".into(), item.answer.clone().into());
    if let Some(a) = &item.answer_add {
        m.insert("answer_add".into(), a.clone().into());
    }
    if let Some(t) = &item.qtype {
        m.insert("type".into(), t.clone().into());
    }
    m
}

/// Scores `items`; `fields(i)` gives question i's fields for the output.
fn assemble(
    items: &[WupsItem],
    fields: impl Fn(usize) -> Map<String, Value>,
    nextqa: bool,
    wn: &WordNet,
    detail: Detail,
) -> WupsResult {
    let scores = all_scores(items, nextqa, wn);
    let questions = || -> Vec<WupsQuestion> {
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| WupsQuestion { fields: fields(i), wups_0_0: s[0], wups_0_9: s[1] })
            .collect()
    };
    if !nextqa {
        return WupsResult::Questions(questions());
    }
    WupsResult::NextQa(NextQaResult {
        questions: detail.per_sample().then(questions),
        aggregate: aggregate(items, &scores),
        note: PREPROCESSING_NOTE.to_owned(),
    })
}

/// Scores items (output fields: `prediction`, `answer`, `answer_add`, `type`). With `nextqa`,
/// items without a known type count in no group.
pub fn score(items: &[WupsItem], nextqa: bool, wordnet: &WordNet, detail: Detail) -> WupsResult {
    assemble(items, |i| item_object(&items[i]), nextqa, wordnet, detail)
}

/// Scores `[{"prediction","answer","answer_add"?,"type"?}]` (other fields are kept in the
/// output, in their order; `wups_0.0`/`wups_0.9` already in the input are replaced by new ones
/// at the end). With `nextqa` every item needs a `type` among CW CH TN TP TC DL DB DC DO.
pub fn score_file(
    path: &Path,
    nextqa: bool,
    wordnet: &WordNet,
    detail: Detail,
) -> Result<WupsResult, InputError> {
    let root = read_json(path)?;
    let j = Json::new(path);
    let list = j.array(&root, "(root)")?;
    let mut items = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let field = index("", i);
        let prediction =
            j.str(j.get(v, &field, "prediction")?, &format!("{field}.prediction"))?.to_owned();
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
                None => {
                    return Err(j.err(&tfield, "missing field (needed for NExT-QA aggregation)"))
                }
                Some(t) if !QTYPES.contains(&merged_type(t)) => {
                    return Err(j.err(
                        &tfield,
                        format!(
                        "unknown question type {t:?} (expected one of CW CH TN TP TC DL DB DC DO)"
                    ),
                    ))
                }
                Some(_) => {}
            }
        }
        items.push(WupsItem { prediction, answer, answer_add, qtype });
    }
    let fields = |i: usize| {
        let mut m = list[i].as_object().cloned().unwrap_or_default();
        for k in KEYS {
            m.shift_remove(k);
        }
        m
    };
    Ok(assemble(&items, fields, nextqa, wordnet, detail))
}

#[cfg(test)]
mod tests;
