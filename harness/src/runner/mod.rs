//! `emu-eval run`: one task end to end. Samples (split, `--limit`, `--shard`) → prompt plans →
//! media prefetched on worker threads → stages executed in batches on the model → post-processing
//! → `predictions.jsonl` (one flushed line per sample, the unit of resume) → at the end, scoring
//! with the same code as `emu-eval score`, the official result file and `metrics.json`.
//! Design: `shared/spec/runner.md`.
pub mod batch;
pub mod exec;
pub mod files;
pub mod finish;
pub mod generation;
pub mod lock;
pub mod media;
pub mod merge;
mod progress;
mod stages;
pub mod t2i;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use prompts::{Family, PromptOptions};
use serde_json::Value;
use tasks::metrics::{vqa, wordnet::WordNet};
use tasks::registry::{Inference, Task};

use crate::plan::{self, TaskData};
use files::{RunConfig, Shard};
use models::emu::Emu;
use tasks::run_folder::DataProvenance;

pub use crate::model_source::ModelInfo;

/// Validated options of one task run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub task: &'static Task,
    pub family: Family,
    pub shots: usize,
    pub cot: bool,
    pub text_examples: bool,
    pub data_root: PathBuf,
    pub split: String,
    pub limit: Option<Limit>,
    pub batch: batch::BatchSize,
    pub seed: u64,
    pub output: PathBuf,
    pub shard: Option<Shard>,
    pub max_failures: usize,
    pub overwrite: bool,
    pub retry_failed: bool,
    pub vqa_variant: vqa::Variant,
    pub wordnet: Option<PathBuf>,
    /// How few-shot support examples are chosen.
    pub support: SupportKind,
    /// RICES feature cache folder (default: `$EMU_EVAL_CACHE`, else the platform cache folder);
    /// coco_t2i caches its reference FID statistics beside it.
    pub cache: Option<PathBuf>,
    /// Text-to-image settings (coco_t2i).
    pub t2i: t2i::T2iOptions,
    /// Decoding settings other than the paper's.
    pub generation: generation::Overrides,
}

/// `--limit`: the first N samples, or the first ⌈f·n⌉ of a list of n (0 < f ≤ 1), in the split's
/// canonical order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Count(usize),
    Fraction(f64),
}

impl Limit {
    /// `N` (a whole number ≥ 1) or a fraction `0 < f ≤ 1` written with a decimal point.
    pub fn parse(s: &str) -> Result<Limit, String> {
        if let Ok(n) = s.parse::<usize>() {
            return match n {
                0 => Err("must be at least 1 (or a fraction 0 < f ≤ 1)".into()),
                n => Ok(Limit::Count(n)),
            };
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(Limit::Fraction(f)),
            Ok(_) => Err(format!("{s}: a fraction must be in (0, 1]")),
            Err(_) => Err(format!("{s}: not a count or a fraction")),
        }
    }

    /// How many of `n` samples.
    pub fn of(self, n: usize) -> usize {
        match self {
            Limit::Count(c) => c.min(n),
            Limit::Fraction(f) => ((f * n as f64).ceil() as usize).min(n),
        }
    }

    pub fn fraction(self) -> Option<f64> {
        match self {
            Limit::Fraction(f) => Some(f),
            Limit::Count(_) => None,
        }
    }
}

/// `--support`: RICES (nearest EVA-CLIP features) or the seeded random choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportKind {
    Rices,
    Random,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub output: PathBuf,
    pub metrics: tasks::run_folder::Metrics,
}

/// sha256 of `TEMPLATES_JSON`: which prompt templates produced a number.
pub fn template_version() -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(prompts::TEMPLATES_JSON.as_bytes());
    format!("sha256:{}", crate::cache::hex(&d[..8]))
}

/// The git commit the binary was built from (`unknown` outside a checkout).
pub fn git_commit() -> &'static str {
    option_env!("EMU_EVAL_GIT_COMMIT").unwrap_or("unknown")
}

