//! Finished run folders as `report` and `compare` read them; the file types are the run-folder
//! schema of `tasks::run_folder`.
use std::path::{Path, PathBuf};

use tasks::input::{read_text, InputError};
use tasks::run_folder::read_run_json;

pub use tasks::run_folder::{
    parse, Counts, Family, Headline, Metrics, Prediction, RunConfig, RunJson, Shard, Stage, Support, Timing,
    SCHEMA as RUN_SCHEMA,
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
            return Err(InputError::file(&metrics_path, "not found (is this a finished `emu-eval run` folder?)"));
        }
        let metrics: Metrics = parse(&metrics_path, &read_text(&metrics_path)?)?;
        let run_path = dir.join("run.json");
        if let Some(run) = read_run_json(dir)? {
            // A rebuilt binary may resume a run, so version and commit may differ.
            let (a, b) = (&run.config, &metrics.config);
            let same = (&a.task, a.model_family, a.shots, a.cot, a.text_examples) == (&b.task, b.model_family, b.shots, b.cot, b.text_examples)
                && a.fingerprint() == b.fingerprint();
            if !same {
                return Err(InputError::field(&metrics_path, "config", format!("differs from {}", run_path.display())));
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

/// Reads `predictions.jsonl`; an error names the line.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>, InputError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let p: Prediction = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| InputError::field(path, format!("line {}: {}", i + 1, e.path()), e.inner().to_string()))?;
        out.push(p);
    }
    Ok(out)
}
