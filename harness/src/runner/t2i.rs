//! `run --task coco_t2i`: the seeded caption sample (`captions.json`), one PNG per caption in
//! `coco_t2i_images/` (written atomically: the PNG on disk is the unit of resume), one line per
//! caption in `predictions.jsonl`, then FID of the generated images against the real images'
//! statistics (cached as `.npz`) in `metrics.json`. Shards generate their captions and leave FID to
//! `emu-eval merge`, which links the shards' images into one folder and computes it.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use models::decoder::GenerateOptions;
use serde_json::{json, Value};
use tasks::metrics::fid::frechet_distance;

use tasks::registry::Task;
use tasks::run_folder::{Counts, Headline, Metrics, Timing};

use super::files::{self, RunConfig, T2iConfig};
use super::{finish, positions, progress, ModelInfo, RunOptions, RunSummary};
use crate::t2i::captions::{read_captions, sample_captions, write_captions, Caption};
use crate::t2i::fid::{cached_stats, image_stats, write_stats_atomic};
use crate::t2i::sources::{load_decoder, InceptionSource};
use crate::t2i::{generate_one, image_path, TextToImage};
use models::emu::Emu;

/// Files of a coco_t2i run folder besides `predictions.jsonl`, `metrics.json` and the images
/// (removed by `--overwrite`).
pub const RUN_FILES: [&str; 2] = ["captions.json", "generated_stats.npz"];

/// Text-to-image settings of `run`.
#[derive(Debug, Clone)]
pub struct T2iOptions {
    /// Visual decoder folder (None: the built-in tiny random decoder).
    pub decoder: Option<PathBuf>,
    /// Inception weights (None: `$EMU_EVAL_INCEPTION`, else the built-in random Inception).
    pub inception: Option<PathBuf>,
    /// Size of the seeded caption sample (30,000 in the paper's protocol).
    pub prompts: usize,
    pub steps: usize,
    pub guidance: f64,
    /// Real-image statistics: read when the file exists, else computed and written there
    /// (None: a file in the cache folder keyed by the Inception weights and the image list).
    pub reference_stats: Option<PathBuf>,
}

impl Default for T2iOptions {
    fn default() -> Self {
        let g = GenerateOptions::default();
        T2iOptions {
            decoder: None,
            inception: None,
            prompts: crate::t2i::captions::COCO_T2I_PROMPTS,
            steps: g.steps,
            guidance: g.guidance,
            reference_stats: None,
        }
    }
}

/// What the FID at the end of a run or merge needs.
pub struct FidSetup<'a> {
    pub inception: &'a InceptionSource,
    pub device: &'a Device,
    /// `--reference-stats`, else a file in the cache folder.
    pub reference_stats: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    /// Inception batch size.
    pub batch: usize,
}

/// Refuses flags text-to-image cannot honour; `run` calls it for every combination before loading
/// the model.
pub fn check_flags(
    task: &str,
    shots: usize,
    cot: bool,
    text_examples: bool,
    t: &T2iOptions,
) -> Result<()> {
    if shots > 0 || cot || text_examples {
        bail!("--task {task}: zero-shot text-to-image only (no --shots above 0, --cot or --text-examples)");
    }
    if t.steps == 0 {
        bail!("--steps: must be at least 1");
    }
    if !t.guidance.is_finite() {
        bail!("--guidance: must be finite");
    }
    if t.prompts == 0 {
        bail!("--prompts: must be at least 1");
    }
    Ok(())
}