/// The support method a run records (the random choice is labelled as not RICES).
pub fn support_method(opts: &RunOptions) -> String {
    match (plan::wanted_support(&prompt_options(opts, 1)), opts.support) {
        (0, _) => "none".into(),
        (_, SupportKind::Rices) => retrieval::Method::Rices.label(),
        (_, SupportKind::Random) => retrieval::Method::RandomFallback { seed: opts.seed }.label(),
    }
}

fn prompt_options(opts: &RunOptions, n_causal: usize) -> PromptOptions {
    PromptOptions {
        shots: opts.shots,
        cot: opts.cot,
        text_examples: opts.text_examples,
        n_causal,
        ..Default::default()
    }
}

/// The VQA variant a run records: VQAv2's is the user's choice; other tasks have a fixed one.
pub fn recorded_variant(task: &Task, variant: vqa::Variant) -> Option<String> {
    (task.scorer == tasks::registry::Scorer::Vqa(vqa::Variant::Official))
        .then(|| variant.name().to_owned())
}

/// The fingerprint `run.json` records, with the provenance of the data it scores.
/// `n`: the size of the list `--limit` applies to (the split; coco_t2i: the caption sample).
pub fn fingerprint(
    opts: &RunOptions,
    model: &ModelInfo,
    data: DataProvenance,
    n: usize,
) -> RunConfig {
    RunConfig {
        task: opts.task.id.into(),
        split: opts.split.clone(),
        model: model.name.clone(),
        weights_hash: model.weights_hash.clone(),
        model_family: opts.family,
        dtype: model.dtype.clone(),
        shots: opts.shots,
        cot: opts.cot,
        text_examples: opts.text_examples,
        support_method: support_method(opts),
        seed: opts.seed,
        limit: opts.limit.map(|l| l.of(n)),
        limit_fraction: opts.limit.and_then(Limit::fraction),
        template_version: template_version(),
        shard: opts.shard,
        emu_eval_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: git_commit().into(),
        t2i: None,
        vqa_variant: recorded_variant(opts.task, opts.vqa_variant),
        generation: opts.generation.record(),
        data,
        device: None,
    }
}

fn positions_of(data: &TaskData, limit: Option<Limit>, shard: Option<Shard>) -> Vec<usize> {
    let n = data.split.samples.len();
    positions(n, limit.map(|l| l.of(n)), shard)
}

/// Positions (in the split's canonical order) this run evaluates: the first `limit`, then every
/// N-th for a shard.
pub fn positions(n: usize, limit: Option<usize>, shard: Option<Shard>) -> Vec<usize> {
    (0..limit.map_or(n, |l| l.min(n))).filter(|&p| shard.is_none_or(|s| s.takes(p))).collect()
}

/// Loads WordNet when the task's scorer needs it (before any model time is spent).
pub fn load_wordnet(task: &Task, dir: Option<&Path>) -> Result<Option<WordNet>> {
    if !task.scorer.needs_wordnet() {
        return Ok(None);
    }
    Ok(Some(match dir {
        Some(d) => WordNet::load(d)?,
        None => WordNet::load_default()?,
    }))
}

/// Checks, before the model loads (minutes for the 14B model), what a run of `opts` would only
/// find out later: the task's files and their consistency, the support pool against the shots,
/// the prompt options against the templates (`n_causal` from the model's config), WordNet, and
/// that the output folder can be written and its file system has roughly enough room.
pub fn preflight(opts: &RunOptions, n_causal: usize) -> Result<()> {
    let task = opts.task;
    let refuse = || format!("refusing to start {}", task.id);
    let samples = if task.is_text_to_image() {
        t2i::check_flags(task.id, opts.shots, opts.cot, opts.text_examples, &opts.t2i)?;
        task.load(&task.dir(&opts.data_root), &opts.split).with_context(refuse)?;
        opts.limit.map_or(opts.t2i.prompts, |l| l.of(opts.t2i.prompts))
    } else {
        let popts = prompt_options(opts, n_causal);
        let wanted = plan::wanted_support(&popts);
        let data = plan::load(task, &opts.data_root, &opts.split, wanted > 0, opts.seed)
            .with_context(refuse)?;
        if wanted > data.pool.len() {
            bail!(
                "{}: {wanted} support examples asked, but the {} pool has {} sample(s)",
                task.id,
                task.pool_split.unwrap_or("training"),
                data.pool.len()
            );
        }
        if data.queries.is_empty() {
            bail!("{}: split {} has no samples", task.id, opts.split);
        }
        let q = &data.queries[0];
        let support = plan::fallback_support(&data, &q.id, wanted, opts.seed)?;
        plan::plan(&data, opts.family, q, &support, &popts).with_context(refuse)?;
        load_wordnet(task, opts.wordnet.as_deref())?;
        positions_of(&data, opts.limit, opts.shard).len()
    };
    check_writable(&opts.output)?;
    check_free_space(&opts.output, output_bytes(task, samples))
}

