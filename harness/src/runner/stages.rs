//! Per-sample work: plans and media prepared ahead (worker threads), then stage rounds executed in
//! batches (every sample's next stage, same settings batched together), post-processing, and the
//! `predictions.jsonl` record of each sample.
use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use prompts::{PromptOptions, PromptPlan, StageKind};
use serde_json::{json, Value};
use tasks::datasets::predictions::{self, Prediction};
use tasks::datasets::{Content, Sample};
use tasks::media::image::Normalisation;
use tasks::metrics::result::{Detail, MetricResult};
use tasks::metrics::{vqa, wordnet::WordNet};
use tasks::registry::{self, Generation, Inference, Scorer, Task};

use super::generation::Overrides;

use super::exec::Executor;
use super::media::{self, Decoded, MediaKey};
use super::RunOptions;
use crate::plan::{self, Support, TaskData};

/// One sample ready for the model: its plan (or why it has none) and support.
pub struct PreparedSample {
    pub pos: usize,
    pub plan: Result<(PromptPlan, Support), String>,
}

/// A batch of samples with their media decoded.
pub struct PreparedChunk {
    pub samples: Vec<PreparedSample>,
    pub decoded: Decoded,
}

/// Builds the plans of `chunk` (positions in the split) and decodes their media in parallel.
pub fn prepare(
    data: &TaskData,
    opts: &RunOptions,
    popts: &PromptOptions,
    chunk: &[usize],
    norm: &Normalisation,
    supports: &HashMap<usize, Support>,
) -> PreparedChunk {
    let k = plan::wanted_support(popts);
    let samples: Vec<PreparedSample> = chunk
        .iter()
        .map(|&pos| {
            let q = &data.queries[pos];
            let support = match supports.get(&pos) {
                Some(s) => Ok(s.clone()),
                None => plan::fallback_support(data, &q.id, k, opts.seed),
            };
            let planned = support
                .and_then(|support| {
                    Ok((plan::plan(data, opts.family, q, &support, popts)?, support))
                })
                .map_err(|e| format!("{e:#}"));
            PreparedSample { pos, plan: planned }
        })
        .collect();
    let mut keys: Vec<MediaKey> = Vec::new();
    for s in &samples {
        if let Ok((p, _)) = &s.plan {
            for st in &p.stages {
                for slot in st.media() {
                    let key = MediaKey::of(slot);
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
    }
    PreparedChunk { samples, decoded: media::decode_all(keys, norm) }
}

/// What a stage runs on the model.
pub(super) enum StageExec {
    Generate { settings: Generation, allowed: Option<[&'static str; 2]> },
    Rank { n_segments: usize },
}

/// The registry's settings for a stage kind of `task`, with the run's overrides.
pub(super) fn stage_exec(task: &Task, kind: StageKind, o: &Overrides) -> StageExec {
    match (kind, task.inference) {
        (StageKind::Caption, _) => {
            StageExec::Generate { settings: o.apply(kind, registry::CAPTION), allowed: None }
        }
        (StageKind::Answerability, Inference::AnswerabilityGate { gate, answers, .. }) => {
            StageExec::Generate { settings: o.apply(kind, gate), allowed: Some(answers) }
        }
        (_, Inference::RankOptions { n_segments }) => StageExec::Rank { n_segments },
        (_, Inference::Generate { answer } | Inference::AnswerabilityGate { answer, .. }) => {
            StageExec::Generate { settings: o.apply(kind, answer), allowed: None }
        }
        (_, Inference::TextToImage) => unreachable!("text-to-image has no text stages"),
    }
}

/// The sampling seed of a sample: from `--seed` and its id, so that its draws do not depend on
/// the batch, shard or resume point.
fn sample_seed(seed: u64, id: &str) -> u64 {
    models::rng::fnv1a(&format!("{seed}/{id}"))
}

/// A sample in flight.
struct Live<'a> {
    pos: usize,
    /// Sampling seed ([`sample_seed`]); stage `i` samples from `seed + i`.
    seed: u64,
    plan: PromptPlan,
    support: Support,
    /// Post-processed outputs by stage name (fill later stages' `{stage}` slots).
    filled: HashMap<String, String>,
    /// Raw outputs by stage name.
    raw: HashMap<String, Value>,
    records: Vec<Value>,
    error: Option<String>,
    seconds: f64,
    decoded: &'a Decoded,
    /// The answerability gate's probability of "answerable" (gated tasks).
    answerable: Option<f64>,
}

impl Live<'_> {
    /// The stage's text with earlier outputs filled in, and its pixels (n, 3, s, s) if any.
    fn stage_input(&self, i: usize, size: usize) -> Result<(String, Option<Tensor>), String> {
        let st = &self.plan.stages[i];
        let text = st.render(&self.filled).map_err(|e| e.to_string())?;
        let slots = st.media();
        if slots.is_empty() {
            return Ok((text, None));
        }
        let mut data = Vec::with_capacity(slots.len() * 3 * size * size);
        for slot in &slots {
            data.extend_from_slice(&media::slot_pixels(self.decoded, slot)?);
        }
        let t = Tensor::from_vec(data, (slots.len(), 3, size, size), &Device::Cpu)
            .map_err(|e| e.to_string())?;
        Ok((text, Some(t)))
    }

    /// Marks the sample failed at stage `i` and keeps that stage in its line (text as far as it
    /// was built, no output), so a failed line shows where it stopped.
    fn fail_stage(&mut self, i: usize, text: Option<String>, error: String) {
        let st = &self.plan.stages[i];
        let text = text.unwrap_or_else(|| st.text());
        let mut v = plan::stage_json(st, &text);
        v["output"] = Value::Null;
        v["error"] = Value::String(error.clone());
        self.records.push(v);
        self.error = Some(error);
    }

    fn record_stage(&mut self, task: &Task, i: usize, text: String, output: Value) {
        let st = &self.plan.stages[i];
        let mut v = plan::stage_json(st, &text);
        v["output"] = output.clone();
        if let Value::String(s) = &output {
            self.filled.insert(
                st.name.clone(),
                prompts::postprocess(task.prompt.expect("prompted task"), st.kind, s),
            );
        }
        self.raw.insert(st.name.clone(), output);
        self.records.push(v);
    }
}

/// Scores one sample with the task's scorer (the same code as the final score).
pub struct SampleScorer<'w> {
    pub task: &'static Task,
    pub variant: vqa::Variant,
    pub wordnet: Option<&'w WordNet>,
}

impl SampleScorer<'_> {
    /// This sample's score on the headline scale; None for corpus-level metrics (CIDEr) and for
    /// splits without answers.
    pub fn score(&self, sample: &Sample, p: &Prediction) -> Option<f64> {
        if self.task.scorer == Scorer::Caption {
            return None;
        }
        let joined = [(sample, Some(p.clone()))];
        let m =
            predictions::score(self.task, &joined, self.variant, self.wordnet, Detail::PerSample)
                .ok()?;
        m.per_sample()?.first().copied().flatten()
    }
}

/// Executes every stage of the chunk's samples, round by round; returns one record per sample,
/// in chunk order.
pub fn execute(
    exec: &mut Executor,
    data: &TaskData,
    chunk: PreparedChunk,
    scorer: &SampleScorer,
    overrides: &Overrides,
    batches: &super::batch::BatchChoice,
) -> Vec<Value> {
    let task = data.task;
    let size = exec.emu().cfg.vision.image_size;
    let decoded = &chunk.decoded;
    let mut live: Vec<Live> = Vec::new();
    let mut failed_early: Vec<(usize, Support, String)> = Vec::new();
    for s in chunk.samples {
        match s.plan {
            Ok((plan, support)) => live.push(Live {
                seed: sample_seed(overrides.seed, &data.queries[s.pos].id),
                pos: s.pos,
                plan,
                support,
                filled: HashMap::new(),
                raw: HashMap::new(),
                records: Vec::new(),
                error: None,
                seconds: 0.0,
                decoded,
                answerable: None,
            }),
            Err(e) => failed_early.push((s.pos, Support::none(), e)),
        }
    }
    let rounds = live.iter().map(|l| l.plan.stages.len()).max().unwrap_or(0);
    for i in 0..rounds {
        let ready: Vec<usize> = (0..live.len())
            .filter(|&j| live[j].error.is_none() && live[j].plan.stages.len() > i)
            .collect();
        // Group by stage kind so a batch never mixes settings.
        let mut groups: Vec<(StageKind, Vec<usize>)> = Vec::new();
        for j in ready {
            let kind = live[j].plan.stages[i].kind;
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, g)) => g.push(j),
                None => groups.push((kind, vec![j])),
            }
        }
        for (kind, members) in groups {
            match stage_exec(task, kind, overrides) {
                StageExec::Rank { n_segments } => {
                    for j in members {
                        run_rank(exec, data, &mut live[j], i, size, n_segments);
                    }
                }
                StageExec::Generate { settings, allowed } => {
                    let per = batches.of(super::generation::kind_name(kind)).max(1);
                    for part in members.chunks(per) {
                        run_generate(exec, task, &mut live, part, i, size, &settings, allowed)
                    }
                }
            }
        }
    }
    let mut out: Vec<(usize, Value)> =
        live.into_iter().map(|l| (l.pos, finish_sample(task, data, l, scorer))).collect();
    for (pos, support, e) in failed_early {
        out.push((
            pos,
            to_json(&record(
                &data.queries[pos].id,
                &support,
                Vec::new(),
                Value::Null,
                None,
                Some(e),
                0.0,
            )),
        ));
    }
    out.sort_by_key(|(p, _)| *p);
    out.into_iter().map(|(_, v)| v).collect()
}

