//! Scoring a predictions file in the task's official result format against a loaded split:
//! join on the sample id, report unknown/duplicate/missing ids, call the metric functions.
use crate::input::Invalid;
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Content, Sample, SampleId};
use crate::input::{index, read_json, InputError, Json};
use crate::metrics::result::{Detail, Headline, MetricResult};
use crate::metrics::{caption, videoqa, visdial, vqa, wordnet::WordNet, wups};
use crate::registry::{ResultFormat, Scorer, Task};

/// One prediction: text, VisDial per-option ranks, or a gated answer (VizWiz) with the gate's
/// probability that the question is answerable.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Text(String),
    Ranks(Vec<u32>),
    Gated { answer: String, answerable: f64 },
}

impl Prediction {
    /// The answer text (`None` for ranks).
    pub fn text(&self) -> Option<&str> {
        match self {
            Prediction::Text(t) | Prediction::Gated { answer: t, .. } => Some(t),
            Prediction::Ranks(_) => None,
        }
    }
    /// The answerability probability of a gated answer.
    pub fn answerable(&self) -> Option<f64> {
        match self {
            Prediction::Gated { answerable, .. } => Some(*answerable),
            _ => None,
        }
    }
}

/// An integer given as a JSON number or a decimal string (NExT-QA ids are often strings).
fn int_or_text(j: &Json, v: &Value, field: &str) -> Result<u64, InputError> {
    match v {
        Value::String(s) => {
            s.trim().parse().map_err(|_| j.err(field, format!("expected an integer, found {s:?}")))
        }
        _ => j.u64(v, field),
    }
}