/// A generous estimate of what a run writes: a predictions line (prompt texts of every stage)
/// and a result record per sample, or a PNG per generated image, plus the small files.
pub fn output_bytes(task: &Task, samples: usize) -> u64 {
    const FIXED: u64 = 16 << 20;
    let per_sample: u64 = if task.is_text_to_image() { 512 << 10 } else { 16 << 10 };
    FIXED + per_sample * samples as u64
}

/// Refuses to start when the output's file system has less room than `need` bytes.
fn check_free_space(dir: &Path, need: u64) -> Result<()> {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let existing = abs.ancestors().find(|a| a.is_dir()).unwrap_or(Path::new("."));
    match free_bytes(existing) {
        Some(free) if free < need => bail!(
            "{}: {} MiB free on its file system, the run needs about {} MiB",
            dir.display(),
            free >> 20,
            need.div_ceil(1 << 20)
        ),
        _ => Ok(()),
    }
}

/// Bytes an unprivileged writer may still use on the file system of `path` (None: unknown).
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value of the plain C struct.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a valid out-pointer for the call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

/// Writes, then removes, a probe file in `dir` or, when it does not exist yet, in the nearest
/// folder above it that does (nothing is left behind).
fn check_writable(dir: &Path) -> Result<()> {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let existing = abs.ancestors().find(|a| a.is_dir()).unwrap_or(Path::new("."));
    let probe = existing.join(format!(".emu-eval-write-probe-{}", std::process::id()));
    let written = std::fs::write(&probe, b"probe");
    if written.is_err() {
        // The file may exist though the write failed (a full disk, a file size limit).
        let _ = std::fs::remove_file(&probe);
    }
    written.with_context(|| {
        format!(
            "{}: the output folder cannot be written (in {})",
            dir.display(),
            existing.display()
        )
    })?;
    std::fs::remove_file(&probe).with_context(|| format!("{}: cannot remove", probe.display()))
}

