//! From dataset samples to prompt plans: sample → prompt-sample conversion, the support pool
//! subset, support selection and prompt building. `emu-eval prompt` and `emu-eval run` both call
//! this module, so a run's stage texts are exactly what `prompt --json` prints.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Result};
use prompts::{build, Family, PromptOptions, PromptPlan, PromptSample, Stage, Task};
use serde_json::{json, Value};
use tasks::datasets::{Content, Sample, Split};
use tasks::registry;

/// Evaluation samples of a task with their prompt view, and the support pool subset.
pub struct TaskData {
    pub task: &'static registry::Task,
    pub prompt_task: Task,
    pub split: Split,
    /// `split.samples[i]` as a query.
    pub queries: Vec<PromptSample>,
    /// The pool subset, as support examples (empty when no support is needed).
    pub pool: Vec<PromptSample>,
}

/// Loads the evaluation split, and the support pool subset when `with_pool`.
pub fn load(
    task: &'static registry::Task,
    data_root: &Path,
    split: &str,
    with_pool: bool,
    pool_seed: u64,
) -> Result<TaskData> {
    Ok(load_with_pool(task, data_root, split, with_pool, pool_seed)?.0)
}

/// [`load`], also returning the whole training pool it read (empty without `with_pool`), so that
/// RICES can index it without parsing the annotations again.
pub fn load_with_pool(
    task: &'static registry::Task,
    data_root: &Path,
    split: &str,
    with_pool: bool,
    pool_seed: u64,
) -> Result<(TaskData, Vec<Sample>)> {
    let prompt_task =
        task.prompt.ok_or_else(|| anyhow!("--task {}: has no text prompt", task.id))?;
    let dir = task.dir(data_root);
    let split = task.load(&dir, split)?;
    let problems = tasks::datasets::validate::validate(&dir, &split.split, &split.samples);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(anyhow!("{} problem(s): {}", list.len(), list.join("; ")));
    }
    let all = if with_pool { task.load_pool(&dir)? } else { Vec::new() };
    let pool = if with_pool {
        retrieval::support_pool(all.len(), pool_seed)
            .into_iter()
            .map(|i| support(&all[i]))
            .collect()
    } else {
        Vec::new()
    };
    Ok((
        TaskData {
            task,
            prompt_task,
            queries: split.samples.iter().map(query).collect(),
            split,
            pool,
        },
        all,
    ))
}

/// Support examples of one query and how they were chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Support {
    /// `retrieval::Method::label()`.
    pub method: String,
    pub ids: Vec<String>,
    /// RICES cosine similarities, in prompt order.
    pub similarities: Option<Vec<f32>>,
    pub samples: Vec<PromptSample>,
}

impl Support {
    pub fn none() -> Self {
        Support { method: "none".into(), ids: Vec::new(), similarities: None, samples: Vec::new() }
    }

    /// `{"method", "ids"[, "similarities"]}` as `prompt --json` and predictions lines show it.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"method": self.method, "ids": self.ids});
        if let Some(s) = &self.similarities {
            v["similarities"] = json!(s);
        }
        v
    }
}

/// Number of support examples a prompt needs.
pub fn wanted_support(opts: &PromptOptions) -> usize {
    if opts.text_examples {
        prompts::TEXT_EXAMPLES
    } else {
        opts.shots
    }
}

/// The seeded fallback choice (not RICES) of `k` pool examples for `query_id`.
pub fn fallback_support(data: &TaskData, query_id: &str, k: usize, seed: u64) -> Result<Support> {
    if k == 0 {
        return Ok(Support::none());
    }
    let sel = retrieval::select(None, None, query_id, data.pool.len(), k, seed)
        .map_err(|e| anyhow!("support examples of {}: {e}", data.task.id))?;
    let samples: Vec<PromptSample> = sel.indices.iter().map(|&i| data.pool[i].clone()).collect();
    Ok(Support {
        method: sel.method.label(),
        ids: samples.iter().map(|s| s.id.clone()).collect(),
        similarities: None,
        samples,
    })
}

/// RICES support examples of `query_id` from `index` (prompt order: most similar last), with
/// their similarities.
pub fn rices_support(
    index: &crate::rices::SupportIndex,
    query_id: &str,
    k: usize,
) -> Result<Support> {
    Ok(rices_supports(index, &[query_id], k)?.pop().unwrap_or_else(Support::none))
}