/// Runs coco_t2i into `opts.output`, resuming what is there.
pub fn run(emu: &Emu, model: &ModelInfo, opts: &RunOptions) -> Result<RunSummary> {
    let task = opts.task;
    let t = &opts.t2i;
    check_flags(task.id, opts.shots, opts.cot, opts.text_examples, t)?;
    let samples = task
        .load(&task.dir(&opts.data_root), &opts.split)
        .with_context(|| format!("refusing to start {}", task.id))?;
    let list = sample_captions(&samples.samples, t.prompts, opts.seed);
    if list.is_empty() {
        bail!("refusing to start {}: split {} has no captions", task.id, opts.split);
    }
    let (decoder, decoder_name, decoder_hash) = load_decoder(emu, t.decoder.as_deref(), opts.seed)?;
    let size = TextToImage::default_size(&decoder);
    let inception = InceptionSource::resolve(t.inception.as_deref(), opts.seed);
    let limit = opts.limit.map(|l| l.of(list.len()));
    let scored = positions(list.len(), limit, None);
    let provenance = crate::provenance::of(
        task,
        &opts.data_root,
        scored.iter().map(|&p| list[p].image.as_path()),
    )?;
    let mut fp = super::fingerprint(opts, model, provenance, list.len());
    fp.t2i = Some(T2iConfig {
        decoder: decoder_name,
        decoder_hash,
        inception: inception.name(),
        inception_hash: inception.hash()?,
        prompts: t.prompts,
        steps: t.steps,
        guidance: t.guidance,
        image_size: size,
    });

    let out = &opts.output;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let batches = super::batch::choose(opts.batch, task, emu, 1, false, &opts.generation)?;
    super::prepare_folder(out, &fp, opts, &batches)?;
    check_or_write_captions(&out.join(RUN_FILES[0]), &list)?;
    let images = out.join(task.result_file);
    std::fs::create_dir_all(&images)
        .with_context(|| format!("{}: cannot create", images.display()))?;
    let positions = positions(list.len(), limit, opts.shard);

    // Lines are kept when their image is still there (or they record a failure).
    let pred_path = out.join(files::PREDICTIONS);
    let mut lines = files::read_predictions(&pred_path, true)?;
    let before = lines.len();
    lines.retain(|l| {
        if l["error"].is_null() {
            l["image"].as_str().is_some_and(|p| out.join(p).is_file())
        } else {
            !opts.retry_failed
        }
    });
    if lines.len() != before {
        super::rewrite_lines(&pred_path, &lines)?;
    }
    let done: HashSet<String> =
        lines.iter().filter_map(|l| l["id"].as_str().map(str::to_owned)).collect();
    let mut failed = lines.iter().filter(|l| !l["error"].is_null()).count();
    let todo: Vec<usize> =
        positions.iter().copied().filter(|&p| !done.contains(&list[p].id.to_string())).collect();
    if !done.is_empty() {
        crate::log::note(format!(
            "{}: resuming: {} of {} images already done",
            out.display(),
            positions.len() - todo.len(),
            positions.len()
        ));
    }

    let start = Instant::now();
    let t2i = TextToImage::new(
        emu,
        &decoder,
        GenerateOptions { steps: t.steps, guidance: t.guidance },
        size,
    )?;
    let mut writer = files::PredictionWriter::open(&pred_path)?;
    let mut bar =
        progress::Progress::new(task.id, positions.len(), positions.len() - todo.len(), failed);
    let (mut generated, mut found) = (0usize, 0usize);
    let mut model_seconds = 0.0;
    for &p in &todo {
        if crate::signals::requested() {
            bar.finish();
            return Err(crate::signals::Interrupted::now().into());
        }
        let c = &list[p];
        let begin = Instant::now();
        // An image without its line was written just before an interruption: it is kept.
        let on_disk = image_path(&images, c.id).is_file();
        let result = if on_disk {
            Ok(0.0)
        } else {
            generate_one(&t2i, c, &images, opts.seed).map(|()| begin.elapsed().as_secs_f64())
        };
        let line = match result {
            Ok(secs) => {
                if on_disk {
                    found += 1;
                } else {
                    generated += 1;
                }
                model_seconds += secs;
                let rel = format!("{}/{}.png", task.result_file, c.id);
                line(c, Some(rel), None, secs)
            }
            Err(e) => {
                failed += 1;
                let msg = format!("{e:#}").replace('\n', " ");
                crate::log::note(format!("{}: caption {} failed: {msg}", task.id, c.id));
                line(c, None, Some(msg), begin.elapsed().as_secs_f64())
            }
        };
        writer.append(&line)?;
        bar.inc(failed);
        if failed > opts.max_failures {
            bar.finish();
            bail!(
                "{}: {failed} images failed, more than --max-failures {}; stopped (failures are recorded in {}; rerun with a higher --max-failures to continue)",
                task.id,
                opts.max_failures,
                pred_path.display()
            );
        }
    }
    bar.finish();
    let device = emu.device().clone();
    let mut fid = FidSetup {
        inception: &inception,
        device: &device,
        reference_stats: t.reference_stats.clone(),
        cache: opts.cache.clone(),
        batch: batches.of("image").max(1),
    };
    // The reference statistics of the whole run (every shard names the same file), so that
    // `merge` finds them with nothing but the folders.
    if fid.reference_stats.is_none() {
        let all = super::positions(list.len(), opts.limit.map(|l| l.of(list.len())), None);
        let mut refs: Vec<PathBuf> = all.iter().map(|&p| list[p].image.clone()).collect();
        refs.sort();
        refs.dedup();
        fid.reference_stats = Some(default_reference_stats(&fid, &opts.split, &refs)?);
    }
    let timing = Timing {
        wall_seconds: Some(start.elapsed().as_secs_f64()),
        model_seconds: Some(model_seconds),
        samples_per_second: Some(generated as f64 / start.elapsed().as_secs_f64().max(1e-9)),
        samples_this_invocation: Some(generated as u64),
        images_skipped: Some((positions.len() - generated) as u64),
        images_found_without_line: Some(found as u64),
        merged_shards: None,
    };
    let metrics =
        finish_t2i(task, out, &list, &positions, &fp, model, &fid, opts.shard.is_none(), timing)?;
    Ok(RunSummary { output: out.clone(), metrics })
}

