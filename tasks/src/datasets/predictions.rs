//! Scoring a predictions file in the task's official result format against a loaded split:
//! join on the sample id, report unknown/duplicate/missing ids, call the metric functions.
use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use super::{Content, Sample, SampleId};
use crate::input::{index, read_json, InputError, Json};
use crate::metrics::{caption, videoqa, visdial, vqa, wordnet::WordNet, wups};
use crate::registry::{ResultFormat, Scorer, Task};

/// One prediction: text, or VisDial per-option ranks.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Text(String),
    Ranks(Vec<u32>),
}

/// An integer given as a JSON number or a decimal string (NExT-QA ids are often strings).
fn int_or_text(j: &Json, v: &Value, field: &str) -> Result<u64, InputError> {
    match v {
        Value::String(s) => s.trim().parse().map_err(|_| j.err(field, format!("expected an integer, found {s:?}"))),
        _ => j.u64(v, field),
    }
}

/// Reads a predictions file in the task's result format into `(id, prediction)` pairs, in file order.
pub fn read(task: &Task, path: &Path) -> Result<Vec<(SampleId, Prediction)>, InputError> {
    let format = task.result_format;
    if format == ResultFormat::Images {
        return Err(InputError::file(path, format!("task {} has no predictions format for `score`", task.id)));
    }
    let fmt = format.describe();
    let root = read_json(path)?;
    let j = Json::new(path);
    let list = j.array(&root, "(root)").map_err(|e| super::context(e, format!("expected {fmt}")))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, rec) in list.iter().enumerate() {
        let f = index("", i);
        let text = |key: &str| -> Result<Prediction, InputError> {
            Ok(Prediction::Text(j.str(j.get(rec, &f, key)?, &format!("{f}.{key}"))?.to_owned()))
        };
        let item = match format {
            ResultFormat::CocoCaption => (SampleId::Int(j.u64(j.get(rec, &f, "image_id")?, &format!("{f}.image_id"))?), text("caption")?),
            ResultFormat::VizwizImage => (SampleId::Image(j.str(j.get(rec, &f, "image")?, &format!("{f}.image"))?.to_owned()), text("answer")?),
            ResultFormat::VisdialRanks => {
                let image_id = j.u64(j.get(rec, &f, "image_id")?, &format!("{f}.image_id"))?;
                let round_id = j.u64(j.get(rec, &f, "round_id")?, &format!("{f}.round_id"))? as u32;
                let rf = format!("{f}.ranks");
                let ranks = j.array(j.get(rec, &f, "ranks")?, &rf)?;
                let ranks = ranks.iter().enumerate().map(|(k, r)| j.u64(r, &index(&rf, k)).map(|r| r as u32)).collect::<Result<Vec<_>, _>>()?;
                let mut sorted = ranks.clone();
                sorted.sort_unstable();
                if sorted.iter().enumerate().any(|(k, &r)| r as usize != k + 1) {
                    return Err(j.err(&rf, format!("ranks must be a permutation of 1..{} (1 = best)", ranks.len())));
                }
                (SampleId::Round { image_id, round_id }, Prediction::Ranks(ranks))
            }
            ResultFormat::NextqaVideoQid => {
                let video = match j.get(rec, &f, "video")? {
                    Value::String(s) => s.trim().to_owned(),
                    v => j.u64(v, &format!("{f}.video"))?.to_string(),
                };
                let qid = int_or_text(&j, j.get(rec, &f, "qid")?, &format!("{f}.qid"))?;
                (SampleId::VideoQid { video, qid }, text("answer")?)
            }
            ResultFormat::QuestionAnswer | ResultFormat::Images => {
                (SampleId::Int(j.u64(j.get(rec, &f, "question_id")?, &format!("{f}.question_id"))?), text("answer")?)
            }
        };
        out.push(item);
    }
    Ok(out)
}

/// The official result-file record of one prediction (the inverse of [`read`]).
pub fn record(task: &Task, sample: &Sample, prediction: &Prediction) -> Result<Value, String> {
    let answer = || match prediction {
        Prediction::Text(t) => Ok(t.clone()),
        Prediction::Ranks(_) => Err(format!("{}: sample {}: ranks where text is expected", task.id, sample.id)),
    };
    Ok(match (task.result_format, &sample.id) {
        (ResultFormat::CocoCaption, SampleId::Int(i)) => json!({"image_id": i, "caption": answer()?}),
        (ResultFormat::QuestionAnswer, SampleId::Int(i)) => json!({"question_id": i, "answer": answer()?}),
        (ResultFormat::VizwizImage, SampleId::Image(name)) => json!({"image": name, "answer": answer()?}),
        (ResultFormat::NextqaVideoQid, SampleId::VideoQid { video, qid }) => json!({"video": video, "qid": qid, "answer": answer()?}),
        (ResultFormat::VisdialRanks, SampleId::Round { image_id, round_id }) => match prediction {
            Prediction::Ranks(r) => json!({"image_id": image_id, "round_id": round_id, "ranks": r}),
            Prediction::Text(_) => return Err(format!("{}: sample {}: text where ranks are expected", task.id, sample.id)),
        },
        (format, id) => return Err(format!("{}: sample id {id} does not fit the result format {}", task.id, format.describe())),
    })
}

