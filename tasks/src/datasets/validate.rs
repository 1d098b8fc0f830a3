//! Consistency of loaded samples: what a scorer or a prompt reads must be there and agree with its
//! related fields. The loaders check types and references while reading; this pass checks the
//! loaded values and collects every problem (it never stops at the first).
use std::path::Path;

use super::{Content, Sample};
use crate::input::InputError;

/// VisDial answer options per round.
pub const VISDIAL_OPTIONS: usize = 100;

/// Every problem of `samples` (split `split` of the task folder `dir`), each naming the file,
/// the field and the sample (the folder and split for a sample without an origin).
pub fn validate(dir: &Path, split: &str, samples: &[Sample]) -> Vec<InputError> {
    let mut out = Vec::new();
    // A split is scored when any of its samples has answers: then all must.
    let scored = samples.iter().any(has_answers);
    for s in samples {
        // `FILE: path.to.field: problem (sample id)` where the loader recorded the origin.
        let mut problem = |field: &str, msg: String| {
            out.push(match s.origin.locate(field) {
                Some((file, path)) => {
                    InputError::field(file, path, format!("{msg} (sample {})", s.id))
                }
                None => InputError::field(dir, format!("{split}: sample {}: {field}", s.id), msg),
            })
        };
        match &s.content {
            Content::Caption { references } => {
                if scored && references.iter().all(|r| r.trim().is_empty()) {
                    problem("references", "no non-empty reference caption".into());
                }
            }
            Content::TextToImage { caption, .. } => {
                if caption.trim().is_empty() {
                    problem("caption", "empty caption".into());
                }
            }
            Content::Vqa { question, answers, .. } => {
                if question.trim().is_empty() {
                    problem("question", "empty question".into());
                }
                if scored && answers.is_empty() {
                    problem(
                        "answers",
                        "no ground-truth answers in a split whose other samples have them".into(),
                    );
                }
            }
            Content::Dialog { question, options, gt_index, gt_relevance, history, .. } => {
                if let Some(i) = history.iter().position(|t| t.question.trim().is_empty()) {
                    problem(&format!("history[{i}].question"), "empty question".into());
                }
                if question.is_empty() {
                    continue; // a whole training dialog (support pool entry)
                }
                if options.len() != VISDIAL_OPTIONS {
                    problem(
                        "answer_options",
                        format!("{} options, expected {VISDIAL_OPTIONS}", options.len()),
                    );
                }
                if let Some(g) = gt_index {
                    if *g >= options.len() {
                        problem("gt_index", format!("{g} is past the {} options", options.len()));
                    }
                }
                if let Some(rel) = gt_relevance {
                    if rel.len() != options.len() {
                        problem(
                            "gt_relevance",
                            format!("{} values for {} options", rel.len(), options.len()),
                        );
                    }
                    // The metric's own check: finite, >= 0, float32 sums that cannot overflow.
                    let check = crate::metrics::visdial::check_relevance(rel, rel.len());
                    if let Err(e) = check {
                        problem("gt_relevance", e.0);
                    }
                }
            }
            Content::VideoQa { question, answer, .. } => {
                if question.trim().is_empty() {
                    problem("question", "empty question".into());
                }
                if scored && answer.trim().is_empty() {
                    problem("answer", "empty answer in a scored split".into());
                }
            }
        }
    }
    out
}

fn has_answers(s: &Sample) -> bool {
    match &s.content {
        Content::Caption { references } => !references.is_empty(),
        Content::TextToImage { .. } => true,
        Content::Vqa { answers, .. } => !answers.is_empty(),
        Content::Dialog { gt_index, .. } => gt_index.is_some(),
        Content::VideoQa { answer, .. } => !answer.trim().is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::{Media, SampleId, Turn};

    fn vqa(id: u64, answers: &[&str]) -> Sample {
        Sample {
            id: SampleId::Int(id),
            media: Media::image("a.jpg"),
            content: Content::Vqa {
                question: "what?".into(),
                answers: answers.iter().map(|a| a.to_string()).collect(),
                question_type: None,
                answer_type: None,
                answerable: None,
            },
            origin: Default::default(),
        }
    }

    #[test]
    fn unscored_split_may_lack_answers_but_a_scored_one_may_not() {
        assert!(validate(Path::new("d"), "test", &[vqa(1, &[]), vqa(2, &[])]).is_empty());
        let p = validate(Path::new("d"), "val", &[vqa(1, &["yes"]), vqa(2, &[]), vqa(3, &[])]);
        assert_eq!(p.len(), 2);
        assert!(p[0].to_string().contains("sample 2: answers"));
    }

    #[test]
    fn visdial_lists_must_agree_with_the_option_count() {
        let s = Sample {
            id: SampleId::Round { image_id: 1, round_id: 2 },
            media: Media::image("a.jpg"),
            content: Content::Dialog {
                caption: "c".into(),
                history: vec![Turn { question: " ".into(), answer: "a".into() }],
                question: "q?".into(),
                options: vec!["x".into(); 99],
                gt_index: Some(120),
                gt_relevance: Some(vec![0.5, f64::NAN]),
            },
            origin: Default::default(),
        };
        let p: Vec<String> =
            validate(Path::new("d"), "val", &[s]).iter().map(|e| e.to_string()).collect();
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p.iter().any(|e| e.contains("answer_options: 99 options")));
        assert!(p.iter().any(|e| e.contains("gt_index: 120")));
        assert!(p.iter().any(|e| e.contains("gt_relevance: 2 values")));
        assert!(p.iter().any(|e| e.contains("history[0].question")));
    }
}