/// Runs one task into `opts.output`, resuming what is there.
pub fn run_task(emu: &Emu, model: &ModelInfo, opts: &RunOptions) -> Result<RunSummary> {
    let _lock = lock::acquire_folder(&opts.output)?;
    let task = opts.task;
    if matches!(task.inference, Inference::TextToImage) {
        return t2i::run(emu, model, opts);
    }
    let popts = prompt_options(opts, emu.cfg.n_causal);
    let wanted = plan::wanted_support(&popts);
    let (data, pool_all) =
        plan::load_with_pool(task, &opts.data_root, &opts.split, wanted > 0, opts.seed)
            .with_context(|| format!("refusing to start {}", task.id))?;
    // The whole training pool is kept only for RICES to index.
    let pool_all =
        if wanted > 0 && opts.support == SupportKind::Rices { pool_all } else { Vec::new() };
    if let Some(q) = data.queries.first() {
        // Options the templates cannot honour (CoT for captioning or Emu-I, …) stop here.
        let support = plan::fallback_support(&data, &q.id, wanted, opts.seed)?;
        plan::plan(&data, opts.family, q, &support, &popts)
            .with_context(|| format!("refusing to start {}", task.id))?;
    }
    let wordnet = load_wordnet(task, opts.wordnet.as_deref())?;
    let positions = positions_of(&data, opts.limit, opts.shard);
    let batches = batch::choose(
        opts.batch,
        task,
        emu,
        images_per_prompt(task, &popts),
        opts.cot,
        &opts.generation,
    )?;

    let out = &opts.output;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    // The data of the whole run (all shards): a shard and the single run record the same.
    let scored: Vec<&tasks::datasets::Sample> =
        positions_of(&data, opts.limit, None).into_iter().map(|p| &data.split.samples[p]).collect();
    let provenance =
        crate::provenance::of(task, &opts.data_root, scored.iter().map(|s| s.media.path()))?;
    let fp = fingerprint(opts, model, provenance, data.split.samples.len());
    prepare_folder(out, &fp, opts, &batches)?;
    let pred_path = out.join(files::PREDICTIONS);
    let mut lines = files::read_predictions(&pred_path, true)?;
    if opts.retry_failed && lines.iter().any(|l| !l["error"].is_null()) {
        lines.retain(|l| l["error"].is_null());
        rewrite_lines(&pred_path, &lines)?;
    }
    let done: HashSet<String> =
        lines.iter().filter_map(|l| l["id"].as_str().map(str::to_owned)).collect();
    let mut failed = lines.iter().filter(|l| !l["error"].is_null()).count();
    let todo: Vec<usize> =
        positions.iter().copied().filter(|&p| !done.contains(&data.queries[p].id)).collect();
    if !done.is_empty() {
        crate::log::note(format!(
            "{}: resuming: {} of {} samples already done",
            out.display(),
            positions.len() - todo.len(),
            positions.len()
        ));
    }

    let start = Instant::now();
    let supports = if wanted > 0 && opts.support == SupportKind::Rices {
        rices_supports(emu, model, opts, &data, &pool_all, &todo, wanted)?
    } else {
        if wanted > 0 {
            crate::log::note(format!(
                "{}: few-shot support examples: {}",
                task.id,
                support_method(opts)
            ));
        }
        HashMap::new()
    };
    let mut writer = files::PredictionWriter::open(&pred_path)?;
    let mut exec = exec::Executor::new(emu);
    let mut bar =
        progress::Progress::new(task.id, positions.len(), positions.len() - todo.len(), failed);
    let scorer =
        stages::SampleScorer { task, variant: opts.vqa_variant, wordnet: wordnet.as_ref() };
    let norm = crate::pixels::normalisation(emu);
    if let Some(m) = &batches.method {
        crate::log::note(format!("{}: --batch-size auto ({m}): {:?}", task.id, batches.by_stage));
    }
    let batch = batches.chunk().max(1);
    let outcome: Result<()> = std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<stages::PreparedChunk>(1);
        let data_ref: &TaskData = &data;
        let todo_ref = &todo;
        let popts_ref = &popts;
        let supports_ref = &supports;
        scope.spawn(move || {
            for chunk in todo_ref.chunks(batch) {
                let prepared =
                    stages::prepare(data_ref, opts, popts_ref, chunk, &norm, supports_ref);
                if tx.send(prepared).is_err() {
                    break;
                }
            }
        });
        let mut result = Ok(());
        for prepared in rx.iter() {
            // On a rayon worker: the model's parallel loops then fork in place (models::pool).
            let records = models::pool::on_workers(|| {
                stages::execute(&mut exec, &data, prepared, &scorer, &opts.generation, &batches)
            });
            for rec in records {
                if !rec["error"].is_null() {
                    failed += 1;
                    crate::log::note(format!(
                        "{}: sample {} failed: {}",
                        task.id,
                        rec["id"].as_str().unwrap_or(""),
                        rec["error"].as_str().unwrap_or("")
                    ));
                }
                writer.append(&rec)?;
                bar.inc(failed);
            }
            if crate::signals::requested() {
                result = Err(crate::signals::Interrupted::now().into());
                break;
            }
            if failed > opts.max_failures {
                result = Err(anyhow::anyhow!(
                    "{}: {failed} samples failed, more than --max-failures {}; stopped (failures are recorded in {}; rerun with a higher --max-failures to continue)",
                    task.id,
                    opts.max_failures,
                    pred_path.display()
                ));
                break;
            }
        }
        drop(rx);
        result
    });
    bar.finish();
    outcome?;
    let timing = tasks::run_folder::Timing {
        wall_seconds: Some(start.elapsed().as_secs_f64()),
        model_seconds: Some(exec.model_seconds()),
        samples_per_second: Some(todo.len() as f64 / start.elapsed().as_secs_f64().max(1e-9)),
        samples_this_invocation: Some(todo.len() as u64),
        ..Default::default()
    };
    let metrics = finish::finish(
        out,
        &data,
        &positions,
        &fp,
        model,
        opts.vqa_variant,
        wordnet.as_ref(),
        timing,
    )?;
    if failed > opts.max_failures {
        bail!(
            "{}: {failed} samples failed, more than --max-failures {}",
            task.id,
            opts.max_failures
        );
    }
    Ok(RunSummary { output: out.clone(), metrics })
}