#[allow(clippy::too_many_arguments)]
fn run_generate(
    exec: &mut Executor,
    task: &Task,
    live: &mut [Live],
    members: &[usize],
    i: usize,
    size: usize,
    settings: &Generation,
    allowed: Option<[&'static str; 2]>,
) {
    let mut rows: Vec<Row> = Vec::new();
    for &j in members {
        match live[j].stage_input(i, size) {
            Ok((text, px)) => rows.push((j, text, px, live[j].seed.wrapping_add(i as u64))),
            Err(e) => live[j].fail_stage(i, None, e),
        }
    }
    if rows.is_empty() {
        return;
    }
    let start = Instant::now();
    let result = generate_rows(exec, &rows, settings, allowed.as_ref().map(|a| &a[..]));
    let per_row = start.elapsed().as_secs_f64() / rows.len() as f64;
    let gate = task.inference.gate().filter(|_| allowed.is_some());
    // The gate's probability of "answerable", from the same prompt and images.
    let with_probability = |exec: &mut Executor, l: &mut Live, text: &str, px: Option<&Tensor>| {
        let Some(g) = gate else { return true };
        match exec.pair_probability(text, px, [g.answerable, g.unanswerable]) {
            Ok(p) => {
                l.answerable = Some(p);
                true
            }
            Err(e) => {
                let msg = format!("stage {}: {e:#}", l.plan.stages[i].name);
                l.fail_stage(i, Some(text.to_owned()), msg);
                false
            }
        }
    };
    match result {
        Ok(texts) => {
            for ((j, text, px, _), out) in rows.into_iter().zip(texts) {
                live[j].seconds += per_row;
                if with_probability(exec, &mut live[j], &text, px.as_ref()) {
                    live[j].record_stage(task, i, text, Value::String(out));
                }
            }
        }
        // Isolate the failing sample: each row alone.
        Err(_) if rows.len() > 1 => {
            for (j, text, px, seed) in rows {
                let one = [(j, text.clone(), px, seed)];
                let t0 = Instant::now();
                match generate_rows(exec, &one, settings, allowed.as_ref().map(|a| &a[..])) {
                    Ok(mut texts) => {
                        live[j].seconds += t0.elapsed().as_secs_f64();
                        if with_probability(exec, &mut live[j], &text, one[0].2.as_ref()) {
                            live[j].record_stage(task, i, text, Value::String(texts.remove(0)));
                        }
                    }
                    Err(e) => {
                        let msg = format!("stage {}: {e:#}", live[j].plan.stages[i].name);
                        live[j].fail_stage(i, Some(text), msg)
                    }
                }
            }
        }
        Err(e) => {
            let (j, text, _, _) = rows.swap_remove(0);
            let msg = format!("stage {}: {e:#}", live[j].plan.stages[i].name);
            live[j].fail_stage(i, Some(text), msg)
        }
    }
}

/// A generation row: the sample's place in `live`, the prompt, its images, its sampling seed.
type Row = (usize, String, Option<Tensor>, u64);

fn generate_rows(
    exec: &mut Executor,
    rows: &[Row],
    settings: &Generation,
    allowed: Option<&[&str]>,
) -> anyhow::Result<Vec<String>> {
    let prompts: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    let px: Vec<&Tensor> = rows.iter().filter_map(|r| r.2.as_ref()).collect();
    let pixels = if px.is_empty() { None } else { Some(Tensor::cat(&px, 0)?) };
    let seeds: Vec<u64> = rows.iter().map(|r| r.3).collect();
    exec.generate(&prompts, pixels.as_ref(), settings, allowed, &seeds)
}

fn run_rank(
    exec: &mut Executor,
    data: &TaskData,
    l: &mut Live,
    i: usize,
    size: usize,
    n_segments: usize,
) {
    let options = match &data.split.samples[l.pos].content {
        Content::Dialog { options, .. } => options.clone(),
        _ => Vec::new(),
    };
    let (text, px) = match l.stage_input(i, size) {
        Ok(x) => x,
        Err(e) => {
            l.fail_stage(i, None, e);
            return;
        }
    };
    let start = Instant::now();
    match exec.rank(&text, px.as_ref(), &options, n_segments) {
        Ok(ranks) => {
            l.seconds += start.elapsed().as_secs_f64();
            l.record_stage(data.task, i, text, json!(ranks));
        }
        Err(e) => {
            let msg = format!("stage {}: {e:#}", l.plan.stages[i].name);
            l.fail_stage(i, Some(text), msg)
        }
    }
}

/// The prediction from the stage outputs (§3.5–3.7 post-processing).
fn prediction(task: &Task, l: &Live) -> Option<Prediction> {
    let answer = l.raw.get(prompts::ANSWER)?;
    let ptask = task.prompt?;
    Some(match task.inference {
        Inference::RankOptions { .. } => Prediction::Ranks(
            answer
                .as_array()?
                .iter()
                .filter_map(|r| r.as_u64().and_then(|r| u32::try_from(r).ok()))
                .collect(),
        ),
        Inference::AnswerabilityGate { .. } => {
            let gate = l.raw.get(prompts::ANSWERABILITY)?.as_str()?;
            let answer = prompts::gated_answer(ptask, gate, answer.as_str()?);
            match l.answerable {
                Some(answerable) => Prediction::Gated { answer, answerable },
                None => Prediction::Text(answer),
            }
        }
        _ => Prediction::Text(prompts::postprocess(ptask, StageKind::Answer, answer.as_str()?)),
    })
}

fn finish_sample(task: &Task, data: &TaskData, l: Live, scorer: &SampleScorer) -> Value {
    let id = &data.queries[l.pos].id;
    let sample = &data.split.samples[l.pos];
    let truth = tasks::datasets::predictions::ground_truth(sample);
    let (pred, error) = match (&l.error, prediction(task, &l)) {
        (Some(e), _) => (None, Some(e.clone())),
        (None, Some(p)) => (Some(p), None),
        (None, None) => (None, Some("no answer stage output".to_owned())),
    };
    let score = pred.as_ref().and_then(|p| scorer.score(sample, p));
    let pv = pred.as_ref().map_or(Value::Null, prediction_json);
    let mut line = record(id, &l.support, l.records, pv, score, error, l.seconds);
    line.answerable = pred.as_ref().and_then(Prediction::answerable);
    line.ground_truth = truth;
    to_json(&line)
}

/// A prediction as `predictions.jsonl` stores it: the answer text or the ranks (a gated
/// answer's probability is the line's `answerable`).
pub fn prediction_json(p: &Prediction) -> Value {
    match p {
        Prediction::Text(t) | Prediction::Gated { answer: t, .. } => json!(t),
        Prediction::Ranks(r) => json!(r),
    }
}

/// A prediction read back from `predictions.jsonl` (`answerable`: the line's field).
pub fn prediction_from_json(v: &Value, answerable: Option<f64>) -> Option<Prediction> {
    match (v, answerable) {
        (Value::String(s), Some(p)) => Some(Prediction::Gated { answer: s.clone(), answerable: p }),
        (Value::String(s), None) => Some(Prediction::Text(s.clone())),
        (Value::Array(a), _) => Some(Prediction::Ranks(
            a.iter()
                .map(|r| r.as_u64().and_then(|r| u32::try_from(r).ok()))
                .collect::<Option<Vec<_>>>()?,
        )),
        _ => None,
    }
}

/// A `predictions.jsonl` line in the run-folder schema.
fn record(
    id: &str,
    support: &Support,
    stages: Vec<Value>,
    prediction: Value,
    score: Option<f64>,
    error: Option<String>,
    seconds: f64,
) -> tasks::run_folder::Prediction {
    tasks::run_folder::Prediction {
        id: id.to_owned(),
        support: Some(tasks::run_folder::Support {
            method: support.method.clone(),
            ids: support.ids.clone(),
            similarities: support
                .similarities
                .as_ref()
                .map(|s| s.iter().map(|&x| x as f64).collect()),
        }),
        // Stage records are built by `plan::stage_json`, whose fields are the schema's.
        stages: stages.into_iter().filter_map(|s| serde_json::from_value(s).ok()).collect(),
        prediction,
        score,
        error,
        time_seconds: seconds,
        caption: None,
        image: None,
        answerable: None,
        ground_truth: None,
    }
}

/// A line as the prediction writer takes it.
pub fn to_json(line: &tasks::run_folder::Prediction) -> Value {
    serde_json::to_value(line).unwrap_or(Value::Null)
}