/// RICES support examples of several queries (their features computed in one batch), in prompt
/// order (most similar last, as OpenFlamingo).
pub fn rices_supports(
    index: &crate::rices::SupportIndex,
    query_ids: &[&str],
    k: usize,
) -> Result<Vec<Support>> {
    if k == 0 {
        return Ok(query_ids.iter().map(|_| Support::none()).collect());
    }
    let pool = index.pool_samples();
    index
        .neighbours(query_ids, k)?
        .iter()
        .map(|best| {
            let sel = retrieval::selection(best, k, pool.len())?;
            let samples: Vec<PromptSample> =
                sel.indices.iter().map(|&i| support(&pool[i])).collect();
            Ok(Support {
                method: sel.method.label(),
                ids: samples.iter().map(|s| s.id.clone()).collect(),
                similarities: Some(sel.similarities),
                samples,
            })
        })
        .collect()
}

/// The prompt plan of one query.
pub fn plan(
    data: &TaskData,
    family: Family,
    query: &PromptSample,
    support: &Support,
    opts: &PromptOptions,
) -> Result<PromptPlan> {
    build(data.prompt_task, family, query, &support.samples, opts)
        .map_err(|e| anyhow!("{}: sample {}: {e}", data.task.id, query.id))
}

/// One stage as `prompt --json` prints it: name, kind, `text` (earlier outputs as `{stage}` or
/// filled in), the files feeding the image blocks, and for video frames `[i, k]`.
pub fn stage_json(st: &Stage, text: &str) -> Value {
    let media = st.media();
    json!({
        "stage": st.name,
        "kind": st.kind,
        "text": text,
        "images": media.iter().map(|m| m.path.clone()).collect::<Vec<_>>(),
        "frames": media.iter().map(|m| m.frame.map(|(i, k)| json!([i, k])).unwrap_or(Value::Null)).collect::<Vec<_>>(),
    })
}

/// An evaluation sample: question and dialog history; no answer is shown.
pub fn query(s: &Sample) -> PromptSample {
    let mut p =
        PromptSample { id: s.id.to_string(), media: vec![s.media.clone()], ..Default::default() };
    match &s.content {
        Content::Caption { .. } | Content::TextToImage { .. } => {}
        Content::Vqa { question, answerable, .. } => {
            p.question = Some(question.clone());
            p.answerable = answerable.map(|a| a != 0);
        }
        Content::Dialog { history, question, .. } => {
            p.question = Some(question.clone());
            p.history = history.clone();
        }
        Content::VideoQa { question, .. } => p.question = Some(question.clone()),
    }
    p
}

/// A training-pool sample as a support example, with the answer it shows:
/// captioning: the first reference caption; VQA: the most frequent of the ground-truth answers
/// (ties: the one listed first); VisDial pool entries are whole dialogs: the last round is the
/// question/answer, the earlier rounds its history; video QA: the answer.
pub fn support(s: &Sample) -> PromptSample {
    let mut p = query(s);
    match &s.content {
        Content::Caption { references } => p.answer = references.first().cloned(),
        Content::TextToImage { caption, .. } => p.answer = Some(caption.clone()),
        Content::Vqa { answers, .. } => p.answer = most_frequent(answers),
        Content::Dialog { history, question, options, gt_index, .. } => {
            if question.is_empty() {
                if let Some((last, earlier)) = history.split_last() {
                    p.question = Some(last.question.clone());
                    p.answer = Some(last.answer.clone());
                    p.history = earlier.to_vec();
                }
            } else {
                p.answer = gt_index.and_then(|i| options.get(i).cloned());
            }
        }
        Content::VideoQa { answer, .. } => p.answer = Some(answer.clone()),
    }
    p
}

/// Most frequent string; ties go to the one that appears first.
pub fn most_frequent(xs: &[String]) -> Option<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for x in xs {
        *counts.entry(x.as_str()).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    xs.iter().find(|x| counts[x.as_str()] == best).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_frequent_prefers_first_on_ties() {
        let v: Vec<String> = ["b", "a", "a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(most_frequent(&v).as_deref(), Some("b"));
        assert_eq!(most_frequent(&[]), None);
    }
}