/// Fields that name the binary: a rebuilt binary may resume a run (noted, not refused). `data`
/// is compared by content ([`DataProvenance::content_difference`]): a moved data root resumes.
const BUILD_FIELDS: &[&str] = &["emu_eval_version", "git_commit", "data"];

/// Images (video frames) in a prompt: the query's and each shown support example's.
fn images_per_prompt(task: &Task, p: &PromptOptions) -> usize {
    let shown = if p.text_examples { 0 } else { p.shots };
    if task.media == tasks::registry::MediaKind::Video {
        p.query_frames + shown * p.support_frames
    } else {
        1 + shown
    }
}

/// Checks or writes `run.json`; `--overwrite` clears the folder's run files first.
fn prepare_folder(
    out: &Path,
    fp: &RunConfig,
    opts: &RunOptions,
    batches: &batch::BatchChoice,
) -> Result<()> {
    let existing = files::read_config(out)?;
    let has_predictions = out.join(files::PREDICTIONS).exists();
    match existing {
        Some(old) if old.first_difference(fp, BUILD_FIELDS).is_some() && !opts.overwrite => {
            let (field, was, now) = old
                .first_difference(fp, BUILD_FIELDS)
                .unwrap_or_else(|| ("?".into(), Value::Null, Value::Null));
            bail!(
                "{}: holds a run with a different configuration ({field}: {was} there, {now} now); use another --output or --overwrite",
                out.join(files::RUN_JSON).display()
            );
        }
        Some(old) if old.data.content_difference(&fp.data).is_some() && !opts.overwrite => {
            let what = old.data.content_difference(&fp.data).unwrap_or_default();
            bail!(
                "{}: holds a run over different data (data: {what}); use another --output or --overwrite",
                out.join(files::RUN_JSON).display()
            );
        }
        None if has_predictions && !opts.overwrite => {
            bail!(
                "{}: predictions without run.json; use another --output or --overwrite",
                out.display()
            );
        }
        _ => {}
    }
    if opts.overwrite {
        let t2i_files: &[&str] = if matches!(opts.task.inference, Inference::TextToImage) {
            &t2i::RUN_FILES
        } else {
            &[]
        };
        for f in [files::PREDICTIONS, files::METRICS, opts.task.result_file].iter().chain(t2i_files)
        {
            let p = out.join(f);
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else if p.exists() {
                std::fs::remove_file(&p)
            } else {
                Ok(())
            };
            removed.with_context(|| format!("{}: cannot remove", p.display()))?;
        }
    }
    files::write_run_json(out, fp, Some(batches))
}

fn rewrite_lines(path: &Path, lines: &[Value]) -> Result<()> {
    let mut s = String::new();
    for l in lines {
        s.push_str(&serde_json::to_string(l)?);
        s.push('\n');
    }
    files::write_atomic(path, s.as_bytes())
}

