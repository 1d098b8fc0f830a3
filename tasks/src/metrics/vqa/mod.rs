//! VQA accuracy: official, Emu (LAVIS), OKVQA and VizWiz variants (metrics.md 2).
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::InputError;
use crate::input::{index, parse_json, read_text, Json};
use crate::metrics::result::{finite_or_none, null_as_nan, Detail, Headline, Keyed, MetricResult};
use crate::metrics::{porter, vizwiz};

#[cfg(test)]
mod golden_tests;
pub mod normalize;
pub mod tables;

use normalize::{
    clean_whitespace, official_contractions, process_digit_article, process_punctuation,
    Contractions,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Official,
    Emu,
    Okvqa,
    Vizwiz,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Official => "official",
            Variant::Emu => "emu",
            Variant::Okvqa => "okvqa",
            Variant::Vizwiz => "vizwiz",
        }
    }

    /// The variant [`Variant::name`] spells `name`.
    pub fn parse(name: &str) -> Option<Variant> {
        [Variant::Official, Variant::Emu, Variant::Okvqa, Variant::Vizwiz]
            .into_iter()
            .find(|v| v.name() == name)
    }
}

/// Scores `{"questions":[…]}` with the given variant.
pub fn score_file(path: &Path, variant: Variant, detail: Detail) -> Result<VqaResult, InputError> {
    let text = read_text(path)?;
    let items = match parse_items_fast(&text) {
        Some(items) => items,
        // Slow path: names the file and field of the problem.
        None => parse_items(path, &parse_json(path, &text)?)?,
    };
    if variant == Variant::Vizwiz {
        check_answerability_complete(path, &items)?;
    }
    Ok(score(&items, variant, detail))
}

/// VizWiz answerability needs `answerable` and `answerable_pred` on every question once any
/// question carries one of them.
fn check_answerability_complete(path: &Path, items: &[VqaItem]) -> Result<(), InputError> {
    if !items.iter().any(|it| it.answerable.is_some() || it.answerable_pred.is_some()) {
        return Ok(());
    }
    for (i, it) in items.iter().enumerate() {
        for (key, present) in [
            ("answerable", it.answerable.is_some()),
            ("answerable_pred", it.answerable_pred.is_some()),
        ] {
            if !present {
                return Err(InputError::field(
                    path,
                    format!("{}.{key}", index("questions", i)),
                    "missing field (other questions carry answerability; all must for average precision and F1)",
                ));
            }
        }
    }
    Ok(())
}

/// Typed deserialisation of a well-formed file; `None` on anything `parse_items` would reject
/// (or might read differently, e.g. duplicate keys), so that it reports the error.
fn parse_items_fast(text: &str) -> Option<Vec<VqaItem>> {
    #[derive(serde::Deserialize)]
    struct File {
        questions: Vec<Question>,
    }
    #[derive(serde::Deserialize)]
    struct Question {
        question_id: Option<Value>,
        image: Option<Value>,
        answers: Vec<String>,
        prediction: String,
        question_type: Option<String>,
        answer_type: Option<String>,
        answerable: Option<i64>,
        answerable_pred: Option<f64>,
    }
    let file: File = serde_json::from_str(text).ok()?;
    if file.questions.is_empty() {
        return None;
    }
    file.questions
        .into_iter()
        .map(|q| {
            let id = match (q.question_id, q.image) {
                (Some(id), _) => QuestionId::QuestionId(id),
                (None, Some(id)) => QuestionId::Image(id),
                (None, None) => return None,
            };
            if q.answers.is_empty() || q.answerable.is_some_and(|a| a != 0 && a != 1) {
                return None;
            }
            Some(VqaItem {
                id,
                answers: q.answers,
                prediction: q.prediction,
                question_type: q.question_type,
                answer_type: q.answer_type,
                answerable: q.answerable,
                answerable_pred: q.answerable_pred,
            })
        })
        .collect()
}

/// The id a question is echoed with: `question_id`, or `image` for VizWiz.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QuestionId {
    #[serde(rename = "question_id")]
    QuestionId(Value),
    #[serde(rename = "image")]
    Image(Value),
}

/// One question to score.
#[derive(Debug, Clone, PartialEq)]
pub struct VqaItem {
    pub id: QuestionId,
    pub answers: Vec<String>,
    pub prediction: String,
    pub question_type: Option<String>,
    pub answer_type: Option<String>,
    pub answerable: Option<i64>,
    pub answerable_pred: Option<f64>,
}