/// Reads a predictions file in the task's result format into `(id, prediction)` pairs, in file order.
pub fn read(task: &Task, path: &Path) -> Result<Vec<(SampleId, Prediction)>, InputError> {
    let format = task.result_format;
    if format == ResultFormat::Images {
        return Err(InputError::file(
            path,
            format!("task {} has no predictions format for `score`", task.id),
        ));
    }
    let fmt = format.describe();
    let root = read_json(path)?;
    let j = Json::new(path);
    let list =
        j.array(&root, "(root)").map_err(|e| super::context(e, format!("expected {fmt}")))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, rec) in list.iter().enumerate() {
        let f = index("", i);
        let text = |key: &str| -> Result<Prediction, InputError> {
            Ok(Prediction::Text(j.str(j.get(rec, &f, key)?, &format!("{f}.{key}"))?.to_owned()))
        };
        let item = match format {
            ResultFormat::CocoCaption => (
                SampleId::Int(j.u64(j.get(rec, &f, "image_id")?, &format!("{f}.image_id"))?),
                text("caption")?,
            ),
            ResultFormat::VizwizImage => {
                let id = SampleId::Image(
                    j.str(j.get(rec, &f, "image")?, &format!("{f}.image"))?.to_owned(),
                );
                let answer = text("answer")?;
                match j.opt(rec, &f, "answerable")? {
                    Some(v) => {
                        let p = j.f64(v, &format!("{f}.answerable"))?;
                        let answer = answer.text().unwrap_or_default().to_owned();
                        (id, Prediction::Gated { answer, answerable: p })
                    }
                    None => (id, answer),
                }
            }
            ResultFormat::VisdialRanks => {
                let image_id = j.u64(j.get(rec, &f, "image_id")?, &format!("{f}.image_id"))?;
                let round_id = j.u32(j.get(rec, &f, "round_id")?, &format!("{f}.round_id"))?;
                let rf = format!("{f}.ranks");
                let ranks = j.array(j.get(rec, &f, "ranks")?, &rf)?;
                let ranks = ranks
                    .iter()
                    .enumerate()
                    .map(|(k, r)| j.u32(r, &index(&rf, k)))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut sorted = ranks.clone();
                sorted.sort_unstable();
                if sorted.iter().enumerate().any(|(k, &r)| r as usize != k + 1) {
                    return Err(j.err(
                        &rf,
                        format!("ranks must be a permutation of 1..{} (1 = best)", ranks.len()),
                    ));
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
            ResultFormat::QuestionAnswer | ResultFormat::Images => (
                SampleId::Int(j.u64(j.get(rec, &f, "question_id")?, &format!("{f}.question_id"))?),
                text("answer")?,
            ),
        };
        out.push(item);
    }
    Ok(out)
}

/// The official result-file record of one prediction (the inverse of [`read`]).
pub fn record(task: &Task, sample: &Sample, prediction: &Prediction) -> Result<Value, Invalid> {
    let answer = || match prediction.text() {
        Some(t) => Ok(t.to_owned()),
        None => {
            Err(Invalid(format!("{}: sample {}: ranks where text is expected", task.id, sample.id)))
        }
    };
    Ok(match (task.result_format, &sample.id) {
        (ResultFormat::CocoCaption, SampleId::Int(i)) => {
            json!({"image_id": i, "caption": answer()?})
        }
        (ResultFormat::QuestionAnswer, SampleId::Int(i)) => {
            json!({"question_id": i, "answer": answer()?})
        }
        (ResultFormat::VizwizImage, SampleId::Image(name)) => match prediction.answerable() {
            // The VizWiz challenge's answerability field: the probability of "answerable".
            Some(p) => json!({"image": name, "answer": answer()?, "answerable": p}),
            None => json!({"image": name, "answer": answer()?}),
        },
        (ResultFormat::NextqaVideoQid, SampleId::VideoQid { video, qid }) => {
            json!({"video": video, "qid": qid, "answer": answer()?})
        }
        (ResultFormat::VisdialRanks, SampleId::Round { image_id, round_id }) => match prediction {
            Prediction::Ranks(r) => json!({"image_id": image_id, "round_id": round_id, "ranks": r}),
            Prediction::Text(_) | Prediction::Gated { .. } => {
                return Err(format!(
                    "{}: sample {}: text where ranks are expected",
                    task.id, sample.id
                )
                .into())
            }
        },
        (format, id) => {
            return Err(format!(
                "{}: sample id {id} does not fit the result format {}",
                task.id,
                format.describe()
            )
            .into())
        }
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

/// What a sample that failed counts as, in the result file and in the score alike: the empty
/// answer or caption, or for a ranking the order that puts the ground truth last. The official
/// evaluators then accept the file and score it as `metrics.json` does.
pub fn stand_in(task: &Task, sample: &Sample) -> Prediction {
    match &sample.content {
        Content::Dialog { options, gt_index, gt_relevance, .. } => {
            Prediction::Ranks(worst_ranks(options.len(), *gt_index, gt_relevance.as_ref()))
        }
        // A gated task's failure is also the least confident "answerable".
        _ if task.inference.gate().is_some() => {
            Prediction::Gated { answer: String::new(), answerable: 0.0 }
        }
        _ => Prediction::Text(String::new()),
    }
}

/// The ground truth a sample is scored against, as a predictions line shows it: the reference
/// captions, the answers, the gold option (and its text), or the expected answer(s); None for a
/// split without answers.
pub fn ground_truth(sample: &Sample) -> Option<Value> {
    match &sample.content {
        Content::Caption { references } if !references.is_empty() => Some(json!(references)),
        Content::Vqa { answers, answerable, .. } if !answers.is_empty() => {
            let mut v = json!({ "answers": answers });
            if let Some(a) = answerable {
                v["answerable"] = json!(a);
            }
            Some(v)
        }
        Content::Dialog { options, gt_index: Some(gt), .. } => {
            Some(json!({ "gt_index": gt, "option": options.get(*gt) }))
        }
        Content::VideoQa { answer, answer_add, .. } if !answer.is_empty() => {
            let mut v = json!({ "answer": answer });
            if let Some(add) = answer_add {
                v["answer_add"] = json!(add);
            }
            Some(v)
        }
        _ => None,
    }
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
        Some(Prediction::Text(t)) | Some(Prediction::Gated { answer: t, .. }) => t.clone(),
        _ => String::new(),
    }
}

fn id_value(id: &SampleId) -> Value {
    match id {
        SampleId::Int(i) => json!(i),
        other => json!(other.to_string()),
    }
}

/// A task's metric result; its JSON is the scorer's own (no tag). Built once per scoring, so the
/// size of the largest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskMetric {
    Caption(caption::CaptionResult),
    Vqa(vqa::VqaResult),
    VideoQa(videoqa::VideoQaResult),
    Wups(wups::WupsResult),
    /// Last: every field is optional, so it would read any object.
    Visdial(visdial::VisdialResult),
}

impl TaskMetric {
    fn result(&self) -> &dyn MetricResult {
        match self {
            TaskMetric::Caption(r) => r,
            TaskMetric::Vqa(r) => r,
            TaskMetric::VideoQa(r) => r,
            TaskMetric::Wups(r) => r,
            TaskMetric::Visdial(r) => r,
        }
    }
}

/// Per-sample scores follow the order of the joined samples.
impl MetricResult for TaskMetric {
    fn headline(&self) -> Headline {
        self.result().headline()
    }

    fn per_sample(&self) -> Option<Vec<Option<f64>>> {
        self.result().per_sample()
    }

    fn clear_per_sample(&mut self) {
        match self {
            TaskMetric::Caption(r) => r.clear_per_sample(),
            TaskMetric::Vqa(r) => r.clear_per_sample(),
            TaskMetric::VideoQa(r) => r.clear_per_sample(),
            TaskMetric::Wups(r) => r.clear_per_sample(),
            TaskMetric::Visdial(r) => r.clear_per_sample(),
        }
    }
}

/// Scores joined predictions with the task's metric; `Err` when the split has no answers.
pub fn score(
    task: &Task,
    joined: &[(&Sample, Option<Prediction>)],
    vqa_variant: vqa::Variant,
    wordnet: Option<&WordNet>,
    detail: Detail,
) -> Result<TaskMetric, Invalid> {
    let no_gt =
        || format!("this split of {} has no ground-truth answers (submission only)", task.id);
    match task.scorer {
        Scorer::Caption => {
            let items: Vec<_> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::Caption { references } => Ok(caption::CaptionItem {
                        image_id: id_value(&s.id),
                        candidate: text(p).into(),
                        references: references.iter().map(|r| r.as_str().into()).collect(),
                    }),
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(TaskMetric::Caption(caption::score(&items, detail)))
        }
        Scorer::Vqa(fixed) => {
            // VQAv2's variant is the caller's choice (official server code or Emu's LAVIS code).
            let variant = if fixed == vqa::Variant::Official { vqa_variant } else { fixed };
            let id_key = if task.result_format == ResultFormat::VizwizImage {
                "image"
            } else {
                "question_id"
            };
            let items: Vec<_> =
                joined
                    .iter()
                    .map(|(s, p)| match &s.content {
                        Content::Vqa {
                            answers, question_type, answer_type, answerable, ..
                        } if !answers.is_empty() => Ok(vqa::VqaItem {
                            id: if id_key == "image" {
                                vqa::QuestionId::Image(id_value(&s.id))
                            } else {
                                vqa::QuestionId::QuestionId(id_value(&s.id))
                            },
                            answers: answers.clone(),
                            prediction: text(p),
                            question_type: question_type.clone(),
                            answer_type: answer_type.clone(),
                            answerable: *answerable,
                            answerable_pred: p.as_ref().and_then(Prediction::answerable),
                        }),
                        _ => Err(no_gt()),
                    })
                    .collect::<Result<_, _>>()?;
            Ok(TaskMetric::Vqa(vqa::score(&items, variant, detail)))
        }
        Scorer::Visdial => {
            let rounds: Vec<_> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::Dialog { options, gt_index: Some(gt), gt_relevance, .. } => {
                        let ranks = match p {
                            Some(Prediction::Ranks(r)) if r.len() == options.len() => r.clone(),
                            Some(Prediction::Ranks(r)) => {
                                return Err(format!(
                                    "round {}: {} ranks for {} options",
                                    s.id,
                                    r.len(),
                                    options.len()
                                ))
                            }
                            _ => worst_ranks(options.len(), Some(*gt), gt_relevance.as_ref()),
                        };
                        Ok(visdial::VisdialRound {
                            ranks,
                            gt_index: *gt,
                            gt_relevance: gt_relevance.clone(),
                        })
                    }
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(TaskMetric::Visdial(visdial::score(&rounds, detail)))
        }
        Scorer::VideoQa => {
            let items: Vec<(String, String)> = joined
                .iter()
                .map(|(s, p)| match &s.content {
                    Content::VideoQa { answer, .. } => Ok((text(p), answer.clone())),
                    _ => Err(no_gt()),
                })
                .collect::<Result<_, _>>()?;
            Ok(TaskMetric::VideoQa(videoqa::score(&items, detail)))
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
            Ok(TaskMetric::Wups(wups::score(&items, true, wn, detail)))
        }
        Scorer::Fid => Err(format!(
            "task {} is not scored from a predictions file (FID of generated images)",
            task.id
        )
        .into()),
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

    /// Every result kind prints as its scorer's JSON (no tag) and reads back as the same variant,
    /// with and without per-sample lists.
    #[test]
    fn task_metric_json_reads_back_as_the_same_variant() {
        let wn = crate::metrics::wordnet::tests::wordnet();
        let d = Detail::PerSample;
        let caption_item = caption::CaptionItem {
            image_id: json!(1),
            candidate: "a dog".into(),
            references: vec!["a dog .".into()],
        };
        let vqa_item = vqa::VqaItem {
            id: vqa::QuestionId::QuestionId(json!(3)),
            answers: vec!["yes".into(); 10],
            prediction: "yes".into(),
            question_type: Some("is the".into()),
            answer_type: Some("yes/no".into()),
            answerable: None,
            answerable_pred: None,
        };
        let wups_item = wups::WupsItem {
            prediction: "dog".into(),
            answer: "cat".into(),
            answer_add: None,
            qtype: Some("CW".into()),
        };
        let round = visdial::VisdialRound {
            ranks: vec![2, 1, 3],
            gt_index: 0,
            gt_relevance: Some(vec![1.0, 0.5, 0.0]),
        };
        let metrics = [
            TaskMetric::Caption(caption::score(&[caption_item], d)),
            TaskMetric::Vqa(vqa::score(&[vqa_item], vqa::Variant::Official, d)),
            TaskMetric::VideoQa(videoqa::score(&[("A cat.".into(), "cat".into())], d)),
            TaskMetric::Wups(wups::score(&[wups_item], true, wn, d)),
            TaskMetric::Visdial(visdial::score(&[round], d)),
        ];
        for m in metrics {
            let mut agg = m.clone();
            agg.clear_per_sample();
            assert_eq!(agg.per_sample(), None);
            assert_eq!(m.per_sample().map(|p| p.len()), Some(1));
            assert_eq!(agg.headline(), m.headline());
            for m in [m, agg] {
                let text = serde_json::to_string(&m).expect("serialize");
                assert!(text.starts_with('{'), "{text}");
                let back: TaskMetric = serde_json::from_str(&text).expect("deserialize");
                assert_eq!(back, m, "{text}");
            }
        }
    }
}
