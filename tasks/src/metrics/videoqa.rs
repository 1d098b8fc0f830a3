//! MSVD-QA / MSRVTT-QA top-1 accuracy (metrics.md 4).
use serde::{Deserialize, Serialize};

use crate::metrics::postprocess::vqa_short_answer;
use crate::metrics::result::{Detail, Headline, MetricResult};
use crate::metrics::vqa::normalize::py_strip;

/// The rule `score` applies, printed with the result.
pub const NORMALISATION: &str = "prediction: Emu short_answer post-processing (cut at first newline, \". \", '\"', \", \"; \
strip; lowercase; drop one trailing '.'; remove leading \"it is \", \"it's \", \"a \", \"an \", \"the \" once each, in turn), \
then lowercase and strip; answer: lowercase and strip; correct iff the strings are equal (no synonyms, no partial credit)";

/// Normalises a raw generation: `short_answer`, then lowercase and strip.
pub fn normalise_prediction(raw: &str) -> String {
    normalise_answer(&vqa_short_answer(raw))
}

/// Normalises a ground-truth answer: lowercase and strip (Python `str.strip`).
pub fn normalise_answer(answer: &str) -> String {
    py_strip(&answer.to_lowercase()).to_owned()
}

/// One question of a [`VideoQaResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoQaQuestion {
    pub prediction_normalised: String,
    pub answer: String,
    pub correct: bool,
}

/// Top-1 accuracy of MSVD-QA / MSRVTT-QA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoQaResult {
    /// In %, `None` without questions.
    pub accuracy: Option<f64>,
    pub correct: usize,
    pub total: usize,
    /// The rule applied ([`NORMALISATION`]).
    pub normalisation: String,
    /// Per question, in input order (with [`Detail::PerSample`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<Vec<VideoQaQuestion>>,
}

impl MetricResult for VideoQaResult {
    fn headline(&self) -> Headline {
        Headline { name: "top-1 accuracy", value: self.accuracy }
    }

    /// 100 for a correct answer, 0 otherwise.
    fn per_sample(&self) -> Option<Vec<Option<f64>>> {
        self.questions
            .as_ref()
            .map(|qs| qs.iter().map(|q| Some(if q.correct { 100.0 } else { 0.0 })).collect())
    }

    fn clear_per_sample(&mut self) {
        self.questions = None;
    }
}

/// Scores `(raw prediction, answer)` pairs.
pub fn score(items: &[(String, String)], detail: Detail) -> VideoQaResult {
    let questions: Vec<VideoQaQuestion> = items
        .iter()
        .map(|(raw, answer)| {
            let prediction_normalised = normalise_prediction(raw);
            let answer = normalise_answer(answer);
            let correct = prediction_normalised == answer;
            VideoQaQuestion { prediction_normalised, answer, correct }
        })
        .collect();
    let correct = questions.iter().filter(|q| q.correct).count();
    let total = items.len();
    VideoQaResult {
        accuracy: (total > 0).then(|| 100.0 * correct as f64 / total as f64),
        correct,
        total,
        normalisation: NORMALISATION.to_owned(),
        questions: detail.per_sample().then_some(questions),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise_prediction("The Dog.\nmore"), "dog");
        assert_eq!(normalise_prediction("It is a man, who"), "man");
        assert_eq!(normalise_answer(" Cat "), "cat");
    }

    #[test]
    fn top1_accuracy() {
        let r = score(
            &pairs(&[("A cat.", "cat"), ("dogs", "dog"), ("It is two", "two"), ("yes", "no")]),
            Detail::PerSample,
        );
        assert_eq!(r.per_sample(), Some(vec![Some(100.0), Some(0.0), Some(100.0), Some(0.0)]));
        assert_eq!(r.headline().value, Some(50.0));
        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(serde_json::from_value::<VideoQaResult>(out.clone()).unwrap(), r);
        assert_eq!(out["accuracy"], json!(50.0));
        assert_eq!(out["correct"], json!(2));
        assert_eq!(out["total"], json!(4));
        assert_eq!(out["questions"][0]["prediction_normalised"], json!("cat"));
        assert_eq!(out["questions"][1]["correct"], json!(false));
        assert!(out["normalisation"].as_str().is_some_and(|s| s.contains("short_answer")));
    }

    #[test]
    fn empty_input_has_no_accuracy() {
        let out = serde_json::to_value(score(&[], Detail::Aggregate)).unwrap();
        assert!(out["accuracy"].is_null());
        assert_eq!(out["total"], json!(0));
    }
}