/// A caption's `predictions.jsonl` line in the run-folder schema: its PNG (relative to the run
/// folder) as `image` and `prediction`, or the error.
fn line(c: &Caption, image: Option<String>, error: Option<String>, seconds: f64) -> Value {
    let p = tasks::run_folder::Prediction {
        id: c.id.to_string(),
        support: None,
        stages: Vec::new(),
        prediction: image.clone().map_or(Value::Null, Value::String),
        score: None,
        error,
        time_seconds: seconds,
        caption: Some(c.caption.clone()),
        image,
        answerable: None,
        ground_truth: None,
    };
    serde_json::to_value(&p).unwrap_or(Value::Null)
}

/// Writes `captions.json`, or checks that the one there is this run's sample.
fn check_or_write_captions(path: &Path, list: &[Caption]) -> Result<()> {
    if path.is_file() {
        if read_captions(path)? != list {
            bail!("{}: differs from this run's caption sample (was the data changed?); use another --output or --overwrite", path.display());
        }
        return Ok(());
    }
    let tmp = path.with_extension("json.partial");
    write_captions(&tmp, list)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))
}

/// Sorts the predictions into caption order and writes `metrics.json`, with the FID when `fid`
/// is given (a complete run) and `null` for a shard.
#[allow(clippy::too_many_arguments)] // the run's parts, each needed once
pub fn finish_t2i(
    task: &Task,
    out: &Path,
    list: &[Caption],
    positions: &[usize],
    fp: &RunConfig,
    model: &ModelInfo,
    fid: &FidSetup,
    complete: bool,
    timing: Timing,
) -> Result<Metrics> {
    let ids: Vec<String> = positions.iter().map(|&p| list[p].id.to_string()).collect();
    let lines = finish::lines_in_order(out, ids.iter().map(String::as_str))?;
    super::rewrite_lines(&out.join(files::PREDICTIONS), &lines)?;
    let images: Vec<PathBuf> = lines
        .iter()
        .filter_map(|l| l["image"].as_str().filter(|_| l["error"].is_null()).map(|p| out.join(p)))
        .collect();
    let failed = lines.len() - images.len();
    let mut reference: Vec<PathBuf> = positions.iter().map(|&p| list[p].image.clone()).collect();
    reference.sort();
    reference.dedup();
    let ref_stats = match &fid.reference_stats {
        Some(p) => p.clone(),
        None => default_reference_stats(fid, &fp.split, &reference)?,
    };
    let (metric, statistics) = if complete {
        let gen_stats = out.join(RUN_FILES[1]);
        let value = compute_fid(fid, &images, &reference, &ref_stats, &gen_stats)?;
        let metric = json!({"fid": value, "generated_images": images.len(), "reference_images": reference.len()});
        (metric, json!({"generated": RUN_FILES[1], "reference": ref_stats}))
    } else {
        let note = "a shard: FID over all images is computed by `emu-eval merge`";
        (
            json!({"fid": null, "generated_images": images.len(), "reference_images": reference.len(), "note": note}),
            json!({"generated": null, "reference": ref_stats}),
        )
    };
    let name = tasks::registry::Metric::Fid.name();
    let metrics = Metrics {
        task: fp.task.clone(),
        split: fp.split.clone(),
        counts: Counts {
            samples: lines.len() as u64,
            scored: images.len() as u64,
            failed: failed as u64,
        },
        failed_counted_as_wrong: None,
        failed_left_out: Some(failed > 0),
        headline: Some(Headline { name: name.into(), value: metric["fid"].as_f64() }),
        metric,
        fid_statistics: Some(statistics),
        result_file: task.result_file.into(),
        config: finish::run_config(fp, model),
        timing,
    };
    files::write_json(&out.join(files::METRICS), &metrics).context("metrics.json")?;
    Ok(metrics)
}

