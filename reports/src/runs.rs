//! The files of an `emu-eval run` folder (schema v1): `run.json`, `metrics.json` and
//! `predictions.jsonl`, as typed serde structs.
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tasks::input::{read_text, InputError};

/// The run schema this crate reads.
pub const RUN_SCHEMA: u32 = 1;

/// Emu (pretrained) or Emu-I (instruction tuned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "emu")]
    Emu,
    #[serde(rename = "emu-i")]
    EmuI,
}

impl Family {
    /// The paper's name: `Emu`, `Emu-I`.
    pub fn paper_name(self) -> &'static str {
        match self {
            Family::Emu => "Emu",
            Family::EmuI => "Emu-I",
        }
    }
    /// The id used in run files: `emu`, `emu-i`.
    pub fn id(self) -> &'static str {
        match self {
            Family::Emu => "emu",
            Family::EmuI => "emu-i",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The configuration fingerprint of a run (`run.json` without `schema`; `metrics.json`'s `config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub task: String,
    pub split: String,
    pub model: String,
    pub weights_hash: String,
    pub model_family: Family,
    pub dtype: String,
    pub shots: u32,
    pub cot: bool,
    pub text_examples: bool,
    pub support_method: String,
    pub seed: u64,
    pub limit: Option<u64>,
    pub template_version: String,
    pub shard: Option<Shard>,
    pub emu_eval_version: String,
    pub git_commit: String,
}

impl RunConfig {
    /// The fields that must agree for two runs to measure the same thing, as (name, value) pairs.
    /// Binary version, commit and shard are left out: they are expected to change.
    pub fn fingerprint(&self) -> Vec<(&'static str, String)> {
        vec![
            ("split", self.split.clone()),
            ("model", self.model.clone()),
            ("weights_hash", self.weights_hash.clone()),
            ("dtype", self.dtype.clone()),
            ("support_method", self.support_method.clone()),
            ("seed", self.seed.to_string()),
            ("limit", self.limit.map_or("none".to_owned(), |l| l.to_string())),
            ("template_version", self.template_version.clone()),
        ]
    }
    /// Short model name: the last path component of `model`.
    pub fn model_name(&self) -> &str {
        self.model.trim_end_matches('/').rsplit('/').next().unwrap_or(&self.model)
    }
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJson {
    pub schema: u32,
    #[serde(flatten)]
    pub config: RunConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub samples: u64,
    pub scored: u64,
    pub failed: u64,
}

/// The headline metric on the paper's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub name: String,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub wall_seconds: f64,
    pub model_seconds: f64,
    pub samples_per_second: f64,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub task: String,
    pub split: String,
    pub counts: Counts,
    /// Null when the run could not be scored.
    pub headline: Option<Headline>,
    /// What `emu-eval score` prints under `metric`.
    pub metric: serde_json::Value,
    pub result_file: String,
    pub config: RunConfig,
    pub timing: Timing,
}

/// Few-shot support examples of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Support {
    pub method: String,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub similarities: Option<Vec<f64>>,
}

/// One model call of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub stage: String,
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub images: Vec<String>,
    /// Per image: `[i, k]` = frame i of k sampled from a video, or null for a still image.
    #[serde(default)]
    pub frames: Vec<Option<[usize; 2]>>,
    #[serde(default)]
    pub output: serde_json::Value,
}

/// One line of `predictions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub id: String,
    #[serde(default)]
    pub support: Option<Support>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Post-processed answer (text, VisDial ranks) or null when the sample failed.
    pub prediction: serde_json::Value,
    /// On the headline scale; null for corpus-level metrics (CIDEr) and failed samples.
    pub score: Option<f64>,
    pub error: Option<String>,
    #[serde(default)]
    pub time_seconds: f64,
}

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
        if run_path.is_file() {
            let run: RunJson = parse(&run_path, &read_text(&run_path)?)?;
            if run.schema != RUN_SCHEMA {
                return Err(InputError::field(&run_path, "schema", format!("{} is not supported (expected {RUN_SCHEMA})", run.schema)));
            }
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

/// Parses a JSON document into `T`; the error names the field path.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, InputError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let msg = e.inner().to_string();
        if field == "." {
            InputError::file(path, msg)
        } else {
            InputError::field(path, field, msg)
        }
    })
}