/// The RICES index of a run: the task's pool and split with the vision features of `ex` (cached,
/// keyed by the weights hash, task, split, seed and recipe). `prompt` uses the same, so it shows
/// the support examples `run` uses.
pub fn support_index<'a>(
    ex: &'a crate::rices_features::VisionFeatures<'a>,
    weights_hash: &str,
    seed: u64,
    cache: Option<&Path>,
    data: &TaskData,
    pool_all: &[tasks::datasets::Sample],
) -> Result<crate::rices::SupportIndex<'a>> {
    use crate::rices::{RicesOptions, SupportIndex};
    let cache = retrieval::cache::FeatureCache::new(crate::cache::dir(cache, crate::cache::RICES)?);
    let ropts = RicesOptions {
        pool_seed: seed,
        split: Some(data.split.split.clone()),
        ..RicesOptions::default()
    };
    crate::log::note(format!(
        "{}: RICES support examples (features cached in {})",
        data.task.id,
        cache.dir().display()
    ));
    // Array tasks sharing the cache: one computes the features, the others wait and reuse them.
    let _lock = lock::wait_for(&cache.dir().join(format!("{}.lock", data.task.id)))?;
    SupportIndex::build(
        ex,
        weights_hash,
        data.task,
        pool_all,
        data.split.samples.clone(),
        &cache,
        &ropts,
        &mut |_, _, _| {},
    )
}

/// RICES support examples of the samples to run (features of the pool cached, keyed by the
/// weights hash, task, split, seed and recipe), by position.
fn rices_supports(
    emu: &Emu,
    model: &ModelInfo,
    opts: &RunOptions,
    data: &TaskData,
    pool_all: &[tasks::datasets::Sample],
    todo: &[usize],
    k: usize,
) -> Result<HashMap<usize, plan::Support>> {
    let ex = crate::rices_features::VisionFeatures { tower: emu, pooling: Default::default() };
    let index =
        support_index(&ex, &model.weights_hash, opts.seed, opts.cache.as_deref(), data, pool_all)?;
    let mut out = HashMap::with_capacity(todo.len());
    for chunk in todo.chunks(256) {
        let ids: Vec<&str> = chunk.iter().map(|&p| data.queries[p].id.as_str()).collect();
        for (&p, s) in chunk.iter().zip(plan::rices_supports(&index, &ids, k)?) {
            out.insert(p, s);
        }
    }
    Ok(out)
}

/// Sample id → position in the split's canonical order.
pub fn id_positions(data: &TaskData) -> HashMap<&str, usize> {
    data.queries.iter().enumerate().map(|(i, q)| (q.id.as_str(), i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_a_count_or_a_fraction_of_the_split() {
        assert_eq!(Limit::parse("10"), Ok(Limit::Count(10)));
        assert_eq!(Limit::parse("0.1"), Ok(Limit::Fraction(0.1)));
        assert_eq!(Limit::parse("1.0"), Ok(Limit::Fraction(1.0)));
        for bad in ["0", "0.0", "1.5", "-1", "x", "nan"] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Limit::Fraction(0.1).of(25), 3);
        assert_eq!(Limit::Fraction(1.0).of(25), 25);
        assert_eq!(Limit::Fraction(1e-9).of(25), 1);
        assert_eq!(Limit::Count(40).of(25), 25);
        assert_eq!(positions(10, Some(Limit::Fraction(0.5).of(10)), None), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn output_estimate_grows_with_samples_and_images_cost_more() {
        let vqa = tasks::registry::get("vqav2").unwrap();
        let t2i = tasks::registry::get("coco_t2i").unwrap();
        assert!(output_bytes(vqa, 1000) > output_bytes(vqa, 10));
        assert!(output_bytes(t2i, 100) > output_bytes(vqa, 100));
        // 30,000 images at 512 KiB each: about 15 GiB asked of the disk.
        assert_eq!(output_bytes(t2i, 30_000) >> 30, 14);
    }

    #[test]
    fn free_space_is_read_and_a_too_large_need_is_refused() {
        let dir = std::env::temp_dir();
        assert!(free_bytes(&dir).is_some_and(|b| b > 0));
        let e = check_free_space(&dir.join("not-yet/run"), u64::MAX / 2).unwrap_err().to_string();
        assert!(e.contains("MiB free on its file system, the run needs about"), "{e}");
        assert!(check_free_space(&dir, 1).is_ok());
    }
}
