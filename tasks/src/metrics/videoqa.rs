//! MSVD-QA / MSRVTT-QA top-1 accuracy (metrics.md 4).
use serde_json::{json, Value};

use crate::metrics::postprocess::vqa_short_answer;
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

/// `(raw prediction, answer)` pairs; returns `{"accuracy", "normalisation", "questions":[…]}`.
pub fn score(items: &[(String, String)]) -> Value {
    let mut correct = 0usize;
    let questions: Vec<Value> = items
        .iter()
        .map(|(raw, answer)| {
            let pred = normalise_prediction(raw);
            let ans = normalise_answer(answer);
            let ok = pred == ans;
            correct += usize::from(ok);
            json!({"prediction_normalised": pred, "answer": ans, "correct": ok})
        })
        .collect();
    let total = items.len();
    let accuracy = if total == 0 { Value::Null } else { json!(100.0 * correct as f64 / total as f64) };
    json!({
        "accuracy": accuracy,
        "correct": correct,
        "total": total,
        "normalisation": NORMALISATION,
        "questions": questions,
    })
}

#[cfg(test)]
mod tests {
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
        let out = score(&pairs(&[("A cat.", "cat"), ("dogs", "dog"), ("It is two", "two"), ("yes", "no")]));
        assert_eq!(out["accuracy"], json!(50.0));
        assert_eq!(out["correct"], json!(2));
        assert_eq!(out["total"], json!(4));
        assert_eq!(out["questions"][0]["prediction_normalised"], json!("cat"));
        assert_eq!(out["questions"][1]["correct"], json!(false));
        assert!(out["normalisation"].as_str().is_some_and(|s| s.contains("short_answer")));
    }

    #[test]
    fn empty_input_has_no_accuracy() {
        let out = score(&[]);
        assert!(out["accuracy"].is_null());
        assert_eq!(out["total"], json!(0));
    }
}