/// `<cache>/fid/coco_t2i-<split>-<key>.npz`, the key hashing the Inception weights and the
/// reference image list.
fn default_reference_stats(f: &FidSetup, split: &str, reference: &[PathBuf]) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(f.inception.hash()?);
    for p in reference {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        h.update(format!("\n{}\t{len}", p.display()));
    }
    let dir = crate::cache::dir(f.cache.as_deref(), crate::cache::FID)?;
    Ok(dir.join(format!("coco_t2i-{split}-{}.npz", crate::cache::hex(&h.finalize()[..8]))))
}

/// FID of the generated images against the reference images' statistics (read from
/// `ref_stats` when present, else computed and written there); the generated statistics are
/// written to `gen_stats`.
fn compute_fid(
    f: &FidSetup,
    images: &[PathBuf],
    reference: &[PathBuf],
    ref_stats: &Path,
    gen_stats: &Path,
) -> Result<f64> {
    if images.len() < 2 {
        bail!("FID: {} generated image(s); the covariance needs at least 2", images.len());
    }
    if reference.len() < 2 && !ref_stats.is_file() {
        bail!("FID: {} reference image(s); the covariance needs at least 2", reference.len());
    }
    let net = f.inception.load(f.device)?;
    let how = if ref_stats.is_file() { "read from" } else { "computing into" };
    crate::log::note(format!(
        "FID: reference statistics ({} real images) {how} {}",
        reference.len(),
        ref_stats.display()
    ));
    let (mu_r, sigma_r) = cached_stats(&net, reference, ref_stats, f.batch, f.device)?;
    crate::log::note(format!("FID: statistics of the {} generated images", images.len()));
    let (mu_g, sigma_g) = image_stats(&net, images, f.batch, f.device, true)?;
    write_stats_atomic(gen_stats, &mu_g, &sigma_g)?;
    let value = frechet_distance(&mu_g, &sigma_g, &mu_r, &sigma_r);
    if !value.is_finite() {
        bail!("FID: the Fréchet distance is not finite (eigendecomposition failed)");
    }
    Ok(value)
}

