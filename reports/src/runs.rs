//! Finished run folders as `report` and `compare` read them; the file types are the run-folder
//! schema of `tasks::run_folder`.
use std::path::{Path, PathBuf};

use tasks::input::{read_text, InputError};
use tasks::run_folder::read_run_json;

pub use tasks::run_folder::{
    parse, Counts, Family, Headline, Metrics, Prediction, RunConfig, RunJson, Shard, Stage,
    Support, Timing, SCHEMA as RUN_SCHEMA,
};

/// A finished run folder.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    /// The folder name, used as the run's label.
    pub name: String,
    pub metrics: Metrics,
    pub predictions: Vec<Prediction>,
}

impl Run {
    /// Reads `metrics.json` and `predictions.jsonl` (and checks `run.json` when present).
    pub fn load(dir: &Path) -> Result<Run, InputError> {
        let metrics_path = dir.join("metrics.json");
        if !metrics_path.is_file() {
            return Err(InputError::file(
                &metrics_path,
                "not found (is this a finished `emu-eval run` folder?)",
            ));
        }
        let metrics: Metrics = parse(&metrics_path, &read_text(&metrics_path)?)?;
        let run_path = dir.join("run.json");
        if let Some(run) = read_run_json(dir)? {
            // A rebuilt binary may resume a run, so version and commit may differ.
            let (a, b) = (&run.config, &metrics.config);
            let same = (&a.task, a.model_family, a.shots, a.cot, a.text_examples)
                == (&b.task, b.model_family, b.shots, b.cot, b.text_examples)
                && a.fingerprint() == b.fingerprint();
            if !same {
                return Err(InputError::field(
                    &metrics_path,
                    "config",
                    format!("differs from {}", run_path.display()),
                ));
            }
        }
        let pred_path = dir.join("predictions.jsonl");
        let predictions = read_predictions(&pred_path)?;
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Run { dir: dir.to_owned(), name, metrics, predictions })
    }

    pub fn config(&self) -> &RunConfig {
        &self.metrics.config
    }
}

/// The run folders under `paths`, and a note per folder left out. A path is a run folder
/// (`metrics.json`), a merged or shard folder alike, or a parent folder that is walked (the
/// folder `run --task a --task b --output PARENT` writes, several levels deep). A run that has
/// not finished (`run.json` without `metrics.json`) is left out with a note, not an error.
pub fn discover(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<String>), InputError> {
    let (mut found, mut notes) = (Vec::new(), Vec::new());
    for p in paths {
        if !p.is_dir() {
            return Err(InputError::file(
                p,
                "not found (expected a run folder or a folder of runs)",
            ));
        }
        let before = found.len();
        walk(p, 0, &mut found, &mut notes)?;
        if found.len() == before && notes.is_empty() {
            return Err(InputError::file(p, "no run folder (metrics.json) inside"));
        }
    }
    found.sort();
    found.dedup();
    Ok((found, notes))
}

/// Depth of parent folders walked below a given path.
const MAX_DEPTH: usize = 4;

fn walk(
    dir: &Path,
    depth: usize,
    found: &mut Vec<PathBuf>,
    notes: &mut Vec<String>,
) -> Result<(), InputError> {
    if dir.join("metrics.json").is_file() {
        found.push(dir.to_owned());
        return Ok(());
    }
    if dir.join("run.json").is_file() {
        notes.push(format!(
            "{}: left out: the run has not finished (no metrics.json)",
            dir.display()
        ));
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| InputError::file(dir, format!("cannot read: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    for s in subs {
        walk(&s, depth + 1, found, notes)?;
    }
    Ok(())
}

/// Reads `predictions.jsonl`; an error names the line.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>, InputError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let p: Prediction = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            InputError::field(path, format!("line {}: {}", i + 1, e.path()), e.inner().to_string())
        })?;
        out.push(p);
    }
    Ok(out)
}