/// Reads the `questions` list, naming the file and field path on error.
pub fn parse_items(path: &Path, root: &Value) -> Result<Vec<VqaItem>, InputError> {
    let j = Json::new(path);
    let list = j.array(j.get(root, "", "questions")?, "questions")?;
    if list.is_empty() {
        return Err(j.err("questions", "no questions to score"));
    }
    let mut items = Vec::with_capacity(list.len());
    for (i, q) in list.iter().enumerate() {
        let f = index("questions", i);
        let id = match (j.opt(q, &f, "question_id")?, j.opt(q, &f, "image")?) {
            (Some(id), _) => QuestionId::QuestionId(id.clone()),
            (None, Some(id)) => QuestionId::Image(id.clone()),
            (None, None) => return Err(j.err(&f, "missing field question_id (or image)")),
        };
        let answers = j.strings(j.get(q, &f, "answers")?, &format!("{f}.answers"))?;
        if answers.is_empty() {
            return Err(j.err(&format!("{f}.answers"), "no ground-truth answers"));
        }
        let opt_str = |key: &str| -> Result<Option<String>, InputError> {
            j.opt(q, &f, key)?
                .map(|v| j.str(v, &format!("{f}.{key}")).map(str::to_owned))
                .transpose()
        };
        let answerable = j
            .opt(q, &f, "answerable")?
            .map(|v| j.i64(v, &format!("{f}.answerable")))
            .transpose()?;
        if let Some(a) = answerable {
            if a != 0 && a != 1 {
                return Err(
                    j.err(&format!("{f}.answerable"), format!("expected 0 or 1, found {a}"))
                );
            }
        }
        let answerable_pred = j
            .opt(q, &f, "answerable_pred")?
            .map(|v| j.f64(v, &format!("{f}.answerable_pred")))
            .transpose()?;
        items.push(VqaItem {
            id,
            answers,
            prediction: j.str(j.get(q, &f, "prediction")?, &format!("{f}.prediction"))?.to_owned(),
            question_type: opt_str("question_type")?,
            answer_type: opt_str("answer_type")?,
            answerable,
            answerable_pred,
        });
    }
    Ok(items)
}

/// Aggregate VQA accuracies (0–100); the same shape holds the unrounded and the rounded values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaAggregate {
    #[serde(deserialize_with = "null_as_nan")]
    pub overall: f64,
    /// Mean per answer type, types in order of first appearance.
    #[serde(rename = "perAnswerType")]
    pub per_answer_type: Keyed<f64>,
    /// Mean per question type (not for VizWiz, whose script has none).
    #[serde(rename = "perQuestionType", default, skip_serializing_if = "Option::is_none")]
    pub per_question_type: Option<Keyed<f64>>,
    /// VizWiz answerability, x 100, when every question carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswerability: Option<vizwiz::Unanswerability>,
}

impl VqaAggregate {
    /// Every value through `f` (Python's `round(…, 2)` for `rounded`).
    fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        VqaAggregate {
            overall: f(self.overall),
            per_answer_type: self.per_answer_type.map(|&x| f(x)),
            per_question_type: self.per_question_type.as_ref().map(|m| m.map(|&x| f(x))),
            unanswerability: self.unanswerability.map(|u| vizwiz::Unanswerability {
                average_precision: f(u.average_precision),
                f1_score: f(u.f1_score),
            }),
        }
    }
}

/// One question of a [`VqaResult`]: its id and accuracy (0–100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaQuestion {
    #[serde(flatten)]
    pub id: QuestionId,
    pub accuracy: f64,
}

/// `emu-eval metric vqa`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaResult {
    pub variant: Variant,
    #[serde(flatten)]
    pub aggregate: VqaAggregate,
    /// The reference's `round(…, 2)` of every aggregate value.
    pub rounded: VqaAggregate,
    /// Per question, in input order (with [`Detail::PerSample`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<Vec<VqaQuestion>>,
}

impl MetricResult for VqaResult {
    /// Overall accuracy in %, named as the task registry names the variant's metric.
    fn headline(&self) -> Headline {
        let name = match self.variant {
            Variant::Official | Variant::Emu => "VQA accuracy",
            Variant::Okvqa => "VQA accuracy (OK-VQA, stemmed)",
            Variant::Vizwiz => "VQA accuracy (VizWiz)",
        };
        Headline { name, value: finite_or_none(self.aggregate.overall) }
    }

    fn per_sample(&self) -> Option<Vec<Option<f64>>> {
        self.questions.as_ref().map(|qs| qs.iter().map(|q| Some(q.accuracy)).collect())
    }

    fn clear_per_sample(&mut self) {
        self.questions = None;
    }
}