/// How the predictions matched the split.
#[derive(Debug, Clone, Default)]
pub struct Matching {
    pub scored: usize,
    pub missing: Vec<String>,
    pub unknown: Vec<String>,
    pub duplicates: Vec<String>,
}

/// Worst ranking for a missing VisDial round: ground truth last, other options by ascending
/// relevance (when dense), so a missing round counts as wrong.
fn worst_ranks(options: usize, gt: Option<usize>, rel: Option<&Vec<f64>>) -> Vec<u32> {
    let mut order: Vec<usize> = (0..options).collect();
    order.sort_by(|&a, &b| {
        let key = |o: usize| (Some(o) == gt, rel.and_then(|r| r.get(o)).copied().unwrap_or(0.0));
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(a.cmp(&b))
    });
    visdial::order_to_ranks(&order)
}

/// Joins predictions with samples. Missing samples get `None` unless `allow_partial`, in which
/// case they are dropped.
pub fn join(
    samples: &[Sample],
    preds: Vec<(SampleId, Prediction)>,
    allow_partial: bool,
) -> (Vec<(&Sample, Option<Prediction>)>, Matching) {
    let mut m = Matching::default();
    let known: std::collections::HashSet<&SampleId> = samples.iter().map(|s| &s.id).collect();
    let mut by_id: HashMap<SampleId, Prediction> = HashMap::with_capacity(preds.len());
    for (id, p) in preds {
        if !known.contains(&id) {
            m.unknown.push(id.to_string());
        } else if let std::collections::hash_map::Entry::Vacant(e) = by_id.entry(id.clone()) {
            e.insert(p);
        } else {
            m.duplicates.push(id.to_string());
        }
    }
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        match by_id.remove(&s.id) {
            Some(p) => out.push((s, Some(p))),
            None => {
                m.missing.push(s.id.to_string());
                if !allow_partial {
                    out.push((s, None));
                }
            }
        }
    }
    m.scored = out.len();
    (out, m)
}

fn text(p: &Option<Prediction>) -> String {
    match p {
        Some(Prediction::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

fn id_value(id: &SampleId) -> Value {
    match id {
        SampleId::Int(i) => json!(i),
        other => json!(other.to_string()),
    }
}

/// Scores joined predictions with the task's metric; `Err` when the split has no answers.
pub fn score(
    task: &Task,
    joined: &[(&Sample, Option<Prediction>)],
    vqa_variant: vqa::Variant,
    wordnet: Option<&WordNet>,
) -> Result<Value, String> {
    let no_gt = || format!("this split of {} has no ground-truth answers (submission only)", task.id);
    match task.scorer {
        Scorer::Caption => {
            let items: Vec<_> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::Caption { references } => Ok(caption::CaptionItem { image_id: id_value(&s.id), candidate: text(p), references: references.clone() }),
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(caption::score(&items))
        }
        Scorer::Vqa(fixed) => {
            // VQAv2's variant is the caller's choice (official server code or Emu's LAVIS code).
            let variant = if fixed == vqa::Variant::Official { vqa_variant } else { fixed };
            let id_key = if task.result_format == ResultFormat::VizwizImage { "image" } else { "question_id" };
            let items: Vec<_> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::Vqa { answers, question_type, answer_type, answerable, .. } if !answers.is_empty() => Ok(vqa::VqaItem {
                        id_key: id_key.to_owned(),
                        id: id_value(&s.id),
                        answers: answers.clone(),
                        prediction: text(p),
                        question_type: question_type.clone(),
                        answer_type: answer_type.clone(),
                        answerable: *answerable,
                        answerable_pred: None,
                    }),
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(vqa::score(&items, variant))
        }
        Scorer::Visdial => {
            let rounds: Vec<_> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::Dialog { options, gt_index: Some(gt), gt_relevance, .. } => {
                        let ranks = match p {
                            Some(Prediction::Ranks(r)) if r.len() == options.len() => r.clone(),
                            Some(Prediction::Ranks(r)) => {
                                return Err(format!("round {}: {} ranks for {} options", s.id, r.len(), options.len()))
                            }
                            _ => worst_ranks(options.len(), Some(*gt), gt_relevance.as_ref()),
                        };
                        Ok(visdial::VisdialRound { ranks, gt_index: *gt, gt_relevance: gt_relevance.clone() })
                    }
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(visdial::score(&rounds))
        }
        Scorer::VideoQa => {
            let items: Vec<(String, String)> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::VideoQa { answer, .. } => Ok((text(p), answer.clone())),
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(videoqa::score(&items))
        }
        Scorer::Wups => {
            let wn = wordnet.ok_or("nextqa needs WordNet 3.0 (--wordnet or /usr/share/wordnet)")?;
            let items: Vec<_> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::VideoQa { answer, answer_add, qtype, .. } => Ok(wups::WupsItem {
                        prediction: text(p),
                        answer: answer.clone(),
                        answer_add: answer_add.clone(),
                        qtype: qtype.clone(),
                    }),
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(wups::score(&items, true, wn))
        }
        Scorer::Fid => Err(format!("task {} is not scored from a predictions file (FID of generated images)", task.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_ranks_put_gt_last() {
        let r = worst_ranks(4, Some(1), Some(&vec![0.5, 1.0, 0.0, 0.2]));
        assert_eq!(r, [3, 4, 1, 2]);
        assert_eq!(worst_ranks(3, Some(0), None), [3, 1, 2]);
    }
}