/// Merges coco_t2i shard folders: the caption lists must agree, lines are concatenated, images
/// are hard-linked (copied across file systems) into `out/coco_t2i_images/`, then the FID is
/// computed over all of them with the Inception the shards recorded (or `inception`).
pub fn merge(
    task: &Task,
    shards: &[(RunConfig, &PathBuf)],
    out: &Path,
    fp: &RunConfig,
    model: &ModelInfo,
    fid: &MergeFid,
) -> Result<Metrics> {
    let cfg = fp.t2i.as_ref().with_context(|| {
        format!("{}: no text-to-image settings", shards[0].1.join(files::RUN_JSON).display())
    })?;
    let first_captions = shards[0].1.join(RUN_FILES[0]);
    let list = read_captions(&first_captions)?;
    std::fs::create_dir_all(out.join(task.result_file))
        .with_context(|| format!("{}: cannot create", out.display()))?;
    let mut ids = HashSet::new();
    let mut lines = Vec::new();
    for (_, d) in shards {
        if !d.join(files::METRICS).exists() {
            bail!("{}: shard did not finish (no {})", d.display(), files::METRICS);
        }
        if read_captions(&d.join(RUN_FILES[0]))? != list {
            bail!(
                "{}: differs from {}: shards of different caption samples",
                d.join(RUN_FILES[0]).display(),
                first_captions.display()
            );
        }
        for l in files::read_predictions(&d.join(files::PREDICTIONS), false)? {
            let id = l["id"]
                .as_str()
                .with_context(|| format!("{}: a line without \"id\"", d.display()))?
                .to_owned();
            if !ids.insert(id.clone()) {
                bail!("{}: caption {id} appears in two shards", d.display());
            }
            if let Some(rel) = l["image"].as_str().filter(|_| l["error"].is_null()) {
                link_or_copy(&d.join(rel), &out.join(rel))?;
            }
            lines.push(l);
        }
    }
    files::write_run_json(out, fp, None)?;
    std::fs::copy(&first_captions, out.join(RUN_FILES[0]))
        .with_context(|| format!("{}: cannot copy", first_captions.display()))?;
    super::rewrite_lines(&out.join(files::PREDICTIONS), &lines)?;
    let inception = match &fid.inception {
        Some(p) => InceptionSource::File(p.clone()),
        None => InceptionSource::recorded(&cfg.inception, fp.seed),
    };
    let hash = inception.hash()?;
    if hash != cfg.inception_hash {
        bail!(
            "{}: inception_hash is {}, but {} hashes to {hash}: FID needs the shards' Inception",
            shards[0].1.join(files::RUN_JSON).display(),
            cfg.inception_hash,
            inception.name()
        );
    }
    // Without --reference-stats or --cache: the statistics file the shards named.
    let recorded = || -> Option<PathBuf> {
        let m = tasks::run_folder::read_metrics(shards[0].1).ok()?;
        m.fid_statistics?.get("reference")?.as_str().map(PathBuf::from)
    };
    let reference_stats = match (&fid.reference_stats, &fid.cache) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => None,
        (None, None) => recorded(),
    };
    let setup = FidSetup {
        inception: &inception,
        device: &fid.device,
        reference_stats,
        cache: fid.cache.clone(),
        batch: fid.batch,
    };
    let pos = positions(list.len(), fp.limit, None);
    let timing = Timing { merged_shards: Some(shards.len()), ..Timing::default() };
    finish_t2i(task, out, &list, &pos, fp, model, &setup, true, timing)
}

/// FID settings of `merge` for coco_t2i shards.
pub struct MergeFid {
    /// Inception weights (None: the file the shards recorded, or the built-in network).
    pub inception: Option<PathBuf>,
    pub device: Device,
    pub reference_stats: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    pub batch: usize,
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    if !src.is_file() {
        bail!("{}: missing (the shard's line names it)", src.display());
    }
    if dst.exists() {
        std::fs::remove_file(dst).with_context(|| format!("{}: cannot replace", dst.display()))?;
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .with_context(|| format!("{}: cannot copy to {}", src.display(), dst.display()))?;
    }
    Ok(())
}
