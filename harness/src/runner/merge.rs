//! `emu-eval merge`: shard folders → exactly the folder a single run writes. The shards must be
//! 1..N of one N with one configuration (the shard aside), and no sample may appear twice.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::files::{self, RunConfig};
use super::{finish, positions, ModelInfo};
use crate::plan;

/// Merges `dirs` into `out`, which then equals the folder of the single run. The samples are read
/// again for scoring from `data_root`, else from the root the shards recorded (their annotation
/// files must still hold what they held). The VQA variant is `variant`, else the recorded one.
/// coco_t2i shards need no data root (their `captions.json` names the reference images); their
/// FID is computed here with `t2i`'s settings.
pub fn merge(
    dirs: &[PathBuf],
    out: &Path,
    data_root: Option<&Path>,
    wordnet: Option<&Path>,
    variant: Option<tasks::metrics::vqa::Variant>,
    t2i: &super::t2i::MergeFid,
) -> Result<tasks::run_folder::Metrics> {
    let _lock = super::lock::acquire_folder(out)?;
    let mut shards: Vec<(RunConfig, &PathBuf)> = Vec::new();
    for d in dirs {
        if let Some(who) = super::lock::holder(d) {
            bail!("{}: still being written by {who}", d.display());
        }
        let fp = files::read_config(d)?.with_context(|| {
            format!("{}: no {} (not a run folder)", d.display(), files::RUN_JSON)
        })?;
        shards.push((fp, d));
    }
    let (first, first_dir) = shards.first().cloned().context("merge: no run folders given")?;
    let count = first.shard.map_or(1, |s| s.count);
    let mut seen = vec![false; count];
    for (fp, d) in &shards {
        if let Some((field, a, b)) = first.first_difference(fp, &["shard", "data"]) {
            bail!(
                "{}: {field} is {b}, but {} has {a}: shards of different runs",
                d.join(files::RUN_JSON).display(),
                first_dir.display()
            );
        }
        if let Some(what) = first.data.content_difference(&fp.data) {
            bail!(
                "{}: data: {what} ({} has the other): shards over different data",
                d.join(files::RUN_JSON).display(),
                first_dir.display()
            );
        }
        let s = fp.shard.with_context(|| format!("{}: not a shard (no --shard)", d.display()))?;
        if s.count != count {
            bail!(
                "{}: shard {}/{} does not belong with {count} shards",
                d.display(),
                s.index,
                s.count
            );
        }
        if std::mem::replace(&mut seen[s.index - 1], true) {
            bail!("{}: shard {}/{count} given twice", d.display(), s.index);
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, &s)| !s)
        .map(|(i, _)| format!("{}/{count}", i + 1))
        .collect();
    if !missing.is_empty() {
        bail!("merge: missing shard(s) {}", missing.join(", "));
    }
    let task = tasks::registry::get(&first.task)
        .with_context(|| format!("{}: unknown task {}", first_dir.display(), first.task))?;
    if matches!(task.inference, tasks::registry::Inference::TextToImage) {
        let mut fp = first.clone();
        fp.shard = None;
        let model = ModelInfo {
            name: fp.model.clone(),
            weights_hash: fp.weights_hash.clone(),
            dtype: fp.dtype.clone(),
            device: merged_device(&shards),
        };
        return super::t2i::merge(task, &shards, out, &fp, &model, t2i);
    }
    let root = match data_root {
        Some(r) => std::path::absolute(r)
            .with_context(|| format!("{}: cannot resolve the data root", r.display()))?,
        None => PathBuf::from(&first.data.root),
    };
    crate::provenance::verify_files(&first.data, &root, &first_dir.join(files::RUN_JSON))?;
    let variant = match (variant, first.vqa_variant.as_deref()) {
        (Some(v), _) => v,
        (None, Some(name)) => tasks::metrics::vqa::Variant::parse(name).with_context(|| {
            format!(
                "{}: vqa_variant: unknown variant {name}",
                first_dir.join(files::RUN_JSON).display()
            )
        })?,
        (None, None) => tasks::metrics::vqa::Variant::Official,
    };
    let data = plan::load(task, &root, &first.split, false, first.seed)?;
    let mut ids = HashSet::new();
    let mut text = String::new();
    for (_, d) in &shards {
        let m = d.join(files::METRICS);
        if !m.exists() {
            bail!("{}: shard did not finish (no {})", d.display(), files::METRICS);
        }
        for l in files::read_predictions(&d.join(files::PREDICTIONS), false)? {
            let id = l["id"]
                .as_str()
                .with_context(|| format!("{}: a line without \"id\"", d.display()))?
                .to_owned();
            if !ids.insert(id.clone()) {
                bail!("{}: sample {id} appears in two shards", d.display());
            }
            text.push_str(&serde_json::to_string(&l)?);
            text.push('\n');
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut fp = first.clone();
    fp.shard = None;
    fp.data.root = root.display().to_string();
    files::write_run_json(out, &fp, None)?;
    files::write_atomic(&out.join(files::PREDICTIONS), text.as_bytes())?;
    let wn = super::load_wordnet(task, wordnet)?;
    let device = merged_device(&shards);
    let model = ModelInfo {
        name: fp.model.clone(),
        weights_hash: fp.weights_hash.clone(),
        dtype: fp.dtype.clone(),
        device,
    };
    let pos = positions(data.split.samples.len(), fp.limit, None);
    let timing = tasks::run_folder::Timing { merged_shards: Some(count), ..Default::default() };
    finish::finish(out, &data, &pos, &fp, &model, variant, wn.as_ref(), timing)
}

/// The shards' device, when they agree (as a single run records it).
fn merged_device(shards: &[(RunConfig, &PathBuf)]) -> String {
    let devs: HashSet<String> = shards
        .iter()
        .filter_map(|(_, d)| std::fs::read_to_string(d.join(files::METRICS)).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter_map(|m| m["config"]["device"].as_str().map(str::to_owned))
        .collect();
    match devs.len() {
        1 => devs.into_iter().next().unwrap_or_default(),
        _ => "mixed".into(),
    }
}