/// Scores questions; `score_file` returns the same.
///
/// Values are on the 0–100 scale and unrounded (`100 * sum / count`, as the references compute
/// them before `round(…, 2)`); `rounded` holds the reference's `round(…, 2)`.
pub fn score(items: &[VqaItem], variant: Variant, detail: Detail) -> VqaResult {
    let accs = question_accuracies(items, variant);
    let keyed = |means: Vec<(&str, f64)>| {
        Keyed(means.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    };
    let aggregate = VqaAggregate {
        overall: percent(accs.iter().copied()),
        per_answer_type: keyed(group_means(items, &accs, |it| it.answer_type.as_deref())),
        per_question_type: (variant != Variant::Vizwiz)
            .then(|| keyed(group_means(items, &accs, |it| it.question_type.as_deref()))),
        unanswerability: if variant == Variant::Vizwiz { answerability(items) } else { None }.map(
            |u| vizwiz::Unanswerability {
                average_precision: 100.0 * u.average_precision,
                f1_score: 100.0 * u.f1_score,
            },
        ),
    };
    let questions = detail.per_sample().then(|| {
        items
            .iter()
            .zip(&accs)
            .map(|(it, &acc)| VqaQuestion { id: it.id.clone(), accuracy: 100.0 * acc })
            .collect()
    });
    VqaResult { variant, rounded: aggregate.map(|x| py_round(x, 2)), aggregate, questions }
}

/// Answerability scores when every item carries `answerable` and `answerable_pred` (otherwise
/// none; `score_file` rejects a file where only some do).
fn answerability(items: &[VqaItem]) -> Option<vizwiz::Unanswerability> {
    let gt: Option<Vec<i64>> = items.iter().map(|it| it.answerable).collect();
    let pred: Option<Vec<f64>> = items.iter().map(|it| it.answerable_pred).collect();
    match (gt, pred) {
        (Some(gt), Some(pred)) if !gt.is_empty() => Some(vizwiz::unanswerability(&gt, &pred)),
        _ => None,
    }
}

/// Inputs above this size are scored in parallel.
const PARALLEL_MIN: usize = 4096;

/// Per-question accuracies on the 0–1 scale, in input order.
pub fn question_accuracies(items: &[VqaItem], variant: Variant) -> Vec<f64> {
    let one = |it: &VqaItem| question_accuracy(&it.answers, &it.prediction, variant);
    if items.len() >= PARALLEL_MIN {
        items.par_iter().map(one).collect()
    } else {
        items.iter().map(one).collect()
    }
}

/// Accuracy of one question (0–1) under the given variant.
pub fn question_accuracy(answers: &[String], prediction: &str, variant: Variant) -> f64 {
    match variant {
        Variant::Official => {
            // Whitespace cleanup of both sides, then full normalisation of both sides only if the
            // cleaned answers are not all identical.
            let gts: Vec<Cow<str>> = answers.iter().map(|a| clean_whitespace(a)).collect();
            let pred = clean_whitespace(prediction);
            if all_identical(&gts) {
                leave_one_out_accuracy(&pred, &gts)
            } else {
                let norm = |s: &str| {
                    process_digit_article(&process_punctuation(s), official_contractions())
                };
                let gts = map_dedup(&gts, |s| Cow::Owned(norm(s)));
                leave_one_out_accuracy(&norm(&pred), &gts)
            }
        }
        Variant::Emu | Variant::Okvqa => {
            let punct: fn(&str) -> String = if variant == Variant::Okvqa {
                process_punctuation_stemmed
            } else {
                process_punctuation
            };
            let pred = process_digit_article(
                &punct(&clean_whitespace(prediction)),
                official_contractions(),
            );
            if all_identical(answers) {
                leave_one_out_accuracy(&pred, answers)
            } else {
                let gts = map_dedup(answers, |s| Cow::Owned(punct(s)));
                leave_one_out_accuracy(&pred, &gts)
            }
        }
        Variant::Vizwiz => leave_one_out_accuracy(&vizwiz_prediction(prediction), answers),
    }
}

/// The processed prediction of the VizWiz `vqaEval.py` (ground truth is used as stored).
pub fn vizwiz_prediction(prediction: &str) -> String {
    normalise_prediction(prediction, vizwiz::vizwiz_contractions())
}

/// Whitespace cleanup, `processPunctuation`, `processDigitArticle` with the given table.
pub fn normalise_prediction(prediction: &str, contractions: &Contractions) -> String {
    process_digit_article(&process_punctuation(&clean_whitespace(prediction)), contractions)
}

/// `processPunctuation` of Emu's `OKVQAEval`: the result is passed whole to NLTK's
/// `PorterStemmer().stem` (which lowercases).
pub fn process_punctuation_stemmed(t: &str) -> String {
    porter::stem(&process_punctuation(t))
}

/// `len(set(gtAnswers)) <= 1`.
pub fn all_identical<S: AsRef<str>>(answers: &[S]) -> bool {
    answers.windows(2).all(|w| w[0].as_ref() == w[1].as_ref())
}

/// Applies `f` to each answer, reusing the result for repeated strings.
fn map_dedup<'a, S: AsRef<str>>(
    answers: &'a [S],
    f: impl Fn(&'a str) -> Cow<'a, str>,
) -> Vec<Cow<'a, str>> {
    let mut out: Vec<Cow<'a, str>> = Vec::with_capacity(answers.len());
    for (i, a) in answers.iter().enumerate() {
        let a = a.as_ref();
        match answers[..i].iter().position(|b| b.as_ref() == a) {
            Some(k) => {
                let prev = out[k].clone();
                out.push(prev);
            }
            None => out.push(f(a)),
        }
    }
    out
}

/// Leave-one-out accuracy by position: `mean_j min(1, #{k != j : g_k == a} / 3)`, summed left to
/// right like the reference's `sum(gtAcc) / len(gtAcc)`.
pub fn leave_one_out_accuracy<S: AsRef<str>>(prediction: &str, answers: &[S]) -> f64 {
    let hits: Vec<bool> = answers.iter().map(|g| g.as_ref() == prediction).collect();
    let total = hits.iter().filter(|&&h| h).count();
    let mut sum = 0.0;
    for &h in &hits {
        let m = total - usize::from(h);
        sum += if m >= 3 { 1.0 } else { m as f64 / 3.0 };
    }
    sum / answers.len() as f64
}

/// `100 * sum(accs) / len(accs)` with a left-to-right sum (Python 3.11 `sum`).
fn percent(accs: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for a in accs {
        sum += a;
        n += 1;
    }
    100.0 * sum / n as f64
}

/// Means per group, groups in order of first appearance; items without a group are skipped.
fn group_means<'a>(
    items: &'a [VqaItem],
    accs: &[f64],
    key: impl Fn(&'a VqaItem) -> Option<&'a str>,
) -> Vec<(&'a str, f64)> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<f64>> = HashMap::new();
    for (it, &acc) in items.iter().zip(accs) {
        if let Some(k) = key(it) {
            groups
                .entry(k)
                .or_insert_with(|| {
                    order.push(k);
                    Vec::new()
                })
                .push(acc);
        }
    }
    order.into_iter().map(|k| (k, percent(groups[k].iter().copied()))).collect()
}

/// Python `round(x, ndigits)`: round half to even on the exact binary value (Rust's fixed
/// precision formatting is exact and rounds ties to even), read back as the nearest double.
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn leave_one_out_values() {
        let mut gts = vec!["no"; 10];
        let expect = [0.0, 0.3, 0.6, 0.9, 1.0, 1.0];
        for (m, want) in expect.iter().enumerate() {
            if m > 0 {
                gts[m - 1] = "yes";
            }
            let acc = leave_one_out_accuracy("yes", &gts);
            assert!((acc - want).abs() < 1e-12, "{m}: {acc}");
        }
        // 1/3 + 1/3 + 8 * 2/3 summed left to right, then / 10 (Python gives exactly 0.6).
        assert_eq!(
            leave_one_out_accuracy(
                "yes",
                &["yes", "yes", "no", "no", "no", "no", "no", "no", "no", "no"]
            ),
            0.6
        );
    }

    #[test]
    fn official_skips_normalisation_for_identical_answers() {
        let yes = s(&["yes"; 10]);
        assert_eq!(question_accuracy(&yes, "Yes", Variant::Official), 0.0);
        assert_eq!(question_accuracy(&yes, " yes\n", Variant::Official), 1.0);
        let mut mixed = yes.clone();
        mixed[0] = "no".into();
        assert_eq!(question_accuracy(&mixed, "Yes.", Variant::Official), 1.0);
    }

    #[test]
    fn emu_normalises_prediction_always_and_answers_by_punctuation_only() {
        let beatles = s(&["the beatles"; 10]);
        assert_eq!(question_accuracy(&beatles, "the beatles", Variant::Emu), 0.0);
        let tshirt = s(&["t-shirt"; 10]);
        assert_eq!(question_accuracy(&tshirt, "t-shirt", Variant::Emu), 0.0);
        let mut two = s(&["two"; 10]);
        two[9] = "2".into();
        // GT `two` stays `two` (punctuation only), prediction `two` becomes `2`: one match.
        assert!((question_accuracy(&two, "two", Variant::Emu) - 0.3).abs() < 1e-12);
    }

    #[test]
    fn okvqa_stems_after_punctuation() {
        assert_eq!(process_punctuation_stemmed("Hot dogs."), "hot dog");
        let tennis = s(&["tennis"; 10]);
        assert_eq!(question_accuracy(&tennis, "tennis", Variant::Okvqa), 0.0);
    }

    #[test]
    fn vizwiz_uses_typographic_contractions_and_raw_answers() {
        assert_eq!(vizwiz_prediction("Dont."), "don\u{2019}t");
        let gts = s(&["don\u{2019}t"; 10]);
        assert_eq!(question_accuracy(&gts, "dont", Variant::Vizwiz), 1.0);
    }

    #[test]
    fn python_round() {
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(71.30044843049328, 2), 71.3);
    }
}
